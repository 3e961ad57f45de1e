"""Volume: the (z, y, x) -> RAS geometry every module relies on."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.volume import (
    LPS_TO_RAS,
    Study,
    Volume,
    affine_from_geometry,
    nifti_affine_from_zyx,
    zyx_affine_from_nifti,
)


def _oblique_affine() -> np.ndarray:
    c, s = np.cos(np.radians(25)), np.sin(np.radians(25))
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return affine_from_geometry([10.0, -20.0, 30.0], rot, (3.0, 0.8, 0.7))


def test_spacing_directions_origin():
    affine = _oblique_affine()
    vol = Volume(np.zeros((4, 5, 6), np.int16), affine)
    assert vol.spacing == pytest.approx((3.0, 0.8, 0.7))
    np.testing.assert_allclose(vol.directions.T @ vol.directions, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(vol.origin, [10, -20, 30])
    assert vol.is_oblique
    assert vol.shape == (4, 5, 6)


@pytest.mark.parametrize(
    ("diag", "codes"),
    [((2.0, 1.0, 1.0), ("R", "A", "S")), ((-2.0, -1.0, 1.0), ("L", "P", "S"))],
)
def test_orientation_codes_follow_the_zyx_axes(diag, codes):
    vol = Volume(np.zeros((2, 3, 4)), np.diag([*diag, 1.0]))
    assert vol.orientation == codes
    assert not vol.is_oblique


def test_axial_dicom_grid_is_spl():
    # DICOM axial: x along +L (row), y along +P (column), z along +S, in RAS terms.
    lps = np.eye(4)
    lps[:3, :3] = [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    assert Volume(np.zeros((2, 3, 4)), LPS_TO_RAS @ lps).orientation == ("S", "P", "L")


def test_index_world_round_trip():
    vol = Volume(np.zeros((4, 5, 6)), _oblique_affine())
    zyx = np.array([[0, 0, 0], [3, 4, 5], [1.5, 2.25, 0.5]])
    world = vol.index_to_world(zyx)
    np.testing.assert_allclose(world[0], vol.origin)
    np.testing.assert_allclose(vol.world_to_index(world), zyx, atol=1e-10)
    # One step along x moves by the x spacing along the x direction.
    np.testing.assert_allclose(
        vol.index_to_world([0, 0, 1]) - vol.origin, vol.directions[:, 2] * 0.7
    )


def test_nifti_affine_conversion_is_a_column_swap_and_its_own_inverse():
    affine = _oblique_affine()
    nifti = nifti_affine_from_zyx(affine)
    np.testing.assert_allclose(nifti[:, 0], affine[:, 2])
    np.testing.assert_allclose(nifti[:, 2], affine[:, 0])
    np.testing.assert_allclose(nifti[:, 1], affine[:, 1])
    np.testing.assert_allclose(nifti[:, 3], affine[:, 3])
    np.testing.assert_allclose(zyx_affine_from_nifti(nifti), affine)


def test_invalid_volumes_are_refused():
    with pytest.raises(ValueError, match="must be 3D"):
        Volume(np.zeros((4, 5)), np.eye(4))
    with pytest.raises(ValueError, match="4x4"):
        Volume(np.zeros((2, 2, 2)), np.eye(3))
    with pytest.raises(ValueError, match="singular"):
        Volume(np.zeros((2, 2, 2)), np.diag([1.0, 0.0, 1.0, 1.0]))


def test_with_array_and_same_grid():
    vol = Volume(np.zeros((2, 3, 4), np.int16), _oblique_affine(), "CT", {"series_uid": "1.2"})
    labels = vol.with_array(np.ones((2, 3, 4), np.uint8), kind="labels")
    assert labels.same_grid(vol)
    assert labels.metadata == {"series_uid": "1.2", "kind": "labels"}
    assert labels.modality == "CT"
    with pytest.raises(ValueError, match="does not match"):
        vol.with_array(np.zeros((3, 3, 4)))
    shifted = vol.affine.copy()
    shifted[0, 3] += 1e-5
    assert Volume(vol.array, shifted).same_grid(vol)
    shifted[0, 3] += 0.01
    assert not Volume(vol.array, shifted).same_grid(vol)


def test_describe_is_json_ready():
    import json

    vol = Volume(
        np.zeros((2, 3, 4), np.float32),
        np.diag([2.0, 1.0, 1.0, 1.0]),
        "MR",
        {"series_uid": "1.2.3", "series_description": "Axial T2", "source": "x"},
    )
    info = json.loads(json.dumps(vol.describe()))
    assert info["shape"] == [2, 3, 4]
    assert info["spacing"] == [2.0, 1.0, 1.0]
    assert info["orientation"] == "RAS"
    assert info["modality"] == "MR" and info["dtype"] == "float32"
    assert info["series_description"] == "Axial T2"
    assert len(info["affine"]) == 4


def test_study_lookup_and_order():
    a = Volume(np.zeros((1, 2, 2)), np.eye(4))
    study = Study({"Sagittal T1": a, "Axial T2": a})
    assert list(dict(iter(study))) == ["Sagittal T1", "Axial T2"]
    assert len(study) == 2
    assert study["Axial T2"] is a
    with pytest.raises(KeyError, match="Sagittal T1"):
        study["Coronal"]
