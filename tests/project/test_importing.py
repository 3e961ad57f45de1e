"""Per-class masks merged into one label map: a voxel two masks claim goes to the smaller
structure whatever order the files come in, and the overlap is counted by class pair."""

import nibabel as nib
import numpy as np
import pytest

from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.project.importing import merge_class_masks

SHAPE = (6, 8, 10)


@pytest.fixture
def project(tmp_path):
    image = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(SHAPE[::-1], np.int16), np.eye(4)), image)
    with Project.create(tmp_path / "proj", task="organs") as project:
        project.add_case("c1", [ImageRef(str(image), "CT")])
        yield project


def _write(folder, masks: dict) -> dict:
    folder.mkdir(exist_ok=True)
    files = {}
    for name, mask in masks.items():
        files[name] = folder / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(mask.transpose(2, 1, 0).astype(np.uint8), np.eye(4)), files[name])
    return files


def test_disputed_voxels_go_to_the_smallest_claimant_in_any_order(project, tmp_path):
    liver = np.zeros(SHAPE, bool)
    liver[:, :, :6] = True  # 288 voxels
    pancreas = np.zeros(SHAPE, bool)
    pancreas[2:4, 2:6, 4:9] = True  # 40 voxels, 16 of them in the liver
    aorta = np.zeros(SHAPE, bool)
    aorta[:, 3, 5] = True  # 6 voxels through both
    masks = {"liver": liver, "pancreas": pancreas, "aorta": aorta}
    files = _write(tmp_path / "masks", masks)
    expected = np.zeros(SHAPE, np.uint8)
    for name in ("liver", "pancreas", "aorta"):  # largest first: the smaller paints over
        expected[masks[name]] = project.classes.index(name) + 1

    results = [
        merge_class_masks(project, "c1", dict(order))
        for order in (list(files.items()), list(files.items())[::-1])
    ]
    for labels, overlaps in results:
        assert np.array_equal(labels, expected)
        assert overlaps.voxels == int(((liver + 0 + pancreas + aorta) > 1).sum())
        assert overlaps.crowded == int(((liver + 0 + pancreas + aorta) > 2).sum()) == 2
        assert overlaps.pairs == (
            ("liver", "pancreas", int((liver & pancreas).sum()), "pancreas"),
            ("aorta", "liver", int((aorta & liver).sum()), "aorta"),
            ("aorta", "pancreas", int((aorta & pancreas).sum()), "aorta"),
        )
    summary = results[0][1].summary(limit=1)
    assert summary.startswith(f"{overlaps.voxels} voxel(s) claimed by more than one class mask")
    assert "liver & pancreas 16, to pancreas; 2 more pair(s)" in summary


def test_masks_that_do_not_overlap_report_nothing(project, tmp_path):
    liver, spleen = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
    liver[:, :, :3], spleen[:, :, 5:] = True, True
    labels, overlaps = merge_class_masks(
        project, "c1", _write(tmp_path / "m", {"liver": liver, "spleen": spleen})
    )
    assert overlaps is None
    assert (labels == project.classes.index("spleen") + 1).sum() == spleen.sum()
