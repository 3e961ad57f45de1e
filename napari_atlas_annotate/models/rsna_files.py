"""Kaggle-format RSNA 2024 lumbar files read for :func:`.rsna_metric.rsna_score`.

Two files, as the competition had them:

* the *solution*: ``train.csv``-shaped, ``study_id`` + the 25 ``<condition>_<level>``
  columns, each cell ``Normal/Mild``, ``Moderate``, ``Severe`` or blank (ungraded; Kaggle's
  own train.csv has incomplete rows). ``export --format rsna`` writes one.
* a *submission*: ``row_id,normal_mild,moderate,severe``, ``row_id`` =
  ``<study_id>_<condition>_<level>``. ``export --format rsna-submission`` writes one.

:func:`read_solution` and :func:`read_submission` check everything a scorer would trip on
and raise :class:`RsnaFileError`, one line naming the file (and line), what is wrong and
what to do. Probabilities are kept as written: :func:`~.rsna_metric.rsna_score` normalises
and clips each row itself. :func:`match` pairs the two: blank solution cells are not
scored, submission rows of studies the solution lacks are ignored and counted, and a graded
cell without a submission row is refused unless ``allow_missing``. :func:`score_files`
scores one or more submissions and compares each later one with the first by
:func:`~.grader_comparison.compare_graders` (a paired bootstrap over studies).

Studies are keyed by their ``study_id`` text, so the files need not agree on anything but
the spelling of the id (``export`` writes integers; Kaggle's files use integers too).

Examples
--------
>>> report = score_files("rsna/train.csv", ["round2/submission.csv"])  # doctest: +SKIP
>>> round(report["submissions"][0]["score"], 4)  # doctest: +SKIP
0.4871
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..export.rsna_submission import SUBMISSION_COLUMNS, row_id
from ..rsna_csv import RsnaFileError, csv_rows
from ..spine_grades import GRADE_COLUMNS, GRADES, TRAIN_CSV_COLUMNS, normalize_grade, parse_column
from .grader_comparison import PROMOTE_WIN_SHARE, RESAMPLES, compare_graders
from .rsna_metric import TERMS, rsna_score

Cell = tuple[str, str]

#: Row ids of missing rows named in the error (the rest are counted).
SHOWN_MISSING = 3

#: Each ``<condition>_<level>`` column with its cell, longest first (suffix matching).
_SUFFIXES: tuple[tuple[str, Cell], ...] = tuple(
    sorted(((col, parse_column(col)) for col in GRADE_COLUMNS), key=lambda x: -len(x[0]))
)
#: Each train.csv grade column with its cell, in the file's order.
_COLUMNS: tuple[tuple[str, Cell], ...] = tuple((col, parse_column(col)) for col in GRADE_COLUMNS)
_EXAMPLE_ROW_ID = "4003253_spinal_canal_stenosis_l1_l2"


@dataclass(frozen=True)
class Solution:
    """A train.csv-style file: the known grades of each study (blank cells left out)."""

    path: Path
    grades: dict[str, dict[Cell, str]]
    blank_cells: int

    @property
    def graded_cells(self) -> int:
        return sum(len(cells) for cells in self.grades.values())


@dataclass(frozen=True)
class Submission:
    """A submission.csv: three probabilities per cell of each study, as written."""

    path: Path
    probabilities: dict[str, dict[Cell, list[float]]]

    @property
    def rows(self) -> int:
        return sum(len(cells) for cells in self.probabilities.values())


@dataclass(frozen=True)
class Matched:
    """What of a submission is scored against a solution, and what is not."""

    truth: dict[str, dict[Cell, str]]
    predictions: dict[str, dict[Cell, list[float]]]
    missing: list[str] = field(default_factory=list)
    extra_studies: int = 0
    extra_rows: int = 0

    @property
    def rows(self) -> int:
        return sum(len(cells) for cells in self.truth.values())

    @property
    def studies(self) -> int:
        return len(self.truth)


# -- reading ---------------------------------------------------------------------------------


def _needs(what: str) -> str:
    if what == "solution":
        return "study_id and the 25 <condition>_<level> columns of Kaggle's train.csv"
    return ",".join(SUBMISSION_COLUMNS)


def read_solution(path: str | Path) -> Solution:
    """Read a train.csv-style solution: ``study_id`` + 25 grade columns, blanks allowed.

    Raises
    ------
    RsnaFileError
        Unreadable or empty file, missing columns, a row without study_id, a study listed
        twice, an unknown grade word, or no graded cell at all.
    """
    path = Path(path)
    grades: dict[str, dict[Cell, str]] = {}
    lines: dict[str, int] = {}
    blank = 0
    for line, row in csv_rows(path, "solution", TRAIN_CSV_COLUMNS, _needs("solution")):
        sid = row["study_id"].strip()
        if not sid:
            raise RsnaFileError(f"{path}, line {line}: no study_id; fill it in or drop the row.")
        if sid in lines:
            raise RsnaFileError(
                f"{path}, line {line}: study_id {sid} is already on line {lines[sid]}; "
                "keep one row per study."
            )
        lines[sid] = line
        cells: dict[Cell, str] = {}
        for column, cell in _COLUMNS:
            try:
                grade = normalize_grade(row[column])
            except ValueError:
                raise RsnaFileError(
                    f"{path}, line {line}: column {column}: unknown grade {row[column].strip()!r};"
                    f" write one of {', '.join(GRADES)}, or leave the cell blank if ungraded."
                ) from None
            if grade is None:
                blank += 1
            else:
                cells[cell] = grade
        grades[sid] = cells
    if not grades:
        raise RsnaFileError(f"{path}: no study rows under the header; nothing to score.")
    if not any(grades.values()):
        raise RsnaFileError(
            f"{path}: all {blank} grade cells of its {len(grades)} studies are blank; "
            "nothing to score (export graded cases: --status final or corrected)."
        )
    return Solution(path, grades, blank)


def _split_row_id(text: str) -> tuple[str, Cell] | None:
    for column, cell in _SUFFIXES:
        if text.endswith("_" + column) and len(text) > len(column) + 1:
            return text[: -len(column) - 1], cell
    return None


def read_submission(path: str | Path) -> Submission:
    """Read a submission.csv: ``row_id`` and three probabilities per row, as written.

    Raises
    ------
    RsnaFileError
        Unreadable or empty file, missing columns, a row_id that is not
        ``<study_id>_<condition>_<level>``, a row_id given twice, a probability that is
        not a finite number or is negative, or a row of three zeros.
    """
    path = Path(path)
    keys = SUBMISSION_COLUMNS[1:]
    probabilities: dict[str, dict[Cell, list[float]]] = {}
    lines: dict[str, int] = {}
    for line, row in csv_rows(path, "submission", SUBMISSION_COLUMNS, _needs("submission")):
        rid = row["row_id"].strip()
        parsed = _split_row_id(rid)
        if parsed is None:
            raise RsnaFileError(
                f"{path}, line {line}: row_id {rid!r} is not <study_id>_<condition>_<level> "
                f"(e.g. {_EXAMPLE_ROW_ID}); fix the row_id."
            )
        if rid in lines:
            raise RsnaFileError(
                f"{path}, line {line}: row_id {rid} is already on line {lines[rid]}; "
                "keep one row per row_id."
            )
        lines[rid] = line
        values = []
        for key in keys:
            text = row[key].strip()
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise RsnaFileError(
                    f"{path}, line {line}: {key} of {rid} is {text!r}, not a number; "
                    "write a probability (0 or more)."
                )
            if value < 0:
                raise RsnaFileError(
                    f"{path}, line {line}: {key} of {rid} is negative ({text}); "
                    "probabilities must be 0 or more."
                )
            values.append(value)
        if sum(values) <= 0:
            raise RsnaFileError(
                f"{path}, line {line}: {rid} has all three probabilities 0, which the metric "
                "cannot normalise; give at least one a positive value."
            )
        sid, cell = parsed
        probabilities.setdefault(sid, {})[cell] = values
    if not probabilities:
        raise RsnaFileError(f"{path}: no rows under the header; nothing to score.")
    return Submission(path, probabilities)


# -- matching and scoring --------------------------------------------------------------------


def match(solution: Solution, submission: Submission, allow_missing: bool = False) -> Matched:
    """The graded cells ``submission`` has a row for, and what it lacks or adds.

    Raises
    ------
    RsnaFileError
        A graded cell has no row (unless ``allow_missing``), or no graded cell has one.
    """
    truth: dict[str, dict[Cell, str]] = {}
    predictions: dict[str, dict[Cell, list[float]]] = {}
    missing: list[str] = []
    for sid, cells in solution.grades.items():
        given = submission.probabilities.get(sid, {})
        have = {cell: grade for cell, grade in cells.items() if cell in given}
        missing.extend(row_id(sid, *cell) for cell in cells if cell not in given)
        if have:
            truth[sid] = have
            predictions[sid] = {cell: given[cell] for cell in have}
    extra = [sid for sid in submission.probabilities if sid not in solution.grades]
    extra_rows = sum(len(submission.probabilities[sid]) for sid in extra)
    if not truth:
        raise RsnaFileError(
            f"{submission.path}: none of its {submission.rows} rows is a graded cell of "
            f"{solution.path} (none of its {len(submission.probabilities)} study_ids is a "
            "graded study there); score a submission against the train.csv of the same "
            "export (the same --keep-identifiers choice gives the same study_ids)."
        )
    if missing and not allow_missing:
        shown = ", ".join(missing[:SHOWN_MISSING]) + (
            ", ..." if len(missing) > SHOWN_MISSING else ""
        )
        raise RsnaFileError(
            f"{submission.path}: {len(missing)} graded cell(s) of {solution.path} have no row "
            f"({shown}); a submission must cover every graded cell: add those rows, or pass "
            "--allow-missing to score only the rows both files have."
        )
    return Matched(truth, predictions, missing, len(extra), extra_rows)


def shared_truth(a: Matched, b: Matched) -> dict[str, dict[Cell, str]]:
    """The graded cells both matched submissions have rows for (all of them, unless
    ``allow_missing`` let one leave cells out)."""
    out = {}
    for sid, cells in a.truth.items():
        other = b.truth.get(sid, {})
        both = {cell: grade for cell, grade in cells.items() if cell in other}
        if both:
            out[sid] = both
    return out


def _number(value: float) -> float | None:
    """A score for JSON: ``None`` for a term with no rows (``nan``)."""
    return None if math.isnan(value) else float(value)


def score_files(
    solution: str | Path,
    submissions: Sequence[str | Path],
    allow_missing: bool = False,
    resamples: int = RESAMPLES,
    seed: int = 0,
    comparing: Callable[[Path, Path, int], None] | None = None,
) -> dict:
    """Score each submission against the solution; compare each later one with the first.

    ``comparing(path, baseline path, studies)`` is called before each comparison (200
    bootstrap resamples of Kaggle's 1975 studies take about 2 s, bench/rsna_compare.py).

    Returns
    -------
    dict
        JSON-ready: ``solution`` (path, studies, graded_cells, blank_cells),
        ``submissions`` (per file: ``score``, the four terms, studies and rows scored, rows
        left out, studies and rows ignored) and ``comparisons`` (per later file: both
        scores on the cells both cover and ``win_share``, the share of ``resamples``
        bootstrap resamples of the studies in which it scores lower than the first).
        A term with no rows is ``None``.

    Raises
    ------
    RsnaFileError
        Any file that cannot be scored (the first one found).
    """
    sol = read_solution(solution)
    subs = [read_submission(p) for p in submissions]
    matched = [match(sol, s, allow_missing) for s in subs]
    report: dict = {
        "solution": {
            "path": str(sol.path),
            "studies": len(sol.grades),
            "graded_cells": sol.graded_cells,
            "blank_cells": sol.blank_cells,
        },
        "submissions": [],
        "comparisons": [],
    }
    for sub, m in zip(subs, matched, strict=True):
        scores = rsna_score(m.truth, m.predictions)
        report["submissions"].append(
            {
                "path": str(sub.path),
                "score": _number(scores["score"]),
                **{t: _number(scores[t]) for t in TERMS},
                "studies_scored": m.studies,
                "rows_scored": m.rows,
                "rows_missing": len(m.missing),
                "studies_ignored": m.extra_studies,
                "rows_ignored": m.extra_rows,
            }
        )
    for sub, m in zip(subs[1:], matched[1:], strict=True):
        truth = shared_truth(matched[0], m)
        if comparing is not None:
            comparing(sub.path, subs[0].path, len(truth))
        verdict = compare_graders(
            truth, matched[0].predictions, m.predictions, resamples=resamples, seed=seed
        )
        report["comparisons"].append(
            {
                "path": str(sub.path),
                "baseline": str(subs[0].path),
                "score": _number(verdict.new["score"]),
                "baseline_score": _number(verdict.old["score"]),
                "studies": len(truth),
                "rows": sum(len(c) for c in truth.values()),
                "resamples": resamples,
                "win_share": _number(verdict.win_share),
                "clearly_better": verdict.clearly_better,
                "clearly_better_share": PROMOTE_WIN_SHARE,
            }
        )
    return report


__all__ = [
    "Matched",
    "RsnaFileError",
    "Solution",
    "Submission",
    "match",
    "read_solution",
    "read_submission",
    "score_files",
    "shared_truth",
]
