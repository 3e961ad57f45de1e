"""Held-out evaluation of a lumbar grader: RSNA score, class-prior baseline, level accuracy.

Examples
--------
>>> report = evaluate_grader(load_grader(), cases, train_truth)  # doctest: +SKIP
>>> report["score"] < report["baseline_score"]                   # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..grade_sheet import GradeSheet
from ..spine_grades import LEVELS
from ..volume import Volume
from .grader import SeriesCache, grade_study, locate_levels
from .grader_geometry import point_to_world, world_to_voxel
from .grader_net import GraderNet
from .rsna_metric import TERMS, prior_baseline_predictions, rsna_score


def _pair(case) -> tuple[Mapping[str, Volume], GradeSheet]:
    """``(series, truth sheet)`` from a pair or a phantom ``SpineCase``."""
    if isinstance(case, tuple):
        return case
    from ..training.grader import truth_sheet

    return case.series, truth_sheet(case.grades, case.points, case.series_ids)


def level_errors(model: GraderNet, series: Mapping[str, Volume], truth: GradeSheet) -> np.ndarray:
    """In-plane distance (Sagittal T2 pixels) from each found level to its true canal point.

    NaN where the truth has no spinal canal point for a level.
    """
    cache = SeriesCache(series)
    vol = cache.series["Sagittal T2/STIR"]
    found, _ = locate_levels(model, cache, next(model.parameters()).device)
    out = np.full(len(LEVELS), np.nan)
    for i, lv in enumerate(LEVELS):
        point = truth.points.get(("spinal_canal_stenosis", lv))
        if point is None:
            continue
        want = world_to_voxel(vol, point_to_world(vol, point))
        got = world_to_voxel(vol, found[i])
        out[i] = float(np.linalg.norm((got - want)[1:]))
    return out


def evaluate_grader(
    model: GraderNet,
    cases: Sequence,
    train_truth: Mapping | None = None,
    device: str = "cpu",
) -> dict:
    """Grade held-out studies and compare with the constant class-prior baseline.

    Parameters
    ----------
    model
        The grader.
    cases
        ``(series, truth GradeSheet)`` pairs or phantom ``SpineCase`` objects.
    train_truth
        ``{study: truth}`` whose class frequencies make the baseline (defaults to the
        held-out truth itself, an optimistic baseline).
    device
        Inference device.

    Returns
    -------
    dict
        The four RSNA terms and ``score`` of the grader; ``baseline_<term>`` of the prior;
        ``level_error_px_mean``, ``level_error_px_median``, ``level_within_5px`` (share
        of levels), ``n_studies``.
    """
    pairs = [_pair(c) for c in cases]
    truth = {i: sheet for i, (_, sheet) in enumerate(pairs)}
    predictions = {i: grade_study(series, model, device) for i, (series, _) in enumerate(pairs)}
    ours = rsna_score(truth, predictions)
    prior = prior_baseline_predictions(train_truth or truth, study_ids=list(truth))
    base = rsna_score(truth, prior)
    errors = np.concatenate([level_errors(model, s, t) for s, t in pairs])
    errors = errors[np.isfinite(errors)]
    report = {k: round(float(v), 4) for k, v in ours.items()}
    report.update({f"baseline_{k}": round(float(base[k]), 4) for k in (*TERMS, "score")})
    if errors.size:
        report.update(
            level_error_px_mean=round(float(errors.mean()), 3),
            level_error_px_median=round(float(np.median(errors)), 3),
            level_within_5px=round(float(np.mean(errors <= 5)), 4),
        )
    report["n_studies"] = len(pairs)
    return report
