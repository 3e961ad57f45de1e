"""A NIfTI case's CT written as DICOM for its SEG keeps its Hounsfield units: read back
with pydicom (stored value x RescaleSlope + RescaleIntercept, as every viewer does) it gives
the NIfTI's values, exactly when they are whole numbers (CTs are often saved as float32)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.export import export_project
from napari_atlas_annotate.project import ImageRef, Project

from .conftest import AXIAL, organ_phantom


def _hu(path):
    ds = pydicom.dcmread(path)
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


@pytest.mark.parametrize("offset, exact", [(0.0, True), (0.25, False)])
def test_float_ct_keeps_its_values(tmp_path, offset, exact):
    image, _ = organ_phantom(3)
    nii = tmp_path / "ct.nii.gz"
    nib.Nifti1Image(image.astype(np.float32) + offset, AXIAL).to_filename(nii)
    project = Project.create(tmp_path / "proj", task="organs")
    project.add_case("flt", [ImageRef(str(nii), "CT")])
    vol = project.load_image("flt")
    labels = (vol.array > np.median(vol.array)).astype(np.uint8)
    project.save_mask_version("flt", labels, kind="corrected", annotator="a")
    result = export_project(project, "dicom-seg", tmp_path / "seg", status="corrected")
    project.close()
    files = sorted((result.root / "flt" / "image").glob("*.dcm"))
    got = np.stack([_hu(f) for f in files])
    want = vol.array.astype(np.float64)
    assert got.shape == want.shape  # the same voxels, maybe in another slice order
    got, want = np.sort(got.ravel()), np.sort(want.ravel())
    np.testing.assert_allclose(got, want, atol=0.02)
    if exact:
        np.testing.assert_array_equal(got, want)


def test_voxels_that_are_not_numbers_are_written_as_air(tmp_path):
    # One NaN made the rescale NaN: every pixel of the written CT was stored as 0.
    image, _ = organ_phantom(3)
    data = image.astype(np.float32)
    data[0, 0, 0] = np.nan
    data[0, 1, 0] = np.inf
    nii = tmp_path / "ct.nii.gz"
    nib.Nifti1Image(data, AXIAL).to_filename(nii)
    project = Project.create(tmp_path / "proj", task="organs")
    project.add_case("nan", [ImageRef(str(nii), "CT")])
    vol = project.load_image("nan")
    labels = (np.nan_to_num(vol.array) > 0).astype(np.uint8)
    project.save_mask_version("nan", labels, kind="corrected", annotator="a")
    result = export_project(project, "dicom-seg", tmp_path / "seg", status="corrected")
    project.close()
    files = sorted((result.root / "nan" / "image").glob("*.dcm"))
    got = np.sort(np.stack([_hu(f) for f in files]).ravel())
    want = np.sort(np.where(np.isfinite(vol.array), vol.array, -1024.0).ravel())
    np.testing.assert_array_equal(got, want)


def test_the_dicom_writer_refuses_voxels_that_are_not_numbers(tmp_path):
    from napari_atlas_annotate.io.dicom_writer import write_dicom_series
    from napari_atlas_annotate.volume import Volume

    data = np.zeros((2, 4, 4), np.float32)
    data[1, 2, 2] = np.nan
    axial = np.eye(4)  # (z, y, x) -> RAS: z to the head, y to the back, x to the left
    axial[:3, :3] = [[0, 0, -1], [0, -1, 0], [1, 0, 0]]
    volume = Volume(data, axial)
    write_dicom_series(Volume(np.zeros_like(data), volume.affine), tmp_path / "ok")
    with pytest.raises(ValueError, match="not numbers"):
        write_dicom_series(volume, tmp_path / "s")
