import numpy as np
import pytest
from scipy import ndimage

from napari_atlas_annotate.models.border_refinement import (
    band_widths,
    border_band,
    keep_hollow_organ_walls,
    refine_borders,
)


def _two_organs(seed: int = 0, contrast: float = 150.0, noise: float = 10.0):
    """Truth labels (a sphere and a box touching it) and a blurred, noisy CT of them."""
    z, y, x = np.mgrid[:40, :48, :48]
    truth = np.zeros((40, 48, 48), np.uint8)
    truth[(z - 20) ** 2 + (y - 24) ** 2 + (x - 18) ** 2 <= 11**2] = 1
    truth[8:32, 14:34, 29:42] = 2
    hu = np.choose(truth, [-80.0, -80.0 + contrast, -80.0 + 0.6 * contrast]).astype(np.float32)
    hu = ndimage.gaussian_filter(hu, 0.5)
    hu += np.random.default_rng(seed).normal(0, noise, hu.shape).astype(np.float32)
    return truth, hu


def _shifted(truth: np.ndarray) -> np.ndarray:
    """A proposal one voxel off: organ 1 grown by a voxel, organ 2 moved one voxel in x."""
    prop = truth.copy()
    prop[ndimage.binary_dilation(truth == 1) & (truth == 0)] = 1
    two = truth == 2
    prop[two] = 0
    prop[np.roll(two, 1, axis=2) & (prop == 0)] = 2
    return prop


def test_borders_one_voxel_off_snap_back_to_the_image_edges():
    truth, hu = _two_organs()
    prop = _shifted(truth)
    before = int((prop != truth).sum())
    out = refine_borders(prop.copy(), hu, (1.0, 1.0, 1.0))
    after = int((out != truth).sum())
    assert before > 2000
    assert after < 0.2 * before


def test_only_the_band_can_change():
    truth, hu = _two_organs(seed=1)
    prop = _shifted(truth)
    band = border_band(prop, (1, 1, 1))
    out = refine_borders(prop.copy(), hu, (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(out[~band], prop[~band])
    assert (out[band] != prop[band]).any()


def test_without_an_edge_the_proposal_barely_moves():
    truth, _ = _two_organs()
    prop = _shifted(truth)
    flat = np.random.default_rng(2).normal(40.0, 10.0, truth.shape).astype(np.float32)
    out = refine_borders(prop.copy(), flat, (1.0, 1.0, 1.0))
    # noise alone moves some band voxels either way, but no organ grows or shrinks much
    for organ in (1, 2):
        assert (
            abs(int((out == organ).sum()) - int((prop == organ).sum()))
            < 0.1 * (prop == organ).sum()
        )


def test_a_constant_image_leaves_the_proposal_alone():
    truth, _ = _two_organs()
    prop = _shifted(truth)
    out = refine_borders(prop.copy(), np.zeros(truth.shape, np.float32), (1, 1, 1))
    np.testing.assert_array_equal(out, prop)


def test_an_organ_thinner_than_the_band_keeps_its_voxels():
    truth, hu = _two_organs()
    prop = truth.copy()
    prop[5, 5:40, 5:40] = 3  # one slice thick: no voxel of it lies outside the band
    out = refine_borders(prop.copy(), hu, (1.0, 1.0, 1.0))
    assert (out == 3).sum() == (prop == 3).sum()


def test_slabs_give_the_whole_volume_answer():
    truth, hu = _two_organs(seed=3)
    prop = _shifted(truth)
    whole = refine_borders(prop.copy(), hu, (2.0, 1.0, 1.0), slab_slices=64)
    slabs = []
    sliced = refine_borders(
        prop.copy(),
        hu,
        (2.0, 1.0, 1.0),
        slab_slices=5,
        on_slab=lambda done, total: slabs.append((done, total)),
    )
    assert len(slabs) > 3 and slabs[-1][0] == slabs[-1][1]
    assert np.mean(sliced == whole) > 0.999


def test_refines_a_view_in_place():
    truth, hu = _two_organs()
    prop = np.ascontiguousarray(_shifted(truth).transpose(2, 1, 0))
    view = prop.transpose(2, 1, 0)
    refine_borders(view, hu, (1.0, 1.0, 1.0))
    assert int((prop.transpose(2, 1, 0) != truth).sum()) < 0.2 * int(
        (_shifted(truth) != truth).sum()
    )


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        refine_borders(np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 5)), (1, 1, 1))


def test_band_is_half_a_model_voxel_and_at_least_one_image_voxel():
    assert band_widths((1.5, 0.8, 0.8), (3.0, 3.0, 3.0)) == (1, 2, 2)
    assert band_widths((4.0, 3.7, 3.7), (3.0, 3.0, 3.0)) == (1, 1, 1)
    assert band_widths((0.5, 0.5, 0.5), (3.0, 3.0, 3.0)) == (3, 3, 3)


def _stomach_by_the_liver(seed: int = 0):
    """Liver (60 HU) against a gas-filled stomach whose one-voxel wall (40 HU) faces both.

    Along x: liver to x=9, stomach wall at x=10, lumen gas x=11..20, wall at x=21, then fat.
    The wall's strongest edge is towards the gas, so a walk alone gives it away.
    """
    shape = (12, 16, 32)
    truth = np.zeros(shape, np.uint8)
    truth[:, :, :10] = 1  # liver
    truth[:, :, 10:22] = 2  # stomach: wall + lumen + wall
    hu = np.full(shape, -100.0, np.float32)  # fat
    hu[:, :, :10] = 60.0
    hu[:, :, 10] = hu[:, :, 21] = 40.0
    hu[:, :, 11:21] = -1000.0
    hu += np.random.default_rng(seed).normal(0, 5, shape).astype(np.float32)
    return truth, hu


def test_a_hollow_organ_keeps_its_wall():
    truth, hu = _stomach_by_the_liver()
    wall = np.zeros(truth.shape, bool)
    wall[:, :, [10, 21]] = True
    spacing = (4.0, 4.0, 4.0)
    walk_only = refine_borders(truth.copy(), hu, spacing, wall_mm=0)
    assert (walk_only[:, :, 10] == 1).mean() > 0.9  # alone, the walk gives the wall away
    out = refine_borders(truth.copy(), hu, spacing)
    assert (out[wall] == 2).all()
    np.testing.assert_array_equal(out, truth)


def test_wall_rule_restores_only_voxels_near_the_organs_own_gas():
    before = np.zeros((1, 1, 12), np.uint8)
    before[0, 0, 2:10] = 2
    hu = np.full(before.shape, 40.0, np.float32)
    hu[0, 0, 3] = -1000.0  # gas inside the organ, near its left end only
    after = before.copy()
    after[0, 0, [2, 9]] = 0  # refinement took both end voxels away
    out = keep_hollow_organ_walls(after.copy(), before, hu, (1.0, 1.0, 1.0), wall_mm=2.0)
    assert out[0, 0, 2] == 2  # 1 mm from the organ's gas: restored
    assert out[0, 0, 9] == 0  # 6 mm away: the refinement's call stands
    other = before.copy()
    other[0, 0, 3] = 0  # the gas is not the organ's own: nothing restored
    out = keep_hollow_organ_walls(after.copy(), other, hu, (1.0, 1.0, 1.0), wall_mm=2.0)
    assert out[0, 0, 2] == 0


def test_a_border_against_lung_is_placed_by_the_full_hu_range():
    # liver (60 HU) to x=9, a partial-volume liver voxel at x=10 (-150 HU: closer to the
    # liver than to the lung, whose midpoint with it is -395 HU), lung (-850 HU) beyond
    shape = (10, 12, 24)
    truth = np.zeros(shape, np.uint8)
    truth[:, :, :11] = 1
    hu = np.full(shape, -850.0, np.float32)
    hu[:, :, :10] = 60.0
    hu[:, :, 10] = -150.0
    hu += np.random.default_rng(3).normal(0, 5, shape).astype(np.float32)
    out = refine_borders(truth.copy(), hu, (4.0, 4.0, 4.0))
    assert (out[:, :, 10] == 1).mean() > 0.95
    # a soft-tissue window clips the lung to -200 HU and hands the voxel to it
    clipped = refine_borders(truth.copy(), hu, (4.0, 4.0, 4.0), (-200.0, 400.0), beta=1350.0)
    assert (clipped[:, :, 10] == 0).mean() > 0.5


@pytest.mark.parametrize("seed", range(40))
def test_band_on_the_labels_box_equals_the_band_on_the_whole_volume(seed):
    # the band is computed on the labels' bounding box only; near the array's edges and
    # the box's edges it must match the filters run over the whole volume
    rng = np.random.default_rng(seed)
    labels = np.zeros(tuple(rng.integers(1, 14, 3)), np.uint8)
    part = tuple(slice(*sorted(rng.integers(0, n + 1, 2))) for n in labels.shape)
    labels[part] = rng.integers(0, 3, labels[part].shape)
    widths = tuple(int(w) for w in rng.integers(1, 3, 3))
    size = [2 * w + 1 for w in widths]
    whole = ndimage.maximum_filter(labels, size) != ndimage.minimum_filter(labels, size)
    np.testing.assert_array_equal(border_band(labels, widths), whole)


def test_slabs_without_band_are_skipped_and_progress_still_counts_them():
    truth, hu = _two_organs()
    # two patients' worth of organs with 40 empty slices (no band) between them
    labels = np.zeros((120, 48, 48), np.uint8)
    labels[:40] = labels[80:] = _shifted(truth)
    image = np.concatenate([hu, np.full_like(hu, -80.0), hu])
    seen = []
    refined = refine_borders(
        labels.copy(), image, (1, 1, 1), slab_slices=8, on_slab=lambda d, t: seen.append((d, t))
    )
    assert [d for d, _ in seen] == list(range(1, len(seen) + 1))
    assert seen[-1][1] == len(seen) >= 14
    assert (refined[40:80] == 0).all()
    for part in (slice(0, 40), slice(80, 120)):
        assert (refined[part] != truth).sum() < (labels[part] != truth).sum()


def test_band_voxels_no_seed_can_reach_keep_their_label():
    # a pocket of background sealed inside a one-voxel shell (an organ with no seed: all of
    # it is band) cannot be reached by the walk; it keeps its label instead of taking one
    labels = np.zeros((12, 20, 20), np.uint8)
    labels[2:10, 2:10, 11:19] = 1  # an ordinary organ, with seeds
    labels[3:9, 3:9, 3:9] = 2
    labels[4:8, 4:8, 4:8] = 0  # shell of 2 one voxel thick, sealed background pocket
    labels[5:7, 5:7, 5:7] = 3  # and an organ within the pocket, all band too
    image = np.where(labels == 1, 60.0, np.where(labels == 2, 120.0, -80.0)).astype(np.float32)
    refined = refine_borders(labels.copy(), image, (1, 1, 1), wall_mm=0)
    pocket = np.zeros(labels.shape, bool)
    pocket[4:8, 4:8, 4:8] = True
    np.testing.assert_array_equal(refined[pocket], labels[pocket])
    np.testing.assert_array_equal(refined[3:9, 3:9, 3:9] == 2, labels[3:9, 3:9, 3:9] == 2)
