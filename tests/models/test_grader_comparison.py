"""Promotion of a retrained grader: clearly better on the held-out studies, not by chance."""

from __future__ import annotations

import math

import numpy as np

from napari_atlas_annotate.grade_sheet import GradeSheet
from napari_atlas_annotate.models.grader_comparison import PROMOTE_WIN_SHARE, compare_graders
from napari_atlas_annotate.models.rsna_metric import rsna_score
from napari_atlas_annotate.spine_grades import GRADES


def _studies(n: int, seed: int = 0) -> dict[int, GradeSheet]:
    rng = np.random.default_rng(seed)
    out = {}
    for s in range(n):
        sheet = GradeSheet()
        for cell in GradeSheet.cells():
            sheet.set_grade(*cell, GRADES[int(rng.choice(3, p=[0.6, 0.25, 0.15]))])
        out[s] = sheet
    return out


def _predict(truth: dict, right: float, seed: int, misses: float = 0.0) -> dict:
    """Sheets giving ``right`` to the true grade; a share ``misses`` of cells confidently
    wrong instead (the heavy tail of the log loss)."""
    rng = np.random.default_rng(seed)
    out = {}
    for s, sheet in truth.items():
        pred = GradeSheet()
        for cell, grade in sheet.grades.items():
            k = GRADES.index(grade)
            if rng.random() < misses:
                k = (k + 1) % 3
            probs = [(1 - right) / 2] * 3
            probs[k] = right
            pred.probabilities[cell] = probs
        out[s] = pred
    return out


def test_a_clearly_better_grader_is_promoted_on_a_few_studies():
    truth = _studies(5)
    old = _predict(truth, 0.6, seed=1, misses=0.15)
    new = _predict(truth, 0.9, seed=2, misses=0.02)
    verdict = compare_graders(truth, old, new)
    assert verdict.new["score"] < verdict.old["score"]
    assert verdict.win_share >= PROMOTE_WIN_SHARE and verdict.clearly_better
    assert verdict.old["score"] == rsna_score(truth, old)["score"]
    # the other way round it is clearly worse
    assert not compare_graders(truth, new, old).clearly_better


def test_a_lower_score_from_one_study_is_not_enough():
    truth = _studies(6, seed=3)
    # the same grades everywhere, except that the old grader made confident misses on one
    # study: its score is far worse, but only because that one study is among these six
    old = _predict(truth, 0.8, seed=4)
    new = _predict(truth, 0.8, seed=4)
    old[0] = _predict({0: truth[0]}, 0.8, seed=6, misses=0.5)[0]
    verdict = compare_graders(truth, old, new)
    assert verdict.new["score"] < 0.8 * verdict.old["score"]
    # a resample without study 0 is a tie (not a win): about 1 - (5/6)^6 = 67 % wins
    assert 0.5 < verdict.win_share < PROMOTE_WIN_SHARE and not verdict.clearly_better
    # the same comparison is reproducible (seeded resamples)
    assert compare_graders(truth, old, new).win_share == verdict.win_share


def test_no_score_for_the_new_grader_never_promotes():
    truth = {0: GradeSheet()}  # nothing graded: every term is undefined
    verdict = compare_graders(truth, {0: GradeSheet()}, {0: GradeSheet()})
    assert math.isnan(verdict.new["score"]) and not verdict.clearly_better


def test_each_resample_is_scored_as_rsna_score_scores_the_drawn_studies():
    # The resamples are scored from each study's summed losses; drawn again here with the
    # same generator, each one scored by rsna_score on the drawn studies themselves (a
    # study drawn twice counts twice), the share of wins must be the same.
    truth = _studies(9, seed=3)
    for s in (1, 4):  # blank cells, as in train.csv
        truth[s].grades.pop(next(iter(truth[s].grades)))
    old = _predict(truth, 0.6, seed=4, misses=0.1)
    new = _predict(truth, 0.62, seed=5, misses=0.1)
    verdict = compare_graders(truth, old, new, resamples=60, seed=7)

    studies = list(truth)
    rng = np.random.default_rng(7)
    wins = 0
    for _ in range(60):
        draw = [studies[i] for i in rng.integers(len(studies), size=len(studies))]
        t = {j: truth[s] for j, s in enumerate(draw)}
        a = rsna_score(t, {j: old[s] for j, s in enumerate(draw)})["score"]
        b = rsna_score(t, {j: new[s] for j, s in enumerate(draw)})["score"]
        wins += b < a
    assert 0 < wins < 60  # a close call, so the comparison below means something
    assert verdict.win_share == wins / 60
    assert verdict.old["score"] == rsna_score(truth, old)["score"]
