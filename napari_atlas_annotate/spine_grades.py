"""RSNA 2024 lumbar spine naming and the three RSNA CSV files.

One place for the names every spine module shares: the 5 conditions, 5 levels and 3 grades,
the ``<condition>_<level>`` columns of ``train.csv``, the human-readable spellings used in
``train_label_coordinates.csv`` (``"Spinal Canal Stenosis"``, ``"L4/L5"``), and which series
each condition is read on. Readers accept incomplete files (RSNA's ``train.csv`` has empty
cells): a missing cell or column becomes ``None``, never a guess.

Examples
--------
>>> column_name("spinal_canal_stenosis", "l4_l5")
'spinal_canal_stenosis_l4_l5'
>>> parse_column("left_subarticular_stenosis_l5_s1")
('left_subarticular_stenosis', 'l5_s1')
>>> CONDITION_DISPLAY["right_neural_foraminal_narrowing"], LEVEL_DISPLAY["l1_l2"]
('Right Neural Foraminal Narrowing', 'L1/L2')
>>> normalize_grade(" normal/mild "), normalize_grade("")
('Normal/Mild', None)
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .rsna_csv import RsnaFileError, csv_rows

#: The five graded conditions (snake_case, as in train.csv column names).
CONDITIONS: tuple[str, ...] = (
    "spinal_canal_stenosis",
    "left_neural_foraminal_narrowing",
    "right_neural_foraminal_narrowing",
    "left_subarticular_stenosis",
    "right_subarticular_stenosis",
)

#: The five disc levels, cranial to caudal.
LEVELS: tuple[str, ...] = ("l1_l2", "l2_l3", "l3_l4", "l4_l5", "l5_s1")

#: Grades, mildest first (the order of RSNA's prediction columns).
GRADES: tuple[str, ...] = ("Normal/Mild", "Moderate", "Severe")

#: RSNA submission column suffix of each grade (``normal_mild``, ``moderate``, ``severe``).
GRADE_KEYS: dict[str, str] = {
    "Normal/Mild": "normal_mild",
    "Moderate": "moderate",
    "Severe": "severe",
}

#: Sample weight of a row by its true grade in the RSNA metric.
GRADE_WEIGHTS: dict[str, float] = {"Normal/Mild": 1.0, "Moderate": 2.0, "Severe": 4.0}

#: Spelling of each condition in train_label_coordinates.csv.
CONDITION_DISPLAY: dict[str, str] = {
    "spinal_canal_stenosis": "Spinal Canal Stenosis",
    "left_neural_foraminal_narrowing": "Left Neural Foraminal Narrowing",
    "right_neural_foraminal_narrowing": "Right Neural Foraminal Narrowing",
    "left_subarticular_stenosis": "Left Subarticular Stenosis",
    "right_subarticular_stenosis": "Right Subarticular Stenosis",
}

#: Spelling of each level in train_label_coordinates.csv.
LEVEL_DISPLAY: dict[str, str] = {
    "l1_l2": "L1/L2",
    "l2_l3": "L2/L3",
    "l3_l4": "L3/L4",
    "l4_l5": "L4/L5",
    "l5_s1": "L5/S1",
}

#: SeriesDescription values of an RSNA lumbar study, in this package's series order.
SERIES_DESCRIPTIONS: tuple[str, ...] = ("Sagittal T1", "Sagittal T2/STIR", "Axial T2")

#: The series each condition is usually read (and its point placed) on.
SERIES_FOR_CONDITION: dict[str, str] = {
    "spinal_canal_stenosis": "Sagittal T2/STIR",
    "left_neural_foraminal_narrowing": "Sagittal T1",
    "right_neural_foraminal_narrowing": "Sagittal T1",
    "left_subarticular_stenosis": "Axial T2",
    "right_subarticular_stenosis": "Axial T2",
}

#: train.csv columns after ``study_id``: condition-major, levels cranial to caudal.
GRADE_COLUMNS: tuple[str, ...] = tuple(f"{c}_{lv}" for c in CONDITIONS for lv in LEVELS)

#: Header of train.csv.
TRAIN_CSV_COLUMNS: tuple[str, ...] = ("study_id", *GRADE_COLUMNS)

#: Header of train_label_coordinates.csv.
COORDINATE_COLUMNS: tuple[str, ...] = (
    "study_id",
    "series_id",
    "instance_number",
    "condition",
    "level",
    "x",
    "y",
)

#: Header of train_series_descriptions.csv.
SERIES_DESCRIPTION_COLUMNS: tuple[str, ...] = ("study_id", "series_id", "series_description")

_CONDITION_FROM_ANY = {
    **{c: c for c in CONDITIONS},
    **{d.lower(): c for c, d in CONDITION_DISPLAY.items()},
}
_LEVEL_FROM_ANY = {
    **{lv: lv for lv in LEVELS},
    **{d.lower(): lv for lv, d in LEVEL_DISPLAY.items()},
}
_GRADE_FROM_ANY = {
    **{g.lower(): g for g in GRADES},
    **{k: g for g, k in GRADE_KEYS.items()},
    "normal": "Normal/Mild",
    "mild": "Normal/Mild",
}


def column_name(condition: str, level: str) -> str:
    """The train.csv column of ``condition`` at ``level`` (either spelling accepted)."""
    return f"{to_condition(condition)}_{to_level(level)}"


def parse_column(column: str) -> tuple[str, str]:
    """Split a train.csv column into ``(condition, level)``; ``ValueError`` if it is not one."""
    for level in LEVELS:
        if column.endswith("_" + level) and column[: -len(level) - 1] in CONDITIONS:
            return column[: -len(level) - 1], level
    raise ValueError(f"{column!r} is not a <condition>_<level> grade column")


def to_condition(name: str) -> str:
    """snake_case condition from either spelling (``'Left Subarticular Stenosis'`` too)."""
    key = name.strip()
    found = _CONDITION_FROM_ANY.get(key) or _CONDITION_FROM_ANY.get(key.lower())
    if found is None:
        raise ValueError(f"unknown condition {name!r}; expected one of {CONDITIONS}")
    return found


def to_level(name: str) -> str:
    """snake_case level from either spelling (``'L4/L5'`` or ``'l4_l5'``)."""
    key = name.strip().lower()
    found = _LEVEL_FROM_ANY.get(key)
    if found is None:
        raise ValueError(f"unknown level {name!r}; expected one of {LEVELS}")
    return found


def normalize_grade(value: str | None) -> str | None:
    """Canonical grade string, or ``None`` for an empty/missing cell.

    Case and surrounding blanks are ignored; RSNA's submission keys (``normal_mild``) are
    accepted. Anything else raises ``ValueError`` (a typo must not silently become a grade).
    """
    if value is None:
        return None
    text = str(value).strip()
    if text == "" or text.lower() in ("nan", "none", "null"):
        return None
    found = _GRADE_FROM_ANY.get(text.lower())
    if found is None:
        raise ValueError(f"unknown grade {value!r}; expected one of {GRADES}")
    return found


@dataclass(frozen=True)
class LevelPoint:
    """One row of train_label_coordinates.csv (names kept in snake_case here).

    ``instance_number`` is the 1-based InstanceNumber of the slice in the series; ``x`` is
    the column and ``y`` the row of the point in that slice, in pixels.
    """

    study_id: int
    series_id: int
    instance_number: int
    condition: str
    level: str
    x: float
    y: float


def read_grades_csv(path: str | Path) -> dict[int, dict[str, str | None]]:
    """Read a train.csv-shaped file: ``{study_id: {column: grade or None}}``.

    Every one of the 25 :data:`GRADE_COLUMNS` is present in each study's dict; cells that
    are empty, or columns the file lacks, map to ``None``. A row without the header's
    number of fields (read with its grades shifted by a column otherwise), a row without
    a study_id and a study given twice are refused (:class:`RsnaFileError`, naming the
    line and what to do).
    """
    out: dict[int, dict[str, str | None]] = {}
    lines: dict[int, int] = {}
    for line, row in csv_rows(path, "train.csv", ("study_id",)):
        sid = row["study_id"].strip()
        if not sid:
            raise RsnaFileError(f"{path}, line {line}: no study_id; fill it in or drop the row.")
        try:
            study = int(sid)
            grades = {col: _grade_in(row, col) for col in GRADE_COLUMNS}
        except ValueError as exc:
            raise _row_error(path, line, exc) from None
        if study in lines:
            raise RsnaFileError(
                f"{path}, line {line}: study_id {study} is already on line {lines[study]}; "
                "keep one row per study."
            )
        out[study], lines[study] = grades, line
    return out


def _grade_in(row: Mapping[str, str | None], column: str) -> str | None:
    try:
        return normalize_grade(row.get(column))
    except ValueError as exc:
        raise ValueError(f"column {column}: {exc}") from None


def _row_error(path: str | Path, line: int, exc: Exception) -> ValueError:
    """The error for a CSV row that cannot be read: which file, which line, what is wrong."""
    what = f"no column {exc}" if isinstance(exc, KeyError) else str(exc)
    return ValueError(f"{path}, line {line}: {what}. Fix that row and import again.")


def write_grades_csv(path: str | Path, grades: Mapping[int, Mapping[str, str | None]]) -> Path:
    """Write ``{study_id: {column: grade}}`` as train.csv (missing grades as empty cells)."""
    return _write_csv(
        path,
        TRAIN_CSV_COLUMNS,
        (
            [sid, *(normalize_grade(grades[sid].get(col)) or "" for col in GRADE_COLUMNS)]
            for sid in sorted(grades)
        ),
    )


def _write_csv(path: str | Path, header: Iterable[str], rows: Iterable[Iterable]) -> Path:
    """Write ``header`` then ``rows`` as a CSV file at ``path`` (parent folders made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_coordinates_csv(path: str | Path) -> list[LevelPoint]:
    """Read train_label_coordinates.csv rows.

    A row whose x and y are both empty is skipped (a cell without a point). A file
    without the columns (a grades CSV given by mistake), a row without the header's number
    of fields, an x or y that is not a finite number, an instance_number that is not a
    whole number and a (study, condition, level) given twice are refused
    (:class:`RsnaFileError` or ValueError, naming the line).
    """
    points = []
    lines: dict[tuple[int, str, str], int] = {}
    for line, row in csv_rows(path, "coordinates CSV", COORDINATE_COLUMNS):
        if not row["x"].strip() and not row["y"].strip():
            continue
        try:
            point = LevelPoint(
                study_id=int(row["study_id"]),
                series_id=int(row["series_id"]),
                instance_number=_whole_number(row["instance_number"], "instance_number"),
                condition=to_condition(row["condition"]),
                level=to_level(row["level"]),
                x=_finite(row["x"], "x"),
                y=_finite(row["y"], "y"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _row_error(path, line, exc) from None
        key = (point.study_id, point.condition, point.level)
        if key in lines:
            raise RsnaFileError(
                f"{path}, line {line}: study {point.study_id} {point.condition} "
                f"{point.level} already has a point on line {lines[key]}; keep one."
            )
        lines[key] = line
        points.append(point)
    return points


def _finite(text: str, column: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{column} is {text.strip()!r}, not a number of pixels")
    return value


def _whole_number(text: str, column: str) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"{column} {text.strip()!r} is not a whole number")
    return int(value)


def write_coordinates_csv(path: str | Path, points: Iterable[LevelPoint]) -> Path:
    """Write points as train_label_coordinates.csv (RSNA's display names for condition/level)."""
    return _write_csv(
        path,
        COORDINATE_COLUMNS,
        (
            [
                p.study_id,
                p.series_id,
                p.instance_number,
                CONDITION_DISPLAY[to_condition(p.condition)],
                LEVEL_DISPLAY[to_level(p.level)],
                f"{p.x:.6f}",
                f"{p.y:.6f}",
            ]
            for p in points
        ),
    )


def read_series_descriptions_csv(path: str | Path) -> list[tuple[int, int, str]]:
    """Read train_series_descriptions.csv as ``(study_id, series_id, description)`` rows.

    A series given twice with the same description is read once; with two descriptions
    it is refused (:class:`RsnaFileError`, naming both lines): which plane its points are
    on would be a guess.
    """
    rows: dict[tuple[int, int], tuple[str, int]] = {}
    for line, row in csv_rows(path, "series descriptions CSV", ("study_id", "series_id")):
        if not row["study_id"].strip() or not row["series_id"].strip():
            continue
        try:
            key = (int(row["study_id"]), int(row["series_id"]))
        except ValueError as exc:
            raise _row_error(path, line, exc) from None
        description = (row.get("series_description") or "").strip()
        if key in rows and rows[key][0] != description:
            raise RsnaFileError(
                f"{path}, line {line}: series {key[1]} of study {key[0]} is "
                f"{description!r} here and {rows[key][0]!r} on line {rows[key][1]}; keep the "
                "right one."
            )
        rows.setdefault(key, (description, line))
    return [(study, series, description) for (study, series), (description, _) in rows.items()]


def write_series_descriptions_csv(path: str | Path, rows: Iterable[tuple[int, int, str]]) -> Path:
    """Write ``(study_id, series_id, description)`` rows as train_series_descriptions.csv."""
    return _write_csv(path, SERIES_DESCRIPTION_COLUMNS, rows)
