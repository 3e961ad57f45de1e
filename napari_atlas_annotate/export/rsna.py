"""RSNA 2024 lumbar spine CSVs from a spine project's grade sheets.

Writes ``train.csv`` (study_id + 25 ``<condition>_<level>`` columns, blank when a grade is
missing), ``train_label_coordinates.csv`` (study_id, series_id, instance_number, condition,
level, x, y in RSNA's spelling) and ``train_series_descriptions.csv`` with the CSV helpers of
:mod:`napari_atlas_annotate.spine_grades`.

``study_id`` / ``series_id`` are integer pseudonyms of the case's exported name / (exported
name, series description) by default; the exported name is the case id, or its keyed
pseudonym when the case id carries a patient identifier (:mod:`.case_names`), so no
number is derived from an identifier. With ``keep_identifiers`` the case id is used when it is an
integer (cases imported from RSNA keep their study ids) and a series keeps its number: the
integer naming the folder of its files (RSNA's ``<study>/<series>/`` layout), its series
selector, or its DICOM SeriesNumber.

A point names its series by description, by the study folder's series selector, or by
RSNA's ``series_id`` (points imported from ``train_label_coordinates.csv``): each is
mapped to the exported series_id, the SeriesNumber read from the image headers included,
so a study added as a whole folder keeps its imported points on the right series.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..grade_sheet import GradeSheet
from ..project import Case
from ..project.series_names import series_names
from ..spine_grades import (
    LevelPoint,
    column_name,
    write_coordinates_csv,
    write_grades_csv,
    write_series_descriptions_csv,
)
from .pseudonymise import series_pseudonym, study_pseudonym

TRAIN_CSV = "train.csv"
COORDINATES_CSV = "train_label_coordinates.csv"
SERIES_CSV = "train_series_descriptions.csv"


def study_id(case: Case, keep_identifiers: bool = False, name: str | None = None) -> int:
    """The case's RSNA study_id (``name``: its exported name, default its case id)."""
    if keep_identifiers and case.id.isdigit():
        return int(case.id)
    return study_pseudonym(name or case.id)


def series_ids(
    case: Case, keep_identifiers: bool = False, name: str | None = None
) -> dict[str, int]:
    """``{series description: series_id}`` for the case's images (one entry for the
    stacks of a series acquired as several)."""
    name = name or case.id
    out = {}
    scans: dict = {}
    for index, ref in enumerate(case.images):
        key = _series_key(ref, index)
        if key in out and ref.stack is not None:
            continue  # another stack of the same series
        number = None
        if keep_identifiers:
            names = series_names(ref.path, ref.series, scans)
            for candidate in (names.folder, ref.series, Path(ref.path).name, names.number):
                if candidate and str(candidate).isdigit():
                    number = int(candidate)
                    break
        out[key] = number if number is not None else series_pseudonym(name, key)
    return out


def _series_aliases(case: Case, series: dict[str, int]) -> dict[str, int]:
    """A point names its series by description, series selector or folder name (RSNA's
    series_id): map each of those to the exported series_id."""
    out: dict[str, int] = {}
    scans: dict = {}
    for index, ref in enumerate(case.images):
        key = _series_key(ref, index)
        names = series_names(ref.path, ref.series, scans).all()
        for alias in (*names, ref.series, Path(ref.path).name, key):
            if alias:
                out.setdefault(str(alias), series[key])
    return out


def _series_key(ref, index: int) -> str:
    return ref.description or ref.series or f"series{index}"


class RsnaTables:
    """Rows of the three CSVs, filled case by case."""

    def __init__(self, keep_identifiers: bool = False) -> None:
        self.keep_identifiers = keep_identifiers
        self.grades: dict[int, dict[str, str | None]] = {}
        self.points: list[LevelPoint] = []
        self.series: list[tuple[int, int, str]] = []

    def add(self, case: Case, sheet: GradeSheet, name: str | None = None) -> int:
        """Add a case's grade sheet (``name``: its exported name); returns its study_id."""
        name = name or case.id
        sid = study_id(case, self.keep_identifiers, name)
        if sid in self.grades:
            raise ValueError(f"case {case.id}: study_id {sid} is already used by another case")
        self.grades[sid] = {
            column_name(c, lv): sheet.grades.get((c, lv)) for c, lv in sheet.cells()
        }
        series = series_ids(case, self.keep_identifiers, name)
        self.series.extend((sid, num, desc) for desc, num in series.items())
        lookup = _series_aliases(case, series)
        for (condition, level), point in sorted(sheet.points.items()):
            num = lookup.get(str(point.series))
            if num is None:
                num = series_pseudonym(name, point.series)
            self.points.append(
                LevelPoint(
                    sid, num, int(point.instance), condition, level, float(point.x), float(point.y)
                )
            )
        return sid

    def write(self, root: Path) -> list[Path]:
        return [
            _atomic_via(root / TRAIN_CSV, lambda p: write_grades_csv(p, self.grades)),
            _atomic_via(root / COORDINATES_CSV, lambda p: write_coordinates_csv(p, self.points)),
            _atomic_via(root / SERIES_CSV, lambda p: write_series_descriptions_csv(p, self.series)),
        ]


def _atomic_via(path: Path, write: Callable[[Path], object]) -> Path:
    """Let ``write`` fill a temp file beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
