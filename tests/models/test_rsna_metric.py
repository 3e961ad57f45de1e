"""RSNA 2024 lumbar metric: against an independent computation, hand cases, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_atlas_annotate.grade_sheet import GradeSheet
from napari_atlas_annotate.models.rsna_metric import (
    prior_baseline_predictions,
    rsna_score,
)
from napari_atlas_annotate.spine_grades import CONDITIONS, GRADES, LEVELS

try:  # scikit-learn is not a dependency; use it as the reference when it is there
    from sklearn.metrics import log_loss as sk_log_loss
except ImportError:  # pragma: no cover - depends on the environment
    sk_log_loss = None

WEIGHT = {"Normal/Mild": 1, "Moderate": 2, "Severe": 4}


def _random_study(rng, missing=0.0):
    truth, pred = {}, {}
    for c in CONDITIONS:
        for lv in LEVELS:
            grade = GRADES[rng.choice(3, p=[0.6, 0.25, 0.15])]
            truth[f"{c}_{lv}"] = None if rng.random() < missing else grade
            raw = rng.random(3) * rng.choice([0.5, 1.0, 3.0])  # not normalised on purpose
            if rng.random() < 0.1:
                raw[rng.integers(3)] = 0.0  # exact zeros exercise the clipping
            pred[(c, lv)] = raw.tolist()
    return truth, pred


def _reference_by_loops(truth, pred):
    """The metric written out plainly: per-row loops, natural logs, explicit clip."""
    eps = np.finfo(np.float64).eps
    groups = {
        "spinal": ["spinal_canal_stenosis"],
        "foraminal": ["left_neural_foraminal_narrowing", "right_neural_foraminal_narrowing"],
        "subarticular": ["left_subarticular_stenosis", "right_subarticular_stenosis"],
    }
    out = {}
    for name, conds in groups.items():
        num = den = 0.0
        for sid in truth:
            for c in conds:
                for lv in LEVELS:
                    g = truth[sid].get(f"{c}_{lv}")
                    if g is None:
                        continue
                    row = pred[sid][(c, lv)]
                    total = sum(row)
                    p = row[GRADES.index(g)] / total
                    p = min(max(p, eps), 1 - eps)
                    num += WEIGHT[g] * -math.log(p)
                    den += WEIGHT[g]
        out[name] = num / den
    num = den = 0.0
    for sid in truth:
        rows = [
            (truth[sid][f"spinal_canal_stenosis_{lv}"], pred[sid][("spinal_canal_stenosis", lv)])
            for lv in LEVELS
            if truth[sid].get(f"spinal_canal_stenosis_{lv}") is not None
        ]
        if not rows:
            continue
        y = any(g == "Severe" for g, _ in rows)
        p = max(r[2] / sum(r) for _, r in rows)
        w = max(WEIGHT[g] for g, _ in rows)
        q = min(max(p if y else 1 - p, eps), 1 - eps)
        num += w * -math.log(q)
        den += w
    out["any_severe_spinal"] = num / den
    out["score"] = sum(out.values()) / 4
    return out


def _reference_by_sklearn(truth, pred):
    groups = {
        "spinal": ("spinal_canal_stenosis",),
        "foraminal": ("left_neural_foraminal_narrowing", "right_neural_foraminal_narrowing"),
        "subarticular": ("left_subarticular_stenosis", "right_subarticular_stenosis"),
    }
    out = {}
    for name, conds in groups.items():
        y, p, w = [], [], []
        for sid in truth:
            for c in conds:
                for lv in LEVELS:
                    g = truth[sid].get(f"{c}_{lv}")
                    if g is not None:
                        onehot = [0, 0, 0]
                        onehot[GRADES.index(g)] = 1
                        row = np.asarray(pred[sid][(c, lv)], float)
                        y.append(onehot)
                        p.append(row / row.sum())
                        w.append(WEIGHT[g])
        out[name] = sk_log_loss(np.array(y), np.array(p), sample_weight=w)
    y, p, w = [], [], []
    for sid in truth:
        rows = [
            (truth[sid][f"spinal_canal_stenosis_{lv}"], pred[sid][("spinal_canal_stenosis", lv)])
            for lv in LEVELS
            if truth[sid].get(f"spinal_canal_stenosis_{lv}") is not None
        ]
        y.append(int(any(g == "Severe" for g, _ in rows)))
        p.append(max(r[2] / sum(r) for _, r in rows))
        w.append(max(WEIGHT[g] for g, _ in rows))
    out["any_severe_spinal"] = sk_log_loss(y, p, sample_weight=w, labels=[0, 1])
    out["score"] = float(np.mean(list(out.values())))
    return out


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_matches_independent_computation(missing):
    rng = np.random.default_rng(7)
    truth, pred = {}, {}
    for sid in range(40):
        truth[sid], pred[sid] = _random_study(rng, missing)
    got = rsna_score(truth, pred)
    want = _reference_by_loops(truth, pred)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12), key
    if sk_log_loss is not None:
        ref = _reference_by_sklearn(truth, pred)
        for key in ref:
            assert got[key] == pytest.approx(ref[key], rel=1e-9), key


def test_hand_computed_single_study():
    # Spinal: l1_l2 Severe predicted 0.5, others Normal/Mild predicted 0.8.
    # Foraminal left l4_l5 Moderate predicted 0.25; subarticular right l5_s1 Normal 1.0.
    truth = GradeSheet()
    pred = GradeSheet()
    for lv in LEVELS:
        truth.set_grade("spinal_canal_stenosis", lv, "Normal/Mild")
        pred.probabilities[("spinal_canal_stenosis", lv)] = [0.8, 0.1, 0.1]
    truth.set_grade("spinal_canal_stenosis", "l1_l2", "Severe")
    pred.probabilities[("spinal_canal_stenosis", "l1_l2")] = [0.25, 0.25, 0.5]
    truth.set_grade("left_neural_foraminal_narrowing", "l4_l5", "Moderate")
    pred.probabilities[("left_neural_foraminal_narrowing", "l4_l5")] = [1.0, 1.0, 2.0]
    truth.set_grade("right_subarticular_stenosis", "l5_s1", "Normal/Mild")
    pred.probabilities[("right_subarticular_stenosis", "l5_s1")] = [1.0, 0.0, 0.0]

    got = rsna_score({"s": truth}, {"s": pred})
    spinal = (4 * -math.log(0.5) + 4 * -math.log(0.8)) / (4 + 4)
    assert got["spinal"] == pytest.approx(spinal)
    assert got["foraminal"] == pytest.approx(-math.log(0.25))
    assert got["subarticular"] == pytest.approx(-math.log(1 - np.finfo(float).eps))
    # any severe: label 1, max severe prob 0.5, weight 4 (one study).
    assert got["any_severe_spinal"] == pytest.approx(-math.log(0.5))
    terms = [got[k] for k in ("spinal", "foraminal", "subarticular", "any_severe_spinal")]
    assert got["score"] == pytest.approx(sum(terms) / 4)


def test_perfect_predictions_score_near_zero_and_wrong_confident_is_large():
    rng = np.random.default_rng(1)
    truth = {sid: _random_study(rng)[0] for sid in range(5)}
    perfect, wrong = {}, {}
    for sid, grades in truth.items():
        perfect[sid], wrong[sid] = {}, {}
        for col, g in grades.items():
            k = GRADES.index(g)
            onehot = [0.0, 0.0, 0.0]
            onehot[k] = 1.0
            perfect[sid][col] = onehot
            bad = [0.0, 0.0, 0.0]
            bad[(k + 1) % 3] = 1.0
            wrong[sid][col] = bad
    good = rsna_score(truth, perfect)
    assert good["score"] == pytest.approx(0.0, abs=1e-12)
    bad = rsna_score(truth, wrong)
    # Zero probability on the true class is clipped to eps, not infinite.
    assert bad["spinal"] == pytest.approx(-math.log(np.finfo(float).eps))


def test_missing_truth_cells_are_skipped():
    truth = {1: {"spinal_canal_stenosis_l1_l2": "Moderate", "spinal_canal_stenosis_l2_l3": None}}
    # Only the known cell needs a prediction; the other one may be absent.
    pred = {1: {("spinal_canal_stenosis", "l1_l2"): [0.2, 0.5, 0.3]}}
    got = rsna_score(truth, pred)
    assert got["spinal"] == pytest.approx(-math.log(0.5))
    assert got["any_severe_spinal"] == pytest.approx(-math.log(0.7))
    assert math.isnan(got["foraminal"]) and math.isnan(got["subarticular"])
    assert got["score"] == pytest.approx((-math.log(0.5) - math.log(0.7)) / 2)


def test_missing_prediction_for_known_truth_is_an_error():
    truth = {9: {"left_subarticular_stenosis_l3_l4": "Severe"}}
    with pytest.raises(ValueError, match="left_subarticular_stenosis at l3_l4"):
        rsna_score(truth, {9: {}})
    with pytest.raises(ValueError, match="study 9"):
        rsna_score(truth, {})
    with pytest.raises(ValueError, match="at least zero"):
        rsna_score(truth, {9: {("left_subarticular_stenosis", "l3_l4"): [-1, 1, 1]}})


def test_prior_baseline_uses_group_frequencies():
    truth = {
        1: {"spinal_canal_stenosis_l1_l2": "Severe", "spinal_canal_stenosis_l2_l3": "Normal/Mild"},
        2: {"left_neural_foraminal_narrowing_l1_l2": "Moderate"},
    }
    base = prior_baseline_predictions(truth, study_ids=[5])
    assert set(base) == {5}
    assert len(base[5]) == 25
    assert base[5][("spinal_canal_stenosis", "l5_s1")] == pytest.approx([0.5, 0, 0.5])
    assert base[5][("right_neural_foraminal_narrowing", "l3_l4")] == pytest.approx([0, 1, 0])
    assert base[5][("left_subarticular_stenosis", "l3_l4")] == pytest.approx([1 / 3] * 3)
    # weighted=True counts each cell with its metric weight: the best constant for the
    # group terms, so it cannot score worse than the plain frequencies on its own data.
    rng = np.random.default_rng(3)
    train = {sid: _random_study(rng)[0] for sid in range(30)}
    plain = rsna_score(train, prior_baseline_predictions(train))
    weighted = rsna_score(train, prior_baseline_predictions(train, weighted=True))
    for term in ("spinal", "foraminal", "subarticular"):
        assert weighted[term] < plain[term]
    wbase = prior_baseline_predictions(truth, study_ids=[5], weighted=True)
    assert wbase[5][("spinal_canal_stenosis", "l1_l2")] == pytest.approx([0.2, 0, 0.8])
