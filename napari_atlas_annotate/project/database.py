"""The project's SQLite database: schema and connections.

WAL mode lets several annotators (separate processes) read while one writes; every write
is a short ``BEGIN IMMEDIATE`` transaction and ``busy_timeout`` makes writers queue rather
than fail. An edit event is committed as soon as it is logged, so a killed process loses
at most the stroke in flight. Every open runs :data:`SCHEMA` (``IF NOT EXISTS``
throughout), so a project made before a table or index was added gets it when next opened.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from .errors import ProjectError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS cases(
    id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    images TEXT NOT NULL,            -- JSON [{"path", "description", "series"}]
    truth TEXT,                      -- JSON {"label", "grades", "points"} (phantoms)
    source TEXT,
    added_at REAL NOT NULL,
    position INTEGER NOT NULL,
    uncertainty REAL                 -- set by proposals, higher = review first
);
CREATE TABLE IF NOT EXISTS annotators(
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL DEFAULT 'annotator',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL REFERENCES cases(id),
    annotator TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('proposal', 'corrected', 'final', 'imported')),
    content TEXT NOT NULL CHECK (content IN ('mask', 'grades')),
    path TEXT NOT NULL,              -- relative to the project folder
    sha256 TEXT NOT NULL,
    model_version TEXT,
    parent_id INTEGER REFERENCES versions(id),
    last_event_id INTEGER,           -- events up to this id are folded into the version
    created_at REAL NOT NULL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS versions_case ON versions(case_id, annotator, id);
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL REFERENCES cases(id),
    annotator TEXT NOT NULL,
    base_version_id INTEGER REFERENCES versions(id),
    t REAL NOT NULL,
    tool TEXT NOT NULL,
    class_id INTEGER,
    bbox TEXT,                       -- JSON [[z0,z1],[y0,y1],[x0,x1]] (half-open)
    diff BLOB,                       -- LabelDiff.to_bytes()
    n_changed INTEGER NOT NULL DEFAULT 0,
    active_seconds REAL NOT NULL DEFAULT 0,
    detail TEXT                      -- JSON, grade/point edits and tool parameters
);
CREATE INDEX IF NOT EXISTS events_case ON events(case_id, annotator, id);
-- where each person stands on each case: the latest edit per base version and tool
CREATE INDEX IF NOT EXISTS events_standing ON events(case_id, annotator, base_version_id, tool);
CREATE TABLE IF NOT EXISTS audit(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT,
    t REAL NOT NULL
);
-- a case's final version is current unless the audit holds a 'reopen' of it
CREATE INDEX IF NOT EXISTS audit_case ON audit(case_id, action);
-- a reader's note typed and not yet submitted (one per case and reader), kept across a crash
CREATE TABLE IF NOT EXISTS note_drafts(
    case_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    note TEXT NOT NULL,
    t REAL NOT NULL,
    PRIMARY KEY (case_id, annotator)
);
CREATE TABLE IF NOT EXISTS rounds(
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    model_version TEXT,
    metrics TEXT
);
CREATE TABLE IF NOT EXISTS models(
    version TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    path TEXT NOT NULL,
    round INTEGER,
    created_at REAL NOT NULL,
    metrics TEXT,
    active INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agreement(  -- review metrics of a case's readers' versions
    case_id TEXT NOT NULL REFERENCES cases(id),
    readers TEXT NOT NULL,           -- JSON [[annotator, version id], ...], sorted
    distances INTEGER NOT NULL,      -- 1: HD95 computed, 0: left out
    metrics TEXT NOT NULL,           -- JSON, review.metrics.MaskAgreement.to_dict()
    PRIMARY KEY (case_id, readers, distances)
);
CREATE TABLE IF NOT EXISTS final_agreement(  -- a reader's version against a final version
    final_id INTEGER NOT NULL,
    version_id INTEGER NOT NULL,
    counts TEXT NOT NULL,            -- JSON, review.final_agreement.ReaderVsFinal.counts
    voxel_ml REAL NOT NULL,          -- one voxel's volume (organs), 0 for grades
    PRIMARY KEY (final_id, version_id)
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create if needed) the project database with WAL and a busy timeout.

    Raises
    ------
    ProjectError
        The file is damaged or not a database, or cannot be written (what to do is said).
    """
    try:
        return _connect(path)
    except sqlite3.DatabaseError as exc:
        raise ProjectError(_unusable(path, exc)) from exc


def _unusable(path: Path, exc: sqlite3.DatabaseError) -> str:
    """Why the project database at ``path`` cannot be used, and what to do."""
    said = str(exc)
    if "full" in said or "disk I/O error" in said:
        # SQLite cannot write its journal: the file itself is as it was
        free = _free_mb(path.parent)
        return (
            f"{path}: the project database could not be written ({said}); the disk holding "
            f"the project is probably full ({free} free). The database itself is not "
            "changed: free space on that disk, then run the command again."
        )
    if "readonly" in said or "unable to open" in said:
        return (
            f"{path}: the project database cannot be opened for writing ({said}). A project "
            "needs write access to its folder (its database keeps a journal beside it): "
            "open it from a folder you can write to, or copy the project folder there."
        )
    return (
        f"{path}: the project database is damaged ({said}). The label files under "
        f"{path.parent / 'labels'} are not touched: put back project.sqlite from a backup "
        "of the project folder (or rebuild it with 'sqlite3 project.sqlite .recover'), "
        "then open the project again."
    )


def _free_mb(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 1e6:.1f} MB"
    except OSError:
        return "unknown space"


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 60000")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a committed event survives a killed process (it is in the OS);
    # only a power loss can drop the last transactions.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    with transaction(conn):
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection):
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
