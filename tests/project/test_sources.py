"""Paths -> cases: case id rules, image identity, modality and load checks, copies."""

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_atlas_annotate.io import VolumeLoadWarning
from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.project import ImageRef, ProjectError
from napari_atlas_annotate.project.sources import (
    ReferencedImages,
    case_names,
    cases_from_path,
    check_case,
    check_modality,
    copied_case,
    copy_into_project,
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
    assert len(cases) == 3 and all(c.id.startswith(f"{study.name}_s") for c in cases)
    with pytest.raises(ProjectError, match=rf"{study}: series .* has modality MR"):
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
