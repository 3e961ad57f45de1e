"""G / Shift+G and the brush in the annotator dock on series napari shows in other ways
than an axial identity grid: a tilted (oblique) CT, whose 2D slices napari draws without
their out-of-slice rotation."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.volume import Volume

from .conftest import _phantom

pytestmark = [pytest.mark.qt, pytest.mark.filterwarnings("ignore:Non-orthogonal slicing")]

annotator = pytest.importorskip("napari_atlas_annotate._qt.annotator")

LIVER = 5


def _tilted_project(root, degrees: float = 20.0) -> Project:
    """One phantom CT tilted about the patient's left-right axis (a gantry tilt), its
    proposal the truth without the liver."""
    image, truth = _phantom(seed=0)
    t = np.deg2rad(degrees)
    tilt = np.eye(4)
    tilt[1:3, 1:3] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    tilted = Volume(image.array, tilt @ np.asarray(image.affine, float), modality="CT")
    project = Project.create(root / "project", task="organs")
    path = save_nifti(tilted, root / "tilted.nii.gz")
    project.add_case("tilted", [ImageRef(str(path), "CT")])
    proposal = truth.copy()
    proposal[proposal == LIVER] = 0
    project.save_mask_version("tilted", proposal, kind="proposal", model_version="test")
    project.close()
    return Project(root / "project")


def test_g_on_a_tilted_ct_grows_from_the_voxel_shown_under_the_mouse(make_napari_viewer, tmp_path):
    """napari shows a tilted CT's slice k flat, so the voxel drawn under the mouse is in
    slice k, not where the full inverse transform of the mouse's point falls (a few slices
    away at the image's edge): G starts where the radiologist points."""
    project = _tilted_project(tmp_path)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, project, "alice")
    layer = dock.labels_layer
    image, truth = _phantom(seed=0)
    dock.select_class(LIVER)
    viewer.dims.set_point(0, layer.data_to_world((6, 0, 0))[0])
    # a liver voxel of the slice shown, far enough from the rotation's centre that the
    # tilt moves the full inverse transform's slice off the one shown
    shown_slice = int(round(layer._data_slice.point[0]))
    liver = np.argwhere(truth[shown_slice] == LIVER)
    for y, x in liver[np.argsort(-np.abs(liver[:, 0] - 20))]:
        # where napari draws voxel (shown_slice, y, x): its displayed-axes transform only
        plane = layer._data_to_world.set_slice([1, 2])((y, x))
        world = (viewer.dims.point[0], *plane)
        if int(round(layer._data_to_world.inverse(world)[0])) != shown_slice:
            break
    else:
        pytest.skip("no liver voxel where the tilt moves the slice")
    viewer.cursor.position = world

    assert dock.grow_at_cursor(), dock.last_error
    dock.hook.flush()
    grow = project.events("tilted", "alice")[-1]
    assert grow.tool == "grow"
    assert tuple(grow.detail["seed"]) == (shown_slice, int(y), int(x))
    assert layer.data[shown_slice, y, x] == LIVER


def test_the_brush_on_a_tilted_ct_paints_the_slice_drawn_and_logs_it(
    make_napari_viewer, tmp_path, qtbot
):
    """napari's own brush paints the full inverse transform of the mouse's point: on this
    20-degree CT slices and rows away from the voxel drawn under the mouse, out of the
    radiologist's sight. The dock's labels layer paints the voxels drawn, the stroke is
    logged as painted, and napari's own keys (E: eraser) still work on it."""
    from napari.utils._test_utils import read_only_mouse_event
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks
    from qtpy.QtCore import Qt

    from napari_atlas_annotate.project import replay

    project = _tilted_project(tmp_path)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, project, "alice")
    assert "tilted 20\u00b0" in dock.status.text()
    layer = dock.labels_layer
    proposal = np.array(layer.data)
    dock.select_class(LIVER)
    layer.brush_size = 1
    viewer.dims.set_point(0, layer.data_to_world((6, 0, 0))[0])
    shown = int(round(layer._data_slice.point[0]))
    # a background voxel of the slice shown where napari's full inverse lands elsewhere
    for y, x in np.argwhere(proposal[shown] == 0)[::7]:
        plane = layer._data_to_world.set_slice([1, 2])((y, x))
        world = (viewer.dims.point[0], *plane)
        if tuple(np.round(layer._data_to_world.inverse(world)).astype(int)) != (shown, y, x):
            break
    else:
        pytest.skip("no voxel where the tilt moves the full inverse transform")
    common = {"dims_displayed": [1, 2], "view_direction": None, "modifiers": []}
    for kind, call in (("mouse_press", mouse_press_callbacks), ("mouse_release", None)):
        event = read_only_mouse_event(type=kind, position=world, **common)
        (call or mouse_release_callbacks)(layer, event)
    dock.hook.flush()

    changed = np.argwhere(layer.data != proposal)
    assert [tuple(v) for v in changed.tolist()] == [(shown, int(y), int(x))]
    assert layer.data[shown, y, x] == LIVER
    np.testing.assert_array_equal(replay(proposal, project.events("tilted", "alice")), layer.data)

    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_E)
    assert layer.mode == "erase"


def test_an_edit_on_a_tilted_ct_changes_only_what_it_logs(make_napari_viewer, tmp_path):
    """napari's Labels.data_setitem copies the new values of the slice its full inverse
    transform picks into the slice drawn, a view of the data for uint8 labels; on a tilted
    series the two differ. The dock's tools write their voxels as one undo atom instead."""
    from napari_atlas_annotate.project import replay

    project = _tilted_project(tmp_path)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, project, "alice")
    layer = dock.labels_layer
    proposal = np.array(layer.data)
    # the radiologist scrolled a coronal view to the front of the body, then went back to
    # the axial view (napari keeps each axis' point)
    viewer.dims.order = (1, 0, 2)
    viewer.dims.set_point(1, layer.data_to_world((0, 0, 0))[1])
    viewer.dims.order = (0, 1, 2)
    shown = int(round(layer._data_slice.point[0]))
    # the full inverse transform of the dims point: napari's Labels wrote that slice's
    # texture on data_setitem
    other = int(round(layer._data_to_world.inverse(viewer.dims.point)[0]))
    assert other != shown
    new = proposal.copy()
    new[other] = LIVER  # a whole slice not shown becomes liver (as a wide grow would)
    dock.hook.apply_labels(new, "grow", LIVER)
    dock.hook.flush()
    logged = replay(proposal, project.events("tilted", "alice"))
    np.testing.assert_array_equal(layer.data[shown], proposal[shown])  # not edited
    np.testing.assert_array_equal(logged, layer.data)
    layer.undo()  # one step back to the proposal, the slice shown included
    np.testing.assert_array_equal(layer.data, proposal)
    layer.redo()
    np.testing.assert_array_equal(layer.data, logged)


def test_a_grow_from_a_voxel_unlike_the_class_says_so(make_napari_viewer, organ_project):
    """G over fat beside the liver grows fat as liver: the status line says how much (ml)
    and that the liver labelled around is of another intensity, so the radiologist looks
    before going on."""
    from scipy import ndimage

    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    layer = dock.labels_layer
    image, truth = _phantom(seed=0)
    proposal = organ_project.proposals["ct000"]
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = True
    beside = ndimage.binary_dilation(proposal == LIVER, in_plane, iterations=2)
    beside &= proposal == 0
    fat = np.argwhere(beside & (truth == 0) & (image.array < -60))
    assert len(fat)
    seed = tuple(int(i) for i in fat[0])
    dock.select_class(LIVER)
    world = layer.data_to_world(seed)
    viewer.dims.set_point(0, world[0])
    viewer.cursor.position = tuple(world)
    assert dock.grow_at_cursor(), dock.last_error
    status = dock.status.text()
    assert "voxels added to the liver (" in status and " ml, like " in status
    liver_hu = float(np.median(image.array[proposal == LIVER]))
    assert "the liver labelled around it is about" in status and "was the mouse on" in status
    assert abs(liver_hu) > 30  # the phantom's liver is not fat-like


def test_g_does_not_edit_a_case_hidden_under_the_review_docks_layers(
    make_napari_viewer, organ_project, tmp_path
):
    """The lead opens a case in the review dock of the same viewer: its layers cover the
    annotator's. G over them (the review dock is what the lead works in) grew the
    annotator's own case, out of sight; it says what covers the case instead, and grows
    once those layers are hidden."""
    from napari_atlas_annotate._qt.review import ReviewDock

    from .conftest import make_two_reader_project

    two_readers, _ = make_two_reader_project(tmp_path / "review")
    try:
        viewer = make_napari_viewer()
        dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
        layer = dock.labels_layer
        review = ReviewDock(viewer, two_readers, lead="lead")
        viewer.window.add_dock_widget(review, name="Review")
        assert review.load_case(review.case_ids()[0]), review.last_error
        _, truth = _phantom(seed=0)
        missed = (truth == LIVER) & (organ_project.proposals["ct000"] == 0)
        seed = tuple(int(i) for i in np.argwhere(missed)[0])
        world = layer.data_to_world(seed)
        viewer.dims.set_point(0, world[0])
        viewer.cursor.position = tuple(world)
        dock.select_class(LIVER)
        before = np.array(layer.data)

        assert dock.grow_at_cursor() is None
        np.testing.assert_array_equal(layer.data, before)
        assert "review" in dock.last_error.lower() or "covers" in dock.last_error
        assert dock.case_id in dock.last_error

        for other in review.layers:
            other.visible = False
        assert dock.grow_at_cursor() > 0
    finally:
        two_readers.close()


def test_a_tilted_series_is_pointed_out_when_its_case_opens(make_napari_viewer, tmp_path):
    project = _tilted_project(tmp_path)
    dock = annotator.add_annotator_dock(make_napari_viewer(), project, "alice")
    assert dock.case_id == "tilted"
    assert "tilted 20\u00b0 against the view" in dock.status.text()
    assert "brush paints the voxels drawn" in dock.status.text()
