import numpy as np
import pytest

from napari_atlas_annotate.models.proposals import propose_cases
from napari_atlas_annotate.project import replay
from napari_atlas_annotate.training.annotator import correct_toward_truth
from napari_atlas_annotate.training.dataset import (
    corrected_voxels,
    holdout_split,
    label_snapshot_hash,
    prepare_case,
    project_cases,
    training_versions,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def proposed(organ_project):
    results = propose_cases(organ_project, ["c0", "c1"], device="cpu", save_uncertainty=False)
    return organ_project, {r.case_id: organ_project.version(r.version_id) for r in results}


def test_simulated_correction_goes_through_the_edit_log(proposed):
    project, versions = proposed
    base = versions["c0"]
    proposal = project.read_mask(base)
    truth = project.truths["c0"]
    result = correct_toward_truth(project, "c0", "sim", truth, base)
    submitted = project.read_mask(result.version)
    np.testing.assert_array_equal(submitted, truth)
    assert result.voxels_edited == int((proposal != truth).sum())
    events = project.events("c0", "sim")
    assert len(events) == result.strokes > 0
    assert all(e.base_version_id == base.id for e in events)
    # every stroke stays in one axial slice, like a brush stroke
    assert all(e.diff.bbox[0][1] - e.diff.bbox[0][0] == 1 for e in events)
    np.testing.assert_array_equal(replay(proposal, events), submitted)
    assert result.version.parent_id == base.id and result.version.kind == "corrected"


def test_min_region_leaves_small_errors(proposed):
    project, versions = proposed
    truth = project.truths["c1"]
    full = int((project.read_mask(versions["c1"]) != truth).sum())
    result = correct_toward_truth(
        project, "c1", "lazy", truth, versions["c1"], min_region_voxels=50
    )
    assert result.voxels_edited < full


def test_training_versions_and_corrected_voxels(proposed):
    project, versions = proposed
    truth = project.truths["c0"]
    proposal = project.read_mask(versions["c0"])
    result = correct_toward_truth(project, "c0", "sim", truth, versions["c0"])
    chosen = training_versions(project)
    assert set(chosen) == {"c0"} and chosen["c0"].id == result.version.id
    mask = corrected_voxels(project, result.version)
    np.testing.assert_array_equal(mask, proposal != truth)
    # a lead's final version wins over the annotator's, and is compared with the proposal
    final = project.save_mask_version(
        "c0", truth, kind="final", annotator="lead", parent_id=versions["c0"].id
    )
    assert training_versions(project)["c0"].id == final.id
    np.testing.assert_array_equal(corrected_voxels(project, final), proposal != truth)
    before = label_snapshot_hash(training_versions(project))
    assert before == label_snapshot_hash(dict(training_versions(project)))
    # a final the lead reopened (sent back as wrong) no longer trains the model: the
    # annotator's labels do, and the resubmission the lead asked for once it comes
    from napari_atlas_annotate.review import reopen

    reopen(project, "c0", "lead", "spleen")
    assert training_versions(project)["c0"].id == result.version.id
    again = project.save_mask_version(
        "c0", truth, kind="corrected", annotator="sim", parent_id=final.id
    )
    assert training_versions(project)["c0"].id == again.id


def test_project_cases_are_on_the_model_grid(proposed):
    from napari_atlas_annotate.models.registry import active_model

    project, versions = proposed
    correct_toward_truth(project, "c0", "sim", project.truths["c0"], versions["c0"])
    bundle = active_model(project)
    (case,) = project_cases(project, bundle, training_versions(project))
    assert case.image.dtype == np.float32 and case.image.shape == case.labels.shape
    assert 0.0 <= case.image.min() and case.image.max() <= 1.0
    assert case.corrected is not None and case.corrected.max() > 0


def test_holdout_split_is_stable_and_never_empty():
    ids = [f"case{i:03d}" for i in range(40)]
    train, held = holdout_split(ids, 0.2)
    assert set(train) | set(held) == set(ids) and not set(train) & set(held)
    assert 2 <= len(held) <= 16
    assert holdout_split(list(reversed(ids)), 0.2) == (train, held)
    # adding cases never moves an old case between the sets
    train2, held2 = holdout_split(ids + ["new1", "new2"], 0.2)
    assert set(held) <= set(held2) and set(train) <= set(train2)
    assert holdout_split(["a", "b"], 0.0)[1] and holdout_split(["a", "b"], 1.0)[0]


def test_holdout_split_caps_the_held_out_cases_and_never_moves_one_into_them():
    ids = [f"case{i:04d}" for i in range(1000)]
    train, held = holdout_split(ids, 0.2, max_held=50)
    assert len(held) == 50 and len(train) == 950
    uncapped_train, uncapped_held = holdout_split(ids, 0.2)
    assert set(held) < set(uncapped_held)  # the capped set is part of the usual one
    # as the project grows, a held-out case may go to training, a training case never
    grown_train, grown_held = holdout_split(ids + [f"new{i}" for i in range(500)], 0.2, 50)
    assert len(grown_held) == 50 and not set(train) & set(grown_held)
    assert holdout_split(ids[:10], 0.2, max_held=50) == holdout_split(ids[:10], 0.2)


def test_a_training_image_with_voxels_that_are_not_numbers_trains_as_if_they_were_air(
    small_phantom,
):
    """NaN outside the field of view reaches the model grid as air, not as NaN spread by
    the resampling into its neighbours (and from there into every weight)."""
    from napari_atlas_annotate.models.intensity import AIR_HU
    from napari_atlas_annotate.volume import Volume

    image, label = small_phantom
    labels = np.asarray(label.array, np.uint8)
    array = np.asarray(image.array, np.float32)
    with_nan, with_air = array.copy(), array.copy()
    hole = (slice(None), slice(20, 30), slice(18, 30))  # through the body, beside bone
    with_nan[hole], with_air[hole] = np.nan, AIR_HU
    args = (labels, (3.0, 3.0, 3.0), (-200.0, 400.0))
    nan = prepare_case("c", Volume(with_nan, image.affine, "CT"), *args)
    air = prepare_case("c", Volume(with_air, image.affine, "CT"), *args)
    assert np.isfinite(nan.image).all()
    np.testing.assert_array_equal(nan.image, air.image)
