"""The npe2 reader and writer inside a real napari viewer (Qt, runs under Xvfb)."""

from __future__ import annotations

import napari
import nibabel as nib
import numpy as np
import pytest

from napari_atlas_annotate._napari.layers import DISPLAY_FROM_RAS, data_to_world_matrix
from napari_atlas_annotate._napari.writer import LabelsWriteError
from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.io import VolumeLoadError, save_labels, save_nifti

PLUGIN = "napari-atlas-annotate"

pytestmark = [
    pytest.mark.qt,
    pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning"),
]


@pytest.fixture
def ct_on_disk(tmp_path, make_ct, make_organ_labels):
    volume = make_ct("axial_SPL", shape=(8, 30, 26))
    ct_path = save_nifti(volume, tmp_path / "ct.nii.gz")
    label_path = save_labels(make_organ_labels(volume), volume, tmp_path / "combined_labels.nii.gz")
    return volume, ct_path, label_path


def test_open_paint_save_round_trip(make_napari_viewer, ct_on_disk, tmp_path):
    volume, ct_path, label_path = ct_on_disk
    viewer = make_napari_viewer()
    [image] = viewer.open(ct_path, plugin=PLUGIN)
    [labels] = viewer.open(label_path, plugin=PLUGIN)

    assert image._type_string == "image" and labels._type_string == "labels"
    np.testing.assert_allclose(data_to_world_matrix(image), DISPLAY_FROM_RAS @ volume.affine)
    np.testing.assert_allclose(data_to_world_matrix(labels), data_to_world_matrix(image))
    probe = np.array([[0.0, 0, 0], [12.3, -40.1, 7.7], [-3.0, 5.0, 100.0]])
    for world in probe:
        np.testing.assert_allclose(image.world_to_data(world), labels.world_to_data(world))
    assert list(labels.features["class"][1:]) == list(ABDOMEN_ATLAS_CLASSES)

    # Paint one voxel, addressed by its world position, as a brush dab would.
    target = (6, 21, 3)
    ras = volume.index_to_world(np.array(target, float))
    world = (DISPLAY_FROM_RAS @ np.append(ras, 1))[:3]
    viewer.dims.set_point(range(3), world)
    labels.brush_size = 1
    labels.paint(np.round(labels.world_to_data(world)), 3)
    assert labels.data[target] == 3

    out = tmp_path / "edited.nii.gz"
    written = napari.save_layers(str(out), [labels], plugin=PLUGIN)
    assert written == [str(out)]

    ct_img, saved = nib.load(ct_path), nib.load(out)
    assert saved.shape == ct_img.shape
    np.testing.assert_allclose(saved.affine, ct_img.affine, atol=1e-5)
    saved_data = np.asarray(saved.dataobj)
    ijk = np.linalg.inv(saved.affine) @ np.append(ras, 1)
    assert saved_data[tuple(np.round(ijk[:3]).astype(int))] == 3
    assert np.count_nonzero(saved_data == 3) == 1
    # Everything else is the truth that was opened.
    truth = np.asarray(nib.load(label_path).dataobj)
    assert np.count_nonzero(saved_data != truth) == 1


def test_writer_refuses_labels_without_source_grid(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(np.zeros((3, 4, 5), np.uint8), name="scratch")
    # The reason reaches the user (napari would swallow a ValueError as "no writer").
    with pytest.raises(LabelsWriteError, match="'scratch' has no source grid"):
        napari.save_layers(str(tmp_path / "x.nii.gz"), [layer], plugin=PLUGIN)
    assert not (tmp_path / "x.nii.gz").exists()


def test_broken_nifti_reports_the_file_and_leaves_viewer_usable(make_napari_viewer, ct_on_disk):
    _, ct_path, _ = ct_on_disk
    data = ct_path.read_bytes()
    broken = ct_path.with_name("broken.nii.gz")
    broken.write_bytes(data[: len(data) // 2])
    viewer = make_napari_viewer()
    # With a plugin named, napari passes the reader's own error through; from the GUI it is
    # wrapped in a ReaderPluginError carrying the same message, shown in a dialog.
    with pytest.raises(VolumeLoadError, match="broken.nii.gz: not a readable NIfTI file"):
        viewer.open(broken, plugin=PLUGIN)
    assert len(viewer.layers) == 0
    [image] = viewer.open(ct_path, plugin=PLUGIN)  # the viewer keeps working
    assert image.data.shape == (8, 30, 26)


@pytest.mark.parametrize("orientation", ["axial_SPL", "sagittal_RIP", "oblique_axial"])
def test_new_labels_button_on_our_image_saves_on_its_grid(
    make_napari_viewer, make_ct, tmp_path, orientation
):
    # The napari user's way to start a mask: select the image, press the layer list's
    # "New labels layer" button, paint, File > Save Selected Layers.
    volume = make_ct(orientation, shape=(6, 24, 20))
    ct_path = save_nifti(volume, tmp_path / "ct.nii.gz")
    viewer = make_napari_viewer()
    [image] = viewer.open(ct_path, plugin=PLUGIN)
    viewer.layers.selection.active = image
    viewer._new_labels()
    labels = viewer.layers[-1]
    assert labels._type_string == "labels" and labels.data.shape == image.data.shape

    # Paint the voxel at a known patient position, addressed through the world (by the
    # layer's full transform: on a tilted series world_to_data gives the voxel drawn there
    # in the 2D view, which is another slice's unless the slider is on it)
    target = (4, 15, 13)
    world = DISPLAY_FROM_RAS @ np.append(volume.index_to_world(np.array(target, float)), 1)
    voxel = np.linalg.solve(data_to_world_matrix(labels), world)[:3]
    labels.data[tuple(np.round(voxel).astype(int))] = 2

    out = tmp_path / "mask.nii.gz"
    assert napari.save_layers(str(out), [labels], plugin=PLUGIN) == [str(out)]
    ct_img, saved = nib.load(ct_path), nib.load(out)
    assert saved.shape == ct_img.shape
    np.testing.assert_allclose(saved.affine, ct_img.affine, atol=1e-5)
    saved_data = np.asarray(saved.dataobj)
    assert np.count_nonzero(saved_data) == 1
    ijk = np.linalg.inv(saved.affine) @ np.append(volume.index_to_world(np.array(target, float)), 1)
    assert saved_data[tuple(np.round(ijk[:3]).astype(int))] == 2
    # Reopened, it overlays the image exactly.
    [again] = viewer.open(out, plugin=PLUGIN)
    np.testing.assert_allclose(data_to_world_matrix(again), data_to_world_matrix(image), atol=1e-5)


def test_labels_on_another_grid_are_still_refused(make_napari_viewer, make_ct, tmp_path):
    volume = make_ct("axial_SPL", shape=(6, 24, 20))
    viewer = make_napari_viewer()
    [image] = viewer.open(save_nifti(volume, tmp_path / "ct.nii.gz"), plugin=PLUGIN)
    shifted = viewer.add_labels(
        np.zeros(image.data.shape, np.uint8), affine=image.affine.affine_matrix, translate=(1, 0, 0)
    )
    with pytest.raises(LabelsWriteError, match="no source grid"):
        napari.save_layers(str(tmp_path / "x.nii.gz"), [shifted], plugin=PLUGIN)


def test_opened_image_names_the_slider_axes(make_napari_viewer, ct_on_disk):
    # The slider of a CT opened from File > Open runs foot to head: it says S, not "-3".
    _, ct_path, label_path = ct_on_disk
    viewer = make_napari_viewer()
    viewer.open(ct_path, plugin=PLUGIN)
    viewer.open(label_path, plugin=PLUGIN)
    assert tuple(viewer.dims.axis_labels) == ("S", "P", "L")


@pytest.mark.parametrize("stack", [False, True])
def test_selecting_every_file_of_a_series_opens_it_once(
    make_napari_viewer, make_ct, tmp_path, stack
):
    # File > Open Files with all slices selected: napari hands the files to the reader one
    # by one (or all at once for 'as stack'); each file opens its whole series, so without
    # care the CT would be opened once per slice.
    from napari_atlas_annotate.io.dicom_writer import write_dicom_series

    ct = make_ct("axial_SPL", shape=(5, 10, 12))
    files = write_dicom_series(ct, tmp_path / "ct", series_description="CT", uid_seed="c")
    viewer = make_napari_viewer()
    viewer.open([str(f) for f in files], plugin=PLUGIN, stack=stack)
    assert [(layer.name, layer.data.shape) for layer in viewer.layers] == [("CT", (5, 10, 12))]


def test_file_open_of_a_tilted_series_paints_the_voxel_drawn(make_napari_viewer, tmp_path, make_ct):
    """A reader can only name napari's layer types; on a tilted series napari's own would
    paint slices off the one drawn. The layers File > Open makes (and the New labels
    layer button's, over them) work on the voxels drawn, as the docks' layers do."""
    from napari.layers import Image, Labels

    from napari_atlas_annotate._napari.shown_slice import (
        ShownSliceImage,
        ShownSliceLabels,
        voxel_shown_at,
    )

    volume = make_ct("oblique_axial", shape=(12, 30, 26))
    ct_path = save_nifti(volume, tmp_path / "tilted_ct.nii.gz")
    label_path = save_labels(np.zeros(volume.shape, np.uint8), volume, tmp_path / "labels.nii.gz")
    viewer = make_napari_viewer()
    [image] = viewer.open(ct_path, plugin=PLUGIN)
    [labels] = viewer.open(label_path, plugin=PLUGIN)
    assert type(image) is ShownSliceImage and type(labels) is ShownSliceLabels
    np.testing.assert_allclose(data_to_world_matrix(labels), DISPLAY_FROM_RAS @ volume.affine)

    viewer.layers.selection.active = image
    viewer._new_labels()
    assert type(viewer.layers[-1]) is ShownSliceLabels

    # the brush at a point drawn near the image's edge paints the voxel drawn there
    viewer.dims.set_point(0, labels.data_to_world((6, 0, 0))[0])
    shown = int(round(labels._data_slice.point[0]))
    plane = labels._data_to_world.set_slice([1, 2])((28, 2))
    world = (viewer.dims.point[0], *plane)
    drawn = voxel_shown_at(data_to_world_matrix(labels), world, (1, 2))
    assert drawn == (shown, 28, 2)
    labels.brush_size = 1
    labels.paint(np.round(labels.world_to_data(world)), 3)
    assert [tuple(v) for v in np.argwhere(labels.data == 3).tolist()] == [drawn]
    # napari's own layer maps the same point to another voxel: what this guards against
    own = np.round(
        Labels(labels.data, scale=labels.scale, affine=labels.affine).world_to_data(world)
    )
    assert tuple(int(v) for v in own) != drawn

    # an aligned series opens as napari's own layer
    aligned = save_nifti(make_ct("axial_SPL"), tmp_path / "aligned.nii.gz")
    [plain] = viewer.open(aligned, plugin=PLUGIN)
    assert type(plain) is Image
