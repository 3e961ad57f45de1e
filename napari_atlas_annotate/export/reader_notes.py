"""``notes.csv``: what the readers wrote with the labels they submitted, beside an export.

A reader can submit a note with a case's labels ("pancreas tail unclear: motion", "left
kidney absent, nephrectomy"). The lead sees them in the review; an ML engineer taking the
dataset wants them too, to flag or leave out cases. Notes are free text, so they are only
exported when asked (``export --with-notes``). One row per submitted version that has a
note, oldest first: the case under the name the export gives it (for the RSNA formats its
``study_id``), the reader, the version id and time, whether it is the reader's latest
submission of the case, and the note.

A note that contains a patient identifier of the source DICOM headers (a reader typed the
accession number) is refused with the reader and case named, unless identifiers are kept:
the export then writes nothing, and the reader can change the note in the annotator dock.
Import notes (where an imported label came from) and the lead's final versions (whose note
holds the review's decisions, summarised in ``provenance.json``) are not readers' notes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..io.atomic import write_text
from ..project import Project
from .errors import ExportError
from .provenance import iso_utc
from .pseudonymise import contains_identifier

NOTES_NAME = "notes.csv"
COLUMNS = ("case", "annotator", "version", "submitted_utc", "latest", "note")
RSNA_COLUMNS = ("study_id",) + COLUMNS[1:]


def write_notes(
    folder: Path,
    project: Project,
    keys: Mapping[str, str | int],
    identifiers: Iterable[str] = (),
    *,
    study_ids: bool = False,
) -> Path:
    """Write ``notes.csv`` into ``folder`` for the cases in ``keys`` (case id -> the name
    or ``study_id`` the export gives it); refuses a note holding one of ``identifiers``."""
    identifiers = list(identifiers)
    notes = []
    latest: dict[tuple[str, str | None], int] = {}  # a resubmission without a note counts
    for case_id in keys:
        for v in project.versions(case_id, kinds=("corrected",)):
            latest[(case_id, v.annotator)] = max(v.id, latest.get((case_id, v.annotator), -1))
            if v.note:
                notes.append(v)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RSNA_COLUMNS if study_ids else COLUMNS)
    for v in sorted(notes, key=lambda v: (v.created_at, v.id)):
        if identifiers and contains_identifier(v.note, identifiers):
            raise ExportError(
                f"{v.annotator}'s note on case {keys[v.case_id]} (version {v.id}) contains a "
                "patient identifier from the source DICOM; nothing was exported. Change the "
                "note (annotator dock, then submit again), or export without --with-notes."
            )
        writer.writerow(
            [
                keys[v.case_id],
                v.annotator or "",
                v.id,
                iso_utc(v.created_at),
                "yes" if latest[(v.case_id, v.annotator)] == v.id else "no",
                v.note,
            ]
        )
    return write_text(Path(folder) / NOTES_NAME, buffer.getvalue())
