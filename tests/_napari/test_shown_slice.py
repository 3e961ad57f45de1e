"""The brush, fill and polygon of :class:`ShownSliceLabels` paint the voxels napari draws
under the mouse, on a tilted series too (napari's own Labels paints the full inverse
transform of the mouse's point). Checked in napari's ViewerModel: no display needed."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel
from napari.layers import Image, Labels, Points, Shapes
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import (
    mouse_move_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)

from napari_atlas_annotate._napari.layers import data_to_world_matrix
from napari_atlas_annotate._napari.shown_slice import (
    ShownSliceImage,
    ShownSliceLabels,
    ShownSlicePoints,
    point_shown_at,
    view_couples_axes,
    voxel_shown_at,
    watch_for_tilted_layers,
    work_on_drawn_voxels,
)

pytestmark = pytest.mark.filterwarnings("ignore:Non-orthogonal slicing")

SHAPE = (40, 64, 64)


def _tilted(degrees: float = 20.0) -> np.ndarray:
    """A 3 mm-slice axial grid tilted about the left-right axis (a gantry tilt)."""
    t = np.deg2rad(degrees)
    affine = np.eye(4)
    affine[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    return affine @ np.diag([3.0, 0.8, 0.8, 1.0])


def _viewer_with(layer_type, affine, mode="paint"):
    viewer = ViewerModel()
    layer = viewer.add_layer(layer_type(np.zeros(SHAPE, np.uint8), affine=affine))
    layer.mode = mode
    layer.brush_size = 1
    layer.selected_label = 3
    viewer.dims.set_point(0, layer.data_to_world((20, 0, 0))[0])
    return viewer, layer


def _drawn_at(viewer, layer, row: int, col: int) -> tuple:
    """The world point where napari draws voxel (row, col) of the slice shown."""
    plane = layer._data_to_world.set_slice([1, 2])((row, col))
    return (viewer.dims.point[0], *plane)


def _click(layer, *worlds) -> None:
    """Press at the first point, drag through the others, release (a brush stroke)."""
    common = {"dims_displayed": [1, 2], "view_direction": None, "modifiers": []}
    mouse_press_callbacks(
        layer, read_only_mouse_event(type="mouse_press", position=worlds[0], **common)
    )
    for world in worlds[1:]:
        mouse_move_callbacks(
            layer,
            read_only_mouse_event(type="mouse_move", is_dragging=True, position=world, **common),
        )
    mouse_release_callbacks(
        layer, read_only_mouse_event(type="mouse_release", position=worlds[-1], **common)
    )


def test_the_drawn_voxel_of_an_aligned_grid_is_the_full_inverse():
    affine = np.diag([2.5, 0.7, -0.7, 1.0])
    affine[:3, 3] = (10.0, -4.0, 30.0)
    world = np.array([20.0, 3.1, 12.9])
    full = np.linalg.solve(affine[:3, :3], world - affine[:3, 3])
    np.testing.assert_allclose(point_shown_at(affine, world, (1, 2)), full)
    assert not view_couples_axes(affine, (1, 2))
    assert view_couples_axes(_tilted(), (1, 2))
    assert not view_couples_axes(_tilted(), (0, 1, 2))  # nothing hidden in 3D


def test_the_data_to_world_matrix_is_the_layers_transform():
    viewer, layer = _viewer_with(Labels, _tilted())
    layer.scale = (1.0, 2.0, 1.0)
    layer.translate = (5.0, 0.0, -3.0)
    matrix = data_to_world_matrix(layer)
    for voxel in [(0, 0, 0), (10, 20, 30), (39, 63, 1)]:
        np.testing.assert_allclose(
            matrix[:3, :3] @ voxel + matrix[:3, 3], layer.data_to_world(voxel), atol=1e-9
        )


def test_the_brush_paints_the_voxel_drawn_under_the_mouse_on_a_tilted_grid():
    drawn = {}
    for layer_type in (Labels, ShownSliceLabels):
        viewer, layer = _viewer_with(layer_type, _tilted())
        shown = int(round(layer._data_slice.point[0]))  # the slice napari draws
        world = _drawn_at(viewer, layer, 55, 32)
        assert voxel_shown_at(data_to_world_matrix(layer), world, (1, 2)) == (shown, 55, 32)
        _click(layer, world)
        drawn[layer_type] = (shown, [tuple(v) for v in np.argwhere(layer.data == 3).tolist()])
    shown, painted = drawn[ShownSliceLabels]
    assert painted == [(shown, 55, 32)]
    # napari's own layer paints elsewhere here: the case this class exists for
    shown, painted = drawn[Labels]
    assert painted and painted != [(shown, 55, 32)]


def test_a_stroke_stays_in_the_slice_drawn_and_undoes_in_one_step():
    viewer, layer = _viewer_with(ShownSliceLabels, _tilted(12.0))
    layer.brush_size = 3
    shown = int(round(layer._data_slice.point[0]))
    path = [_drawn_at(viewer, layer, 60, c) for c in (5, 20, 40, 58)]
    _click(layer, *path)
    painted = np.argwhere(layer.data == 3)
    assert len(painted) and set(painted[:, 0].tolist()) == {shown}
    assert set(painted[:, 1].tolist()) <= {59, 60, 61, 62, 63}
    assert painted[:, 2].min() <= 6 and painted[:, 2].max() >= 57  # the whole stroke
    layer.undo()
    assert not layer.data.any()


def test_fill_and_polygon_use_the_slice_drawn():
    viewer, layer = _viewer_with(ShownSliceLabels, _tilted(), mode="fill")
    shown = int(round(layer._data_slice.point[0]))
    data = np.zeros(SHAPE, np.uint8)
    data[:, 50:, :] = 1  # every slice has a region 1 at the bottom
    layer.data = data
    layer.contiguous = True
    _click(layer, _drawn_at(viewer, layer, 60, 10))
    changed = np.argwhere(layer.data == 3)
    assert set(changed[:, 0].tolist()) == {shown}
    assert (layer.data[shown, 50:] == 3).all()

    layer.data = np.zeros(SHAPE, np.uint8)
    vertices = [
        layer.world_to_data(_drawn_at(viewer, layer, r, c))
        for r, c in ((40, 10), (40, 30), (60, 30), (60, 10))
    ]
    layer.paint_polygon(vertices, 3)
    painted = np.argwhere(layer.data == 3)
    assert set(painted[:, 0].tolist()) == {shown}
    assert painted[:, 1].min() == 40 and painted[:, 1].max() == 60
    assert painted[:, 2].min() == 10 and painted[:, 2].max() == 30


def test_an_aligned_grid_and_the_3d_view_paint_as_napari_does():
    for affine, ndisplay in ((np.diag([3.0, 0.8, -0.8, 1.0]), 2), (_tilted(), 3)):
        layers = []
        for layer_type in (Labels, ShownSliceLabels):
            viewer, layer = _viewer_with(layer_type, affine)
            viewer.dims.ndisplay = ndisplay
            layer.paint((20.4, 30.2, 17.6), 3)
            layers.append(np.array(layer.data))
        np.testing.assert_array_equal(layers[0], layers[1])
        assert layers[1].any()


def test_napari_takes_it_for_a_labels_layer():
    """napari's key bindings, writers and layer copies go by the layer's type name."""
    viewer, layer = _viewer_with(ShownSliceLabels, _tilted())
    assert layer._type_string == "labels"
    assert layer.as_layer_data_tuple()[2] == "labels"
    assert isinstance(layer, Labels)


def test_the_value_under_the_mouse_is_the_drawn_voxels():
    """napari's status bar gives the value under the mouse (a CT's HU, a label): on a
    tilted grid it is read at the voxel drawn there, not slices away."""
    z, y, _ = np.indices(SHAPE)
    volume = (100 * z + y).astype(np.int16)  # the value says slice and row
    values = {}
    for layer_type in (Image, ShownSliceImage):
        viewer = ViewerModel()
        layer = viewer.add_layer(layer_type(volume, affine=_tilted()))
        viewer.dims.set_point(0, layer.data_to_world((20, 0, 0))[0])
        shown = int(round(layer._data_slice.point[0]))
        world = _drawn_at(viewer, layer, 55, 32)
        values[layer_type] = layer.get_value(
            world, view_direction=(1.0, 0.0, 0.0), dims_displayed=[1, 2], world=True
        )
        status = layer.get_status(
            world, view_direction=(1.0, 0.0, 0.0), dims_displayed=[1, 2], world=True
        )
    assert values[ShownSliceImage] == volume[shown, 55, 32]
    assert str(int(volume[shown, 55, 32])) in status["coordinates"]
    assert values[Image] != volume[shown, 55, 32]  # napari's own reads elsewhere here
    assert ShownSliceImage(volume)._type_string == "image"

    viewer, layer = _viewer_with(ShownSliceLabels, _tilted())
    layer.data[int(round(layer._data_slice.point[0])), 55, 32] = 7
    picked = layer.get_value(
        _drawn_at(viewer, layer, 55, 32),
        view_direction=(1.0, 0.0, 0.0),
        dims_displayed=[1, 2],
        world=True,
    )
    assert picked == 7


def test_a_point_is_added_on_the_voxel_drawn_under_the_mouse():
    """A reader places a subarticular point on an angled axial block: napari's own Points
    layer puts it at the full inverse transform of the click, slices off the one drawn."""
    added = {}
    for layer_type in (Points, ShownSlicePoints):
        viewer = ViewerModel()
        layer = viewer.add_layer(layer_type(np.empty((0, 3)), ndim=3, affine=_tilted(25.0)))
        image = viewer.add_layer(Image(np.zeros(SHAPE, np.uint8), affine=_tilted(25.0)))
        viewer.layers.selection.active = layer
        layer.mode = "add"
        viewer.dims.set_point(0, image.data_to_world((20, 0, 0))[0])
        shown = int(round(image._data_slice.point[0]))
        _click(layer, _drawn_at(viewer, image, 58, 30))
        added[layer_type] = (shown, layer.data.copy())
    shown, data = added[ShownSlicePoints]
    np.testing.assert_allclose(data, [[shown, 58, 30]], atol=1e-6)
    shown, data = added[Points]
    assert len(data) == 1 and round(float(data[0, 0])) != shown
    assert ShownSlicePoints(np.empty((0, 3)))._type_string == "points"


def test_napari_own_edits_write_only_their_voxels_on_a_tilted_grid():
    """napari's Labels.data_setitem also writes the new values of the slice at the full
    inverse transform of the dims point into the slice drawn (for uint8 labels a view of
    the data): on a tilted grid, after a scroll in another view, those differ and the slice
    drawn changed unlogged. Through the drawn voxel it is the same slice."""
    changed = {}
    for layer_type in (Labels, ShownSliceLabels):
        viewer, layer = _viewer_with(layer_type, _tilted())
        viewer.dims.set_point(1, layer.data_to_world((20, 63, 0))[1])  # a coronal scroll
        shown = int(round(layer._data_slice.point[0]))
        other = int(round(layer._data_to_world.inverse(viewer.dims.point)[0]))
        assert other != shown
        layer.data_setitem((np.full(5, other), np.arange(5) + 30, np.full(5, 32)), 4)
        changed[layer_type] = (shown, other, np.argwhere(layer.data == 4).tolist())
    shown, other, voxels = changed[ShownSliceLabels]
    assert voxels == [[other, 30 + i, 32] for i in range(5)]
    shown, other, voxels = changed[Labels]
    assert any(v[0] == shown for v in voxels)  # napari's own layer wrote the slice drawn


def test_a_dragged_point_follows_the_mouse_on_a_tilted_grid():
    """napari moves a dragged point by the mouse's motion in data coordinates: through the
    full inverse transform a 25-degree tilt shrank a drag along the rows by cos^2 (to 82 %)."""
    moved = {}
    for layer_type in (Points, ShownSlicePoints):
        viewer = ViewerModel()
        image = viewer.add_layer(Image(np.zeros(SHAPE, np.uint8), affine=_tilted(25.0)))
        viewer.dims.set_point(0, image.data_to_world((20, 0, 0))[0])
        shown = int(round(image._data_slice.point[0]))
        layer = viewer.add_layer(
            layer_type(np.array([[shown, 20.0, 30.0]]), ndim=3, affine=_tilted(25.0), size=3)
        )
        layer.mode = "select"
        layer.selected_data = {0}
        _click(layer, _drawn_at(viewer, image, 20, 30), _drawn_at(viewer, image, 40, 30))
        moved[layer_type] = layer.data[0].copy()
    np.testing.assert_allclose(moved[ShownSlicePoints][1:], [40.0, 30.0], atol=1e-6)
    assert abs(moved[Points][1] - 40.0) > 1.0  # napari's own layer lags behind the mouse


def test_a_plain_layer_of_a_tilted_grid_is_made_to_work_on_the_voxels_drawn():
    viewer, layer = _viewer_with(Labels, _tilted())
    data = layer.data
    assert work_on_drawn_voxels(layer)
    assert type(layer) is ShownSliceLabels and layer._type_string == "labels"
    assert layer.data is data  # the same layer, data kept
    shown = int(round(layer._data_slice.point[0]))
    _click(layer, _drawn_at(viewer, layer, 40, 10))
    assert [tuple(v) for v in np.argwhere(layer.data == 3).tolist()] == [(shown, 40, 10)]
    layer.undo()
    assert not layer.data.any()
    # aligned grids and other layer types stay napari's own
    _, aligned = _viewer_with(Labels, np.diag([3.0, 0.8, 0.8, 1.0]))
    assert not work_on_drawn_voxels(aligned) and type(aligned) is Labels
    shapes = Shapes(affine=_tilted(), ndim=3)
    assert not work_on_drawn_voxels(shapes) and type(shapes) is Shapes


def test_a_watched_viewer_makes_each_tilted_layer_added_work_on_the_voxels_drawn():
    viewer = ViewerModel()
    watch_for_tilted_layers(viewer)
    watch_for_tilted_layers(viewer)  # once is enough; a second call adds nothing
    image = viewer.add_image(np.zeros(SHAPE, np.int16), affine=_tilted())
    points = viewer.add_points(np.empty((0, 3)), affine=_tilted())
    labels = viewer.add_labels(np.zeros(SHAPE, np.uint8), affine=_tilted())
    plain = viewer.add_labels(np.zeros(SHAPE, np.uint8), scale=(3.0, 0.8, 0.8))
    assert [type(x) for x in (image, points, labels, plain)] == [
        ShownSliceImage,
        ShownSlicePoints,
        ShownSliceLabels,
        Labels,
    ]
    # napari's own copy of a layer (what "Duplicate Layer" does) is made one as well
    copy = viewer.add_layer(Labels.create(*labels.as_layer_data_tuple()))
    assert type(copy) is ShownSliceLabels
    # another viewer is not watched
    other = ViewerModel().add_labels(np.zeros(SHAPE, np.uint8), affine=_tilted())
    assert type(other) is Labels


def test_without_napari_private_slicing_state_the_layers_work_as_napari_own(monkeypatch):
    """A napari that renamed Layer._slice_input / _data_to_world: the shown-slice layers
    paint as napari's own Labels does, and say so once, instead of failing on every move."""
    from napari.layers.base.base import Layer

    from napari_atlas_annotate._napari import shown_slice

    viewer, layer = _viewer_with(ShownSliceLabels, _tilted())
    reference_viewer, reference = _viewer_with(Labels, _tilted())
    world = _drawn_at(viewer, layer, 55, 32)
    monkeypatch.delattr(Layer, "_slice_input")
    monkeypatch.setattr(shown_slice, "_WARNED", [])
    with pytest.warns(UserWarning, match="tilted") as caught:
        np.testing.assert_allclose(layer.world_to_data(world), reference.world_to_data(world))
        layer.world_to_data(world)
    assert len(caught) == 1
