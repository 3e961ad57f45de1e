"""DICOM -> Volume -> NIfTI -> Volume keeps voxels and geometry, whatever the orientation."""

from __future__ import annotations

import random

import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.io import load_nifti, load_volume, save_nifti
from napari_atlas_annotate.io.dicom_writer import write_dicom_series
from napari_atlas_annotate.volume import LPS_TO_RAS, Volume

SHAPE = (6, 7, 9)  # distinct sizes so any transpose shows


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def dicom_volume(row, col, spacing=(2.5, 0.8, 0.6), origin=(-40.0, 25.0, 60.0)) -> Volume:
    """A Volume built the DICOM way: row/column cosines (LPS), spacing (z, y, x), IPP."""
    row = np.asarray(row, float) / np.linalg.norm(row)
    col = np.asarray(col, float) / np.linalg.norm(col)
    lps = np.eye(4)
    lps[:3, 0] = np.cross(row, col) * spacing[0]
    lps[:3, 1] = col * spacing[1]
    lps[:3, 2] = row * spacing[2]
    lps[:3, 3] = origin
    rng = np.random.default_rng(7)
    data = rng.integers(-1000, 1000, SHAPE).astype(np.int16)
    data += (np.arange(SHAPE[0]) * 7)[:, None, None].astype(np.int16)  # slice signature
    return Volume(data, LPS_TO_RAS @ lps, "CT")


_OBLIQUE = _rotation(0, 20) @ _rotation(1, 15)
ORIENTATIONS = {
    "axial": ((1, 0, 0), (0, 1, 0), ("S", "P", "L")),
    "flipped": ((-1, 0, 0), (0, 1, 0), ("I", "P", "R")),
    "sagittal": ((0, 1, 0), (0, 0, -1), ("R", "I", "P")),
    "coronal": ((1, 0, 0), (0, 0, -1), ("P", "I", "L")),
    "oblique": (tuple(_OBLIQUE @ [1, 0, 0]), tuple(_OBLIQUE @ [0, 1, 0]), None),
}


def _world_from_header(path, k_j_i) -> np.ndarray:
    """RAS mm of pixel (j, i) of a slice file, from its own header only."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    _, j, i = k_j_i
    lps = ipp + i * col_spacing * iop[:3] + j * row_spacing * iop[3:]
    return np.array([-lps[0], -lps[1], lps[2]])


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_dicom_nifti_round_trip(tmp_path, name):
    row, col, codes = ORIENTATIONS[name]
    truth = dicom_volume(row, col)
    write_dicom_series(truth, tmp_path / "dcm", uid_seed=name)

    from_dicom = load_volume(tmp_path / "dcm")
    np.testing.assert_array_equal(from_dicom.array, truth.array)
    np.testing.assert_allclose(from_dicom.affine, truth.affine, atol=1e-4)
    if codes is not None:
        assert from_dicom.orientation == codes
        assert not from_dicom.is_oblique
    else:
        assert from_dicom.is_oblique

    save_nifti(from_dicom, tmp_path / "v.nii.gz")
    from_nifti = load_nifti(tmp_path / "v.nii.gz")
    np.testing.assert_array_equal(from_nifti.array, from_dicom.array)
    np.testing.assert_allclose(from_nifti.affine, from_dicom.affine, atol=1e-4)
    assert from_nifti.orientation == from_dicom.orientation


@pytest.mark.parametrize("name", ["flipped", "oblique"])
def test_affine_matches_each_files_own_header(tmp_path, name):
    row, col, _ = ORIENTATIONS[name]
    write_dicom_series(dicom_volume(row, col), tmp_path, uid_seed=name)
    vol = load_volume(tmp_path)
    files = vol.metadata["files"]
    for kji in [(0, 0, 0), (3, 6, 0), (5, 2, 8), (1, 6, 8)]:
        expected = _world_from_header(files[kji[0]], kji)
        np.testing.assert_allclose(vol.index_to_world(np.array(kji)), expected, atol=1e-4)


def test_shuffled_file_names_load_identically(tmp_path):
    truth = dicom_volume(*ORIENTATIONS["oblique"][:2])
    paths = write_dicom_series(truth, tmp_path / "a", uid_seed="shuffle")
    names = [f"x{n:03d}.dcm" for n in range(len(paths))]
    random.Random(3).shuffle(names)
    assert names != sorted(names)
    for path, new in zip(paths, names, strict=True):
        path.rename(path.parent / new)
    vol = load_volume(tmp_path / "a")
    np.testing.assert_array_equal(vol.array, truth.array)
    np.testing.assert_allclose(vol.affine, truth.affine, atol=1e-4)


def test_scrambled_instance_numbers_load_identically(tmp_path):
    truth = dicom_volume(*ORIENTATIONS["sagittal"][:2])
    paths = write_dicom_series(truth, tmp_path, uid_seed="instances")
    numbers = list(range(1, len(paths) + 1))
    random.Random(5).shuffle(numbers)
    for path, number in zip(paths, numbers, strict=True):
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = number
        ds.save_as(path)
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.array, truth.array)
    np.testing.assert_allclose(vol.affine, truth.affine, atol=1e-4)
    expected_uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths]
    assert vol.metadata["sop_instance_uids"] == expected_uids
