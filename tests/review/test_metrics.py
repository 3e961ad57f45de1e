"""Reported Dice / HD95 / volume difference / kappa against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.review.cases import review_case, review_project
from napari_atlas_annotate.review.kappa import cohen_kappa, confusion_matrix
from napari_atlas_annotate.review.metrics import hd95_per_class, mask_agreement
from napari_atlas_annotate.spine_grades import CONDITIONS, GRADES, LEVELS

from .conftest import SPLEEN, perturb


def set_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice by counting voxels in the intersection and in each set."""
    na, nb = np.count_nonzero(a), np.count_nonzero(b)
    if na + nb == 0:
        return 1.0
    return 2.0 * np.count_nonzero(a & b) / (na + nb)


def edt_hd95(a: np.ndarray, b: np.ndarray, spacing) -> float:
    """Symmetric HD95: surfaces by erosion, distances from scipy's EDT with ``sampling``."""
    sa = a ^ ndimage.binary_erosion(a)
    sb = b ^ ndimage.binary_erosion(b)
    to_b = ndimage.distance_transform_edt(~sb, sampling=spacing)[sa]
    to_a = ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]
    return max(np.percentile(to_b, 95), np.percentile(to_a, 95))


def explicit_quadratic_kappa(a: list[int], b: list[int], k: int = 3) -> float:
    """kappa_w = 1 - sum(w O) / sum(w E), written out with loops."""
    n = len(a)
    observed = [[0.0] * k for _ in range(k)]
    for x, y in zip(a, b, strict=True):
        observed[x][y] += 1
    row = [sum(observed[i]) for i in range(k)]
    col = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    num = den = 0.0
    for i in range(k):
        for j in range(k):
            w = (i - j) ** 2 / (k - 1) ** 2
            num += w * observed[i][j]
            den += w * row[i] * col[j] / n
    return 1.0 - num / den


def test_kappa_hand_computed_example():
    # O = [[1,1,0],[0,1,0],[0,0,1]], E = outer([2,1,1],[1,2,1])/4:
    # sum(wO) = 1, sum(wE) = 1 + 4(.5) + .25 + .25 + 4(.25) + .5 = 5  ->  kappa = 0.8
    a = ["Normal/Mild", "Normal/Mild", "Moderate", "Severe"]
    b = ["Normal/Mild", "Moderate", "Moderate", "Severe"]
    assert cohen_kappa(a, b, GRADES) == pytest.approx(0.8)
    # Unweighted: p_o = 3/4, p_e = (2*1 + 1*2 + 1*1)/16 = 5/16 -> (12/16 - 5/16)/(11/16)
    assert cohen_kappa(a, b, GRADES, weights=None) == pytest.approx(7 / 11)
    # Skipped items are left out; identical constant readers agree perfectly.
    assert cohen_kappa(a + [None], b + ["Severe"], GRADES) == pytest.approx(0.8)
    assert cohen_kappa(["Moderate"] * 5, ["Moderate"] * 5, GRADES) == 1.0
    assert cohen_kappa([None], ["Severe"], GRADES) is None
    np.testing.assert_array_equal(confusion_matrix(a, b, GRADES), [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="'Mild' is not one of"):
        confusion_matrix(["Mild"], ["Severe"], GRADES)


def test_organ_metrics_match_independent_computation(organ_project):
    project, truths = organ_project
    _, affine = project.grid("ct00")
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000
    review = review_case(project, "ct00")
    assert review.annotators == ["alice", "bob"]
    a = project.read_mask(review.versions["alice"])
    b = project.read_mask(review.versions["bob"])
    np.testing.assert_array_equal(a, truths["ct00"])
    m = review.masks
    for value, name in enumerate(ABDOMEN_ATLAS_CLASSES, start=1):
        ma, mb = a == value, b == value
        assert m.dice[name]["alice|bob"] == pytest.approx(set_dice(ma, mb), abs=1e-6), name
        expected_hd = edt_hd95(ma, mb, spacing) if ma.any() and mb.any() else None
        if expected_hd is None:
            assert m.hd95[name]["alice|bob"] is None
        else:
            assert m.hd95[name]["alice|bob"] == pytest.approx(expected_hd, abs=1e-3), name
        dv = (np.count_nonzero(ma) - np.count_nonzero(mb)) * voxel_ml
        assert m.volume_diff_ml[name]["alice|bob"] == pytest.approx(dv, abs=1e-9)
    # The perturbations show where they were made, and nowhere else.
    assert m.dice["liver"]["alice|bob"] < 1 and m.volume_diff_ml["liver"]["alice|bob"] < 0
    assert m.dice["kidney_left"]["alice|bob"] < 1
    assert m.volume_diff_ml["spleen"]["alice|bob"] > 0
    for name in ("aorta", "pancreas", "stomach"):
        assert m.dice[name]["alice|bob"] == 1.0 and m.hd95[name]["alice|bob"] == 0.0
    # A one-voxel shift along x moves the surface by at most one x spacing.
    assert 0 < m.hd95["kidney_left"]["alice|bob"] <= spacing[2] + 1e-4


def test_anisotropic_spacing_is_used_in_mm():
    a = np.zeros((12, 12, 12), np.uint8)
    a[3:9, 3:9, 3:9] = 1
    b = np.roll(a, 2, axis=0)  # two slices along z
    m = mask_agreement({"A": a, "B": b}, np.diag([3.0, 0.5, 0.5, 1.0]), ["organ"])
    assert m.hd95["organ"]["A|B"] == pytest.approx(edt_hd95(a > 0, b > 0, (3.0, 0.5, 0.5)))
    assert m.hd95["organ"]["A|B"] == pytest.approx(6.0)
    assert m.volume_ml["organ"]["A"] == pytest.approx(216 * 0.75 / 1000)


def test_empty_mask_edge_cases():
    a = np.zeros((6, 6, 6), np.uint8)
    b = a.copy()
    b[2:4, 2:4, 2:4] = 2
    m = mask_agreement({"A": a, "B": b}, np.eye(4), ["one", "two"])
    assert m.dice["one"]["A|B"] == 1.0 and m.hd95["one"]["A|B"] == 0.0  # both empty
    assert m.dice["two"]["A|B"] == 0.0 and m.hd95["two"]["A|B"] is None  # one empty
    assert hd95_per_class(a, a, 1, (1, 1, 1)) == [0.0]


def test_three_annotators_pairwise(tmp_path):
    rng = np.random.default_rng(1)
    base = np.zeros((10, 20, 20), np.uint8)
    base[2:8, 4:16, 4:16] = 1
    maps = {n: np.where(rng.random(base.shape) < 0.03, 1 - base, base) for n in "ABC"}
    m = mask_agreement(maps, np.eye(4), ["x"])
    assert set(m.dice["x"]) == {"A|B", "A|C", "B|C"}
    for key, d in m.dice["x"].items():
        p, q = key.split("|")
        assert d == pytest.approx(set_dice(maps[p] == 1, maps[q] == 1), abs=1e-6)


def test_grade_kappa_matches_explicit_formula(spine_project):
    project, sheets = spine_project
    review = review_case(project, "mr01")
    a, b = sheets["mr01"]["alice"], sheets["mr01"]["bob"]
    idx = {g: i for i, g in enumerate(GRADES)}
    all_a, all_b = [], []
    for c in CONDITIONS:
        ga = [idx[a.grade(c, lv)] for lv in LEVELS]
        gb = [idx[b.grade(c, lv)] for lv in LEVELS]
        all_a += ga
        all_b += gb
        if ga == gb and len(set(ga)) == 1:
            expected = 1.0  # documented convention for 0/0
        else:
            expected = explicit_quadratic_kappa(ga, gb)
        assert review.grades.kappa[c]["alice|bob"] == pytest.approx(expected), c
    assert review.grades.kappa["overall"]["alice|bob"] == pytest.approx(
        explicit_quadratic_kappa(all_a, all_b)
    )
    disputed = [f"{c}_{lv}" for c, lv in a.cells() if a.grade(c, lv) != b.grade(c, lv)]
    assert review.grades.disputed_cells() == disputed and len(disputed) == 8
    assert review.grades.cells[disputed[0]]["bob"] == b.grade(
        *a.cells()[[f"{c}_{lv}" for c, lv in a.cells()].index(disputed[0])]
    )
    assert np.sum(review.grades.confusion["overall"]["alice|bob"]) == 25


def test_cases_ranked_by_disagreement(organ_project, spine_project):
    project, _ = organ_project
    reviews, skipped = review_project(project)
    assert [r.case_id for r in reviews] == ["ct01", "ct00"]  # bob dropped ct01's spleen
    assert reviews[0].disagreement == pytest.approx(1.0)  # spleen Dice 0
    assert skipped == []
    spine, _ = spine_project
    reviews, _ = review_project(spine)
    # mr01 has 8 changed cells, mr00 4.
    assert [r.case_id for r in reviews] == ["mr01", "mr00"]
    assert reviews[0].disagreement == pytest.approx(
        1 - reviews[0].grades.kappa["overall"]["alice|bob"]
    )


def test_dice_is_monais_dice(organ_project):
    """Counted from label pairs, Dice is what MONAI's compute_dice gives on one-hot maps,
    with a class both readers left out (1.0) and one only one reader labelled (0.0)."""
    import torch
    from monai.metrics import compute_dice

    from napari_atlas_annotate.review.metrics import dice_per_class

    project, truths = organ_project
    rng = np.random.default_rng(0)
    alice = truths["ct00"]
    bob = perturb(perturb(alice, "dilate_liver"), "drop_spleen")
    noisy = np.where(rng.random(alice.shape) < 0.05, rng.integers(0, 8, alice.shape), alice)
    n = 11  # classes 10 and 11: nobody labelled them
    for a, b in [(alice, bob), (alice, noisy.astype(np.uint8)), (bob, bob)]:
        expected = compute_dice(
            torch.as_tensor(a.astype(np.int16))[None, None],
            torch.as_tensor(b.astype(np.int16))[None, None],
            include_background=False,
            ignore_empty=False,
            num_classes=n + 1,
        )[0]
        np.testing.assert_allclose(dice_per_class(a, b, n), expected.numpy(), rtol=1e-6)
    assert dice_per_class(alice, bob, n)[SPLEEN - 1] == 0.0
    assert dice_per_class(alice, bob, n)[-1] == 1.0
