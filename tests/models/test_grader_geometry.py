"""Grader geometry: canonical planes independent of voxel order, points across series."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.grade_sheet import LevelPoint
from napari_atlas_annotate.models.grader_geometry import (
    normalized_intensity,
    point_to_world,
    sample_slab,
    voxel_to_world,
    world_to_point,
    world_to_voxel,
)
from napari_atlas_annotate.models.grader_levels import (
    decode_heatmaps,
    heatmap_targets,
    levels_to_plane,
)
from napari_atlas_annotate.phantoms.spine import make_spine_phantom
from napari_atlas_annotate.volume import Volume


def _blob_volume() -> Volume:
    """A volume in RAS-aligned (z=S, y=A, x=R) order with a bright blob off-centre."""
    arr = np.zeros((40, 50, 60), np.float32)
    arr[30, 35, 20] = 1.0  # superior, anterior, right of centre
    from scipy import ndimage

    arr = ndimage.gaussian_filter(arr, 1.5)
    aff = np.eye(4)
    aff[:3, 0] = (0, 0, 2.0)  # z -> S
    aff[:3, 1] = (0, 1.5, 0)  # y -> A
    aff[:3, 2] = (1.0, 0, 0)  # x -> R
    aff[:3, 3] = (-30, -40, -50)
    return Volume(arr, aff)


def _reordered(vol: Volume) -> Volume:
    """The same image stored with axes permuted and two of them flipped."""
    arr = vol.array[::-1, :, ::-1].transpose(2, 0, 1)  # (x', z', y)
    nz, ny, nx = vol.shape
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, nz - 1
    flip[2, 2], flip[2, 3] = -1, nx - 1
    perm = np.zeros((4, 4))
    perm[3, 3] = 1
    perm[2, 0] = perm[0, 1] = perm[1, 2] = 1  # new (a, b, c) = old (x, z, y)
    return Volume(np.ascontiguousarray(arr), vol.affine @ flip @ perm)


@pytest.mark.parametrize("view", ["sagittal", "axial"])
def test_slab_is_the_same_whatever_the_voxel_order(view):
    vol = _blob_volume()
    other = _reordered(vol)
    center = voxel_to_world(vol, np.array([29.0, 32.0, 21.0]))
    # the reordering is exact: the blob voxel maps to the same patient position
    idx = np.array(np.unravel_index(np.argmax(other.array), other.shape), float)
    assert np.allclose(voxel_to_world(other, idx), voxel_to_world(vol, np.array([30, 35, 20])))
    a = sample_slab(vol, vol.array, center, view, (24, 24), 1.0, (-2.0, 0.0, 2.0))
    b = sample_slab(other, other.array, center, view, (24, 24), 1.0, (-2.0, 0.0, 2.0))
    assert a.max() > 0.01
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_sagittal_view_puts_superior_up_and_anterior_left():
    vol = _blob_volume()
    blob = voxel_to_world(vol, np.array([30.0, 35.0, 20.0]))
    center = blob - np.array([0.0, 5.0, 8.0])  # blob 8 mm superior, 5 mm anterior of centre
    plane = sample_slab(vol, vol.array, center, "sagittal", (41, 41), 1.0)[0]
    r, c = np.unravel_index(np.argmax(plane), plane.shape)
    assert (r, c) == (20 - 8, 20 - 5)
    # axial, lateral=+1: columns run to patient left; the blob is 6 mm left of the centre
    center = blob + np.array([6.0, 0.0, 0.0])  # centre 6 mm to the right of the blob
    plane = sample_slab(vol, vol.array, center, "axial", (41, 41), 1.0)[0]
    r, c = np.unravel_index(np.argmax(plane), plane.shape)
    assert (r, c) == (20, 20 + 6)
    mirrored = sample_slab(vol, vol.array, center, "axial", (41, 41), 1.0, lateral=-1)[0]
    np.testing.assert_allclose(mirrored, plane[:, ::-1], atol=1e-6)


def test_points_round_trip_through_patient_space():
    case = make_spine_phantom(3)
    for desc, vol in case.series.items():
        p = LevelPoint(desc, 5, 40.25, 33.5)
        world = point_to_world(vol, p)
        back = world_to_point(vol, desc, world)
        assert (
            back.instance == 5 and back.x == pytest.approx(40.25) and back.y == pytest.approx(33.5)
        )
        assert np.allclose(world_to_voxel(vol, world), [4, 33.5, 40.25])
    with pytest.raises(ValueError, match="instance 99"):
        point_to_world(case.series["Axial T2"], LevelPoint("Axial T2", 99, 1, 1))


def test_heatmap_targets_decode_to_their_centres():
    rowcols = np.array([[10.3, 20.7], [30.0, 31.2], [50.5, 60.0], [70.0, 5.5], [100.0, 90.25]])
    target = heatmap_targets(rowcols, (128, 128), 1.5)
    assert np.allclose(target.sum(axis=(1, 2)), 1.0)
    got, confidence = decode_heatmaps(np.log(target + 1e-12), window=4)
    np.testing.assert_allclose(got, rowcols, atol=0.05)
    assert (confidence > 0.9).all()
    off_plane = heatmap_targets(np.array([[-5.0, 3.0]]), (16, 16), 1.5)
    assert off_plane.sum() == 0


def test_ordered_decoding_keeps_each_level_on_its_own_disc():
    discs = np.array([[20.0, 40.0], [38.0, 42.0], [56.0, 45.0], [74.0, 49.0], [92.0, 55.0]])
    maps = heatmap_targets(discs, (128, 96), 1.5)
    # level 3's map is unsure: most of its mass sits on level 2's disc, some on its own
    wrong = heatmap_targets(discs[[1]], (128, 96), 1.5)[0]
    maps[2] = 0.6 * wrong + 0.4 * maps[2]
    logits = np.log(maps + 1e-12)
    one_by_one, _ = decode_heatmaps(logits, window=4)
    assert np.linalg.norm(one_by_one[2] - discs[1]) < 0.5  # two levels on one disc
    ordered, confidence = decode_heatmaps(logits, window=4, min_separation=6.0)
    np.testing.assert_allclose(ordered, discs, atol=0.3)
    assert confidence[2] < confidence[1]  # the level it had to move is the unsure one
    # where no ordered set exists among the peaks, each map keeps its own maximum
    upside_down = np.log(heatmap_targets(discs[::-1], (128, 96), 1.5) + 1e-12)
    kept, _ = decode_heatmaps(upside_down, window=4, min_separation=6.0)
    np.testing.assert_allclose(kept, discs[::-1], atol=0.3)


def test_level_targets_follow_the_rotated_slab():
    vol = _blob_volume()
    blob = voxel_to_world(vol, np.array([30.0, 35.0, 20.0]))
    center = blob - np.array([0.0, 6.0, 10.0])
    config = {"locator": {"shape": [64, 64], "pixel_mm": 1.0, "slab_mm": [0.0]}}
    for rot in (0.0, 9.0, -14.0):
        plane = sample_slab(vol, vol.array, center, "sagittal", (64, 64), 1.0, rotation_deg=rot)[0]
        peak = np.unravel_index(np.argmax(plane), plane.shape)
        want = levels_to_plane(blob[None], center, config, rot)[0]
        assert np.allclose(peak, want, atol=1.0), (rot, peak, want)


def test_mr_voxels_that_are_not_numbers_read_as_background():
    """NaN outside an MR's field of view must not make the percentile scaling NaN (the
    grader then read every voxel of the series as NaN)."""
    rng = np.random.default_rng(0)
    clean = rng.uniform(0, 800, (16, 32, 32)).astype(np.float32)
    holed = clean.copy()
    holed[:, :4] = np.nan
    holed[0, 10, 10] = np.inf
    scaled = normalized_intensity(Volume(holed, np.eye(4), "MR"))
    assert np.isfinite(scaled).all()
    assert (scaled[:, :4] == 0).all() and scaled[0, 10, 10] == 0
    reference = normalized_intensity(Volume(clean, np.eye(4), "MR"))
    inside = np.isfinite(holed)
    np.testing.assert_allclose(scaled[inside], reference[inside], atol=0.05)
