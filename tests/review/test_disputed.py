"""Where annotators disagree: per class volume, the slice holding most of it, the ranking's
tie-break, and the lead's edits of the consensus kept by the adjudication."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.project import ProjectError
from napari_atlas_annotate.review.adjudication import (
    PAINTED,
    edited_classes,
    keep_consensus_edits,
)
from napari_atlas_annotate.review.cases import review_case, review_project
from napari_atlas_annotate.review.disputed import (
    Disputes,
    disputed_counts,
    disputed_voxels,
    most_disputed_slice,
)
from napari_atlas_annotate.review.metrics import mask_agreement, voxel_volume_ml

SPLEEN = ABDOMEN_ATLAS_CLASSES.index("spleen") + 1


def test_disputed_region_per_class_is_what_some_but_not_all_gave():
    rng = np.random.default_rng(0)
    maps = [rng.integers(0, 4, size=(6, 7, 8)) for _ in range(3)]
    for value in (1, 2, 3):
        given = np.stack([m == value for m in maps])
        expected = given.sum(axis=0)
        np.testing.assert_array_equal(disputed_voxels(maps, value), (expected > 0) & (expected < 3))
    differ = (maps[0] != maps[1]) | (maps[0] != maps[2])
    np.testing.assert_array_equal(disputed_voxels(maps), differ)
    counts = disputed_counts(maps, [1, 2, 3])
    assert counts == {v: int(disputed_voxels(maps, v).sum()) for v in (1, 2, 3)}


def test_disputes_found_once_give_each_class_its_slice_and_centre_as_the_whole_grid_does():
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 4, size=(9, 10, 11))
    maps = [truth]
    for _ in range(2):
        m = truth.copy()
        flip = rng.random(truth.shape) < 0.1
        m[flip] = rng.integers(0, 4, size=int(flip.sum()))
        maps.append(m)
    disputes = Disputes(maps)
    for value in (None, 1, 2, 3):
        region = disputed_voxels(maps, value)
        np.testing.assert_array_equal(disputes.of_class(value), np.flatnonzero(region))
        for axis in range(3):
            index, voxels, centre = disputes.most_disputed_slice(axis, value)
            assert (index, voxels) == most_disputed_slice(maps, axis, value)
            per_slice = np.count_nonzero(region, axis=tuple(a for a in range(3) if a != axis))
            assert index == int(np.argmax(per_slice)) and voxels == per_slice.max()
            inside = np.nonzero(np.take(region, index, axis=axis))  # the other two axes
            expected = [float(np.mean(i)) for i in inside]
            expected.insert(axis, float(index))
            np.testing.assert_allclose(centre, expected)
    assert Disputes([truth, truth]).most_disputed_slice(0, 2) is None


def test_most_disputed_slice_is_the_erased_one(organ_project):
    project, truths = organ_project
    truth = truths["ct00"]  # bob forgot one slice of the spleen (see conftest)
    bob = project.read_mask(project.latest_version("ct00", annotator="bob"))
    erased = int(np.nonzero(((truth == SPLEEN) != (bob == SPLEEN)).any(axis=(1, 2)))[0][0])
    index, voxels = most_disputed_slice([truth, bob], 0, SPLEEN)
    assert index == erased and voxels == int((truth[erased] == SPLEEN).sum())
    assert most_disputed_slice([truth, truth], 0, SPLEEN) is None  # nothing disputed
    # along another axis: the row with the most disputed spleen voxels, counted directly
    per_row = ((truth == SPLEEN) != (bob == SPLEEN)).sum(axis=(0, 2))
    assert most_disputed_slice([truth, bob], 1, SPLEEN) == (int(per_row.argmax()), per_row.max())


def test_disputed_volume_in_ml_per_class_and_in_all():
    affine = np.diag([2.0, 0.5, 0.5, 1.0])  # 0.5 mm^3 per voxel
    a = np.zeros((4, 6, 6), np.uint8)
    a[1:3, 1:4, 1:4] = 1
    a[0, 0, :3] = 2
    b = a.copy()
    b[2, 1:4, 1:4] = 2  # one slice of class 1 called class 2 by b
    m = mask_agreement({"a": a, "b": b}, affine, ["one", "two"], distances=False)
    vox = voxel_volume_ml(affine)
    assert m.disputed_ml["one"] == pytest.approx(((a == 1) != (b == 1)).sum() * vox)
    assert m.disputed_ml["two"] == pytest.approx(((a == 2) != (b == 2)).sum() * vox)
    assert m.total_disputed_ml == pytest.approx((a != b).sum() * vox)
    assert m.worst_class() == ("two", "a|b", m.dice["two"]["a|b"])
    assert m.dice["two"]["a|b"] < m.dice["one"]["a|b"]


def test_equal_scores_rank_by_disputed_volume(organ_project):
    project, truths = organ_project
    # bob leaves out the spleen in both cases (Dice 0 twice); in ct00 that is all he changes,
    # in ct01 he also drew the liver bigger and moved a kidney: more is disputed there
    expected = {}
    for case_id in ("ct00", "ct01"):
        truth = truths[case_id]
        bob = (
            truth.copy()
            if case_id == "ct00"
            else project.read_mask(project.latest_version(case_id, annotator="bob"))
        )
        bob[truth == SPLEEN] = 0
        project.save_mask_version(case_id, bob, kind="corrected", annotator="bob")
        _, affine = project.grid(case_id)
        expected[case_id] = np.count_nonzero(truth != bob) * voxel_volume_ml(affine)
    reviews, _ = review_project(project)
    assert [r.disagreement for r in reviews] == [1.0, 1.0]
    assert [r.case_id for r in reviews] == ["ct01", "ct00"]  # not by id: by volume
    for r in reviews:
        assert r.masks.total_disputed_ml == pytest.approx(expected[r.case_id])
        assert review_case(project, r.case_id).to_dict()["disputed_ml"] == pytest.approx(
            expected[r.case_id], abs=1e-3
        )


def test_edits_of_the_consensus_are_kept_or_refused_by_name():
    consensus = np.zeros((3, 5, 5), np.uint8)
    consensus[1, 1:4, 1:4] = 1
    consensus[1, 0, 0] = 2
    edited = consensus.copy()
    edited[1, 4, 1:4] = 1  # class 1 painted bigger
    edited[1, 0, 0] = 0  # class 2 erased
    assert edited_classes(consensus, edited) == {1: (3, 0), 2: (0, 1)}
    classes = ["liver", "spleen", "aorta"]
    out = keep_consensus_edits({"aorta": "bob"}, classes, consensus, edited, "ct9")
    assert out == {"liver": PAINTED, "spleen": PAINTED, "aorta": "bob"}
    # the liver painted but taken from bob: the paint would vanish, so it is refused
    with pytest.raises(ProjectError, match=r"ct9: .*lost for liver \(3 voxel"):
        keep_consensus_edits({"liver": "bob"}, classes, consensus, edited, "ct9")
    # only erased where another source decides: nothing painted is lost
    assert keep_consensus_edits({"spleen": "bob"}, classes, consensus, edited)["spleen"] == "bob"
    assert keep_consensus_edits({}, classes, consensus, consensus) == {}
