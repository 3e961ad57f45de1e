"""Bad DICOM input: each case fails (or warns) naming the file, the problem and a fix."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    BasicTextSRStorage,
    ExplicitVRLittleEndian,
    SegmentationStorage,
    generate_uid,
)

from napari_atlas_annotate.io import VolumeLoadError, VolumeLoadWarning, load_volume
from napari_atlas_annotate.io.dicom import load_dicom_study
from napari_atlas_annotate.io.dicom_writer import write_dicom_series
from napari_atlas_annotate.volume import Volume

DZ = 2.0  # slice spacing of the base series (mm), axial: position z = -50 + 2 k


@pytest.fixture
def series(tmp_path):
    """An 8-slice axial CT series; returns its file paths in z order."""
    data = np.random.default_rng(0).integers(-200, 200, (8, 6, 5)).astype(np.int16)
    affine = np.array([[0, 0, -0.8, 30], [0, -0.9, 0, 40], [DZ, 0, 0, -50], [0, 0, 0, 1.0]])
    return write_dicom_series(Volume(data, affine, "CT"), tmp_path / "ct", uid_seed="bad")


def _edit(path, **attrs) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    ds.save_as(path)


def _z(path) -> float:
    return float(pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient[2])


def _move_z(path, dz: float) -> None:
    ds = pydicom.dcmread(path)
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [x, y, z + dz]
    ds.save_as(path)


def test_missing_slice_names_the_gap_and_its_neighbours(series):
    series[4].unlink()
    with pytest.raises(VolumeLoadError) as err:
        load_volume(series[0].parent)
    text = str(err.value)
    assert "1 slice(s) missing" in text
    assert series[3].name in text and series[5].name in text
    assert f"{_z(series[3]):.3f}" in text and f"{_z(series[5]):.3f}" in text
    assert "expected spacing 2.000 mm" in text
    assert "Re-export" in text


def test_two_missing_slices_are_counted(series):
    series[3].unlink()
    series[4].unlink()
    with pytest.raises(VolumeLoadError, match="2 slice\\(s\\) missing"):
        load_volume(series[0].parent)


def test_slightly_uneven_spacing_warns_and_loads(series):
    _move_z(series[4], 0.03 * DZ)  # steps 2.06 and 1.94: 3% off
    with pytest.warns(VolumeLoadWarning, match="uneven slice spacing") as rec:
        vol = load_volume(series[0].parent)
    assert series[4].name in str(rec[0].message) or series[3].name in str(rec[0].message)
    assert vol.spacing[0] == pytest.approx(DZ)
    assert vol.shape[0] == 8


def test_clearly_uneven_spacing_is_refused(series):
    _move_z(series[4], 0.2 * DZ)  # steps 2.4 and 1.6: 20% off, but no missing slice
    with pytest.raises(VolumeLoadError, match="uneven slice spacing.*Resample"):
        load_volume(series[0].parent)


def test_gantry_tilt_is_refused_with_dcm2niix_hint(series):
    shift = np.tan(np.radians(12)) * DZ  # positions drift along y as z increases
    for k, path in enumerate(series):
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + k * shift, z]
        ds.save_as(path)
    with pytest.raises(VolumeLoadError) as err:
        load_volume(series[0].parent)
    text = str(err.value)
    assert "gantry tilt of about 12.00 degrees" in text
    assert "dcm2niix" in text


def test_mixed_image_sizes_name_the_odd_file(series):
    ds = pydicom.dcmread(series[2])
    ds.Rows, ds.Columns = 4, 4
    ds.PixelData = np.zeros((4, 4), np.int16).tobytes()
    ds.save_as(series[2])
    with pytest.raises(VolumeLoadError) as err:
        load_volume(series[0].parent)
    text = str(err.value)
    assert "mixes image sizes" in text and series[2].name in text and "4x4" in text
    assert series[3].name not in text


def test_mixed_orientation_names_the_localizer(series):
    _edit(series[6], ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    with pytest.raises(VolumeLoadError) as err:
        load_volume(series[0].parent)
    text = str(err.value)
    assert "mixes image orientations" in text and series[6].name in text
    assert "localizer" in text
    assert series[5].name not in text


def test_duplicate_positions_are_refused(series):
    ds = pydicom.dcmread(series[5])
    ds.SOPInstanceUID = generate_uid()  # a second image at the same place (e.g. an echo)
    ds.save_as(series[0].parent / "echo2.dcm")
    with pytest.raises(VolumeLoadError) as err:
        load_volume(series[0].parent)
    text = str(err.value)
    assert "sharing a slice position" in text
    assert "echo2.dcm" in text and series[5].name in text
    assert "EchoTime" in text


def _non_image(path, modality: str, sop_class: str, **attrs) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID = modality, generate_uid()
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)


def test_segmentation_only_says_load_the_referenced_image(series, tmp_path):
    ref = Dataset()
    ref.SeriesInstanceUID = "1.2.3.999"
    seg = series[0]
    _edit(
        seg,
        Modality="SEG",
        SOPClassUID=SegmentationStorage,
        ReferencedSeriesSequence=Sequence([ref]),
    )
    folder = tmp_path / "seg_only"
    folder.mkdir()
    shutil.move(seg, folder / "seg.dcm")
    with pytest.raises(VolumeLoadError) as err:
        load_volume(folder)
    text = str(err.value)
    assert "is a DICOM Segmentation, not an image" in text
    assert "1.2.3.999" in text
    assert "Load the image series it references" in text


def test_rtstruct_file_is_not_an_image():
    with pytest.raises(VolumeLoadError, match="RT Structure Set, not an image"):
        load_volume(get_testdata_file("rtstruct.dcm"))


def test_structured_report_folder_is_not_an_image(tmp_path):
    _non_image(tmp_path / "report.dcm", "SR", BasicTextSRStorage)
    with pytest.raises(VolumeLoadError, match="Structured Report, not an image"):
        load_volume(tmp_path)
    with pytest.raises(VolumeLoadError, match="Structured Report"):
        load_dicom_study(tmp_path)


def test_selecting_a_non_image_series_is_refused(series, tmp_path):
    _non_image(
        series[0].parent / "report.dcm", "SR", BasicTextSRStorage, SeriesDescription="Dose report"
    )
    with pytest.raises(VolumeLoadError, match="Structured Report"):
        load_volume(series[0].parent, series="Dose report")


def test_truncated_pixel_data_names_the_file(series):
    data = series[3].read_bytes()
    series[3].write_bytes(data[:-20])
    with pytest.raises(VolumeLoadError) as err:
        load_volume(series[0].parent)
    text = str(err.value)
    assert text.startswith(str(series[3]))
    assert "truncated" in text


def test_truncated_compressed_file_is_refused():
    path = get_testdata_file("emri_small_jpeg_2k_lossless_too_short.dcm")
    if path is None:
        pytest.skip("pydicom-data not installed")
    with pytest.warns(UserWarning), pytest.raises(VolumeLoadError, match="truncated"):
        load_volume(path)


def test_file_cut_inside_its_header_is_named(series):
    series[5].write_bytes(series[5].read_bytes()[:700])
    with pytest.warns(VolumeLoadWarning, match=f"incomplete header.*{series[5].name}"):
        with pytest.raises(VolumeLoadError, match="1 slice\\(s\\) missing"):
            load_volume(series[0].parent)
    with pytest.raises(VolumeLoadError, match="incomplete header.*truncated"):
        load_volume(series[5])


def test_file_cut_before_its_pixel_data_is_named(series):
    data = series[2].read_bytes()
    series[2].write_bytes(data[: data.rindex(b"\xe0\x7f\x10\x00")])  # drop (7FE0,0010)
    with pytest.raises(VolumeLoadError) as err:
        load_volume(series[0].parent)
    assert str(err.value).startswith(f"{series[2]}: has no pixel data")


def test_non_dicom_file_given_directly(tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_bytes(b"this is a JPEG screenshot, honest" * 10)
    with pytest.raises(VolumeLoadError, match="scan.dcm: is not a DICOM file"):
        load_volume(path)


def test_folder_without_dicom_names_the_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.bin").write_bytes(b"\x00" * 300)
    with pytest.raises(VolumeLoadError) as err:
        load_volume(tmp_path)
    text = str(err.value)
    assert text.startswith(str(tmp_path))
    assert "holds no DICOM files (2 file(s) looked at" in text


def test_empty_folder(tmp_path):
    (tmp_path / "empty_sub").mkdir()
    with pytest.raises(VolumeLoadError, match="is an empty folder"):
        load_volume(tmp_path)


def test_missing_path():
    with pytest.raises(VolumeLoadError, match="does not exist"):
        load_volume("/no/such/place/ct")


def test_colour_image_is_refused():
    path = get_testdata_file("SC_rgb.dcm")
    if path is None:
        pytest.skip("pydicom-data not installed")
    with pytest.raises(VolumeLoadError, match="colour images"):
        load_volume(path)


def test_images_with_and_without_geometry_mixed(series):
    ds = pydicom.dcmread(series[2])
    del ds.ImagePositionPatient
    del ds.ImageOrientationPatient
    ds.save_as(series[2])
    with pytest.raises(VolumeLoadError, match=f"{series[2].name} lack ImagePositionPatient"):
        load_volume(series[0].parent)


def test_malformed_position_is_refused(series):
    _edit(series[1], ImagePositionPatient=[1.0, 2.0])
    with pytest.raises(VolumeLoadError, match="malformed ImagePositionPatient"):
        load_volume(series[0].parent)


def test_study_can_skip_a_broken_series(series, tmp_path):
    axial = np.array([[0, 0, -1, 0], [0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1.0]])
    good = Volume(np.ones((3, 4, 4), np.int16), axial, "CT")
    write_dicom_series(good, tmp_path / "good", series_description="Good", series_number=1)
    series[4].unlink()  # the base series (number 1 too, no description) now has a gap
    with pytest.raises(VolumeLoadError, match="missing"):
        load_dicom_study(tmp_path)
    with pytest.warns(VolumeLoadWarning, match="missing"):
        study = load_dicom_study(tmp_path, skip_unreadable=True)
    assert list(study.series) == ["Good"]


def test_siemens_mosaic_is_refused_with_dcm2niix_hint():
    import os

    from nibabel.testing import data_path

    with pytest.raises(VolumeLoadError, match="Siemens mosaic.*dcm2niix"):
        load_volume(os.path.join(data_path, "0.dcm"))


def test_gap_in_a_short_series_is_found(series):
    for path in series[4:]:
        path.unlink()
    series[1].unlink()  # slices 0, 2, 3 left: steps 4 and 2 mm
    with pytest.raises(VolumeLoadError, match="1 slice\\(s\\) missing.*expected spacing 2.000"):
        load_volume(series[0].parent)
