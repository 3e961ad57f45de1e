"""3D Slicer segmentations (.seg.nrrd) imported onto a case's grid, and written for Slicer.

The files are made with slicerio (the reader Slicer's documentation names) the way Slicer
saves them: LPS space, segments named in the header, the voxels cropped to the segments'
extent, overlapping segments in layers of their own."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.phantoms.ct import make_ct_phantom
from napari_atlas_annotate.project import ImageRef, Project, ProjectError
from napari_atlas_annotate.project.importing import import_labels
from napari_atlas_annotate.project.slicer_segmentations import read_segments, write_segmentation
from napari_atlas_annotate.volume import nifti_affine_from_zyx

slicerio = pytest.importorskip("slicerio")

SHAPE = (14, 40, 44)
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.fixture
def case(tmp_path):
    image, label, _ = make_ct_phantom(3, shape=SHAPE)
    path = save_nifti(image, tmp_path / "ct.nii.gz")
    with Project.create(tmp_path / "proj", task="organs") as project:
        project.add_case("c1", [ImageRef(str(path), "CT")])
        yield project, image, np.asarray(label.array, np.uint8)


def _seg_file(path, image, masks: dict, box=None, origin_shift=(0.0, 0.0, 0.0)):
    """A .seg.nrrd of ``masks`` ({segment name: (z, y, x) bool mask on the image}) as
    Slicer saves it: IJK = the image's (x, y, z), LPS, cropped to ``box`` ((z0, z1), (y0,
    y1), (x0, x1)) when given; ``origin_shift`` (mm) moves it off the image's lattice."""
    ijk_to_lps = LPS @ nifti_affine_from_zyx(image.affine)
    box = box or tuple((0, n) for n in SHAPE)
    start = np.array([box[2][0], box[1][0], box[0][0], 1.0])  # (i, j, k) of the box corner
    ijk_to_lps[:3, 3] = (ijk_to_lps @ start)[:3] + np.asarray(origin_shift)
    cut = tuple(slice(a, b) for a, b in box)
    shape = tuple(b - a for a, b in box)[::-1]
    seg = slicerio.create_segmentation(shape, ijk_to_lps)
    for name, mask in masks.items():
        slicerio.add_segment(seg, mask[cut].transpose(2, 1, 0), {"name": name})
    slicerio.write_segmentation(str(path), seg)
    return path


def _class(project, name):
    return project.classes.index(name) + 1


def test_a_cropped_slicer_segmentation_lands_on_the_cases_voxels(case, tmp_path):
    project, image, truth = case
    liver, spleen = _class(project, "liver"), _class(project, "spleen")
    masks = {"Liver": truth == liver, "spleen": truth == spleen}  # Slicer's capitalisation
    zs, ys, xs = np.nonzero(truth == liver)
    box = ((0, SHAPE[0]), (ys.min(), SHAPE[1]), (1, SHAPE[2] - 2))
    inside = np.zeros(SHAPE, bool)
    inside[tuple(slice(a, b) for a, b in box)] = True
    path = _seg_file(tmp_path / "c1.seg.nrrd", image, masks, box)
    assert slicerio.read_segmentation(str(path))["voxels"].shape[::-1] != SHAPE  # cropped
    version = import_labels(project, "c1", "slicer_user", path)
    labels = project.read_mask(version)
    expected = np.zeros(SHAPE, np.uint8)
    expected[(truth == liver) & inside] = liver
    expected[(truth == spleen) & inside] = spleen
    np.testing.assert_array_equal(labels, expected)
    assert version.overlaps is None


def test_overlapping_segments_in_layers_are_merged_as_class_masks_are(case, tmp_path):
    project, image, truth = case
    liver = truth == _class(project, "liver")
    gall = np.zeros(SHAPE, bool)
    zs, ys, xs = np.nonzero(liver)
    gall[zs[0] : zs[0] + 3, ys[0] : ys[0] + 4, xs[0] : xs[0] + 4] = True  # into the liver
    path = _seg_file(tmp_path / "c1.seg.nrrd", image, {"liver": liver, "gall bladder": gall})
    assert slicerio.read_segmentation(str(path))["voxels"].ndim == 4  # two layers
    version = import_labels(project, "c1", "slicer_user", path)
    labels = project.read_mask(version)
    assert np.array_equal(labels == _class(project, "gall_bladder"), gall)  # smaller wins
    assert np.array_equal(labels == _class(project, "liver"), liver & ~gall)
    assert version.overlaps.voxels == int((liver & gall).sum()) > 0


def test_slicer_files_that_cannot_be_placed_are_refused_with_what_to_do(case, tmp_path):
    project, image, truth = case
    liver = truth == _class(project, "liver")
    named = _seg_file(tmp_path / "a.seg.nrrd", image, {"Segment_1": liver})
    with pytest.raises(ProjectError, match="'Segment_1' are not classes.*Segment Editor"):
        import_labels(project, "c1", "u", named)
    half = _seg_file(tmp_path / "b.seg.nrrd", image, {"liver": liver}, origin_shift=(0.3, 0, 0))
    with pytest.raises(ProjectError, match="voxel centres lie up to"):
        import_labels(project, "c1", "u", half)
    bad = tmp_path / "c.seg.nrrd"
    bad.write_bytes(b"NRRD0004\ntype: what\n")
    with pytest.raises(ProjectError, match="not a readable 3D Slicer segmentation"):
        import_labels(project, "c1", "u", bad)
    assert project.versions("c1") == []  # nothing stored by a refused import


def test_a_label_box_reaching_outside_the_image_is_refused(case):
    from napari_atlas_annotate.project.importing import on_image_grid

    _, image, _ = case
    box = np.zeros((4, 5, 6), np.uint8)
    box[0, 0, 0] = 2  # lands one slice below the image
    shifted = image.affine.copy()
    shifted[:3, 3] -= image.affine[:3, 0]  # one voxel before slice 0
    with pytest.raises(ProjectError, match="1 labelled voxel\\(s\\) lie outside"):
        on_image_grid(box, shifted, SHAPE, image.affine, "x.seg.nrrd", "c1", box=True)
    box[0] = 0
    placed = on_image_grid(box, shifted, SHAPE, image.affine, "x.seg.nrrd", "c1", box=True)
    assert placed.shape == SHAPE and placed.sum() == 0
    # a label file of another kind must cover the whole image: a box is refused
    with pytest.raises(ProjectError, match="does not match case c1's image"):
        on_image_grid(box, shifted, SHAPE, image.affine, "x.nii.gz", "c1")


def test_a_written_segmentation_reads_back_with_names_and_geometry(case, tmp_path):
    project, image, truth = case
    path = write_segmentation(truth, image.affine, project.classes, tmp_path / "t.seg.nrrd")
    affine, segments = read_segments(path)
    np.testing.assert_allclose(affine, image.affine, atol=1e-6)
    present = [project.classes[v - 1] for v in np.unique(truth) if v]
    assert [name for name, _ in segments] == present
    for name, mask in segments:
        np.testing.assert_array_equal(mask, truth == _class(project, name))
