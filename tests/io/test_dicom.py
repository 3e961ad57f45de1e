"""DICOM reading: real files shipped with pydicom / pydicom-data, series selection, studies."""

from __future__ import annotations

import dataclasses
import shutil
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, SegmentationStorage

from napari_atlas_annotate.io import (
    VolumeLoadError,
    VolumeLoadWarning,
    list_series,
    load_study,
    load_volume,
)
from napari_atlas_annotate.io.dicom import load_dicom
from napari_atlas_annotate.io.dicom_writer import write_dicom_series
from napari_atlas_annotate.volume import Volume


def _testdata(name: str) -> str:
    path = get_testdata_file(name)
    if path is None:  # pydicom-data files are only there when the package is installed
        pytest.skip(f"{name} is not available offline (pydicom-data not installed)")
    return path


def _rescaled(ds: Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))


def _small_volume(seed: int, shape=(4, 5, 6), modality="CT") -> Volume:
    data = np.random.default_rng(seed).integers(-500, 500, shape).astype(np.int16)
    affine = np.array([[0, 0, -0.7, 30], [0, -0.7, 0, 40], [2.0, 0, 0, -50], [0, 0, 0, 1.0]])
    return Volume(data, affine, modality)


# --- real files -------------------------------------------------------------------------


def test_ct_small_values_and_affine_from_header():
    path = _testdata("CT_small.dcm")
    ds = pydicom.dcmread(path)
    vol = load_dicom(path)
    assert vol.shape == (1, ds.Rows, ds.Columns)
    assert vol.modality == "CT"
    assert vol.array.dtype == np.int16  # integer rescale to HU stays exact in int16
    np.testing.assert_array_equal(vol.array[0], _rescaled(ds))

    # Independent derivation from the header: x along the row cosine with PixelSpacing[1],
    # y along the column cosine with PixelSpacing[0], origin at IPP; LPS -> RAS.
    iop = np.array(ds.ImageOrientationPatient, float)
    ipp = np.array(ds.ImagePositionPatient, float)
    dy, dx = (float(v) for v in ds.PixelSpacing)
    flip = np.array([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(vol.affine[:3, 2], flip * iop[:3] * dx)
    np.testing.assert_allclose(vol.affine[:3, 1], flip * iop[3:] * dy)
    np.testing.assert_allclose(vol.affine[:3, 3], flip * ipp)
    np.testing.assert_allclose(vol.affine[:3, 0], [0, 0, float(ds.SliceThickness)])

    meta = vol.metadata
    assert meta["series_uid"] == ds.SeriesInstanceUID
    assert meta["sop_instance_uids"] == [ds.SOPInstanceUID]
    assert meta["study_uid"] == ds.StudyInstanceUID
    assert meta["patient_name"] == str(ds.PatientName)
    assert isinstance(meta["patient_name"], str)
    assert meta["transfer_syntax"] == ds.file_meta.TransferSyntaxUID
    assert meta["files"] == [str(path)]


def test_mr_small_keeps_its_integer_type():
    path = _testdata("MR_small.dcm")
    ds = pydicom.dcmread(path)
    vol = load_dicom(path)
    assert vol.modality == "MR"
    assert vol.array.dtype == ds.pixel_array.dtype
    np.testing.assert_array_equal(vol.array[0], ds.pixel_array)


def test_jpeg2000_ct_decodes_to_pydicom_values():
    path = _testdata("693_J2KI.dcm")
    ds = pydicom.dcmread(path)
    assert "JPEG 2000" in ds.file_meta.TransferSyntaxUID.name
    vol = load_dicom(path)
    np.testing.assert_array_equal(vol.array[0], _rescaled(ds))
    assert vol.metadata["series_description"] == ds.SeriesDescription


def test_rle_matches_uncompressed_original():
    rle = load_dicom(_testdata("MR_small_RLE.dcm"))
    plain = load_dicom(_testdata("MR_small.dcm"))
    assert "RLE" in pydicom.uid.UID(rle.metadata["transfer_syntax"]).name
    np.testing.assert_array_equal(rle.array, plain.array)
    np.testing.assert_allclose(rle.affine, plain.affine)


def test_deflated_secondary_capture_without_geometry_loads_with_warning():
    path = _testdata("image_dfl.dcm")
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    with pytest.warns(VolumeLoadWarning, match="placeholder"):
        vol = load_dicom(path)
    np.testing.assert_array_equal(vol.array[0], ds.pixel_array)
    assert vol.metadata["placeholder_geometry"] is True


def test_deflated_series_loads_like_the_original(tmp_path):
    truth = _small_volume(1)
    paths = write_dicom_series(truth, tmp_path, uid_seed="dfl")
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
    load_ready = load_dicom(tmp_path)
    assert load_ready.metadata["transfer_syntax"] == DeflatedExplicitVRLittleEndian
    np.testing.assert_array_equal(load_ready.array, truth.array)
    np.testing.assert_allclose(load_ready.affine, truth.affine, atol=1e-4)


def test_enhanced_ct_multiframe_sorted_by_position_with_functional_groups():
    path = _testdata("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    frames = ds.PerFrameFunctionalGroupsSequence
    z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in frames]
    assert z == [-159.0, -149.0]  # IOP row (-1,0,0) x col (0,1,0) -> normal -S: frame 2 first
    vol = load_dicom(path)
    assert vol.shape == (2, 512, 512)
    transform = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    expected = ds.pixel_array * float(transform.RescaleSlope) + float(transform.RescaleIntercept)
    np.testing.assert_array_equal(vol.array, expected[::-1])
    # Affine derived by hand: row (-1,0,0) LPS = +R, col (0,1,0) LPS = -A, normal -S.
    ps = 0.388672
    expected_affine = np.array(
        [[0, 0, ps, -99.5], [0, -ps, 0, 301.5], [-10.0, 0, 0, -149.0], [0, 0, 0, 1]]
    )
    np.testing.assert_allclose(vol.affine, expected_affine, atol=1e-6)
    assert vol.orientation == ("I", "P", "R")
    assert vol.metadata["frame_numbers"] == [2, 1]


def test_enhanced_per_frame_rescale_is_applied_per_frame(tmp_path):
    ds = pydicom.dcmread(_testdata("eCT_Supplemental.dcm"))
    for frame, (slope, intercept) in zip(
        ds.PerFrameFunctionalGroupsSequence, [(2, -1000), (1, -1024)], strict=True
    ):
        item = Dataset()
        item.RescaleSlope, item.RescaleIntercept, item.RescaleType = slope, intercept, "HU"
        frame.PixelValueTransformationSequence = Sequence([item])
    path = tmp_path / "ect.dcm"
    ds.save_as(path)
    vol = load_dicom(path)
    raw = ds.pixel_array.astype(np.int64)
    np.testing.assert_array_equal(vol.array[1], raw[0] * 2 - 1000)  # frame 1 is at z index 1
    np.testing.assert_array_equal(vol.array[0], raw[1] - 1024)


def test_enhanced_mr_without_geometry_loads_with_warning():
    path = _testdata("emri_small.dcm")
    ds = pydicom.dcmread(path)
    with pytest.warns(VolumeLoadWarning, match="ImagePositionPatient"):
        vol = load_dicom(path)
    assert vol.shape == (10, 64, 64)
    np.testing.assert_array_equal(vol.array, ds.pixel_array)
    assert vol.array.dtype == np.uint16
    assert vol.spacing[0] == pytest.approx(float(ds.SpacingBetweenSlices))


def test_enhanced_mr_jpeg2000_lossless_equals_uncompressed():
    with pytest.warns(VolumeLoadWarning):
        j2k = load_dicom(_testdata("emri_small_jpeg_2k_lossless.dcm"))
    with pytest.warns(VolumeLoadWarning):
        plain = load_dicom(_testdata("emri_small.dcm"))
    np.testing.assert_array_equal(j2k.array, plain.array)


# --- series selection, listing, studies -------------------------------------------------


@pytest.fixture
def two_series(tmp_path):
    root = tmp_path / "study"
    t1 = _small_volume(1, modality="MR")
    t2 = _small_volume(2, shape=(3, 5, 6), modality="MR")
    write_dicom_series(
        t2,
        root / "b",
        series_description="Axial T2",
        series_number=7,
        uid_seed="s",
        study_uid="1.2.3.4",
    )
    write_dicom_series(
        t1,
        root / "a",
        series_description="Sagittal T1",
        series_number=2,
        uid_seed="s",
        study_uid="1.2.3.4",
    )
    return root, {"Sagittal T1": t1, "Axial T2": t2}


def test_list_series_reports_each_series(two_series):
    root, truths = two_series
    found = list_series(root)
    assert [s.description for s in found] == ["Sagittal T1", "Axial T2"]  # by SeriesNumber
    assert [s.series_number for s in found] == [2, 7]
    assert [s.n_frames for s in found] == [4, 3]
    assert [s.n_files for s in found] == [4, 3]
    assert all(s.modality == "MR" and s.is_image for s in found)
    assert (found[0].rows, found[0].columns) == (5, 6)
    assert all(p.parent.name == "a" for p in found[0].files)


def test_multi_series_folder_needs_a_choice(two_series):
    root, _ = two_series
    with pytest.raises(VolumeLoadError) as err:
        load_volume(root)
    text = str(err.value)
    assert "2 image series" in text and "Sagittal T1" in text and "Axial T2" in text
    assert "--series" in text and "series=" in text
    for info in list_series(root):
        assert info.series_uid in text


@pytest.mark.parametrize("how", ["description", "number", "uid"])
def test_series_selection(two_series, how):
    root, truths = two_series
    info = next(s for s in list_series(root) if s.description == "Axial T2")
    selector = {"description": "Axial T2", "number": "7", "uid": info.series_uid}[how]
    vol = load_volume(root, series=selector)
    np.testing.assert_array_equal(vol.array, truths["Axial T2"].array)
    assert vol.metadata["series_number"] == 7


def test_unknown_series_lists_what_exists(two_series):
    root, _ = two_series
    with pytest.raises(VolumeLoadError, match="(?s)no series matching 'Coronal'.*Sagittal T1"):
        load_volume(root, series="Coronal")


def test_study_keys_ordered_by_series_number_and_disambiguated(two_series):
    root, truths = two_series
    write_dicom_series(
        _small_volume(3, modality="MR"),
        root / "c",
        series_description="Sagittal T1",
        series_number=9,
        uid_seed="c",
    )
    seg = pydicom.dcmread(next((root / "a").iterdir()))
    seg.Modality, seg.SOPClassUID = "SEG", SegmentationStorage
    seg.SeriesInstanceUID = pydicom.uid.generate_uid()
    seg.save_as(root / "seg.dcm")

    study = load_study(root)
    assert list(study.series) == ["Sagittal T1", "Axial T2", "Sagittal T1 (9)"]
    np.testing.assert_array_equal(study["Axial T2"].array, truths["Axial T2"].array)
    assert study.metadata["study_uid"] == "1.2.3.4"
    with pytest.raises(KeyError, match="Coronal"):
        study["Coronal"]


def test_non_dicom_file_in_a_dicom_folder_is_skipped_with_warning(tmp_path):
    truth = _small_volume(4)
    write_dicom_series(truth, tmp_path, uid_seed="notes")
    (tmp_path / "notes.txt").write_text("scanned on Tuesday")
    with pytest.warns(VolumeLoadWarning, match="notes.txt"):
        vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.array, truth.array)


def test_image_plus_segmentation_loads_the_image(tmp_path):
    truth = _small_volume(5)
    paths = write_dicom_series(truth, tmp_path / "ct", uid_seed="img")
    seg = pydicom.dcmread(paths[0])
    seg.Modality, seg.SOPClassUID = "SEG", SegmentationStorage
    seg.SeriesInstanceUID = pydicom.uid.generate_uid()
    seg.save_as(tmp_path / "seg.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.array, truth.array)
    assert any(not s.is_image for s in list_series(tmp_path))


def test_exact_copies_of_an_instance_are_read_once(tmp_path):
    truth = _small_volume(6)
    paths = write_dicom_series(truth, tmp_path / "a", uid_seed="copy")
    shutil.copy(paths[1], tmp_path / "copy_of_slice2.dcm")
    with pytest.warns(VolumeLoadWarning, match="same SOPInstanceUID"):
        vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.array, truth.array)


def test_fractional_rescale_gives_float32(tmp_path):
    values = np.linspace(0.5, 99.5, 4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    truth = _small_volume(0).with_array(values)
    write_dicom_series(truth, tmp_path, uid_seed="float")
    vol = load_volume(tmp_path)
    assert vol.array.dtype == np.float32
    np.testing.assert_allclose(vol.array, truth.array, atol=0.01)


def test_integer_rescale_beyond_int16_widens_exactly(tmp_path):
    truth = _small_volume(8)
    paths = write_dicom_series(truth, tmp_path, uid_seed="wide")
    ds = pydicom.dcmread(paths[2])
    ds.RescaleIntercept = "32600"  # stored values up to ~500 + 32600 > 32767
    ds.save_as(paths[2])
    vol = load_volume(tmp_path)
    assert vol.array.dtype == np.float32
    expected = truth.array.astype(np.float32)
    expected[2] += 32600
    assert expected.max() > 32767
    np.testing.assert_array_equal(vol.array, expected)


def _item(**values) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


# the folder is messy on purpose (a stray text file, a repeated instance, a hand-made SEG):
# the scans' warnings are compared inside; loading the series warns of the same again
@pytest.mark.filterwarnings("ignore:.*skipped 1 file:UserWarning")
@pytest.mark.filterwarnings("ignore:Expected implicit VR:UserWarning")
def test_a_scan_without_headers_finds_the_same_series(two_series):
    """``headers=False`` keeps what groups files into series and what a SEG references,
    not the headers: the series, their order and the warnings are those of a full scan,
    and :func:`with_headers` reads each series' headers again, loading as a full scan's."""
    from napari_atlas_annotate.io.dicom import plan_series
    from napari_atlas_annotate.io.dicom_scan import scan_dicom, with_headers

    root, truths = two_series
    a, b = (sorted((root / name).iterdir()) for name in ("a", "b"))
    shutil.copy(a[1], root / "copy_of_a1.dcm")  # a repeated instance, warned of
    (root / "notes.txt").write_text("not DICOM")
    seg = pydicom.dcmread(a[0])
    seg.Modality, seg.SOPClassUID = "SEG", SegmentationStorage
    seg.SeriesInstanceUID, seg.SOPInstanceUID = pydicom.uid.generate_uid(), "1.2.3.99"
    seg.ReferencedSeriesSequence = Sequence([_item(SeriesInstanceUID=seg.StudyInstanceUID)])
    source = _item(ReferencedSOPInstanceUID=pydicom.dcmread(b[0]).SOPInstanceUID)
    derivation = _item(SourceImageSequence=Sequence([source]))
    frame = _item(DerivationImageSequence=Sequence([derivation]))
    seg.PerFrameFunctionalGroupsSequence = Sequence([frame, frame])
    (root / "seg").mkdir()
    seg.save_as(root / "seg" / "seg.dcm")

    with warnings.catch_warnings(record=True) as full_warnings:
        warnings.simplefilter("always")
        full = list_series(root)
    with warnings.catch_warnings(record=True) as brief_warnings:
        warnings.simplefilter("always")
        brief = scan_dicom(root, headers=False)
    assert [str(w.message) for w in brief_warnings] == [str(w.message) for w in full_warnings]
    ours = [str(w.message) for w in full_warnings if issubclass(w.category, VolumeLoadWarning)]
    assert len(ours) == 2 and "notes.txt" in ours[0] and "same SOPInstanceUID" in ours[1]
    assert brief == full and [s.to_dict() for s in brief] == [s.to_dict() for s in full]
    for lite, whole in zip(brief, full, strict=True):
        assert lite.study_uid == whole.study_uid == "1.2.3.4"
        assert lite.instance_uids == [str(ds.SOPInstanceUID) for ds in whole.headers]
        assert whole.headers_read and not lite.headers_read
    images = [s for s in brief if s.is_image]
    [seg_info] = [s for s in brief if not s.is_image]
    assert [s.headers for s in brief] == [[], [], []]  # no header kept
    assert [s.references for s in images] == [[], []]
    [refs] = seg_info.references  # what the SEG references, once each
    assert refs.series == ("1.2.3.4",)
    assert refs.instances == (str(source.ReferencedSOPInstanceUID),)

    axial = next(s for s in brief if s.description == "Axial T2")
    again = with_headers(axial)
    whole = next(s for s in full if s.description == "Axial T2")
    assert again.headers_read and again.headers == whole.headers
    assert with_headers(whole) is whole
    volume = plan_series(axial, root).read()  # headers read again as it is planned
    np.testing.assert_array_equal(volume.array, truths["Axial T2"].array)
    assert volume.metadata == load_volume(root, series="Axial T2").metadata


def test_a_scan_without_headers_holds_paths_as_text_in_path_order(two_series):
    """A series spread over folders whose names sort otherwise as text than as paths
    (``-`` and ``.`` sort before ``/``) lists its files in the same order whether the scan
    keeps headers or not; without, they are held as text and read as paths."""
    from napari_atlas_annotate.io.dicom_scan import (
        SeriesFiles,
        file_strings,
        scan_dicom,
        with_headers,
    )

    root, _ = two_series
    files = sorted((root / "a").iterdir())
    for file, folder in zip(files, ["a", "a-1", "a.x", "a/b"], strict=False):
        (root / folder).mkdir(exist_ok=True)
        file.rename(root / folder / file.name)
    full = list_series(root)
    brief = scan_dicom(root, headers=False)
    assert brief == full
    sagittal, whole = brief[0], full[0]
    assert isinstance(sagittal.files, SeriesFiles) and isinstance(whole.files, list)
    assert list(sagittal.files) == whole.files == sorted(whole.files)
    assert [p.parent.name for p in sagittal.files] == ["a", "b", "a-1", "a.x"]
    assert sagittal.files[1:3] == whole.files[1:3] and sagittal.files[-1] == whole.files[-1]
    assert (
        file_strings(sagittal.files) == file_strings(whole.files) == [str(p) for p in whole.files]
    )
    assert repr(sagittal.files) == repr(whole.files)
    again = with_headers(sagittal)
    assert isinstance(again.files, list) and again.files == whole.files
    single = scan_dicom(whole.files[0], headers=False)[0].files
    assert list(single) == [whole.files[0]]
    for like in (brief[1].files, single, SeriesFiles([])):  # names shared where the same
        assert SeriesFiles(file_strings(whole.files), like) == whole.files


def test_headers_read_again_must_be_the_files_scanned(two_series):
    from napari_atlas_annotate.io.dicom import plan_series
    from napari_atlas_annotate.io.dicom_scan import scan_dicom, with_headers

    root, _ = two_series
    axial = next(s for s in scan_dicom(root, headers=False) if s.description == "Axial T2")
    changed = axial.files[1]
    ds = pydicom.dcmread(changed)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()  # another image under the same name
    ds.save_as(changed)
    for read in (with_headers, lambda info: plan_series(info, root)):
        with pytest.raises(VolumeLoadError, match="scanned") as err:
            read(axial)
        assert str(changed) in str(err.value)


@pytest.mark.parametrize("plugin_there", [True, False])
def test_jpeg_ls_series_equals_uncompressed_with_either_decoder(
    tmp_path, monkeypatch, plugin_there
):
    # JPEG-LS (common in PACS exports) is decoded by CharLS (pyjpegls) when installed,
    # about 3x faster than pydicom's first choice; without it, by pylibjpeg, the same voxels
    from pydicom.uid import JPEGLSLossless

    from napari_atlas_annotate.io import dicom_pixels

    truth = _small_volume(3, shape=(5, 16, 12))
    plain = tmp_path / "plain"
    paths = write_dicom_series(truth, plain, uid_seed="jls")
    packed = tmp_path / "jpeg_ls"
    packed.mkdir()
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.compress(JPEGLSLossless)
        ds.save_as(packed / path.name)
    used = []
    choose = dicom_pixels.faster_plugin
    monkeypatch.setattr(
        dicom_pixels,
        "faster_plugin",
        lambda syntax: used.append(choose(syntax) if plugin_there else "") or used[-1],
    )
    vol = load_dicom(packed)
    assert used and set(used) == ({"pyjpegls"} if plugin_there else {""})
    np.testing.assert_array_equal(vol.array, load_dicom(plain).array)
    np.testing.assert_allclose(vol.affine, truth.affine, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Expected implicit VR:UserWarning")  # notes.txt, forced
def test_a_datasets_csv_tables_beside_its_series_are_passed_over_silently(two_series):
    # an RSNA dataset root holds train.csv and the series CSV beside train_images/: adding
    # it warned "skipped 3 file(s) that are not DICOM: train.csv, ..." on every add
    root, _ = two_series
    (root / "train.csv").write_text("study_id,spinal_canal_stenosis_l1_l2\n1,Normal/Mild\n")
    (root / "Train_Series_Descriptions.CSV").write_text("study_id,series_id\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = list_series(root)
    assert len(series) == 2 and [str(w.message) for w in caught] == []
    (root / "notes.txt").write_text("not DICOM")  # anything else is still said
    with pytest.warns(VolumeLoadWarning, match="skipped 1 file.s. that are not DICOM: notes.txt"):
        list_series(root)


@pytest.mark.filterwarnings("ignore:Expected implicit VR:UserWarning")  # notes.txt, forced
def test_loading_a_series_does_not_warn_of_the_label_maps_beside_it(tmp_path):
    # an AbdomenAtlas-style case folder: the CT's slices and its labels side by side.
    # Adding the case lists the label maps with the command that imports them; loading
    # its image again (every open, every import of those very labels) warned "skipped 3
    # file(s) that are not DICOM: combined_labels.nii.gz, ..." each time.
    case = tmp_path / "BDMAP_0001"
    truth = _small_volume(3)
    write_dicom_series(truth, case, uid_seed="bd")
    (case / "combined_labels.nii.gz").write_bytes(b"not read")
    (case / "segmentations").mkdir()
    (case / "segmentations" / "liver.nii.gz").write_bytes(b"not read")
    (case / "liver.seg.nrrd").write_bytes(b"not read")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vol = load_dicom(case)
    assert [str(w.message) for w in caught] == []
    np.testing.assert_array_equal(vol.array, load_dicom(case).array)
    # a scan for adding still says what it skipped, and other files are still warned of
    with pytest.warns(VolumeLoadWarning, match="skipped 3 file.s. that are not DICOM"):
        list_series(case)
    (case / "notes.txt").write_text("not DICOM")
    with pytest.warns(VolumeLoadWarning, match="skipped 1 file.s. that are not DICOM: notes.txt"):
        load_dicom(case)


def test_pixels_decoded_ahead_in_another_order_are_put_in_the_plans_order(tmp_path):
    from napari_atlas_annotate.io.dicom import plan_series, scan_dicom, select_series
    from napari_atlas_annotate.io.dicom_frames import frames_of_series
    from napari_atlas_annotate.io.dicom_pixels import read_pixels

    truth = _small_volume(7, shape=(5, 4, 3))
    write_dicom_series(truth, tmp_path, uid_seed="order")
    plan = plan_series(select_series(scan_dicom(tmp_path), tmp_path), tmp_path)
    shuffled = [plan.frames[i] for i in (3, 0, 4, 2, 1)]
    decoded = read_pixels(shuffled)
    volume = plan.read(decoded=(shuffled, decoded))
    np.testing.assert_array_equal(volume.array, truth.array)
    assert volume.array.flags.c_contiguous
    in_order = read_pixels(plan.frames)
    assert plan.read(decoded=(plan.frames, in_order)).array is in_order  # no copy
    # other images (fewer, or another file): decoded again, not taken
    info = select_series(scan_dicom(tmp_path), tmp_path)
    others = frames_of_series(info.headers, info.files)[:4]
    np.testing.assert_array_equal(
        plan.read(decoded=(others, read_pixels(others))).array, truth.array
    )
    wrong = np.zeros_like(in_order)
    moved = [*plan.frames[:4], dataclasses.replace(plan.frames[4], path=tmp_path / "x.dcm")]
    np.testing.assert_array_equal(plan.read(decoded=(moved, wrong)).array, truth.array)


def test_headers_read_ahead_are_reported_and_grouped_as_a_scan_does(tmp_path):
    from napari_atlas_annotate.io.dicom_scan import HeaderScan, candidate_files, scan_dicom

    truth = _small_volume(8)
    paths = write_dicom_series(truth, tmp_path, uid_seed="ahead")
    (tmp_path / "notes.txt").write_text("scanned on Tuesday")
    shutil.copy(paths[1], tmp_path / "copy_of_slice2.dcm")
    with warnings.catch_warnings(record=True) as reading:
        warnings.simplefilter("always")
        scan = HeaderScan().read(candidate_files(tmp_path))
        assert [s.n_frames for s in scan.series(warn=False)] == [4]
    assert reading == []  # reading, and grouping without warnings, warn of nothing
    with warnings.catch_warnings(record=True) as ahead:
        warnings.simplefilter("always")
        found = scan_dicom(tmp_path, read=scan)
    with warnings.catch_warnings(record=True) as fresh:
        warnings.simplefilter("always")
        expected = scan_dicom(tmp_path)
    assert [(w.category, str(w.message)) for w in ahead] == [
        (w.category, str(w.message)) for w in fresh
    ]
    assert len(ahead) == 2
    assert [(s.series_uid, s.files) for s in found] == [(s.series_uid, s.files) for s in expected]
