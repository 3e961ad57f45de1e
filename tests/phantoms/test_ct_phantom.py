"""CT phantom: determinism, geometry, anatomy, and that intensity alone cannot segment it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_atlas_annotate.phantoms import CLASSES, ct_site, make_ct_phantom

LABEL = {name: i + 1 for i, name in enumerate(CLASSES)}


@pytest.fixture(scope="module")
def case():
    return make_ct_phantom(0)


def best_window_dice(
    image: np.ndarray, label: np.ndarray, cls: int, lo: int = -1100, hi: int = 1500, step: int = 10
) -> float:
    """Best Dice of ``lo' <= HU < hi'`` against ``label == cls`` over every window on a grid.

    Exhaustive over all (lo', hi') pairs of the grid, via cumulative histograms.
    """
    edges = np.arange(lo, hi + step, step)
    bins = np.clip(np.searchsorted(edges, image.ravel(), side="right") - 1, 0, len(edges) - 1)
    all_c = np.concatenate([[0], np.cumsum(np.bincount(bins, minlength=len(edges)))])
    org = label.ravel() == cls
    org_c = np.concatenate([[0], np.cumsum(np.bincount(bins[org], minlength=len(edges)))])
    tp = org_c[None, :] - org_c[:, None]  # window [edges[i], edges[j])
    pred = all_c[None, :] - all_c[:, None]
    dice = 2 * tp / np.maximum(pred + org_c[-1], 1)
    return float(np.triu(dice, 1).max())


def test_shapes_dtypes_geometry(case):
    image, label, info = case
    assert image.shape == label.shape == (96, 160, 160)
    assert image.array.dtype == np.int16 and label.array.dtype == np.uint8
    assert image.orientation == ("S", "P", "L")
    assert np.array_equal(image.affine, label.affine)
    assert image.modality == "CT"
    assert set(np.unique(label.array)) == set(range(len(CLASSES) + 1))
    assert info["phase"] in ("arterial", "portal venous")
    assert info["series_description"] == f"Abdomen CT {info['phase']}"
    sz, sy, sx = image.spacing
    assert 2.0 < sz < 3.5 and 1.8 < sy < 2.8 and sy == pytest.approx(sx)
    assert image.array.min() >= -1024 and image.array.max() <= 3071


def test_deterministic_and_seed_dependent():
    a_img, a_lab, _ = make_ct_phantom(7, shape=(32, 64, 64))
    b_img, b_lab, _ = make_ct_phantom(7, shape=(32, 64, 64))
    c_img, c_lab, _ = make_ct_phantom(8, shape=(32, 64, 64))
    assert a_img.array.tobytes() == b_img.array.tobytes()
    assert a_lab.array.tobytes() == b_lab.array.tobytes()
    assert np.array_equal(a_img.affine, b_img.affine)
    assert not np.array_equal(a_img.array, c_img.array)
    assert not np.array_equal(a_lab.array, c_lab.array)


def test_organ_volumes_plausible(case):
    _, label, info = case
    ml = info["volumes_ml"]
    voxel_ml = np.prod(label.spacing) / 1000
    counts = np.bincount(label.array.ravel(), minlength=10)
    for name in CLASSES:
        assert ml[name] == pytest.approx(counts[LABEL[name]] * voxel_ml)
    assert max(ml, key=ml.get) == "liver"
    assert 900 < ml["liver"] < 2500
    assert 80 < ml["spleen"] < 500
    for kidney in ("kidney_left", "kidney_right"):
        assert 60 < ml[kidney] < 300
    assert 10 < ml["gall_bladder"] < 100
    assert 30 < ml["pancreas"] < 150
    assert 100 < ml["stomach"] < 800
    # organs are connected blobs: the largest component holds (nearly) all of each
    for name in CLASSES:
        comp, n = ndimage.label(label.array == LABEL[name])
        sizes = np.bincount(comp.ravel())[1:]
        assert sizes.max() >= 0.95 * sizes.sum(), (name, sorted(sizes)[-3:])


def test_anatomical_sides_from_affine(case):
    image, label, _ = case
    centroid = {
        name: image.index_to_world(np.argwhere(label.array == LABEL[name]).mean(0))
        for name in CLASSES
    }
    for name in ("spleen", "kidney_left", "stomach"):  # patient left: R < 0
        assert centroid[name][0] < -15, name
    for name in ("liver", "kidney_right", "gall_bladder", "postcava"):
        assert centroid[name][0] > 5, name
    assert centroid["aorta"][0] < centroid["postcava"][0]  # aorta left of the IVC
    assert centroid["spleen"][1] < centroid["stomach"][1]  # spleen posterior (A smaller)
    assert centroid["gall_bladder"][2] < centroid["liver"][2]  # under the liver
    assert centroid["kidney_left"][1] < centroid["pancreas"][1]  # kidneys behind pancreas
    # organs stay inside the body: no organ voxel outside the filled body outline
    body = ndimage.binary_fill_holes(image.array > -400, structure=np.ones((1, 3, 3)))
    assert not np.any(label.array[~body])


@pytest.mark.parametrize("seed,site", [(0, 0), (1, 0), (2, 1)])
def test_no_single_intensity_window_segments_the_organs(seed, site):
    image, label, _ = make_ct_phantom(seed, site=site)
    dice = [best_window_dice(image.array, label.array, LABEL[c]) for c in CLASSES]
    assert np.mean(dice) <= 0.4, dict(zip(CLASSES, np.round(dice, 2), strict=True))


def test_contrast_phase_drives_aorta_brightness():
    phases = {}
    for seed in range(12):
        image, label, info = make_ct_phantom(seed, shape=(32, 64, 64), site=1)
        aorta = image.array[label.array == LABEL["aorta"]]
        phases.setdefault(info["phase"], []).append(float(np.median(aorta)))
    # site 1 scans some patients without contrast (a protocol shift from site 0)
    assert set(phases) == {"arterial", "portal venous", "non-contrast"}
    assert np.mean(phases["arterial"]) > np.mean(phases["portal venous"]) + 50
    assert np.mean(phases["arterial"]) > 200
    assert np.mean(phases["non-contrast"]) < np.mean(phases["portal venous"]) - 80


def test_training_site_scans_only_enhanced_and_other_sites_shift_protocol():
    base, other = ct_site(0), ct_site(1)
    assert base.unenhanced_prob == base.fatty_liver_prob == base.slice_mm == 0
    assert other.unenhanced_prob > 0.25 and other.fatty_liver_prob > 0.2
    assert 3.0 <= other.slice_mm <= 5.0
    phases = {make_ct_phantom(s, shape=(16, 32, 32), site=0)[2]["phase"] for s in range(12)}
    assert phases <= {"arterial", "portal venous"}


def _noise_sd(image, label):
    """Noise estimate: adjacent-slice differences inside the (eroded) liver."""
    liver = ndimage.binary_erosion(label.array == LABEL["liver"], iterations=2)
    inner = liver[1:] & liver[:-1]
    diff = image.array[1:].astype(float) - image.array[:-1].astype(float)
    return float(np.std(diff[inner]) / np.sqrt(2))


def test_site_shifts_spacing_and_noise():
    base, other = ct_site(0), ct_site(1)
    assert base != other
    img0, lab0, info0 = make_ct_phantom(3, site=0)
    img1, lab1, info1 = make_ct_phantom(3, site=1)
    assert not np.allclose(img0.spacing, img1.spacing, rtol=0.03)
    measured = _noise_sd(img1, lab1) / _noise_sd(img0, lab0)
    expected = info1["noise_sd"] / info0["noise_sd"]
    assert abs(expected - 1) > 0.3
    assert measured == pytest.approx(expected, rel=0.3)
    assert info1["site_profile"] != info0["site_profile"]


def test_explicit_spacing_and_shape():
    image, label, info = make_ct_phantom(1, shape=(40, 80, 96), spacing=(5.0, 4.0, 4.0))
    assert image.shape == (40, 80, 96)
    assert image.spacing == pytest.approx((5.0, 4.0, 4.0))
    assert info["volumes_ml"]["liver"] > 500
    with pytest.raises(ValueError):
        make_ct_phantom(1, shape=(4, 64, 64))


def test_classes_match_package_class_list():
    classes = pytest.importorskip("napari_atlas_annotate.classes")
    assert tuple(classes.ABDOMEN_ATLAS_CLASSES) == CLASSES
