"""The RSNA 2024 Lumbar Spine Degenerative Classification metric, exactly.

One row per (study, condition, level) whose true grade is known; three predicted
probabilities per row (``normal_mild``, ``moderate``, ``severe``). Each row is normalised to
sum to one and clipped to ``[eps, 1 - eps]`` with ``eps = np.finfo(np.float64).eps``, as
scikit-learn's ``log_loss`` clips (it derives ``eps`` from the prediction dtype; here
predictions are always float64). A row's sample weight is 1, 2 or 4 by its TRUE grade
(Normal/Mild, Moderate, Severe).

Four terms, each a sample-weighted log loss (weighted mean of ``-log p(true class)``):

* ``spinal``: the spinal canal stenosis rows;
* ``foraminal``: left + right neural foraminal narrowing rows;
* ``subarticular``: left + right subarticular stenosis rows;
* ``any_severe_spinal``: one binary sample per study, label 1 when any of its spinal rows
  is Severe, prediction the largest ``severe`` probability over those rows, weight the
  largest row weight among them.

``score`` is the mean of the four (weights 1, 1, 1 and ``any_severe_scalar`` = 1.0).
Lower is better. Truth cells that are missing (RSNA's ``train.csv`` has incomplete rows)
are skipped; a prediction must exist for every row whose truth is known.

This module is plain numpy: no torch import, so review and export can use it.

Examples
--------
>>> truth = {1: {("spinal_canal_stenosis", "l4_l5"): "Severe"}}
>>> perfect = {1: {("spinal_canal_stenosis", "l4_l5"): [0.0, 0.0, 1.0]}}
>>> round(rsna_score(truth, perfect)["spinal"], 12)
0.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..grade_sheet import GradeSheet
from ..spine_grades import (
    CONDITIONS,
    GRADE_KEYS,
    GRADE_WEIGHTS,
    GRADES,
    LEVELS,
    normalize_grade,
    parse_column,
)

#: Condition groups of the metric, in the order of the score's terms.
CONDITION_GROUPS: dict[str, tuple[str, ...]] = {
    "spinal": ("spinal_canal_stenosis",),
    "foraminal": ("left_neural_foraminal_narrowing", "right_neural_foraminal_narrowing"),
    "subarticular": ("left_subarticular_stenosis", "right_subarticular_stenosis"),
}

#: Names of the score's terms (the keys :func:`rsna_score` returns besides ``score``).
TERMS: tuple[str, ...] = ("spinal", "foraminal", "subarticular", "any_severe_spinal")

#: Clip bound of scikit-learn's ``log_loss`` for float64 predictions.
EPS: float = float(np.finfo(np.float64).eps)

_GROUP_OF = {c: g for g, conds in CONDITION_GROUPS.items() for c in conds}

Cell = tuple[str, str]


def _cell_key(key: Any) -> Cell:
    """``(condition, level)`` from a tuple key or a ``<condition>_<level>`` column name."""
    if isinstance(key, tuple) and len(key) == 2:
        condition, level = key
        if condition not in CONDITIONS or level not in LEVELS:
            raise ValueError(f"unknown grade cell {key!r}")
        return condition, level
    if isinstance(key, str):
        return parse_column(key)
    raise ValueError(f"grade cell must be (condition, level) or a column name, not {key!r}")


def _truth_cells(sheet: GradeSheet | Mapping) -> dict[Cell, str]:
    """Known true grades of one study; missing/empty cells are dropped."""
    grades = sheet.grades if isinstance(sheet, GradeSheet) else sheet
    out = {}
    for key, value in grades.items():
        grade = normalize_grade(value)
        if grade is not None:
            out[_cell_key(key)] = grade
    return out


def _prediction_cells(sheet: GradeSheet | Mapping) -> dict[Cell, np.ndarray]:
    """Probabilities per cell of one study, as float64 arrays of three values."""
    probs = sheet.probabilities if isinstance(sheet, GradeSheet) else sheet
    out = {}
    for key, value in probs.items():
        if isinstance(value, Mapping):  # {"normal_mild": p, "moderate": p, "severe": p}
            value = [value[GRADE_KEYS[g]] for g in GRADES]
        p = np.asarray(value, dtype=np.float64).reshape(-1)
        if p.shape != (3,):
            raise ValueError(f"cell {key!r}: expected 3 probabilities, got {p.size}")
        out[_cell_key(key)] = p
    return out


def normalize_rows(probs: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to one (the metric's per-row normalisation).

    Raises ``ValueError`` on negative or non-finite values, or an all-zero row, which the
    RSNA metric rejects too.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if not np.isfinite(probs).all():
        raise ValueError("predictions must be finite")
    if (probs < 0).any():
        raise ValueError("predictions must be at least zero")
    total = probs.sum(axis=-1, keepdims=True)
    if (total <= 0).any():
        raise ValueError("a prediction row sums to zero; it cannot be normalised")
    return probs / total


def rsna_score(
    truth: Mapping[Any, GradeSheet | Mapping],
    predictions: Mapping[Any, GradeSheet | Mapping],
    any_severe_scalar: float = 1.0,
) -> dict[str, float]:
    """Score predictions against true grades with the RSNA 2024 lumbar metric.

    Parameters
    ----------
    truth
        ``{study_id: GradeSheet or grades}``; grades keyed by ``(condition, level)`` or by
        the train.csv column name (``read_grades_csv`` output works as is). Missing or
        ``None`` cells are skipped.
    predictions
        ``{study_id: GradeSheet (its probabilities) or {cell: [p_normal_mild, p_moderate,
        p_severe]}}``. Every cell with a known truth needs a prediction.
    any_severe_scalar
        Weight of the any_severe_spinal term in the final mean (1.0 in the competition).

    Returns
    -------
    dict
        ``spinal``, ``foraminal``, ``subarticular``, ``any_severe_spinal`` and ``score``.
        A term with no rows (e.g. no spinal truth at all) is ``nan`` and left out of
        ``score``.

    Raises
    ------
    ValueError
        A study or cell with known truth has no prediction, or a prediction is invalid.
    """
    sums = study_loss_sums(truth, predictions)
    return score_from_sums(sums.loss.sum(axis=0), sums.weight.sum(axis=0), any_severe_scalar)


class StudyLossSums:
    """Each study's share of the four terms: ``loss[i, t]`` is the sum of ``w * -log p``
    over study ``i``'s rows of term ``t`` (:data:`TERMS` order), ``weight[i, t]`` the sum
    of their ``w``. Every term is a weighted mean, so any multiset of studies scores as
    ``score_from_sums(counts @ loss, counts @ weight)``: a bootstrap resample of studies
    costs a matrix product instead of scoring every row again."""

    def __init__(self, studies: list, loss: np.ndarray, weight: np.ndarray) -> None:
        self.studies = studies
        self.loss = loss
        self.weight = weight


def study_loss_sums(
    truth: Mapping[Any, GradeSheet | Mapping], predictions: Mapping[Any, GradeSheet | Mapping]
) -> StudyLossSums:
    """:class:`StudyLossSums` of every study in ``truth`` (a study without known grades
    has zero rows). Raises ``ValueError`` as :func:`rsna_score` does."""
    studies = list(truth)
    loss = np.zeros((len(studies), len(TERMS)), np.float64)
    weight = np.zeros_like(loss)
    for i, study_id in enumerate(studies):
        cells = _truth_cells(truth[study_id])
        if not cells:
            continue
        if study_id not in predictions:
            raise ValueError(f"study {study_id!r} has true grades but no prediction")
        predicted = _prediction_cells(predictions[study_id])
        spinal = []
        for cell in sorted(cells):
            if cell not in predicted:
                raise ValueError(
                    f"study {study_id!r}: no prediction for {cell[0]} at {cell[1]} "
                    "(every cell with a known grade needs three probabilities)"
                )
            try:
                p = normalize_rows(predicted[cell])
            except ValueError as exc:
                raise ValueError(f"study {study_id!r}, {cell[0]} at {cell[1]}: {exc}") from None
            grade = cells[cell]
            t = TERMS.index(_GROUP_OF[cell[0]])
            w = GRADE_WEIGHTS[grade]
            loss[i, t] += w * _row_loss(p, GRADES.index(grade))
            weight[i, t] += w
            if t == 0:
                spinal.append((grade == "Severe", p[2], w))
        if spinal:
            # Binary term: scikit-learn turns p into columns [1 - p, p] before clipping.
            severe = max(s[1] for s in spinal)
            w = max(s[2] for s in spinal)
            label = int(any(s[0] for s in spinal))
            loss[i, 3] += w * _row_loss(np.array([1 - severe, severe]), label)
            weight[i, 3] += w
    return StudyLossSums(studies, loss, weight)


def _row_loss(p: np.ndarray, label: int) -> float:
    """``-log`` of the true class's probability, clipped to ``[EPS, 1 - EPS]`` first."""
    return float(-np.log(np.clip(p[label], EPS, 1 - EPS)))


def score_from_sums(
    loss: np.ndarray, weight: np.ndarray, any_severe_scalar: float = 1.0
) -> dict[str, float]:
    """The four terms and ``score`` from summed ``w * -log p`` and ``w`` per term
    (shape ``(4,)``, :data:`TERMS` order); a term without rows is ``nan``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(weight > 0, loss / np.where(weight > 0, weight, 1), np.nan)
    result = {term: float(v) for term, v in zip(TERMS, values, strict=True)}
    term_weights = np.array([1.0, 1.0, 1.0, float(any_severe_scalar)])
    ok = np.isfinite(values)
    result["score"] = (
        float(np.average(values[ok], weights=term_weights[ok])) if ok.any() else float("nan")
    )
    return result


def prior_baseline_predictions(
    train_truth: Mapping[Any, GradeSheet | Mapping],
    study_ids: list | None = None,
    weighted: bool = False,
) -> dict[Any, dict[Cell, list[float]]]:
    """Constant predictions: each condition group's grade frequencies in ``train_truth``.

    The natural baseline a grader has to beat: every cell of a group gets the same three
    probabilities: the class frequencies of that group's known training cells (uniform
    thirds for a group with no training cells).

    Parameters
    ----------
    train_truth
        ``{study_id: GradeSheet or grades}`` to count grades in.
    study_ids
        Studies to predict for; defaults to the keys of ``train_truth``.
    weighted
        Count each cell with its metric weight (1/2/4 by grade). The weighted frequencies
        are the constant that minimises the group terms on ``train_truth`` itself, a
        stronger baseline than the plain frequencies (the default).

    Returns
    -------
    dict
        ``{study_id: {(condition, level): [p_normal_mild, p_moderate, p_severe]}}`` for all
        25 cells of each study.
    """
    counts = {g: np.zeros(3) for g in CONDITION_GROUPS}
    for sheet in train_truth.values():
        for (condition, _level), grade in _truth_cells(sheet).items():
            counts[_GROUP_OF[condition]][GRADES.index(grade)] += (
                GRADE_WEIGHTS[grade] if weighted else 1.0
            )
    freq = {
        g: (c / c.sum() if c.sum() > 0 else np.full(3, 1 / 3)).tolist() for g, c in counts.items()
    }
    ids = list(train_truth) if study_ids is None else list(study_ids)
    return {
        sid: {(c, lv): list(freq[_GROUP_OF[c]]) for c in CONDITIONS for lv in LEVELS} for sid in ids
    }
