"""Folders of NIfTI files as datasets lay them out: images, their labels, the rest."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_atlas_annotate.project import ProjectError
from napari_atlas_annotate.project.nifti_folders import scan_nifti_folder
from napari_atlas_annotate.project.sources import cases_from_path, find_cases


def _nii(path: Path, *, label: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.zeros((2, 3, 4), np.uint8 if label else np.int16), np.eye(4))
    nib.save(image, path)
    return path


def _found(folder: Path):
    scan = scan_nifti_folder(folder)
    images = {im.path.relative_to(folder).as_posix(): im for im in scan.images}
    left = [p.relative_to(folder).as_posix() for p, _ in scan.left_out]
    return images, left, scan


def test_abdomenatlas_case_folders_pair_combined_labels_then_per_class_masks(tmp_path):
    for case in ("BDMAP_A", "BDMAP_B"):
        _nii(tmp_path / case / "ct.nii.gz")
        for organ in ("liver", "spleen"):
            _nii(tmp_path / case / "segmentations" / f"{organ}.nii.gz", label=True)
    _nii(tmp_path / "BDMAP_A" / "combined_labels.nii.gz", label=True)
    images, left, _ = _found(tmp_path)
    assert sorted(images) == ["BDMAP_A/ct.nii.gz", "BDMAP_B/ct.nii.gz"]
    assert images["BDMAP_A/ct.nii.gz"].labels == tmp_path / "BDMAP_A" / "combined_labels.nii.gz"
    assert images["BDMAP_B/ct.nii.gz"].labels == tmp_path / "BDMAP_B" / "segmentations"
    assert left == []  # BDMAP_A's segmentations/ are its labels too, not strays


def test_nnunet_dataset_names_cases_without_channel_and_pairs_labelstr(tmp_path):
    for name in ("a_0000", "b_0000", "b_0001"):
        _nii(tmp_path / "imagesTr" / f"{name}.nii.gz")
    _nii(tmp_path / "imagesTs" / "c_0000.nii.gz")
    _nii(tmp_path / "imagesTs" / "d_0000.nii.gz")
    for name in ("a", "b", "zz"):
        _nii(tmp_path / "labelsTr" / f"{name}.nii.gz", label=True)
    images, left, scan = _found(tmp_path)
    assert sorted(images) == [
        "imagesTr/a_0000.nii.gz",
        "imagesTr/b_0000.nii.gz",
        "imagesTs/c_0000.nii.gz",
        "imagesTs/d_0000.nii.gz",
    ]
    assert [im.name for im in scan.images] == ["a", "b", "c", "d"]
    assert images["imagesTr/b_0000.nii.gz"].labels == tmp_path / "labelsTr" / "b.nii.gz"
    assert images["imagesTs/c_0000.nii.gz"].labels is None
    assert left == ["imagesTr/b_0001.nii.gz", "labelsTr/zz.nii.gz"]
    why = dict((p.name, w) for p, w in scan.left_out)
    assert "channel 0001 of case b" in why["b_0001.nii.gz"]
    assert "no image" in why["zz.nii.gz"]


def test_image_folder_given_alone_finds_the_label_folder_beside_it(tmp_path):
    _nii(tmp_path / "Task03_Liver" / "imagesTr" / "liver_0.nii.gz")
    _nii(tmp_path / "Task03_Liver" / "imagesTr" / "._liver_0.nii.gz")  # macOS resource fork
    _nii(tmp_path / "Task03_Liver" / "labelsTr" / "liver_0.nii.gz", label=True)
    images, left, _ = _found(tmp_path / "Task03_Liver" / "imagesTr")
    assert list(images) == ["liver_0.nii.gz"]
    assert images["liver_0.nii.gz"].labels == tmp_path / "Task03_Liver/labelsTr/liver_0.nii.gz"
    assert left == []


def test_loose_files_pair_by_name_and_header_intent_marks_labels(tmp_path):
    _nii(tmp_path / "case01.nii.gz")
    _nii(tmp_path / "case01_seg.nii.gz", label=True)
    _nii(tmp_path / "case02.nii.gz")
    roi = nib.Nifti1Image(np.zeros((2, 3, 4), np.uint8), np.eye(4))
    roi.header.set_intent("label")
    nib.save(roi, tmp_path / "case02_roi.nii.gz")
    images, left, _ = _found(tmp_path)
    assert sorted(images) == ["case01.nii.gz", "case02.nii.gz"]
    assert images["case01.nii.gz"].labels == tmp_path / "case01_seg.nii.gz"
    assert images["case02.nii.gz"].labels is None
    assert left == ["case02_roi.nii.gz"]  # a label, but not named after an image


def test_numbered_cases_are_not_mistaken_for_channels(tmp_path):
    _nii(tmp_path / "scans" / "patient_0001.nii.gz")
    _nii(tmp_path / "scans" / "patient_0002.nii.gz")
    images, left, scan = _found(tmp_path)
    assert len(images) == 2 and left == []
    assert [im.name for im in scan.images] == [None, None]


def test_whole_case_labels_are_not_given_to_one_of_several_images(tmp_path):
    _nii(tmp_path / "case" / "arterial.nii.gz")
    _nii(tmp_path / "case" / "venous.nii.gz")
    _nii(tmp_path / "case" / "combined_labels.nii.gz", label=True)
    images, left, _ = _found(tmp_path)
    assert all(im.labels is None for im in images.values())
    assert left == ["case/combined_labels.nii.gz"]


# -- as cases --------------------------------------------------------------------------
def test_a_dataset_folder_gives_one_case_per_image_named_by_the_usual_rules(tmp_path):
    for case in ("BDMAP_A", "BDMAP_B"):
        _nii(tmp_path / "atlas" / case / "ct.nii.gz")
        _nii(tmp_path / "atlas" / case / "combined_labels.nii.gz", label=True)
    _nii(tmp_path / "nnunet" / "imagesTr" / "kidney_007_0000.nii.gz")
    _nii(tmp_path / "nnunet" / "labelsTr" / "kidney_007.nii.gz", label=True)
    found = find_cases([tmp_path / "atlas", tmp_path / "nnunet"], "organs")
    assert found.refused == [] and found.left_out == []
    assert [c.id for c in found.cases] == ["BDMAP_A", "BDMAP_B", "kidney_007"]
    assert found.cases[2].images[0].path == str(
        tmp_path / "nnunet" / "imagesTr" / "kidney_007_0000.nii.gz"
    )
    assert found.cases[2].labels == tmp_path / "nnunet" / "labelsTr" / "kidney_007.nii.gz"


def test_a_folder_of_labels_only_is_refused_with_what_to_give(tmp_path):
    _nii(tmp_path / "labelsTr" / "a.nii.gz", label=True)
    found = find_cases([tmp_path / "labelsTr"], "organs")
    [(path, reason)] = found.refused
    assert "only 1 NIfTI label file" in reason and "folder holding the images" in reason


def test_spine_projects_refuse_a_nifti_folder(tmp_path):
    _nii(tmp_path / "mri" / "t2.nii.gz")
    with pytest.raises(ProjectError, match="spine projects take DICOM"):
        cases_from_path(tmp_path / "mri", "spine")
