"""*3 views* in the annotator dock: coronal and sagittal views beside the axial one
(napari-orthogonal-views), where edits are logged like the main view's and G grows from
the voxel under the mouse in the view it is over."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from napari_atlas_annotate.project import Project, replay

from .conftest import _phantom

pytestmark = pytest.mark.qt

annotator = pytest.importorskip("napari_atlas_annotate._qt.annotator")
orthogonal_views = pytest.importorskip("napari_atlas_annotate._qt.orthogonal_views")

LIVER = 5


def _side_views(viewer) -> list:
    """The two orthogonal views' viewer models (napari-orthogonal-views)."""
    from napari_orthogonal_views.ortho_view_manager import _get_manager

    manager = _get_manager(viewer)
    assert manager.is_shown()
    return [w.vm_container.viewer_model for w in (manager.right_widget, manager.bottom_widget)]


def _copy(view, layer):
    [shown] = [other for other in view.layers if other.data is layer.data]
    return shown


@pytest.fixture
def three_views(make_napari_viewer, organ_project):
    pytest.importorskip("napari_orthogonal_views")
    viewer = make_napari_viewer(show=True)
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    assert dock.three_views.isEnabled()
    dock.three_views.setChecked(True)
    assert dock.last_error is None
    return viewer, dock


def test_the_side_views_are_turned_as_radiologists_read_them(three_views):
    """Sagittal: head up, face left; coronal: head up, the patient's left on the right
    (world axes S, P, L; napari draws a growing axis down and to the right)."""
    viewer, _ = three_views
    shown = {}
    for view in _side_views(viewer):
        labels = view.dims.axis_labels
        vertical, horizontal = (labels[axis] for axis in view.dims.order[-2:])
        orientation = orthogonal_views.camera(view).orientation2d
        shown[(vertical, horizontal)] = tuple(str(o) for o in orientation)
    assert shown == {("S", "P"): ("up", "right"), ("S", "L"): ("up", "right")}


def test_edits_in_a_side_view_are_logged_and_replay_to_the_submitted_label(
    three_views, organ_project
):
    viewer, dock = three_views
    sagittal = _copy(_side_views(viewer)[0], dock.labels_layer)
    assert sagittal is not dock.labels_layer
    sagittal.selected_label = 1
    sagittal.mode = "paint"
    with sagittal.block_history():  # one stroke in the side view
        sagittal.paint((6, 20, 20), 1)
    stroke = np.array(dock.labels_layer.data)
    assert stroke[6, 20, 20] == 1  # the main view's label has it
    sagittal.undo()
    np.testing.assert_array_equal(dock.labels_layer.data, organ_project.proposals["ct000"])
    sagittal.redo()
    np.testing.assert_array_equal(dock.labels_layer.data, stroke)

    version = dock.submit()
    assert dock.last_error is None
    project = Project(organ_project.folder)
    stored = project.read_mask(version)
    np.testing.assert_array_equal(stored, stroke)
    events = project.events("ct000", "alice", base_version_id=organ_project.proposal_ids["ct000"])
    assert [e.tool for e in events] == ["paint", "undo", "redo"]
    assert events[0].class_id == 1
    np.testing.assert_array_equal(replay(organ_project.proposals["ct000"], events), stored)
    project.close()


def test_paint_only_inside_window_trims_a_side_views_stroke(three_views, qtbot):
    viewer, dock = three_views
    image = np.asarray(dock.image_layer.data)
    coronal = _copy(_side_views(viewer)[1], dock.labels_layer)
    dock.select_class(LIVER)
    dock.window_check.setChecked(True)
    dock.window_lo.setValue(0)
    dock.window_hi.setValue(150)
    before = np.array(dock.labels_layer.data)
    coronal.brush_size = 5
    with coronal.block_history():
        coronal.paint((4, 22, 22), LIVER)
        coronal.paint((4, 22, 26), LIVER)
    qtbot.waitUntil(lambda: dock.hook.events[-1].tool == "threshold_paint", timeout=3000)
    changed = before != dock.labels_layer.data
    assert changed.any() and (dock.labels_layer.data[changed] == LIVER).all()
    assert ((image[changed] >= 0) & (image[changed] <= 150)).all()
    assert [e.tool for e in dock.hook.events[-2:]] == ["paint", "threshold_paint"]
    coronal.undo()  # the stroke and its trim are one step
    np.testing.assert_array_equal(dock.labels_layer.data, before)


def test_the_side_views_follow_the_case_opened(three_views):
    viewer, dock = three_views
    dock.step_case(+1)
    assert dock.case_id == "ct001"
    for view in _side_views(viewer):
        assert _copy(view, dock.labels_layer).name == "ct001 labels"
    dock.three_views.setChecked(False)
    assert dock.last_error is None and len(viewer.layers) == 2


def test_g_grows_from_the_voxel_under_the_mouse_in_a_side_view(three_views, monkeypatch):
    """The mouse over the sagittal view: G starts at the voxel under it there, not where
    the mouse last was in the main view."""
    import napari_orthogonal_views.viewer_utils as viewer_utils

    viewer, dock = three_views
    layer = dock.labels_layer
    _, truth = _phantom(seed=0)
    missed = np.argwhere((truth == LIVER) & (np.asarray(layer.data) == 0))
    seed = tuple(int(v) for v in missed[len(missed) // 2])
    sagittal = _side_views(viewer)[0]
    sagittal.cursor.position = tuple(layer.data_to_world(seed))
    viewer.cursor.position = tuple(layer.data_to_world((0, 0, 0)))  # air, in the main view
    monkeypatch.setattr(viewer_utils, "viewer_model_under_mouse", lambda: sagittal)
    dock.select_class(LIVER)

    assert dock.grow_at_cursor(), dock.last_error
    dock.hook.flush()
    grow = dock.hook.events[-1]
    assert grow.tool == "grow" and tuple(grow.detail["seed"]) == seed
    assert layer.data[seed] == LIVER


def test_without_the_plugin_the_box_says_how_to_install_it(
    make_napari_viewer, organ_project, monkeypatch
):
    monkeypatch.setitem(sys.modules, "napari_orthogonal_views", None)  # import fails
    monkeypatch.setitem(sys.modules, "napari_orthogonal_views.ortho_view_manager", None)
    monkeypatch.setitem(sys.modules, "napari_orthogonal_views.viewer_utils", None)
    assert not orthogonal_views.available()
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    assert not dock.three_views.isEnabled()
    assert "pip install 'napari-atlas-annotate[ortho]'" in dock.three_views.toolTip()
    dock.show_three_views(True)  # reported in the dock, not raised
    assert "napari-orthogonal-views" in dock.last_error
    # and G still works from the main view
    assert orthogonal_views.pointed_view(viewer, dock.labels_layer) == (viewer, dock.labels_layer)


def test_undo_in_a_side_view_never_reaches_back_into_the_last_case(three_views):
    """The dock empties napari's undo history when the next case opens in the same layer;
    a side view's copy must not keep the last case's strokes to undo onto the new case."""
    viewer, dock = three_views
    layer = dock.labels_layer
    layer.selected_label = 1
    with layer.block_history():
        layer.paint((6, 20, 20), 1)
    dock.step_case(+1)
    assert dock.case_id == "ct001"
    opened = np.array(dock.labels_layer.data)
    for view in _side_views(viewer):
        _copy(view, dock.labels_layer).undo()
    np.testing.assert_array_equal(dock.labels_layer.data, opened)


def test_a_plugin_version_without_its_manager_is_reported(
    make_napari_viewer, organ_project, monkeypatch
):
    ortho_view_manager = pytest.importorskip("napari_orthogonal_views.ortho_view_manager")
    monkeypatch.delattr(ortho_view_manager, "_get_manager")
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    dock.show_three_views(True)  # reported in the dock, not raised
    assert "not one the '3 views' box can drive" in dock.last_error
    assert "napari-orthogonal-views>=0.5,<0.6" in dock.last_error


def _zooms(viewer) -> list[float]:
    return [orthogonal_views.camera(view).zoom for view in _side_views(viewer)]


def _fitted_zooms(viewer) -> list[float]:
    """Each side view's zoom when fitted to its pane as it is now (the home button)."""
    for view in _side_views(viewer):
        view.reset_view()
    return _zooms(viewer)


def test_the_side_views_fill_their_panes_once_laid_out_and_keep_a_users_zoom(three_views, qtbot):
    """The panes get their size only after the plugin shows them; a view fitted then was
    drawn too small (or cut off) until the home button was pressed."""
    viewer, _ = three_views
    window = viewer.window._qt_window
    for size in [(1300, 900), (1000, 700)]:  # a smaller window: still fitted
        window.resize(*size)
        qtbot.wait(300)
        shown = _zooms(viewer)
        assert shown == pytest.approx(_fitted_zooms(viewer))

    sagittal = _side_views(viewer)[0]
    orthogonal_views.camera(sagittal).zoom *= 2  # the user zooms in on the sagittal view
    zoomed = orthogonal_views.camera(sagittal).zoom
    window.resize(1300, 900)
    qtbot.wait(300)
    assert orthogonal_views.camera(sagittal).zoom == zoomed
