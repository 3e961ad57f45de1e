"""The on-disk project: cases, annotators, label versions and the edit log.

Layout of a project folder::

    project.json          task and classes (ProjectConfig)
    project.sqlite        cases, annotators, versions, events, audit, rounds, models (WAL)
    labels/<case>/...     one file per label version (NIfTI masks, JSON grade sheets),
                          named by content hash and written atomically
    models/<version>/     MONAI-bundle-shaped model folders (helper models)

Images are referenced, not copied. Every label version is immutable; "latest" is a query.
A proposal identical to the case's latest proposal from the same model is not stored again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..io import VolumeLoadError, load_volume
from ..io.atomic import remove_stale_temps, write_bytes
from ..io.nifti import load_nifti, nifti_grid, save_labels
from ..volume import Volume
from .config import CONFIG_NAME, DATABASE_NAME, ProjectConfig
from .database import connect, transaction
from .edit_log import EditEvent, LabelDiff, event_content, replay
from .errors import ProjectError
from .records import Case, ImageRef, LabelVersion

if TYPE_CHECKING:
    from ..grade_sheet import GradeSheet

KINDS = ("proposal", "corrected", "final", "imported")
#: ``ORDER BY`` of the queue: most uncertain proposals first, then as added.
QUEUE_ORDER = "uncertainty IS NULL, uncertainty DESC, position"
CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: How many known case ids an unknown-case error names.
KNOWN_IDS_SHOWN = 10


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mask_sha256(labels: np.ndarray) -> str:
    """A label map's digest as its version records it (``LabelVersion.sha256``): whether
    an array in memory is still exactly a stored version, without reading the file."""
    digest = hashlib.sha256(np.ascontiguousarray(labels).reshape(-1).view(np.uint8))
    digest.update(str(labels.dtype).encode())  # the array's bytes, then its type's name
    return digest.hexdigest()


class Project:
    """An annotation project folder. Safe to open from several processes at once.

    Examples
    --------
    >>> project = Project.create("liver-round1", task="organs")   # doctest: +SKIP
    >>> project.add_case("case0001", [ImageRef("/data/ct1.nii.gz")])  # doctest: +SKIP
    """

    def __init__(self, folder: str | Path, *, _new: bool = False) -> None:
        self.folder = Path(folder).resolve()
        self.config = ProjectConfig.load(self.folder)
        used = any((self.folder / name).exists() for name in ("labels", "models"))
        if not _new and used and not (self.folder / DATABASE_NAME).exists():
            # opening would make an empty one: every case, version and edit gone from view
            raise ProjectError(
                f"{self.folder / DATABASE_NAME}: the project's database (its cases, label "
                "versions and edit log) is missing. Put it back from a backup of the project "
                f"folder; the label files under {self.folder / 'labels'} are not touched."
            )
        self._db = connect(self.folder / DATABASE_NAME)
        self._db_file = _file_identity(self.folder / DATABASE_NAME)
        self._grids: dict[str, tuple[tuple[int, ...], np.ndarray]] = {}

    # -- lifecycle -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: str | Path,
        task: str,
        classes: list[str] | None = None,
        name: str = "",
        label_tolerance: int = 0,
    ) -> Project:
        folder = Path(folder)
        if (folder / CONFIG_NAME).exists():
            raise ProjectError(f"{folder}: already a project; open it instead of init.")
        folder.mkdir(parents=True, exist_ok=True)
        ProjectConfig(
            name=name or folder.resolve().name,
            task=task,
            classes=list(classes or []),
            label_tolerance=label_tolerance,
        ).save(folder)
        return cls(folder, _new=True)

    def close(self) -> None:
        self._db.close()

    def check_in_place(self) -> None:
        """Raise :class:`ProjectError` unless the project is still where it was opened.

        A project folder moved or deleted while a window has it open keeps its database
        connection working (the moved or unlinked file), so a version saved then would
        land in a folder without the database, or in no project at all, with success
        reported. Saves check first.
        """
        if _file_identity(self.folder / DATABASE_NAME) == self._db_file:
            return
        raise ProjectError(
            f"{self.folder}: the project was moved or deleted while it was open (its "
            f"{DATABASE_NAME} is no longer the one opened). Nothing was stored. If you moved "
            "it, open it again where it is now: what you logged so far is kept in its edit "
            "log and comes back with the case."
        )

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def classes(self) -> list[str]:
        return list(self.config.classes)

    # -- annotators and audit -------------------------------------------------------
    def ensure_annotator(self, name: str, role: str = "annotator") -> None:
        if not name or not re.match(r"^[\w.@ -]{1,64}$", name):
            raise ProjectError(f"annotator name {name!r} is not valid (letters, digits, . @ -)")
        with transaction(self._db):
            self._db.execute(
                "INSERT OR IGNORE INTO annotators(name, role, created_at) VALUES (?, ?, ?)",
                (name, role, time.time()),
            )

    def annotators(self) -> list[str]:
        return [r["name"] for r in self._db.execute("SELECT name FROM annotators ORDER BY name")]

    def record_audit(self, case_id: str | None, actor: str, action: str, **detail) -> None:
        with transaction(self._db):
            self._db.execute(
                "INSERT INTO audit(case_id, actor, action, detail, t) VALUES (?, ?, ?, ?, ?)",
                (case_id, actor, action, json.dumps(detail), time.time()),
            )

    def audit_trail(self, case_id: str | None = None) -> list[dict]:
        sql = "SELECT * FROM audit" + (" WHERE case_id = ?" if case_id else "") + " ORDER BY id"
        rows = self._db.execute(sql, (case_id,) if case_id else ())
        return [{**dict(r), "detail": json.loads(r["detail"] or "{}")} for r in rows]

    # -- cases --------------------------------------------------------------------------
    def _stored_path(self, path: str | Path) -> str:
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.folder))
        except ValueError:
            return str(path)

    def resolve(self, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else self.folder / path

    def add_case(
        self,
        case_id: str,
        images: list[ImageRef],
        *,
        truth: dict | None = None,
        source: str = "",
    ) -> Case:
        if not CASE_ID.match(case_id):
            raise ProjectError(
                f"case id {case_id!r} is not valid: use letters, digits, '.', '_' or '-'."
            )
        if not images:
            raise ProjectError(f"case {case_id}: no images given.")
        stored = [i.to_json(self._stored_path(i.path)) for i in images]
        truth = {k: self._stored_path(v) for k, v in (truth or {}).items() if v}
        with transaction(self._db):
            if self._db.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone():
                raise ProjectError(f"case {case_id} is already in the project.")
            position = self._db.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM cases"
            ).fetchone()[0]
            self._db.execute(
                "INSERT INTO cases(id, task, images, truth, source, added_at, position)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    case_id,
                    self.task,
                    json.dumps(stored),
                    json.dumps(truth),
                    source,
                    time.time(),
                    position,
                ),
            )
        return self.case(case_id)

    def removal_blockers(self, case_id: str) -> list[str]:
        """What people made on a case (submitted, imported or final versions, edits, notes
        typed and not submitted); a case with any of it is never removed. Empty when only
        the model proposed."""
        self.case(case_id)
        made = [
            f"{r['n']} {r['kind']} version(s) by {r['annotator']}"
            for r in self._db.execute(
                "SELECT annotator, kind, COUNT(*) AS n FROM versions WHERE case_id = ?"
                " AND kind != 'proposal' GROUP BY annotator, kind ORDER BY annotator, kind",
                (case_id,),
            )
        ]
        made += [
            f"{r['n']} edit(s) by {r['annotator']}"
            for r in self._db.execute(
                "SELECT annotator, COUNT(*) AS n FROM events WHERE case_id = ?"
                " GROUP BY annotator ORDER BY annotator",
                (case_id,),
            )
        ]
        made += [
            f"a note not yet submitted by {r['annotator']}"
            for r in self._db.execute(
                "SELECT annotator FROM note_drafts WHERE case_id = ? ORDER BY annotator",
                (case_id,),
            )
        ]
        return made

    def remove_case(self, case_id: str, actor: str, reason: str) -> Path | None:
        """Take a case nobody has labelled out of the project (a wrong or broken image).

        Its proposals' rows go; their files are moved, not deleted, from
        ``labels/<case>/`` to ``removed/<case>-<UTC time>/`` (returned, or None when there
        were none), and an audit record ``remove`` keeps who, why, the images and where the
        files went. The images themselves are not touched.

        Raises
        ------
        ProjectError
            No reason given, or the case holds work people made (:meth:`removal_blockers`).
        """
        if not reason or not reason.strip():
            raise ProjectError(f"case {case_id}: say why it is removed (a reason is required).")
        made = self.removal_blockers(case_id)
        if made:
            raise ProjectError(
                f"case {case_id} holds work people made ({'; '.join(made)}); it is not "
                "removed. Export those labels first, or keep the case."
            )
        case = self.case(case_id)
        labels = self.folder / "labels" / case_id
        moved = None
        if labels.exists():
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            moved = self.folder / "removed" / f"{case_id}-{stamp}"
            moved.parent.mkdir(exist_ok=True)
            labels.rename(moved)
        detail = {
            "reason": reason.strip(),
            "images": [ref.path for ref in case.images],
            "moved_to": str(moved.relative_to(self.folder)) if moved else None,
        }
        try:
            with transaction(self._db):
                self._db.execute("DELETE FROM agreement WHERE case_id = ?", (case_id,))
                self._db.execute("DELETE FROM versions WHERE case_id = ?", (case_id,))
                self._db.execute("DELETE FROM cases WHERE id = ?", (case_id,))
                self._db.execute(
                    "INSERT INTO audit(case_id, actor, action, detail, t) VALUES (?, ?, ?, ?, ?)",
                    (case_id, actor, "remove", json.dumps(detail), time.time()),
                )
        except BaseException:
            if moved is not None:  # the case stays: its files go back where they were
                moved.rename(labels)
            raise
        self._grids.pop(case_id, None)
        return moved

    def rename_series(
        self, case_id: str, descriptions: dict[int, str], points: dict[str, str], actor: str
    ) -> tuple[list[int], list[int]]:
        """Give some of a case's images new descriptions (the names points and the grader
        know a series by), and the points that named those series by an old name the new
        one.

        Nothing else changes: the images stay the same files, series and stacks. Each
        grades version with a point naming a key of ``points`` is stored again under its
        new content (same id, kind, annotator, parent and time; the old file is kept),
        and each logged point edit naming one is rewritten, so no grade, point or
        unsubmitted edit is lost. One ``rename_series`` audit record says what was
        renamed, by ``actor``.

        Parameters
        ----------
        descriptions
            ``{image index: new description}``.
        points
            ``{old series name: new series name}`` for the points.

        Returns
        -------
        tuple of list of int
            The ids of the grades versions and of the edit events rewritten.

        Raises
        ------
        ProjectError
            An image index the case does not have.
        """
        case = self.case(case_id)
        wrong = sorted(i for i in descriptions if not 0 <= i < len(case.images))
        if wrong:
            raise ProjectError(
                f"case {case_id}: has {len(case.images)} image(s), no image {wrong[0]} to rename."
            )
        images = [
            ImageRef(ref.path, descriptions.get(i, ref.description), ref.series, ref.stack)
            for i, ref in enumerate(case.images)
        ]
        versions = []  # (id, new path, new sha256, old sha256)
        for version in self.versions(case_id, content="grades"):
            try:
                sheet = self.read_grades(version)
            except (OSError, ValueError, KeyError) as exc:
                raise ProjectError(
                    f"case {case_id}: grades version {version.id} ({self.folder / version.path})"
                    f" cannot be read ({exc}); no series was renamed. Restore the file from a "
                    "backup and try again."
                ) from None
            named = {c: p for c, p in sheet.points.items() if p.series in points}
            if not named:
                continue
            for cell, point in named.items():
                sheet.points[cell] = replace(point, series=points[point.series])
            data = sheet.to_json().encode()
            sha = _sha256(data)
            rel = f"labels/{case_id}/{version.kind}-{version.annotator or 'model'}-{sha[:16]}.json"
            if not (self.folder / rel).exists():
                write_bytes(self.folder / rel, data)
            versions.append((version.id, rel, sha, version.sha256))
        events = []  # (new detail, id): point edits (grade_editing) name a series
        rows = self._db.execute(
            "SELECT id, detail FROM events WHERE case_id = ? AND detail IS NOT NULL ORDER BY id",
            (case_id,),
        )
        for row in rows:
            detail = json.loads(row["detail"])
            if not isinstance(detail, dict):
                continue
            edited = [
                detail[key]
                for key in ("old_point", "new_point")
                if isinstance(detail.get(key), dict) and detail[key].get("series") in points
            ]
            for point in edited:
                point["series"] = points[point["series"]]
            if edited:
                events.append((json.dumps(detail), row["id"]))
        record = {
            "images": {str(i): [case.images[i].description, d] for i, d in descriptions.items()},
            "points": points,
            "versions": {str(v): [old, new] for v, _, new, old in versions},
            "events": [e for _, e in events],
        }
        with transaction(self._db):
            self._db.execute(
                "UPDATE cases SET images = ? WHERE id = ?",
                (json.dumps([ref.to_json() for ref in images]), case_id),
            )
            self._db.executemany(
                "UPDATE versions SET path = ?, sha256 = ? WHERE id = ?",
                [(rel, sha, v) for v, rel, sha, _ in versions],
            )
            self._db.executemany("UPDATE events SET detail = ? WHERE id = ?", events)
            self._db.execute(
                "INSERT INTO audit(case_id, actor, action, detail, t) VALUES (?, ?, ?, ?, ?)",
                (case_id, actor, "rename_series", json.dumps(record), time.time()),
            )
        return [v for v, *_ in versions], [e for _, e in events]

    def cases(self) -> list[Case]:
        rows = self._db.execute("SELECT * FROM cases ORDER BY position")
        return [Case.from_row(r) for r in rows]

    def case(self, case_id: str) -> Case:
        row = self._db.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone()
        if row is None:
            ids = [r[0] for r in self._db.execute("SELECT id FROM cases ORDER BY position")]
            known = ", ".join(ids[:KNOWN_IDS_SHOWN]) or "none yet"
            if len(ids) > KNOWN_IDS_SHOWN:
                known += f", ... ({len(ids)} in all; 'atlas-annotate status' lists them)"
            raise ProjectError(f"no case {case_id!r} in project {self.folder} (cases: {known}).")
        return Case.from_row(row)

    def set_uncertainty(self, case_id: str, value: float | None) -> None:
        with transaction(self._db):
            self._db.execute("UPDATE cases SET uncertainty = ? WHERE id = ?", (value, case_id))

    def queue(self, *, include_final: bool = True) -> list[Case]:
        """Cases in annotation order: most uncertain proposals first, then as added.

        With ``include_final=False`` only the cases still to annotate: those with a current
        final version (see :meth:`current_final`) are left out.
        """
        rows = self._db.execute(f"SELECT * FROM cases ORDER BY {QUEUE_ORDER}")
        cases = [Case.from_row(r) for r in rows]
        if include_final:
            return cases
        finals = self.current_finals()
        return [c for c in cases if c.id not in finals]

    def current_finals(self, content: str | None = None) -> dict[str, int]:
        """Every case's current final version id (:meth:`current_final`), read at once."""
        finals = _Standing.load(self._db, finals_only=True)
        current = {c: finals.current_final(c, content) for c in finals.versions}
        return {c: v.id for c, v in current.items() if v is not None}

    def load_image(self, case_id: str, index: int = 0) -> Volume:
        """The case's ``index``-th image, with a message saying what to do if it is gone."""
        case = self.case(case_id)
        ref = case.images[index]
        path = self.resolve(ref.path)
        if not path.exists():
            raise ProjectError(
                f"case {case_id}: image {path} is missing (moved or deleted?). The project "
                "reads the case from that path: put the image back there and try again "
                "(or, if nobody has labelled the case, take it out with 'atlas-annotate "
                "remove')."
            )
        try:
            volume = load_volume(path, series=ref.series, stack=ref.stack)
        except VolumeLoadError as exc:
            reason = str(exc).rstrip()
            reason += "" if reason.endswith((".", "!", "?")) else "."
            raise ProjectError(
                f"case {case_id}: {reason} The project reads the case from {path}: fix or "
                "replace the image there and try again (or, if nobody has labelled the "
                "case, take it out with 'atlas-annotate remove')."
            ) from exc
        if index == 0:
            self.remember_grid(case_id, volume)
        return volume

    def remember_grid(self, case_id: str, first_image: Volume) -> None:
        """Keep the grid of the case's first image, read by other means than
        :meth:`load_image` (a case's images read together), for :meth:`grid`."""
        self._grids[case_id] = (first_image.shape, first_image.affine.copy())

    def grid(self, case_id: str) -> tuple[tuple[int, ...], np.ndarray]:
        """(shape, affine) of the case's first image (its labels' grid); loads it once
        if needed."""
        if case_id not in self._grids:
            self.load_image(case_id)
        return self._grids[case_id]

    # -- label versions -------------------------------------------------------------
    def _insert_version(
        self,
        case_id,
        annotator,
        kind,
        content,
        rel_path,
        sha,
        model_version,
        parent_id,
        last_event_id,
        note,
    ) -> LabelVersion:
        if kind not in KINDS:
            raise ProjectError(f"version kind must be one of {KINDS}, not {kind!r}")
        self.case(case_id)
        if kind == "proposal":  # the same model proposing the same again adds nothing
            latest = self.latest_version(case_id, kinds=("proposal",), content=content)
            if latest is not None and (latest.model_version, latest.sha256) == (
                model_version,
                sha,
            ):
                return latest
        if kind == "final":  # the same lead finalizing the same again adds nothing
            final = self.current_final(case_id, content)
            if final is not None and (final.annotator, final.sha256) == (annotator, sha):
                return final
        with transaction(self._db):
            cur = self._db.execute(
                "INSERT INTO versions(case_id, annotator, kind, content, path, sha256,"
                " model_version, parent_id, last_event_id, created_at, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    case_id,
                    annotator,
                    kind,
                    content,
                    rel_path,
                    sha,
                    model_version,
                    parent_id,
                    last_event_id,
                    time.time(),
                    note,
                ),
            )
            vid = cur.lastrowid
        return self.version(vid)

    def save_mask_version(
        self,
        case_id: str,
        labels: np.ndarray,
        *,
        kind: str,
        annotator: str | None = None,
        model_version: str | None = None,
        parent_id: int | None = None,
        last_event_id: int | None = None,
        note: str | None = None,
        reference: Volume | None = None,
    ) -> LabelVersion:
        """Store a label map as a new immutable version (NIfTI on the image grid).

        A ``proposal`` whose content and model equal the case's latest proposal is that
        version, and so is a ``final`` version equal to the case's current final version by
        the same lead: it is returned instead of being stored twice.
        """
        labels = np.asarray(labels)
        shape, affine = (reference.shape, reference.affine) if reference else self.grid(case_id)
        if tuple(labels.shape) != tuple(shape):
            raise ProjectError(
                f"case {case_id}: label shape {labels.shape} does not match image shape "
                f"{tuple(shape)}; nothing was saved. Resample the label onto the image grid."
            )
        if labels.size and int(labels.max()) > len(self.classes):
            raise ProjectError(
                f"case {case_id}: label value {int(labels.max())} exceeds the project's "
                f"{len(self.classes)} classes; nothing was saved."
            )
        self.check_in_place()
        sha = mask_sha256(labels)
        rel = mask_version_path(case_id, kind, annotator, sha)
        path = self.folder / rel
        if not _holds_mask(path, labels):  # absent, or damaged since: saving heals it
            save_labels(labels, _grid_volume(shape, affine), path)
        remove_stale_temps(path.parent)  # of a save killed mid-write, long ago
        return self._insert_version(
            case_id,
            annotator,
            kind,
            "mask",
            rel,
            sha,
            model_version,
            parent_id,
            last_event_id,
            note,
        )

    def save_grades_version(
        self,
        case_id: str,
        sheet: GradeSheet,
        *,
        kind: str,
        annotator: str | None = None,
        model_version: str | None = None,
        parent_id: int | None = None,
        last_event_id: int | None = None,
        note: str | None = None,
    ) -> LabelVersion:
        self.check_in_place()
        data = sheet.to_json().encode()
        sha = _sha256(data)
        rel = f"labels/{case_id}/{kind}-{annotator or 'model'}-{sha[:16]}.json"
        path = self.folder / rel
        if not path.exists():
            write_bytes(path, data)
        return self._insert_version(
            case_id,
            annotator,
            kind,
            "grades",
            rel,
            sha,
            model_version,
            parent_id,
            last_event_id,
            note,
        )

    def version(self, version_id: int) -> LabelVersion:
        row = self._db.execute("SELECT * FROM versions WHERE id = ?", (version_id,)).fetchone()
        if row is None:
            raise ProjectError(f"no label version {version_id}")
        return LabelVersion.from_row(row)

    def versions(
        self,
        case_id: str | None = None,
        *,
        annotator: str | None = None,
        kinds: tuple[str, ...] | None = None,
        content: str | None = None,
    ) -> list[LabelVersion]:
        sql, args = "SELECT * FROM versions WHERE 1=1", []
        if case_id is not None:
            sql += " AND case_id = ?"
            args.append(case_id)
        if annotator is not None:
            sql += " AND annotator = ?"
            args.append(annotator)
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        if content is not None:
            sql += " AND content = ?"
            args.append(content)
        rows = self._db.execute(sql + " ORDER BY id", args)
        return [LabelVersion.from_row(r) for r in rows]

    def latest_version(self, case_id: str, **filters) -> LabelVersion | None:
        found = self.versions(case_id, **filters)
        return found[-1] if found else None

    def read_mask(self, version: LabelVersion) -> np.ndarray:
        path = self.folder / version.path
        who = f" by {version.annotator}" if version.annotator else ""
        what = f"case {version.case_id}: label version v{version.id} ({version.kind}{who})"
        fix = "Restore it from a backup of the project folder"
        if version.kind == "proposal":
            fix += f", or propose again: atlas-annotate propose PROJECT --cases {version.case_id}"
        if not path.exists():
            raise ProjectError(f"{what}: its file {path} is missing. {fix}.")
        try:
            array = load_nifti(path).array
        except VolumeLoadError as exc:
            raise ProjectError(
                f"{what}: its file {path} is damaged ({exc.problem}). {fix}."
            ) from exc
        expected = self._label_shape(version)
        if expected is not None and tuple(array.shape) != expected:
            if mask_sha256(array) != version.sha256:  # the file is not what was stored
                raise ProjectError(
                    f"{what}: its file {path} holds a label of shape {tuple(array.shape)}, "
                    f"not the case's {expected}: it was replaced since it was stored. {fix}."
                )
        return array

    def _label_shape(self, version: LabelVersion) -> tuple[int, ...] | None:
        """The shape a label map of ``version``'s case has: its image's when known, else
        that of the case's earliest other label map (from its file's header; None when
        there is none to go by). Cheap: a wrong file is only then checked by digest."""
        known = self._grids.get(version.case_id)
        if known is not None:
            return tuple(known[0])
        row = self._db.execute(
            "SELECT path FROM versions WHERE case_id = ? AND content = 'mask' AND id != ? "
            "ORDER BY id LIMIT 1",
            (version.case_id, version.id),
        ).fetchone()
        if row is None:
            return None
        try:
            return tuple(nifti_grid(self.folder / row["path"])[0])
        except VolumeLoadError:
            return None  # that file's own read says what is wrong with it

    def mask_grid(self, version: LabelVersion) -> tuple[tuple[int, ...], np.ndarray]:
        """``(shape, affine)`` of a label version, from its file's header: the case's
        image grid without reading the image."""
        try:
            return nifti_grid(self.folder / version.path)
        except VolumeLoadError as exc:
            raise ProjectError(
                f"case {version.case_id}: label version v{version.id}: its file is not "
                f"readable ({exc.problem}). Restore it from a backup of the project folder."
            ) from exc

    def read_grades(self, version: LabelVersion) -> GradeSheet:
        from ..grade_sheet import GradeSheet

        return GradeSheet.from_json((self.folder / version.path).read_text())

    # -- notes not yet submitted ------------------------------------------------------
    def save_note_draft(self, case_id: str, annotator: str, note: str) -> None:
        """Keep the note ``annotator`` is typing on ``case_id`` (committed at once, so a
        crash does not lose it). An empty note is kept too: it takes back a submitted one."""
        with transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO note_drafts(case_id, annotator, note, t)"
                " VALUES (?, ?, ?, ?)",
                (case_id, annotator, note, time.time()),
            )

    def note_draft(self, case_id: str, annotator: str) -> str | None:
        """The note ``annotator`` typed on ``case_id`` and did not submit, or None."""
        row = self._db.execute(
            "SELECT note FROM note_drafts WHERE case_id = ? AND annotator = ?",
            (case_id, annotator),
        ).fetchone()
        return None if row is None else row["note"]

    def discard_note_draft(self, case_id: str, annotator: str) -> None:
        """Forget the note draft (it was submitted, or typed back to the stored note)."""
        with transaction(self._db):
            self._db.execute(
                "DELETE FROM note_drafts WHERE case_id = ? AND annotator = ?",
                (case_id, annotator),
            )

    # -- edit log -------------------------------------------------------------------
    def log_event(self, event: EditEvent) -> int:
        """Commit one edit event at once (durable against a killed process)."""
        diff = event.diff
        with transaction(self._db):
            cur = self._db.execute(
                "INSERT INTO events(case_id, annotator, base_version_id, t, tool, class_id,"
                " bbox, diff, n_changed, active_seconds, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.case_id,
                    event.annotator,
                    event.base_version_id,
                    event.t or time.time(),
                    event.tool,
                    event.class_id,
                    json.dumps(diff.bbox) if diff else None,
                    diff.to_bytes() if diff else None,
                    diff.n_changed if diff else 0,
                    float(event.active_seconds),
                    json.dumps(event.detail) if event.detail else None,
                ),
            )
            event.id = cur.lastrowid
        return event.id

    def events(
        self,
        case_id: str,
        annotator: str | None = None,
        *,
        base_version_id: int | None | str = "any",
        after_id: int | None = None,
        up_to_id: int | None = None,
    ) -> list[EditEvent]:
        sql, args = "SELECT * FROM events WHERE case_id = ?", [case_id]
        if annotator is not None:
            sql += " AND annotator = ?"
            args.append(annotator)
        if base_version_id != "any":
            if base_version_id is None:
                sql += " AND base_version_id IS NULL"
            else:
                sql += " AND base_version_id = ?"
                args.append(base_version_id)
        if after_id is not None:
            sql += " AND id > ?"
            args.append(after_id)
        if up_to_id is not None:
            sql += " AND id <= ?"
            args.append(up_to_id)
        out = []
        for r in self._db.execute(sql + " ORDER BY id", args):
            bbox = json.loads(r["bbox"]) if r["bbox"] else None
            diff = LabelDiff.from_bytes(r["diff"], tuple(map(tuple, bbox))) if r["diff"] else None
            out.append(
                EditEvent(
                    case_id=r["case_id"],
                    annotator=r["annotator"],
                    tool=r["tool"],
                    class_id=r["class_id"],
                    diff=diff,
                    detail=json.loads(r["detail"]) if r["detail"] else {},
                    active_seconds=r["active_seconds"],
                    base_version_id=r["base_version_id"],
                    t=r["t"],
                    id=r["id"],
                )
            )
        return out

    def event_counts(self) -> dict[tuple[str, str], tuple[int, float]]:
        rows = self._db.execute(
            # in id order within each (case, annotator): the same float sums every time
            "SELECT case_id, annotator, COUNT(*), SUM(active_seconds)"
            " FROM events INDEXED BY events_case GROUP BY case_id, annotator"
        )
        return {(r[0], r[1]): (int(r[2]), float(r[3] or 0.0)) for r in rows}

    # -- working copy: where an annotator stands on a case -----------------------------
    def working_base(
        self, case_id: str, annotator: str, content: str = "mask"
    ) -> LabelVersion | None:
        """The version an annotator's edits apply to: their own latest corrected version,
        else the latest final, imported or proposal version."""
        own = self.latest_version(
            case_id, annotator=annotator, kinds=("corrected",), content=content
        )
        if own is not None:
            return own
        # Unsubmitted edits name the version they were made on: stay on it, so a newer
        # proposal or import (a background propose run, add --labels) never hides work in
        # progress on restore. Edits begun on a blank sheet (no version yet) name none: the
        # base stays blank while they are the annotator's latest.
        for row in self._db.execute(
            "SELECT e.tool, e.base_version_id, v.content FROM events e"
            " LEFT JOIN versions v ON v.id = e.base_version_id"
            " WHERE e.case_id = ? AND e.annotator = ? ORDER BY e.id DESC",
            (case_id, annotator),
        ):
            edited = row["content"] or event_content(row["tool"])
            if edited != content:
                continue
            if row["base_version_id"] is None:
                return None
            return self.version(int(row["base_version_id"]))
        return self.latest_version(
            case_id, kinds=("final", "proposal", "imported"), content=content
        )

    def pending_events(
        self, case_id: str, annotator: str, base: LabelVersion | None
    ) -> list[EditEvent]:
        """Edits logged on top of ``base`` that no submitted version has folded in yet.

        When ``base`` is the annotator's own submitted (``corrected``) version, that is
        every edit they logged after submitting it, whatever version it was drawn on: a
        second window of theirs still showing the older version logs strokes on that one,
        and they are replayed on top of the submitted version rather than hidden.
        """
        if base is not None and base.annotator == annotator and base.kind == "corrected":
            return self.events(case_id, annotator, after_id=base.last_event_id)
        base_id = base.id if base else None
        after = base.last_event_id if base is not None and base.annotator == annotator else None
        return self.events(case_id, annotator, base_version_id=base_id, after_id=after)

    def restore_mask(
        self, case_id: str, annotator: str
    ) -> tuple[LabelVersion | None, np.ndarray, list[EditEvent]]:
        """Base version, the label with unsubmitted edits replayed, and those edits.

        This is how work survives a crash: the next open replays what was logged.
        """
        base = self.working_base(case_id, annotator)
        if base is not None:
            labels = self.read_mask(base)
        else:
            shape, _ = self.grid(case_id)
            labels = np.zeros(shape, np.uint8)
        pending = self.pending_events(case_id, annotator, base)
        return base, replay(labels, pending), pending

    def last_event_id(self, case_id: str, annotator: str) -> int | None:
        row = self._db.execute(
            "SELECT MAX(id) FROM events WHERE case_id = ? AND annotator = ?", (case_id, annotator)
        ).fetchone()
        return row[0]

    def submit_mask(
        self, case_id: str, annotator: str, labels: np.ndarray, base: LabelVersion | None, **kw
    ) -> LabelVersion:
        version = self.save_mask_version(
            case_id,
            labels,
            kind="corrected",
            annotator=annotator,
            parent_id=base.id if base else None,
            last_event_id=self.last_event_id(case_id, annotator),
            **kw,
        )
        self.record_audit(case_id, annotator, "submit", version=version.id)
        return version

    def current_final(self, case_id: str, content: str | None = None) -> LabelVersion | None:
        """Latest final version, unless a lead withdrew it with a 'reopen' audit record."""
        final = self.latest_version(case_id, kinds=("final",), content=content)
        if final is None:
            return None
        withdrawn = self._db.execute(
            "SELECT 1 FROM audit WHERE case_id = ? AND action = 'reopen'"
            " AND json_extract(detail, '$.final_version') = ?",
            (case_id, final.id),
        ).fetchone()
        return None if withdrawn else final

    # -- status ---------------------------------------------------------------------
    def case_state(self, case_id: str, annotator: str) -> str:
        """``final``, ``in_progress`` (unsubmitted edits), ``submitted``, ``imported`` (the
        annotator's latest own version was imported), ``reopened`` (a lead whose final
        version of the case was sent back) or ``new``."""
        content = "grades" if self.task == "spine" else "mask"
        if self.current_final(case_id, content):
            return "final"
        own = self.latest_version(
            case_id, annotator=annotator, kinds=("corrected", "imported"), content=content
        )
        base = self.working_base(case_id, annotator, content)
        if self.pending_events(case_id, annotator, base):
            return "in_progress"
        if own is None:
            withdrawn = self.latest_version(
                case_id, annotator=annotator, kinds=("final",), content=content
            )
            return "new" if withdrawn is None else "reopened"
        return "imported" if own.kind == "imported" else "submitted"

    def queue_states(self, annotator: str) -> list[tuple[str, float | None, str]]:
        """``(case id, uncertainty, state)`` of every case in queue order, the state being
        :meth:`case_state` for ``annotator``; read in a few queries, not a few per case."""
        standing = _Standing.load(self._db)
        content = "grades" if self.task == "spine" else "mask"
        return [
            (case_id, unc, standing.state(case_id, annotator, content))
            for case_id, unc in self._db.execute(
                f"SELECT id, uncertainty FROM cases ORDER BY {QUEUE_ORDER}"
            )
        ]

    def status(self) -> dict:
        """Every case (queue order) with each annotator's state, versions, edits and time.

        Annotators are listed on every case; leads only on cases they finalized, edited
        or imported into.
        """
        counts = self.event_counts()
        roles = {r["name"]: r["role"] for r in self._db.execute("SELECT * FROM annotators")}
        everyone = {name for name, role in roles.items() if role != "lead"}
        editors: dict[str, set[str]] = {}
        for case_id, name in counts:
            editors.setdefault(case_id, set()).add(name)
        standing = _Standing.load(self._db)
        content = "grades" if self.task == "spine" else "mask"
        cases = []
        rows = self._db.execute(f"SELECT id, uncertainty FROM cases ORDER BY {QUEUE_ORDER}")
        for case_id, uncertainty in rows:
            versions = standing.versions.get(case_id, [])
            people = everyone | {
                v.annotator for v in versions if v.annotator and v.kind != "proposal"
            }
            people |= editors.get(case_id, set())
            entry = {}
            for name in sorted(people):
                n_edits, seconds = counts.get((case_id, name), (0, 0.0))
                entry[name] = {
                    "role": roles.get(name, "annotator"),
                    "state": standing.state(case_id, name, content),
                    "versions": sum(
                        v.annotator == name and v.kind in ("corrected", "final", "imported")
                        for v in versions
                    ),
                    "edits": n_edits,
                    "seconds": round(seconds, 1),
                }
            cases.append(
                {
                    "id": case_id,
                    "uncertainty": uncertainty,
                    "proposals": sum(v.kind == "proposal" for v in versions),
                    "final": standing.current_final(case_id) is not None,
                    "annotators": entry,
                }
            )
        rounds = [dict(r) for r in self._db.execute("SELECT * FROM rounds ORDER BY id")]
        for r in rounds:
            r["metrics"] = json.loads(r["metrics"]) if r["metrics"] else {}
        return {
            "project": str(self.folder),
            "task": self.task,
            "label_tolerance": self.config.label_tolerance,
            "cases": cases,
            "rounds": rounds,
        }

    def integrity_check(self) -> str:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]


def _grid_volume(shape, affine) -> Volume:
    """A zero-cost stand-in Volume carrying only a grid, for writing labels on it."""
    return Volume(np.broadcast_to(np.zeros((), np.uint8), tuple(shape)), affine)


class _VersionRow(NamedTuple):
    """The columns of a version that say where people stand on its case."""

    id: int
    case_id: str
    annotator: str | None
    kind: str
    content: str
    last_event_id: int | None


def mask_version_path(case_id: str, kind: str, annotator: str | None, sha: str) -> str:
    """Where (relative to the project folder) a label map version with SHA-256 ``sha``
    is stored: known before it is, so files that go with it can be written first."""
    return f"labels/{case_id}/{kind}-{annotator or 'model'}-{sha[:16]}.nii.gz"


def _file_identity(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of ``path``, None when it does not exist."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _holds_mask(path: Path, labels: np.ndarray) -> bool:
    """True when ``path`` is a readable label file holding ``labels``.

    Label files are named by their content's hash, so saving the same labels again finds
    the file already there; it is read back only then (a re-proposal, a repeated Finalize),
    so that a file damaged since (a full disk, a bad copy) is written again instead of kept.
    """
    if not path.exists():
        return False
    try:
        stored = load_nifti(path).array
    except VolumeLoadError:
        return False
    return stored.shape == labels.shape and np.array_equal(stored, labels)


class _Standing:
    """Where every annotator stands on every case, from three queries.

    The same answers as :meth:`Project.case_state` and :meth:`Project.current_final`
    (which ask the database a few times per case and annotator), from every version's
    kind, content and owner, the latest edit of each (case, annotator, base version,
    tool) and the finals a lead reopened: a project of 20,000 cases is read at once
    instead of in ~100,000 queries.
    """

    def __init__(self, versions, events, reopened) -> None:
        self.versions: dict[str, list] = {}  # case id -> its versions, oldest first
        self.by_id: dict[int, _VersionRow] = {}
        for row in versions:
            v = _VersionRow(*row)
            self.versions.setdefault(v.case_id, []).append(v)
            self.by_id[v.id] = v
        # (case id, annotator) -> [(base version id, tool, latest event id)]
        self.events: dict[tuple[str, str], list[tuple]] = {}
        for case_id, annotator, base_id, tool, last in events:
            self.events.setdefault((case_id, annotator), []).append((base_id, tool, last))
        self.reopened = set(reopened)  # (case id, final version id)
        # who made versions of which case, and the cases with a final version: anyone
        # else has not touched the case (the state of most cases, for most people)
        self.touched = {(v.case_id, v.annotator) for v in self.by_id.values()}
        self.finalized = {v.case_id for v in self.by_id.values() if v.kind == "final"}

    @classmethod
    def load(cls, db, *, finals_only: bool = False) -> _Standing:
        """Read the project; ``finals_only``: only what :meth:`current_final` needs."""
        cursor = db.cursor()
        cursor.row_factory = None  # plain tuples
        versions = cursor.execute(
            "SELECT id, case_id, annotator, kind, content, last_event_id FROM versions"
            + (" WHERE kind = 'final'" if finals_only else "")
            + " ORDER BY id"
        ).fetchall()
        events = []
        if not finals_only:
            events = cursor.execute(
                "SELECT case_id, annotator, base_version_id, tool, MAX(id) FROM events"
                " GROUP BY case_id, annotator, base_version_id, tool"
            ).fetchall()
        reopened = cursor.execute(
            "SELECT case_id, json_extract(detail, '$.final_version') FROM audit"
            " WHERE action = 'reopen'"
        ).fetchall()
        return cls(versions, events, reopened)

    def _latest(self, case_id, kinds, content=None, annotator=None):
        for v in reversed(self.versions.get(case_id, ())):
            if (
                v.kind in kinds
                and (content is None or v.content == content)
                and (annotator is None or v.annotator == annotator)
            ):
                return v
        return None

    def current_final(self, case_id: str, content: str | None = None):
        """:meth:`Project.current_final` (the version's row, not a LabelVersion)."""
        final = self._latest(case_id, ("final",), content)
        if final is None or (case_id, final.id) in self.reopened:
            return None
        return final

    def _working_base(self, case_id: str, annotator: str, content: str):
        """:meth:`Project.working_base`."""
        own = self._latest(case_id, ("corrected",), content, annotator)
        if own is not None:
            return own
        latest = None  # (event id, base version id) of the latest edit of ``content``
        for base_id, tool, last in self.events.get((case_id, annotator), ()):
            base = self.by_id.get(base_id)
            edited = base.content if base is not None else event_content(tool)
            if edited == content and (latest is None or last > latest[0]):
                latest = (last, base_id)
        if latest is not None:
            if latest[1] is None:
                return None
            if latest[1] not in self.by_id:
                raise ProjectError(f"no label version {latest[1]}")
            return self.by_id[latest[1]]
        return self._latest(case_id, ("final", "proposal", "imported"), content)

    def _pending(self, case_id: str, annotator: str, base) -> bool:
        """Whether :meth:`Project.pending_events` is not empty."""
        groups = self.events.get((case_id, annotator), ())
        if base is not None and base.annotator == annotator and base.kind == "corrected":
            after = base.last_event_id
            return any(after is None or last > after for _, _, last in groups)
        base_id = base.id if base is not None else None
        after = base.last_event_id if base is not None and base.annotator == annotator else None
        return any(b == base_id and (after is None or last > after) for b, _, last in groups)

    def state(self, case_id: str, annotator: str, content: str) -> str:
        """:meth:`Project.case_state`."""
        key = (case_id, annotator)
        if case_id not in self.finalized and key not in self.touched and key not in self.events:
            return "new"  # no final, none of their versions, no edits of theirs
        if self.current_final(case_id, content) is not None:
            return "final"
        own = self._latest(case_id, ("corrected", "imported"), content, annotator)
        if self._pending(case_id, annotator, self._working_base(case_id, annotator, content)):
            return "in_progress"
        if own is None:
            withdrawn = self._latest(case_id, ("final",), content, annotator)
            return "new" if withdrawn is None else "reopened"
        return "imported" if own.kind == "imported" else "submitted"
