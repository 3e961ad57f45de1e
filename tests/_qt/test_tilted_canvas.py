"""The brush and the value under the mouse driven by real Qt mouse events on napari's
canvas (vispy's canvas -> world mapping included), on a tilted CT and an axis-aligned one:
the stroke lands in the slice drawn, under the pixels the mouse went over, is logged as
painted and undone by Ctrl-Z, and the status bar gives the HU of the voxel drawn."""

from __future__ import annotations

import numpy as np
import pytest

from .test_annotator_grow import LIVER, _tilted_project

pytestmark = [pytest.mark.qt, pytest.mark.filterwarnings("ignore:Non-orthogonal slicing")]

annotator = pytest.importorskip("napari_atlas_annotate._qt.annotator")


def _drawn_at(viewer, layer, row: int, col: int) -> tuple:
    """The world point where napari draws voxel (row, col) of the slice shown."""
    return (viewer.dims.point[0], *layer._data_to_world.set_slice([1, 2])((row, col)))


def _canvas_xy(viewer, world) -> tuple[float, float]:
    """The canvas pixel (x, y) of a world point: the inverse of vispy's canvas -> world
    mapping napari gives its mouse events."""
    view = viewer.window._qt_viewer.canvas.view
    x, y = (view.transform * view.scene.transform).map([world[2], world[1]])[:2]
    return float(x), float(y)


def _move(qtbot, viewer, point, world, held=False) -> None:
    """Move the mouse to a canvas pixel (``held``: the left button down) and check napari
    took the move. The move is sent straight to the canvas: QTest's moves without a
    button move X's pointer, which sends nothing when it is there already."""
    from qtpy.QtCore import QEvent, QPointF, Qt
    from qtpy.QtGui import QMouseEvent
    from qtpy.QtWidgets import QApplication

    canvas = viewer.window._qt_viewer.canvas.native
    buttons = Qt.MouseButton.LeftButton if held else Qt.MouseButton.NoButton
    qtbot.wait(15)  # vispy drops moves less than 10 ms after the last one
    move = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(point),
        QPointF(canvas.mapToGlobal(point)),
        Qt.MouseButton.NoButton,
        buttons,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(canvas, move)
    assert np.allclose(viewer.cursor.position, world, atol=1.0), (point, world)


def _wait_for_a_steady_canvas(qtbot, canvas) -> None:
    sizes = [None]
    for _ in range(60):
        qtbot.wait(50)
        sizes.append((canvas.width(), canvas.height()))
        if len(sizes) > 4 and len(set(sizes[-4:])) == 1:
            return
    raise AssertionError(f"the canvas kept changing size: {sizes[-6:]}")


@pytest.mark.parametrize("degrees", [20.0, 0.0], ids=["tilted-20", "aligned"])
def test_a_mouse_stroke_on_the_canvas_paints_under_the_pixels_it_went_over(
    make_napari_viewer, tmp_path, qtbot, degrees
):
    from qtpy.QtCore import QPoint, Qt

    from napari_atlas_annotate.project import replay

    project = _tilted_project(tmp_path, degrees)
    viewer = make_napari_viewer(show=True)
    dock = annotator.add_annotator_dock(viewer, project, "alice")
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.waitExposed(viewer.window._qt_window)
    _wait_for_a_steady_canvas(qtbot, canvas)  # the dock's layout resizes it once shown
    viewer.reset_view()
    layer, image = dock.labels_layer, dock.image_layer
    proposal, hu = np.array(layer.data), np.asarray(image.data)
    dock.select_class(LIVER)
    layer.brush_size = 1
    viewer.dims.set_point(0, layer.data_to_world((6, 0, 0))[0])
    shown = int(round(layer._data_slice.point[0]))
    row, cols = 30, range(8, 31, 2)  # through the body's back, where the proposal has no liver
    worlds = [_drawn_at(viewer, layer, row, c) for c in cols]
    full = {tuple(np.round(layer._data_to_world.inverse(w)).astype(int))[:2] for w in worlds}
    if degrees:  # napari's own brush would paint slices and rows away from the stroke here
        assert all(voxel != (shown, row) for voxel in full)
    else:
        assert full == {(shown, row)}
    pixels = [_canvas_xy(viewer, w) for w in worlds]
    points = [QPoint(round(x), round(y)) for x, y in pixels]
    assert all(0 < p.x() < canvas.width() and 0 < p.y() < canvas.height() for p in points)
    before = viewer.screenshot(canvas_only=True, flash=False)

    _move(qtbot, viewer, points[0], worlds[0])
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=points[0])
    for point, world in zip(points[1:], worlds[1:], strict=True):
        _move(qtbot, viewer, point, world, held=True)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=points[-1])
    dock.hook.flush()

    # (a) the whole stroke, in the slice drawn, on the row the mouse went along
    changed = {tuple(v) for v in np.argwhere(layer.data != proposal).tolist()}
    assert changed == {(shown, row, c) for c in range(cols[0], cols[-1] + 1)}
    # (b) the colour changed under every pixel the mouse went over, and only near them
    after = viewer.screenshot(canvas_only=True, flash=False)
    assert after.shape == before.shape
    ratio = after.shape[0] / canvas.height()  # screenshot pixels per canvas pixel
    recoloured = np.abs(after[..., :3].astype(int) - before[..., :3]).sum(-1) > 30
    for x, y in pixels:
        assert recoloured[round(y * ratio), round(x * ratio)]
    ys, xs = np.nonzero(recoloured)
    voxel = abs(pixels[1][0] - pixels[0][0]) / 2  # a voxel's width on the canvas
    assert ys.min() >= (pixels[0][1] - voxel) * ratio and ys.max() <= (pixels[0][1] + voxel) * ratio
    assert xs.min() >= (pixels[0][0] - voxel) * ratio
    assert xs.max() <= (pixels[-1][0] + voxel) * ratio
    # (c) logged as painted
    assert project.events("tilted", "alice")[-1].tool == "paint"
    np.testing.assert_array_equal(replay(proposal, project.events("tilted", "alice")), layer.data)
    # (d) Ctrl-Z on the canvas undoes the stroke
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(layer.data, proposal)
    dock.hook.flush()
    assert project.events("tilted", "alice")[-1].tool == "undo"
    np.testing.assert_array_equal(replay(proposal, project.events("tilted", "alice")), proposal)

    # the status bar's value over the CT is the HU of the voxel drawn under the mouse (on
    # the tilted CT, at a voxel whose HU differs from the full inverse transform's)
    (other_slice, other_row), *_ = full
    target = next(
        i
        for i, c in enumerate(cols)
        if not degrees or hu[shown, row, c] != hu[other_slice, other_row, c]
    )
    expected = str(hu[shown, row, cols[target]])
    viewer.layers.selection.active = image
    _move(qtbot, viewer, points[target], worlds[target])
    # what napari's status thread (off in tests) computes for the status bar on a mouse move
    status, _ = viewer._calc_status_from_cursor()
    assert status["value"] == expected
