"""Paths -> cases: case id rules, image identity, modality and load checks, copies."""

import dataclasses
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.io import VolumeLoadWarning, load_volume
from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.project import ImageRef, Project, ProjectError, sources
from napari_atlas_annotate.project.image_identity import (
    FINGERPRINTS_NAME,
    ImageFingerprint,
    ProjectImages,
    ReferencedImages,
    header_fingerprints,
)
from napari_atlas_annotate.project.sources import (
    case_names,
    cases_from_path,
    check_case,
    check_modality,
    copied_case,
    copy_into_project,
    find_cases,
    read_manifest,
)

SMALL_CT = (16, 32, 32)


def _nifti(path: Path, shape=(4, 5, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).integers(-1000, 1000, shape, dtype=np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    return path


@pytest.fixture
def ct_dicom(tmp_path):
    """Two small CT phantoms as DICOM: ``data/ct/ct_00N/dicom/``; returns ``data``."""
    write_phantoms(tmp_path / "data", 2, 0, 0, "dicom", ct_shape=SMALL_CT)
    return tmp_path / "data"


# -- case ids ------------------------------------------------------------------------------
def test_distinct_file_names_keep_their_names(tmp_path):
    paths = [_nifti(tmp_path / f"ct{i}.nii.gz") for i in range(2)]
    assert case_names(paths) == ["ct0", "ct1"]
    assert [c.id for c in cases_from_path(paths[1], "organs")] == ["ct1"]


def test_generic_file_names_take_the_case_folder_name(tmp_path):
    # AbdomenAtlas and TotalSegmentator: <case>/ct.nii.gz; KiTS: <case>/imaging.nii.gz
    atlas = [_nifti(tmp_path / "AbdomenAtlas" / f"BDMAP_0000000{i}" / "ct.nii.gz") for i in (1, 2)]
    kits = _nifti(tmp_path / "kits" / "case_00007" / "imaging.nii.gz")
    assert case_names([*atlas, kits]) == ["BDMAP_00000001", "BDMAP_00000002", "case_00007"]
    # Given alone, a path gets the same id as in a batch.
    assert [c.id for c in cases_from_path(atlas[0], "organs")] == ["BDMAP_00000001"]


def test_phantom_layouts_are_named_after_the_case_folder(tmp_path, ct_dicom):
    write_phantoms(tmp_path / "data_nii", 2, 0, 0, "nifti", ct_shape=SMALL_CT)
    nifti = [tmp_path / "data_nii" / "ct" / f"ct_00{i}" / "ct.nii.gz" for i in range(2)]
    dicom = [ct_dicom / "ct" / f"ct_00{i}" / "dicom" for i in range(2)]
    assert case_names(nifti) == ["ct_000", "ct_001"]
    assert case_names(dicom) == ["ct_000", "ct_001"]
    [case] = cases_from_path(dicom[1], "organs")
    assert case.id == "ct_001" and case.images[0].path == str(dicom[1])


def test_clashing_names_walk_up_until_they_differ(tmp_path):
    paths = [
        _nifti(tmp_path / "site1" / "case01.nii.gz"),
        _nifti(tmp_path / "site2" / "case01.nii.gz"),
        _nifti(tmp_path / "site2" / "case02.nii.gz"),
    ]
    assert case_names(paths) == ["site1_case01", "site2_case01", "case02"]
    # Two generic files of one folder: the folder alone cannot tell them apart.
    both = [_nifti(tmp_path / "c1" / "ct.nii.gz"), _nifti(tmp_path / "c1" / "image.nii.gz")]
    assert case_names(both) == ["c1_ct", "c1_image"]


def test_the_same_file_given_twice_gets_one_id(tmp_path):
    path = _nifti(tmp_path / "a" / "scan7.nii.gz")
    other = _nifti(tmp_path / "b" / "scan7.nii.gz")
    again = tmp_path / "a" / ".." / "a" / "scan7.nii.gz"
    assert case_names([path, again]) == ["scan7", "scan7"]
    assert case_names([path, again, other]) == ["a_scan7", "a_scan7", "b_scan7"]


def test_ids_are_valid_case_ids(tmp_path):
    path = _nifti(tmp_path / "Patient 12 (arterial)" / "CT.nii.gz")
    assert case_names([path]) == ["Patient_12_arterial"]


# -- folders holding several cases ---------------------------------------------------------
def test_a_folder_of_series_folders_names_each_case_after_its_folder(ct_dicom):
    with pytest.warns(VolumeLoadWarning, match="not DICOM"):  # labels, manifest
        cases = cases_from_path(ct_dicom, "organs")
    series = [ct_dicom / "ct" / f"ct_00{i}" / "dicom" for i in range(2)]
    assert [c.id for c in cases] == ["ct_000", "ct_001"]  # as the manifest names them
    assert [c.images[0].path for c in cases] == [str(s) for s in series]
    assert [c.images[0].series for c in cases] == [None, None]  # each folder holds one
    check_case(cases[1], "organs")


def test_series_folders_of_folders_added_together_walk_up_until_they_differ(tmp_path):
    for site in ("site1", "site2"):
        write_phantoms(tmp_path / site, 2, 0, 0, "dicom", ct_shape=SMALL_CT)
    with pytest.warns(VolumeLoadWarning):
        found = find_cases([tmp_path / "site1", tmp_path / "site2"], "organs")
    assert [c.id for c in found.cases] == [
        "site1_ct_000",
        "site1_ct_001",
        "site2_ct_000",
        "site2_ct_001",
    ]


def test_series_sharing_a_folder_add_their_series_number(tmp_path):
    source = write_phantoms(tmp_path / "src", 3, 0, 0, "dicom", ct_shape=SMALL_CT).parent
    exam = tmp_path / "exam"
    shutil.copytree(source / "ct" / "ct_002" / "dicom", exam / "alone")
    (exam / "flat").mkdir()
    for number, case in ((2, "ct_000"), (3, "ct_001")):  # two series in one folder
        for file in sorted((source / "ct" / case / "dicom").iterdir()):
            ds = pydicom.dcmread(file)
            ds.SeriesNumber = number
            ds.save_as(exam / "flat" / f"{case}_{file.name}")
    cases = cases_from_path(exam, "organs")
    assert [c.id for c in cases] == ["alone", "flat_s2", "flat_s3"]
    alone, *flat = cases
    assert alone.images[0] == ImageRef(str(exam / "alone"), alone.images[0].description)
    # The flat folder's images name their series, so each loads on its own.
    assert [c.images[0].path for c in flat] == [str(exam / "flat")] * 2
    assert [c.images[0].series for c in flat] == [c.series_info[0].series_uid for c in flat]
    for case in flat:
        check_case(case, "organs")
    # --id names a folder holding several series: each keeps its series number.
    found = find_cases([exam / "flat"], "organs", "exam7")
    assert [c.id for c in found.cases] == ["exam7_s2", "exam7_s3"]


def _organ_summary(cases) -> list:
    return [(c.id, c.images, c.labels, c.source, c.series_info) for c in cases]


def test_an_organs_folder_gives_its_cases_one_by_one_reading_their_headers_then(tmp_path):
    """An organs folder is scanned keeping only what groups its files, not their headers:
    each case's headers are read as the case is given out (a change made to a later
    series' files in between shows in its headers), and the cases, warnings and files left
    out are those of a whole scan."""
    import warnings

    data = write_phantoms(tmp_path / "data", 3, 0, 0, "dicom", ct_shape=SMALL_CT).parent
    with warnings.catch_warnings(record=True) as whole_warnings:
        warnings.simplefilter("always")
        whole = cases_from_path(data, "organs")
    with warnings.catch_warnings(record=True) as lazy_warnings:
        warnings.simplefilter("always")
        found = find_cases([data], "organs", lazy=True)
        cases = iter(found.cases)
        lazy = [next(cases)]
    for file in sorted((data / "ct" / "ct_001" / "dicom").iterdir()):
        ds = pydicom.dcmread(file)
        ds.PatientName = "Renamed^After^Scan"
        ds.save_as(file)
    lazy += list(cases)
    assert _organ_summary(lazy) == _organ_summary(whole)
    assert [c.id for c in lazy] == ["ct_000", "ct_001", "ct_002"]
    # the same warnings, but for the label maps beside the series: add says how to import them
    [whole_warning] = [str(w.message) for w in whole_warnings]
    assert whole_warning.startswith(f"{data}: skipped 4 file(s) that are not DICOM: ")
    assert [str(w.message) for w in lazy_warnings] == [
        f"{data}: skipped 1 file(s) that are not DICOM: manifest.json."
    ]
    assert found.refused == [] and found.left_out == []
    assert found.label_maps == [
        (str(data / "ct" / f"ct_00{i}" / "combined_labels.nii.gz"), f"ct_00{i}") for i in range(3)
    ]
    for case in lazy:
        [info] = case.series_info
        assert info.headers_read and len(info.headers) == len(info.files)
        assert [str(ds.SOPInstanceUID) for ds in info.headers] == info.instance_uids
    names = [str(c.series_info[0].headers[0].PatientName) for c in lazy]
    assert names == ["ct_000", "Renamed^After^Scan", "ct_002"]  # read when given out
    check_case(lazy[1], "organs")


def test_an_organs_file_replaced_after_the_scan_is_reported_by_the_check(tmp_path):
    """A file replaced by another image between the scan and its case's turn: the case is
    given out all the same and its check names the file and says what to do."""
    data = write_phantoms(tmp_path / "data", 2, 0, 0, "dicom", ct_shape=SMALL_CT).parent
    found = find_cases([data / "ct"], "organs", lazy=True)  # label maps: in found.label_maps
    cases = iter(found.cases)
    first = next(cases)
    replaced = sorted((data / "ct" / "ct_001" / "dicom").iterdir())[3]
    ds = pydicom.dcmread(replaced)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(replaced)
    [second] = list(cases)
    assert [first.id, second.id] == ["ct_000", "ct_001"]
    with pytest.raises(ProjectError, match="scanned") as err:
        check_case(second, "organs")
    assert str(replaced) in str(err.value) and "add the folder again" in str(err.value)


def test_a_series_spread_over_folders_is_one_case(tmp_path):
    """One series whose files lie in two folders (an export split at N files a folder) is
    one case, at the folder holding both, loading every slice."""
    source = write_phantoms(tmp_path / "src", 2, 0, 0, "dicom", ct_shape=SMALL_CT).parent
    data = tmp_path / "data"
    files = sorted((source / "ct" / "ct_000" / "dicom").iterdir())
    for k, file in enumerate(files):
        part = data / "BDMAP_00000001" / ("part1" if k < len(files) // 2 else "part2")
        part.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, part / file.name)
    shutil.copytree(source / "ct" / "ct_001" / "dicom", data / "BDMAP_00000002" / "ct")
    cases = cases_from_path(data, "organs")
    assert [c.id for c in cases] == ["BDMAP_00000001", "BDMAP_00000002"]
    split = cases[0]
    assert split.images[0].path == str(data / "BDMAP_00000001")
    assert split.images[0].series is None  # the folder holds that series only
    assert len(split.series_info[0].files) == len(files)
    found = find_cases([data], "organs", lazy=True)
    assert _organ_summary(found.cases) == _organ_summary(cases)
    check_case(split, "organs")
    volume = load_volume(split.images[0].path)
    np.testing.assert_array_equal(
        volume.array, load_volume(source / "ct" / "ct_000" / "dicom").array
    )


def test_a_folder_of_spine_studies_gives_one_case_per_study(spine_phantoms):
    manifest = spine_phantoms(0)
    train = manifest.parent / "spine" / "train_images"
    studies = sorted(train.iterdir())
    cases = cases_from_path(train, "spine")
    assert [c.id for c in cases] == [s.name for s in studies]
    assert sorted(c.id for c in cases_from_path(manifest, "spine")) == [s.name for s in studies]
    for case, study in zip(cases, studies, strict=True):
        assert [r.path for r in case.images] == [str(study)] * 3
        assert sorted(r.series for r in case.images) == sorted(
            pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).SeriesInstanceUID
            for folder in study.iterdir()
        )
    check_case(cases[0], "spine")
    found = find_cases([train], "spine", "batch")  # --id on a folder of studies: numbered
    assert [c.id for c in found.cases] == ["batch_1", "batch_2", "batch_3"]


def test_a_scanned_study_is_checked_without_reading_its_headers_again(spine_phantoms, monkeypatch):
    """A dataset folder's headers are read once, when its cases are found: checking each
    case loads its images from that scan (a real RSNA folder holds some 300,000 files)."""
    import napari_atlas_annotate.io.dicom as dicom

    train = spine_phantoms(0).parent / "spine" / "train_images"
    cases = cases_from_path(train, "spine")
    expected = [load_volume(r.path, r.series, r.stack) for r in cases[0].images]

    def no_scan(path):
        raise AssertionError(f"{path} scanned again")

    monkeypatch.setattr(dicom, "scan_dicom", no_scan)
    monkeypatch.setattr(dicom, "list_series", no_scan)
    prints = check_case(cases[0], "spine")
    assert [p.voxels for p in prints] == [ImageFingerprint.of_volume(v).voxels for v in expected]
    heads = header_fingerprints(cases[0].images, cases[0].series_info, cases[0].plans)
    for head, full in zip(heads, prints, strict=True):
        assert head.same_grid(full) and head.series_uid == full.series_uid


def test_a_manifest_tells_how_many_cases_of_other_tasks_it_left_out(tmp_path):
    manifest = write_phantoms(tmp_path / "mixed", 2, 1, 0, "nifti", ct_shape=SMALL_CT)
    cases, others = read_manifest(manifest, "organs")
    assert [c.id for c in cases] == ["ct_000", "ct_001"] and others == {"spine": 1}
    found = find_cases([manifest], "organs")
    assert len(found.cases) == 2 and found.ignored == [(str(manifest), {"spine": 1})]
    found = find_cases([manifest], "spine")
    assert len(found.cases) == 1 and found.ignored == [(str(manifest), {"organs": 2})]
    ct_only = write_phantoms(tmp_path / "ct_only", 1, 0, 0, "nifti", ct_shape=SMALL_CT)
    found = find_cases([ct_only], "spine")
    assert found.cases == [] and found.ignored == []
    assert found.refused == [
        (str(ct_only), "no spine cases in this manifest: it holds 1 organs case(s).")
    ]


# -- modality ------------------------------------------------------------------------------
def test_modality_must_fit_the_task():
    check_modality("x", "CT", "organs")
    check_modality("x", "MR", "spine")
    check_modality("x", "", "organs")  # NIfTI: nothing says it is wrong
    with pytest.raises(
        ProjectError, match=r"modality MR, but organs projects take CT.*--task spine"
    ):
        check_modality("study/", "MR", "organs")
    with pytest.raises(
        ProjectError, match=r"modality CT, but spine projects take MR.*--task organs"
    ):
        check_modality("ct/", "ct", "spine")
    with pytest.raises(ProjectError, match="No project kind takes PT"):
        check_modality("pet/", "PT", "organs")


def test_mr_study_is_refused_by_an_organs_check_from_headers(spine_phantoms):
    study = sorted((spine_phantoms(0).parent / "spine" / "train_images").iterdir())[0]
    cases = cases_from_path(study, "organs")  # one case per series in an organs project
    folders = sorted(study.iterdir())  # ... each in its own folder, which names it
    assert [c.id for c in cases] == [f.name for f in folders]
    assert [c.images[0].path for c in cases] == [str(f) for f in folders]
    with pytest.raises(ProjectError, match=rf"{folders[0]}: series .* has modality MR"):
        check_case(cases[0], "organs", load=False)  # headers are enough
    [case] = cases_from_path(study, "spine")
    assert case.id == study.name and len(case.images) == 3
    check_case(case, "spine")  # every series loads


# -- loading -------------------------------------------------------------------------------
def test_check_case_reports_what_the_loader_refuses(tmp_path, ct_dicom):
    good = _nifti(tmp_path / "good" / "ct.nii.gz", shape=(16, 32, 32))
    [case] = cases_from_path(good, "organs")
    check_case(case, "organs")
    data = good.read_bytes()
    truncated = tmp_path / "cut" / "ct.nii.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(data[: len(data) // 2])
    [case] = cases_from_path(truncated, "organs")
    with pytest.raises(ProjectError, match=rf"{truncated}: .*truncated"):
        check_case(case, "organs")
    check_case(case, "organs", load=False)  # --no-check: only existence is checked
    series = ct_dicom / "ct" / "ct_000" / "dicom"
    files = sorted(series.iterdir())
    files[len(files) // 2].unlink()
    [case] = cases_from_path(series, "organs")
    with pytest.raises(ProjectError, match=r"1 slice\(s\) missing"):
        check_case(case, "organs")


def test_check_case_needs_the_manifest_files(ct_dicom):
    manifest = ct_dicom / "manifest.json"
    shutil.rmtree(ct_dicom / "ct" / "ct_000" / "dicom")
    (ct_dicom / "ct" / "ct_001" / "combined_labels.nii.gz").unlink()
    first, second = cases_from_path(manifest, "organs")
    with pytest.raises(ProjectError, match=rf"image .*ct_000.dicom \(named by {manifest}\) does"):
        check_case(first, "organs", load=False)
    with pytest.raises(ProjectError, match=r"truth file .*combined_labels.nii.gz \(label, named"):
        check_case(second, "organs", load=False)


# -- images already referenced -----------------------------------------------------------
def test_same_nifti_is_found_by_resolved_path(tmp_path):
    path = _nifti(tmp_path / "c" / "ct.nii.gz")
    known = ReferencedImages([("c", ImageRef(str(path)))])
    assert known.owner(ImageRef(str(tmp_path / "c" / ".." / "c" / "ct.nii.gz"))) == "c"
    assert known.owner(ImageRef(str(_nifti(tmp_path / "d" / "ct.nii.gz")))) is None


def test_a_dicom_series_is_found_under_another_path(ct_dicom):
    series = ct_dicom / "ct" / "ct_000" / "dicom"
    known = ReferencedImages([("dicom", ImageRef(str(series)))])
    # The case folder above it (holding this one series) is the same image ...
    with pytest.warns(VolumeLoadWarning, match="not DICOM: combined_labels.nii.gz"):
        [case] = cases_from_path(series.parent, "organs")
    assert known.owner_of(case) == ("dicom", str(series.parent))
    # ... and so is the manifest's entry; another case's series is not.
    first, second = cases_from_path(ct_dicom / "manifest.json", "organs")
    assert known.owner_of(first) == ("dicom", str(series))
    assert known.owner_of(second) is None


def test_spine_study_and_its_series_folders_are_one_image_set(spine_phantoms):
    manifest = spine_phantoms(0)
    from_manifest = cases_from_path(manifest, "spine")
    study = manifest.parent / "spine" / "train_images" / from_manifest[0].id
    [from_folder] = cases_from_path(study, "spine")
    # Study folder (series chosen by UID) first, then the manifest (series folders) ...
    known = ReferencedImages((from_folder.id, ref) for ref in from_folder.images)
    assert known.owner_of(from_manifest[0])[0] == from_folder.id
    assert known.owner_of(from_manifest[1]) is None
    # ... and the other way round.
    known = ReferencedImages((c.id, ref) for c in from_manifest for ref in c.images)
    assert known.owner_of(from_folder)[0] == from_manifest[0].id


# -- the same image under any path ---------------------------------------------------------
@pytest.fixture
def ct_nifti(tmp_path):
    """The scans of ``ct_dicom`` (same seed) as NIfTI: ``nii/ct/ct_00N/ct.nii.gz``."""
    write_phantoms(tmp_path / "nii", 2, 0, 0, "nifti", ct_shape=SMALL_CT)
    return [tmp_path / "nii" / "ct" / f"ct_00{i}" / "ct.nii.gz" for i in range(2)]


def test_fingerprints_tell_one_scan_in_any_format(tmp_path, ct_dicom, ct_nifti):
    dicom = [ct_dicom / "ct" / f"ct_00{i}" / "dicom" for i in range(2)]
    volumes = [load_volume(p) for p in dicom + ct_nifti]
    full = [ImageFingerprint.of_volume(v) for v in volumes]
    heads = header_fingerprints([ImageRef(str(p)) for p in dicom + ct_nifti])
    # Headers alone give the series UID and the grid the loader gives.
    for head, loaded in zip(heads, full, strict=True):
        assert head.voxels is None and head.same_grid(loaded)
        assert head.series_uid == loaded.series_uid
    assert full[0].series_uid and full[2].series_uid is None
    # DICOM and NIfTI of one scan have the same grid and voxels; another scan does not.
    assert full[0].same_grid(full[2]) and full[0].voxels == full[2].voxels
    assert full[1].voxels == full[3].voxels and not full[0].same_grid(full[1])
    # Voxel values count, not their type: the scan saved as float32 is the same image ...
    image = nib.load(ct_nifti[0])
    as_float = tmp_path / "float" / "ct.nii.gz"
    as_float.parent.mkdir()
    nib.save(nib.Nifti1Image(image.get_fdata().astype(np.float32), image.affine), as_float)
    assert ImageFingerprint.of_volume(load_volume(as_float)).voxels == full[0].voxels
    # ... and one changed voxel makes another image.
    volumes[0].array[3, 4, 5] += 1
    assert ImageFingerprint.of_volume(volumes[0]).voxels != full[0].voxels


def _project_without_fingerprints(folder: Path, manifest: Path) -> None:
    """A project whose cases were added without ``add`` (as the demo adds them)."""
    with Project.create(folder, task="organs") as project:
        for case in cases_from_path(manifest, "organs"):
            project.add_case(case.id, case.images, truth=case.truth, source=case.source)


def test_older_cases_are_fingerprinted_lazily(tmp_path, ct_dicom, ct_nifti):
    _project_without_fingerprints(tmp_path / "proj", ct_dicom / "manifest.json")
    copy = tmp_path / "BDMAP_00000007" / "ct.nii.gz"
    copy.parent.mkdir()
    shutil.copy(ct_nifti[1], copy)
    [case] = cases_from_path(copy, "organs")
    prints = check_case(case, "organs")
    with Project(tmp_path / "proj") as project:
        images = ProjectImages(project)
        same = images.duplicate_of(prints)
        assert (same.case_id, same.index, same.same) == ("ct_001", 0, "voxels and grid")
        images.save()
    saved = json.loads((tmp_path / "proj" / FINGERPRINTS_NAME).read_text())["cases"]
    # Every case got its series UID and grid from its headers; only the case on the same
    # grid as the new image was loaded to hash its voxels.
    assert [saved[c][0]["series_uid"] is not None for c in ("ct_000", "ct_001")] == [True] * 2
    assert saved["ct_000"][0]["voxels_sha256"] is None
    assert saved["ct_001"][0]["voxels_sha256"] == prints[0].voxels


def test_a_dicom_series_is_known_by_its_uid_from_headers(tmp_path, ct_dicom):
    _project_without_fingerprints(tmp_path / "proj", ct_dicom / "manifest.json")
    shutil.copytree(ct_dicom / "ct" / "ct_000" / "dicom", tmp_path / "copy" / "scan")
    [case] = cases_from_path(tmp_path / "copy" / "scan", "organs")
    heads = header_fingerprints(case.images, case.series_info)
    with Project(tmp_path / "proj") as project:
        same = ProjectImages(project).duplicate_of(heads)
    uid = case.series_info[0].series_uid
    assert (same.case_id, same.same) == ("ct_000", f"DICOM SeriesInstanceUID {uid}")


def test_the_fingerprint_file_is_a_cache(tmp_path, ct_dicom, ct_nifti):
    _project_without_fingerprints(tmp_path / "proj", ct_dicom / "manifest.json")
    (tmp_path / "proj" / FINGERPRINTS_NAME).write_text("{not json")  # damaged: rebuilt
    [case] = cases_from_path(ct_nifti[0], "organs")
    prints = check_case(case, "organs")
    with Project(tmp_path / "proj") as project:
        # Two adds at once: both fingerprint the older cases from their headers, the
        # first also hashes ct_000's voxels; the second keeps that when it saves.
        first, second = ProjectImages(project), ProjectImages(project)
        assert second.duplicate_of([]) is None
        assert first.duplicate_of(prints).case_id == "ct_000"
        first.save()
        added = project.add_case("other", [ImageRef(str(tmp_path / "nii" / "x.nii.gz"))])
        second.record(added, [ImageFingerprint(None, (1, 2, 3), tuple(np.eye(4).ravel()))])
        second.save()
    saved = json.loads((tmp_path / "proj" / FINGERPRINTS_NAME).read_text())["cases"]
    assert sorted(saved) == ["ct_000", "ct_001", "other"]
    assert saved["ct_000"][0]["voxels_sha256"] == prints[0].voxels


def test_an_image_on_a_known_grid_is_found_wherever_its_origin_lies(tmp_path):
    """Known grids are looked up by shape and origin, not compared with every image: a
    grid within the tolerance is found across the lookup's cell edges (here x = 11 mm and
    y = 0), the first case holding it first; one just beyond it is not."""

    def grid(x, y):
        affine = np.eye(4)
        affine[:3, 3] = (x, y, -40.0)
        return tuple(affine.ravel())

    with Project.create(tmp_path / "proj", task="organs") as project:
        images = ProjectImages(project)
        assert images.duplicate_of([]) is None  # the project's cases read (none yet)
        for name, x, y in (("a", 10.9996, -0.0004), ("b", 10.9999, 0.0001), ("c", 11.0, 7.0)):
            case = project.add_case(name, [ImageRef(str(tmp_path / f"{name}.nii.gz"))])
            images.record(case, [ImageFingerprint(None, (4, 5, 6), grid(x, y), "v")])

        def found(x, y, shape=(4, 5, 6), voxels="v"):
            same = images.duplicate_of([ImageFingerprint(None, shape, grid(x, y), voxels)])
            return same and (same.case_id, same.same)

        assert found(11.0004, 0.0004) == ("a", "voxels and grid")  # a and b: a came first
        assert found(11.0008, 0.0004) == ("b", "voxels and grid")  # 1.2 um from a: b only
        assert found(11.0008, 0.0012) is None  # beyond b too
        assert found(11.0, 7.0) == ("c", "voxels and grid")
        assert found(11.0, 7.0, shape=(4, 5, 7)) is None
        assert found(11.0, 7.0, voxels="w") is None


# -- copies --------------------------------------------------------------------------------
def test_copies_of_a_spine_study_share_one_folder(tmp_path, spine_phantoms):
    study = sorted((spine_phantoms(0).parent / "spine" / "train_images").iterdir())[0]
    [case] = cases_from_path(study, "spine")
    planned = copied_case(case, tmp_path / "proj")
    copied = copy_into_project(case, tmp_path / "proj")
    assert [r.path for r in copied.images] == [r.path for r in planned.images]
    assert len({r.path for r in copied.images}) == 1
    assert [r.series for r in copied.images] == [r.series for r in case.images]
    assert sorted(p.name for p in (tmp_path / "proj" / "images" / case.id).iterdir()) == [
        f"0_{study.name}"
    ]


# -- RSNA dataset folders: series named by the series CSV ------------------------------------
def _rsna_copy(spine_phantoms, tmp_path) -> tuple[Path, list[list[str]]]:
    """A copy of the spine phantoms' RSNA folder, and its series CSV rows."""
    root = tmp_path / "spine"
    shutil.copytree(spine_phantoms(0).parent / "spine", root)
    lines = (root / "train_series_descriptions.csv").read_text().splitlines()
    return root, [line.split(",") for line in lines[1:]]


def _write_series_csv(root: Path, rows: list[list[str]]) -> None:
    lines = ["study_id,series_id,series_description", *(",".join(r) for r in rows)]
    (root / "train_series_descriptions.csv").write_text("\n".join(lines) + "\n")


def test_an_rsna_study_says_which_series_its_csv_does_not_name(spine_phantoms, tmp_path):
    """A series folder without a row in the series CSV is kept (named by its headers only)
    and listed in its case's ``unnamed``; a row without a series on disk in ``missing``."""
    from napari_atlas_annotate.project.rsna_folders import MissingSeries

    root, rows = _rsna_copy(spine_phantoms, tmp_path)
    csv = root / "train_series_descriptions.csv"
    dropped = rows[1]
    _write_series_csv(root, [r for r in rows if r != dropped] + [[dropped[0], "12", "Axial T2"]])
    found = find_cases([root / "train_images"], "spine")
    assert len(found.cases) == 3 and all(c.series_csv == csv for c in found.cases)
    series_folder = root / "train_images" / dropped[0] / dropped[1]
    assert {c.id: c.unnamed for c in found.cases if c.unnamed} == {dropped[0]: [series_folder]}
    [case] = [c for c in found.cases if c.id == dropped[0]]
    header = pydicom.dcmread(next(series_folder.iterdir()), stop_before_pixels=True)
    assert {r.series: r.description for r in case.images}[header.SeriesInstanceUID] == (
        header.SeriesDescription  # the phantoms' headers still name it
    )
    expected = MissingSeries(
        csv, int(dropped[0]), 12, "Axial T2", root / "train_images" / dropped[0] / "12"
    )
    assert found.missing == [expected]
    assert find_cases([root / "train_images" / dropped[0]], "spine").missing == [expected]
    other = next(r[0] for r in rows if r[0] != dropped[0])
    assert find_cases([root / "train_images" / other], "spine").missing == []


def test_series_renames_take_the_csv_names_and_swap_points_with_them(spine_phantoms, tmp_path):
    """Stored images whose names the corrected CSV swaps take the new names, and the
    points follow their series: by old name and by series_id folder, all at once."""
    from napari_atlas_annotate.project.sources import series_renames

    root, rows = _rsna_copy(spine_phantoms, tmp_path)
    study = rows[0][0]
    [case] = find_cases([root / "train_images" / study], "spine").cases
    names = {"Sagittal T1": "Sagittal T2/STIR", "Sagittal T2/STIR": "Sagittal T1"}
    stored = [  # as added from a CSV with the two sagittal rows swapped
        dataclasses.replace(r, description=names.get(r.description, r.description))
        for r in case.images
    ]
    renames = series_renames(case, stored, Path)
    assert renames.descriptions == {
        i: ref.description for i, ref in enumerate(case.images) if ref.description in names
    }
    folders = {r[2]: r[1] for r in rows if r[0] == study}
    assert renames.points == {
        "Sagittal T1": "Sagittal T2/STIR",
        "Sagittal T2/STIR": "Sagittal T1",
        folders["Sagittal T1"]: "Sagittal T1",
        folders["Sagittal T2/STIR"]: "Sagittal T2/STIR",
    }
    assert sorted((f.name, old, new, n) for f, old, new, n in renames.series) == sorted(
        (folders[new], old, new, 1) for old, new in names.items()
    )
    assert series_renames(case, case.images, Path).descriptions == {}  # up to date


def _summary(cases) -> list:
    return [
        (c.id, c.images, c.labels, c.label_points, c.series_csv, c.unnamed, c.source) for c in cases
    ]


@pytest.mark.parametrize("layout", ["plain", "clash", "one_study", "root", "odd_files"])
def test_an_rsna_folder_read_study_by_study_gives_what_a_whole_scan_gives(
    spine_phantoms, tmp_path, layout
):
    """find_cases reads an RSNA folder study by study (lazily); its cases, their ids,
    names and labels, the files left out and the missing CSV rows are those a scan of the
    whole folder gives (cases_from_path): also where a study of one series folder bearing
    another study's id makes the whole scan name both otherwise (the studies left are then
    read together), for a folder of one study (named by its study_id), for the dataset's root
    (its CSVs and truth folders are no images), and with odd files in a study."""
    import warnings

    root, rows = _rsna_copy(spine_phantoms, tmp_path)
    images = root / "train_images"
    studies = sorted(images.iterdir())
    path = root if layout == "root" else images
    if layout == "clash":  # the third study's one series folder bears the second's id
        first, *others = sorted(studies[2].iterdir())
        for series in others:
            shutil.rmtree(series)
        first.rename(studies[2] / studies[1].name)
    elif layout == "one_study":
        for study in studies[1:]:
            shutil.rmtree(study)
    elif layout == "odd_files":
        (studies[0] / "notes.txt").write_text("not DICOM")
        (studies[1] / ".hidden").write_text("not looked at")
        for series in sorted(studies[1].iterdir())[1:]:
            shutil.rmtree(series)  # a study of one series: named after its series folder
    with warnings.catch_warnings(record=True) as whole_warnings:
        warnings.simplefilter("always")
        whole = cases_from_path(path, "spine")
    with warnings.catch_warnings(record=True) as lazy_warnings:
        warnings.simplefilter("always")
        found = find_cases([path], "spine", lazy=True)
        assert not isinstance(found.cases, list)
        lazy = list(found.cases)
    assert _summary(lazy) == _summary(whole)
    assert [str(w.message) for w in lazy_warnings] == [str(w.message) for w in whole_warnings]
    if layout == "clash":
        assert lazy[0].id == studies[0].name  # read on its own, before the clash is seen
        assert lazy[1].id != studies[1].name  # the whole scan's ids, not the folder names
    if layout == "one_study":  # named by its study_id, as the dataset's CSVs know it
        assert [c.id for c in lazy] == [studies[0].name]  # (was "train_images")
    assert found.refused == [] and found.left_out == []
    gone = sorted((int(s), int(r)) for s, r, _ in rows if not (images / s / r).is_dir())
    assert [(m.study_id, m.series_id) for m in found.missing] == gone


@pytest.mark.parametrize("large", [False, True])
def test_a_spine_export_without_rsna_csvs_reads_each_studys_headers_when_given_out(
    spine_phantoms, tmp_path, monkeypatch, large
):
    """A large hospital lumbar export (no RSNA CSVs, so not read study by study) is
    scanned keeping what groups its files, not every file's header (27 KB a file:
    gigabytes for a few thousand studies); each study's headers are read as its case is
    given out, and the cases are those of a whole scan. A small one keeps its headers."""
    data = tmp_path / "export"
    shutil.copytree(spine_phantoms(0).parent / "spine" / "train_images", data)
    n_files = sum(1 for _ in data.rglob("*.dcm"))
    monkeypatch.setattr(sources, "KEEP_SPINE_HEADERS_FILES", n_files - 1 if large else n_files)
    whole = cases_from_path(data, "spine")
    assert len(whole) == 3
    cases = iter(find_cases([data], "spine", lazy=True).cases)
    lazy = [next(cases)]
    for file in Path(whole[2].images[0].path).rglob("*.dcm"):
        ds = pydicom.dcmread(file)
        ds.PatientName = "Renamed^After^Scan"
        ds.save_as(file)
    lazy += list(cases)
    assert _summary(lazy) == _summary(whole)
    for case in lazy:
        for info in case.series_info:
            assert info.headers_read and len(info.headers) == len(info.files)
    names = [str(c.series_info[0].headers[0].PatientName) for c in lazy]
    assert ("Renamed^After^Scan" in names) == large  # read again only when not kept
    assert "Renamed^After^Scan" not in names[:2]
    for case in lazy:
        check_case(case, "spine")
