"""Training the lumbar grader: mechanics, determinism, cancel/progress, placement fitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_atlas_annotate.models.grader_net import GraderNet
from napari_atlas_annotate.phantoms.spine import make_spine_phantom
from napari_atlas_annotate.spine_grades import GRADES
from napari_atlas_annotate.training.grader import train_grader, truth_sheet


@pytest.fixture(scope="module")
def studies():
    torch.set_num_threads(1)
    out = []
    for seed in range(3):
        case = make_spine_phantom(seed)
        out.append((case.series, truth_sheet(case.grades, case.points, case.series_ids)))
    return out


def test_truth_sheet_from_rsna_rows():
    case = make_spine_phantom(4)
    sheet = truth_sheet(case.grades, case.points, case.series_ids)
    assert sheet.is_complete() and len(sheet.points) == 25
    p = case.point("left_subarticular_stenosis", "l2_l3")
    got = sheet.points[("left_subarticular_stenosis", "l2_l3")]
    assert (got.series, got.instance, got.x, got.y) == ("Axial T2", p.instance_number, p.x, p.y)
    partial = truth_sheet(
        {"spinal_canal_stenosis_l1_l2": "", "spinal_canal_stenosis_l2_l3": "Severe"}
    )
    assert partial.grades == {
        ("spinal_canal_stenosis", "l1_l2"): None,
        ("spinal_canal_stenosis", "l2_l3"): "Severe",
    }


def test_training_runs_reports_and_fits_point_offsets(studies):
    calls = []
    model, metrics = train_grader(
        studies, epochs=2, device="cpu", progress=lambda f, m: calls.append((f, m))
    )
    assert [f for f, _ in calls] == [0.5, 1.0]
    assert metrics["epochs_done"] == 2 and not metrics["cancelled"]
    assert metrics["n_studies"] == 3 and metrics["n_cells"] == 75
    assert np.isfinite(metrics["locator_loss"]) and np.isfinite(metrics["grade_loss"])
    assert metrics["level_error_mm"] >= 0
    # foramina lie about 21 mm lateral of the canal (left = -R), 5 mm above the disc
    left = model.config["offsets"]["left_neural_foraminal_narrowing"]["l3_l4"]
    right = model.config["offsets"]["right_neural_foraminal_narrowing"]["l3_l4"]
    assert left[0] == pytest.approx(-21, abs=1.5) and right[0] == pytest.approx(21, abs=1.5)
    assert left[2] == pytest.approx(5, abs=1.0)
    prior = model.config["group_prior"]["spinal"]
    assert sum(prior) == pytest.approx(1) and len(prior) == len(GRADES)


def test_same_seed_same_model_and_init_is_not_modified(studies):
    init = GraderNet()
    before = {k: v.clone() for k, v in init.state_dict().items()}
    a, _ = train_grader(studies[:2], init=init, epochs=1, device="cpu", seed=3)
    b, _ = train_grader(studies[:2], init=init, epochs=1, device="cpu", seed=3)
    for key, value in init.state_dict().items():
        assert torch.equal(value, before[key]), key
    changed = 0
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
        changed += not torch.equal(value, before[key])
    assert changed > 0


def test_cancel_stops_before_any_step(studies):
    model, metrics = train_grader(studies[:1], epochs=5, device="cpu", cancel=lambda: True)
    assert metrics["cancelled"] and metrics["epochs_done"] == 0
    assert isinstance(model, GraderNet)


def test_bad_input_names_the_study(studies):
    with pytest.raises(ValueError, match="at least one graded study"):
        train_grader([])
    series, sheet = studies[0]
    no_t2 = {k: v for k, v in series.items() if k != "Sagittal T2/STIR"}
    with pytest.raises(ValueError, match="study 1: the grader needs a 'Sagittal T2/STIR'"):
        train_grader([(series, sheet), (no_t2, sheet)], epochs=1)
    with pytest.raises(TypeError, match="study 0: truth must be a GradeSheet"):
        train_grader([(series, {"spinal_canal_stenosis_l1_l2": "Severe"})], epochs=1)
