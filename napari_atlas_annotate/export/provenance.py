"""``provenance.json``: where every exported label came from.

Per case: the label version exported (id, kind, annotator, content sha256), who annotated
it (versions and edit-log events), which model versions proposed it, edit counts and
active time per annotator, who finalized it (the final version's author and the lead's
finalize and reopen records, so a final made again after a reopen shows it), and the
sha256 and size of every file written for the case. At the top:
tool and version, export time (UTC), format, selection status, the project's classes, the
number of exported cases per label kind (``label_kinds``: final, corrected, imported,
proposal) and the cases skipped with the reason. Only case ids and hashes: no image paths
(folder names often hold patient names) and no audit ``detail`` text.

Cases appear under their *exported* names (a case id that carries a patient identifier is
pseudonymised, see :mod:`.case_names`); the map back to the project's case ids is in the
project's audit trail, never in the manifest.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections import Counter
from pathlib import Path

from .. import __version__
from ..io.atomic import write_text
from ..project import Project
from .selection import Selection, Skipped

PROVENANCE_NAME = "provenance.json"
_FINALIZE_WORDS = ("final", "adjudicat", "approve", "accept", "reopen")


def file_digest(path: Path) -> dict:
    """``{"sha256", "bytes"}`` of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return {"sha256": h.hexdigest(), "bytes": Path(path).stat().st_size}


def iso_utc(t: float | None) -> str | None:
    """A POSIX time as ISO 8601 in UTC, to the second (None stays None)."""
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")


def case_provenance(
    project: Project,
    selection: Selection,
    files: dict[str, dict],
    edit_counts: dict[tuple[str, str], tuple[int, float]],
    extra: dict | None = None,
    name: str | None = None,
) -> dict:
    """The manifest entry of one exported case (``files``: relative path -> digest;
    ``name``: the case's exported name, default its case id)."""
    case_id, version = selection.case_id, selection.version
    versions = project.versions(case_id)
    proposals = [v for v in versions if v.kind == "proposal"]
    edits = {
        annotator: {"events": n, "active_seconds": round(seconds, 1)}
        for (cid, annotator), (n, seconds) in sorted(edit_counts.items())
        if cid == case_id
    }
    annotators = sorted(
        {v.annotator for v in versions if v.annotator and v.kind != "proposal"} | set(edits)
    )
    audit = [
        {"actor": a["actor"], "action": a["action"], "time": iso_utc(a["t"])}
        for a in project.audit_trail(case_id)
        if any(w in a["action"].lower() for w in _FINALIZE_WORDS)
        or a["detail"].get("version") == version.id
    ]
    final = version if version.kind == "final" else None
    entry = {
        "case_id": name or case_id,
        "label_version": {
            "id": version.id,
            "kind": version.kind,
            "annotator": version.annotator,
            "sha256": version.sha256,
            "parent_id": version.parent_id,
            "model_version": version.model_version,
            "created_at": iso_utc(version.created_at),
        },
        "annotators": annotators,
        "proposals": [
            {
                "version_id": v.id,
                "model_version": v.model_version,
                "created_at": iso_utc(v.created_at),
            }
            for v in proposals
        ],
        "model_versions": sorted({v.model_version for v in proposals if v.model_version}),
        "edits": edits,
        "finalized_by": {"annotator": final.annotator if final else None, "audit": audit},
        "files": files,
    }
    if extra:
        entry.update(extra)
    return entry


def write_provenance(
    root: Path,
    project: Project,
    *,
    fmt: str,
    status: str,
    keep_identifiers: bool,
    cases: list[dict],
    skipped: list[Skipped],
    shared_files: dict[str, dict],
    notes: list[str] | None = None,
    names: dict[str, str] | None = None,
) -> Path:
    """Write ``root/provenance.json`` (``names``: exported name per case id, for the
    skipped list; the case entries carry theirs already)."""
    names = names or {}
    manifest = {
        "tool": "napari-atlas-annotate",
        "tool_version": __version__,
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "format": fmt,
        "status": status,
        "identifiers": "kept" if keep_identifiers else "pseudonymised",
        "pseudonymised_case_ids": sum(name != case_id for case_id, name in names.items()),
        "project": {"name": project.config.name, "task": project.task, "classes": project.classes},
        "n_cases": len(cases),
        "label_kinds": dict(Counter(c["label_version"]["kind"] for c in cases)),
        "cases": cases,
        "skipped": [
            {"case_id": names.get(s.case_id, s.case_id), "reason": s.reason} for s in skipped
        ],
        "files": shared_files,
        "notes": list(notes or []),
    }
    return write_text(root / PROVENANCE_NAME, json.dumps(manifest, indent=2) + "\n")
