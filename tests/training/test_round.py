import json

import numpy as np
import pytest

from napari_atlas_annotate.models import registry
from napari_atlas_annotate.models.bundle import ModelBundle
from napari_atlas_annotate.models.inference import propose_organs
from napari_atlas_annotate.models.proposals import propose_cases
from napari_atlas_annotate.project import ProjectError
from napari_atlas_annotate.training.annotator import correct_toward_truth
from napari_atlas_annotate.training.organs import (
    TrainingCancelled,
    TrainSettings,
    tolerant_dice,
)
from napari_atlas_annotate.training.round import train_round

pytestmark = pytest.mark.usefixtures("torch_one_thread")

FAST = TrainSettings(epochs=2, iterations_per_epoch=2, batch_size=1, patch_size=(8, 16, 16))


def _annotate_all(project):
    for r in propose_cases(project, device="cpu", save_uncertainty=False):
        base = project.version(r.version_id)
        correct_toward_truth(project, r.case_id, "sim", project.truths[r.case_id], base)


def test_train_round_records_model_round_and_decision(organ_project):
    _annotate_all(organ_project)
    seen = []
    result = train_round(
        organ_project, "cpu", settings=FAST, progress=lambda d, t, s: seen.append(s)
    )
    assert "training" in seen and "loading cases" in seen
    assert result.model_version == f"organs-round{result.round}"
    assert result.previous_version == "organs-starter"
    assert result.promoted == (result.dice_new > result.dice_old)
    assert set(result.train_cases) | set(result.holdout_cases) == {"c0", "c1", "c2"}
    assert result.holdout_cases and result.train_cases
    active = registry.active_model(organ_project).version
    assert active == (result.model_version if result.promoted else "organs-starter")
    bundle = ModelBundle.load(registry.model_folder(organ_project, result.model_version))
    meta = bundle.metadata
    assert meta["parent_version"] == "organs-starter" and meta["round"] == result.round
    assert meta["training"]["cases"] == result.train_cases
    assert len(meta["training"]["label_snapshot"]) == 64
    assert set(meta["metrics"]["dice_per_class"]) == set(organ_project.classes)
    (row,) = registry.list_rounds(organ_project)
    assert row["model_version"] == result.model_version and row["finished_at"]
    assert row["metrics"]["mean_dice"] == pytest.approx(result.dice_new)
    record = [r for r in registry.list_models(organ_project) if r.version == bundle.version][0]
    assert record.round == result.round and record.active == result.promoted
    assert json.loads(json.dumps(result.to_dict()))["round"] == result.round


def test_promotion_judges_the_proposals_a_radiologist_would_get(organ_project):
    # the held-out score is that of the real proposals (image grid, cleanup, borders
    # snapped to the image) against the submitted labels, for the old and the new model
    _annotate_all(organ_project)
    result = train_round(organ_project, "cpu", settings=FAST)
    meta = ModelBundle.load(registry.model_folder(organ_project, result.model_version)).metadata
    wrong = {}
    for version in (result.previous_version, result.model_version):
        bundle = ModelBundle.load(registry.model_folder(organ_project, version))
        counts = []
        for case_id in result.holdout_cases:
            label_version = organ_project.version(meta["training"]["label_versions"][case_id])
            truth = organ_project.read_mask(label_version)
            proposal = propose_organs(organ_project.load_image(case_id), bundle, device="cpu")
            counts.append(int((proposal.labels != truth).sum()))
        wrong[version] = sum(counts) / len(counts)
    metrics = meta["metrics"]
    assert metrics["voxels_to_edit_per_case"] == pytest.approx(wrong[result.model_version])
    assert metrics["previous_voxels_to_edit_per_case"] == pytest.approx(
        wrong[result.previous_version]
    )
    assert result.voxels_to_edit_new == pytest.approx(wrong[result.model_version])
    assert result.voxels_to_edit_old == pytest.approx(wrong[result.previous_version])


def test_label_tolerance_scores_held_out_cases_off_the_label_borders(organ_project):
    _annotate_all(organ_project)
    organ_project.config.label_tolerance = 1  # the project's protocol is the default
    result = train_round(organ_project, "cpu", settings=FAST)
    meta = ModelBundle.load(registry.model_folder(organ_project, result.model_version)).metadata
    assert meta["metrics"]["label_tolerance"] == 1
    scores = {}
    for version in (result.previous_version, result.model_version):
        bundle = ModelBundle.load(registry.model_folder(organ_project, version))
        per_case = []
        for case_id in result.holdout_cases:
            labels = organ_project.read_mask(
                organ_project.version(meta["training"]["label_versions"][case_id])
            )
            proposal = propose_organs(organ_project.load_image(case_id), bundle, device="cpu")
            per_case.extend(tolerant_dice([proposal.labels], labels, 9, 1))
        scores[version] = float(np.nanmean(np.nanmean(per_case, axis=0)))
    assert result.dice_new == pytest.approx(scores[result.model_version])
    assert result.dice_old == pytest.approx(scores[result.previous_version])
    assert result.promoted == (result.dice_new > result.dice_old)
    with pytest.raises(ValueError, match="label_tolerance"):
        train_round(organ_project, "cpu", settings=FAST, label_tolerance=-1)


def test_a_round_holds_out_at_most_max_holdout_cases(organ_project):
    _annotate_all(organ_project)
    result = train_round(
        organ_project, "cpu", settings=FAST, holdout_fraction=1.0, max_holdout_cases=1
    )
    assert len(result.holdout_cases) == 1 and len(result.train_cases) == 2


def test_train_round_without_labels_explains(organ_project):
    with pytest.raises(ProjectError, match="no submitted labels"):
        train_round(organ_project, "cpu", settings=FAST)


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="needs a machine without a CUDA GPU"
)
def test_cuda_without_a_gpu_is_said_first(organ_project):
    # the device is a setting of the run: refused before anything else is looked at
    with pytest.raises(ValueError, match="sees no CUDA GPU.*--device cpu"):
        train_round(organ_project, "cuda", settings=FAST)
    assert registry.list_rounds(organ_project) == []


def test_a_model_folder_the_database_does_not_know_is_left_alone(organ_project):
    # A database put back from a backup numbers rounds anew: round 1's folder may hold a
    # model trained before. The failed round deleted it.
    _annotate_all(organ_project)
    folder = registry.model_folder(organ_project, "organs-round1")
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "model.pt").write_bytes(b"weights trained before")
    with pytest.raises(ProjectError, match="already there") as caught:
        train_round(organ_project, "cpu", settings=FAST)
    assert "Nothing was trained" in str(caught.value) and "--register" in str(caught.value)
    assert (folder / "models" / "model.pt").read_bytes() == b"weights trained before"
    (row,) = registry.list_rounds(organ_project)
    assert row["metrics"]["status"] == "failed"
    assert registry.active_model(organ_project).version == "organs-starter"


def test_cancelled_round_keeps_the_active_model(organ_project):
    _annotate_all(organ_project)
    with pytest.raises(TrainingCancelled):
        train_round(organ_project, "cpu", settings=FAST, cancel=lambda: True)
    assert registry.active_model(organ_project).version == "organs-starter"
    (row,) = registry.list_rounds(organ_project)
    assert row["metrics"]["status"] == "cancelled"


def test_cancel_while_loading_cases_stops_before_training(organ_project):
    # the first round prepares every labelled case on the model grid (seconds each on a
    # real CT, thousands of cases): Cancel stops it between cases
    _annotate_all(organ_project)
    stages = []

    def cancel():
        return "loading cases" in stages

    with pytest.raises(TrainingCancelled):
        train_round(
            organ_project,
            "cpu",
            settings=FAST,
            progress=lambda d, t, stage: stages.append(stage),
            cancel=cancel,
            holdout_fraction=0.0,  # one case held out, two to load for training
        )
    assert stages.count("loading cases") == 1 and "training" not in stages
    assert registry.list_rounds(organ_project)[-1]["metrics"]["status"] == "cancelled"


def test_validation_reports_progress_and_cancel_leaves_no_model_behind(organ_project):
    # validation proposes every held-out case with both models (minutes on a real
    # project): it reports each case and stops at Cancel like training does
    _annotate_all(organ_project)
    seen = []

    def progress(done, total, stage):
        seen.append((done, total, stage))

    def cancel():
        return any(stage == "validating" for _, _, stage in seen)

    with pytest.raises(TrainingCancelled):
        train_round(organ_project, "cpu", settings=FAST, progress=progress, cancel=cancel)
    validating = [(d, t) for d, t, stage in seen if stage == "validating"]
    assert validating and validating[0][0] == 0 and validating[0][1] >= 1
    assert registry.active_model(organ_project).version == "organs-starter"
    assert [r.version for r in registry.list_models(organ_project)] == ["organs-starter"]
    (row,) = registry.list_rounds(organ_project)
    assert row["metrics"]["status"] == "cancelled" and row["model_version"] is None
    # the trained but unjudged model is not left in the project's models folder
    left = sorted(p.name for p in (organ_project.folder / "models").iterdir())
    assert left == ["organs-starter"]


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU (skipped on CI)"
)
def test_round_trains_on_cuda_and_its_model_loads_on_cpu(organ_project):
    import torch

    _annotate_all(organ_project)
    result = train_round(organ_project, "cuda", settings=FAST)
    bundle = ModelBundle.load(registry.model_folder(organ_project, result.model_version))
    assert bundle.metadata["training"]["device"].startswith("cuda")
    state = torch.load(bundle.weights_path, map_location="cpu", weights_only=True)
    assert all(t.device.type == "cpu" and torch.isfinite(t).all() for t in state.values())
    network = bundle.load_network("cpu")
    assert all(p.device.type == "cpu" for p in network.parameters())


def test_ctrl_c_records_the_round_as_interrupted_not_failed_with_no_reason(organ_project):
    # Ctrl-C in `atlas-annotate train` raised KeyboardInterrupt (empty message) through the
    # round: status then read "round 1: failed (); the active model was left as it was"
    from napari_atlas_annotate.commands.status import round_line

    _annotate_all(organ_project)

    def progress(done, total, stage):
        if stage == "training":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_round(organ_project, "cpu", settings=FAST, progress=progress)
    (row,) = registry.list_rounds(organ_project)
    assert row["metrics"]["status"] == "cancelled", row
    assert "Ctrl-C" in row["metrics"]["reason"]
    line = round_line(row, str(organ_project.folder), "organs-starter")
    assert "interrupted (Ctrl-C)" in line and "failed" not in line, line
    assert [p.name for p in (organ_project.folder / "models").iterdir()] == ["organs-starter"]
    # the next round runs and is numbered on
    assert train_round(organ_project, "cpu", settings=FAST).round == 2


def test_a_single_labelled_case_cannot_promote_a_model(organ_project):
    # it was promoted on its own training case ("0 held-out cases ... promoted"), or on a
    # case that was trained on and "held out" at once
    from napari_atlas_annotate.rounds import describe_round
    from napari_atlas_annotate.training.round import NOT_JUDGED

    (first, *_) = propose_cases(organ_project, ["c0"], device="cpu", save_uncertainty=False)
    base = organ_project.version(first.version_id)
    correct_toward_truth(organ_project, "c0", "sim", organ_project.truths["c0"], base)
    result = train_round(organ_project, "cpu", settings=FAST)
    assert not result.promoted and result.metrics["status"] == f"kept previous: {NOT_JUDGED}"
    assert registry.active_model(organ_project).version == "organs-starter"
    text = describe_round(result, str(organ_project.folder))
    assert "no held-out case to judge it on" in text and "Dice is not higher" not in text
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))  # strict JSON
