"""NIfTI in and out (io/nifti.py), checked against nibabel directly."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from napari_atlas_annotate.io import (
    VolumeLoadError,
    is_nifti_path,
    load_nifti,
    load_volume,
    save_labels,
    save_nifti,
)
from napari_atlas_annotate.volume import Volume

ANATOMICAL = os.path.join(data_path, "anatomical.nii")
EXAMPLE_4D = os.path.join(data_path, "example4d.nii.gz")


def _volume(shape=(4, 5, 6), dtype=np.int16) -> Volume:
    data = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    affine = np.array([[0, 0, -0.7, 10], [0, 0.9, 0, -20], [2.5, 0, 0, 30], [0, 0, 0, 1.0]])
    return Volume(data, affine, "CT")


def test_anatomical_matches_nibabel():
    img = nib.load(ANATOMICAL)
    vol = load_volume(ANATOMICAL)
    ijk = np.asanyarray(img.dataobj)
    assert vol.shape == img.shape[::-1]
    np.testing.assert_array_equal(vol.array, ijk.transpose(2, 1, 0))
    # Our z/x affine columns are NIfTI's k/i columns; the origin is shared.
    expected = np.eye(4)
    expected[:3, 0], expected[:3, 1], expected[:3, 2] = (
        img.affine[:3, 2],
        img.affine[:3, 1],
        img.affine[:3, 0],
    )
    expected[:3, 3] = img.affine[:3, 3]
    np.testing.assert_allclose(vol.affine, expected)
    assert vol.orientation == tuple(reversed(nib.aff2axcodes(img.affine)))
    # The same voxel lands on the same point in both conventions.
    i, j, k = 7, 30, 11
    np.testing.assert_allclose(vol.index_to_world([k, j, i]), (img.affine @ [i, j, k, 1])[:3])
    assert vol.array[k, j, i] == ijk[i, j, k]


def test_4d_file_is_refused_with_a_way_out():
    with pytest.raises(VolumeLoadError) as err:
        load_volume(EXAMPLE_4D)
    text = str(err.value)
    assert text.startswith(EXAMPLE_4D)
    assert "4D" in text and "(128, 96, 24, 2)" in text
    assert "four_to_three" in text


def test_4d_with_one_volume_is_3d(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4, 1)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "one.nii.gz")
    vol = load_nifti(tmp_path / "one.nii.gz")
    np.testing.assert_array_equal(vol.array, data[..., 0].transpose(2, 1, 0))


def _scaled_file(tmp_path):
    raw = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(0.5, -3.0)
    nib.save(img, tmp_path / "s.nii")
    return tmp_path / "s.nii", raw


def test_scaled_file_values_are_scaled(tmp_path):
    path, raw = _scaled_file(tmp_path)
    vol = load_nifti(path)
    assert np.issubdtype(vol.array.dtype, np.floating)
    np.testing.assert_allclose(vol.array, (raw * 0.5 - 3.0).transpose(2, 1, 0))


def test_scaled_file_gives_float32(tmp_path):
    path, _ = _scaled_file(tmp_path)
    assert load_nifti(path).array.dtype == np.float32


def test_round_trip_keeps_integer_type_and_geometry(tmp_path):
    truth = _volume()
    path = save_nifti(truth, tmp_path / "deep" / "ct.nii.gz")
    back = load_nifti(path)
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, truth.array)
    np.testing.assert_allclose(back.affine, truth.affine, atol=1e-6)
    img = nib.load(path)
    assert img.header["qform_code"] == 1 and img.header["sform_code"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["ct.nii.gz"]  # no temp files left


def test_save_labels_picks_the_smallest_type(tmp_path):
    ref = _volume()
    small = np.zeros(ref.shape, np.int64)
    small[1, 2, 3] = 9
    assert load_nifti(save_labels(small, ref, tmp_path / "a.nii.gz")).array.dtype == np.uint8
    big = small.copy()
    big[0, 0, 0] = 300
    back = load_nifti(save_labels(big, ref, tmp_path / "b.nii.gz"))
    assert back.array.dtype == np.uint16
    np.testing.assert_array_equal(back.array, big)
    assert back.same_grid(ref)


def test_save_labels_refuses_other_grids_and_negative_values(tmp_path):
    ref = _volume()
    with pytest.raises(ValueError, match="does not match image shape"):
        save_labels(np.zeros((4, 5, 7), np.uint8), ref, tmp_path / "x.nii.gz")
    with pytest.raises(ValueError, match=">= 0"):
        save_labels(-np.ones(ref.shape, np.int16), ref, tmp_path / "x.nii.gz")


def test_truncated_gzip_is_a_clear_error(tmp_path):
    path = save_nifti(_volume((20, 30, 40)), tmp_path / "v.nii.gz")
    raw = gzip.decompress(path.read_bytes())
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(VolumeLoadError, match="(?s)cut.nii.gz: .*truncated"):
        load_nifti(cut)


def test_garbage_nifti_and_missing_file(tmp_path):
    bad = tmp_path / "bad.nii"
    bad.write_bytes(b"not a nifti header at all")
    with pytest.raises(VolumeLoadError, match="not a readable NIfTI"):
        load_nifti(bad)
    with pytest.raises(VolumeLoadError, match="does not exist"):
        load_nifti(tmp_path / "absent.nii.gz")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.nii", True), ("A.NII.GZ", True), ("a.nii.gz", True), ("a.dcm", False), ("nii", False)],
)
def test_is_nifti_path(name, expected):
    assert is_nifti_path(name) is expected


def test_a_file_without_orientation_is_flagged_and_warned(tmp_path):
    # nibabel gives such a file a made-up grid; it was taken as real geometry silently
    from napari_atlas_annotate.io import VolumeLoadWarning

    path = tmp_path / "nocodes.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), None), path)
    with pytest.warns(VolumeLoadWarning, match="no orientation"):
        volume = load_nifti(path)
    assert volume.metadata["placeholder_geometry"] is True
    oriented = tmp_path / "oriented.nii.gz"
    save_nifti(_volume(), oriented)
    assert "placeholder_geometry" not in load_nifti(oriented).metadata


def test_a_sheared_grid_is_refused_as_a_tilted_series_is(tmp_path):
    # accepted before, and then every export of its labels failed naming a hidden file
    tilt = np.radians(15)
    sheared = np.diag([0.8, 0.8, 2.5, 1.0])
    sheared[1, 2] = 2.5 * np.sin(tilt)  # slices drift along y: a gantry tilt kept as shear
    path = tmp_path / "tilted.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((6, 6, 4), np.int16), sheared), path)
    with pytest.raises(VolumeLoadError, match="not perpendicular") as caught:
        load_nifti(path)
    assert "tilt correction" in str(caught.value) and str(path) in str(caught.value)
    rotated = np.diag([0.8, 0.8, 2.5, 1.0])  # oblique but perpendicular: fine
    c, s = np.cos(tilt), np.sin(tilt)
    rotated[:3, :3] = np.array([[1, 0, 0], [0, c, -s], [0, s, c]]) @ rotated[:3, :3]
    nib.save(nib.Nifti1Image(np.zeros((6, 6, 4), np.int16), rotated), path)
    assert load_nifti(path).shape == (4, 6, 6)
