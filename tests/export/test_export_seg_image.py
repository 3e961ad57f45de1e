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
