"""DICOM SEG export on source series whose headers leave out type 2 attributes (written by
scripts and some converters): highdicom reads them from the source image, and the export
ended in a traceback (``AttributeError: ... PatientBirthDate``)."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.export import export_project
from napari_atlas_annotate.io.dicom_writer import write_dicom_series
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.volume import Volume

from .conftest import AXIAL, organ_phantom

LEFT_OUT = ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "SliceThickness")


@pytest.mark.parametrize("keep_identifiers", [False, True])
def test_seg_of_a_series_without_type2_attributes(tmp_path, keep_identifiers):
    image, labels = organ_phantom(4)
    files = write_dicom_series(Volume(image, AXIAL, "CT"), tmp_path / "ct", uid_seed="t2")
    for path in files:
        ds = pydicom.dcmread(path)
        for keyword in LEFT_OUT:
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(path, enforce_file_format=True)
    project = Project.create(tmp_path / "proj", task="organs")
    project.add_case("c", [ImageRef(str(tmp_path / "ct"), "CT")])
    project.save_mask_version("c", labels, kind="corrected", annotator="a")
    result = export_project(
        project,
        "dicom-seg",
        tmp_path / "out",
        status="corrected",
        keep_identifiers=keep_identifiers,
    )
    project.close()
    (seg_path,) = (result.root / "c").glob("*.dcm")
    seg = hd.seg.segread(seg_path)
    assert seg.PatientBirthDate == "" and seg.StudyDate == ""  # empty, as type 2 allows
    thickness = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SliceThickness
    assert float(thickness) == pytest.approx(2.5)  # the slices' spacing (AXIAL's z step)
    uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
    got = seg.get_pixels_by_source_instance(uids, combine_segments=True)
    np.testing.assert_array_equal(got, labels)
