"""The voxel a 2D view draws under the mouse, and a Labels layer that paints there.

napari draws a slice of a 3D layer flat: it picks the slice with the inverse transform of
the axes not displayed alone, and draws it with the transform of the displayed axes alone,
dropping the out-of-slice rotation of a tilted series (a gantry-tilted or oblique CT). Its
brush, fill bucket and polygon, though, paint at the full inverse transform of the mouse's
point. On a grid aligned with the view both are the same voxel; on a tilted one the full
inverse lands slices and rows away from the voxel drawn under the mouse near the image's
edges (slice 227 painted with 228 drawn on a 12-degree CT), so a stroke appears nowhere the
radiologist can see it. The value napari's status bar gives under the mouse (HU, label) is
read there too.

:class:`ShownSliceLabels` is napari's Labels layer with ``paint``, ``fill`` and
``paint_polygon`` taking the voxel drawn under the mouse instead, and
:class:`ShownSliceImage` napari's Image layer; both read values under the mouse at the
voxel drawn. Everything else (undo, the paint events the edit log records, the brush's
shape and size) is napari's own.

Examples
--------
>>> tilted = np.eye(4); tilted[1, 0] = 0.5   # each slice drawn half a row further down
>>> voxel_shown_at(tilted, (4.0, 3.0, 2.0), displayed=(1, 2))
(4, 3, 2)
>>> [round(float(v), 3) for v in point_shown_at(tilted, (4.0, 3.0, 2.0), displayed=(1, 2))]
[4.0, 3.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from napari.layers import Image, Labels, Points


def data_to_world_matrix(layer) -> np.ndarray:
    """The ``(n + 1, n + 1)`` matrix of a napari layer's data-to-world transform (scale,
    translate and affine together)."""
    ndim = layer.ndim
    origin = np.asarray(layer.data_to_world(np.zeros(ndim)), float)
    matrix = np.eye(ndim + 1)
    matrix[:-1, -1] = origin
    for axis in range(ndim):
        matrix[:-1, axis] = np.asarray(layer.data_to_world(np.eye(ndim)[axis]), float) - origin
    return matrix


def point_shown_at(
    data_to_world: np.ndarray, world: Sequence[float], displayed: Sequence[int]
) -> np.ndarray:
    """The data coordinates (float) a 2D view draws at the point ``world``.

    Parameters
    ----------
    data_to_world
        The layer's ``(n + 1, n + 1)`` data-to-world matrix.
    world
        The point (world coordinates, every axis; the axes not displayed at the slider).
    displayed
        The axes the view displays.
    """
    matrix = np.asarray(data_to_world, float)
    n = matrix.shape[0] - 1
    point = np.asarray(world, float)
    shown = [int(a) for a in displayed]
    hidden = [a for a in range(n) if a not in shown]
    inverse = np.linalg.inv(matrix)
    coords = np.empty(n)
    coords[hidden] = inverse[np.ix_(hidden, hidden)] @ point[hidden] + inverse[hidden, n]
    coords[shown] = np.linalg.solve(matrix[np.ix_(shown, shown)], point[shown] - matrix[shown, n])
    return coords


def voxel_shown_at(
    data_to_world: np.ndarray, world: Sequence[float], displayed: Sequence[int]
) -> tuple[int, ...]:
    """The voxel a 2D view draws at the point ``world`` (see :func:`point_shown_at`)."""
    return tuple(int(v) for v in np.round(point_shown_at(data_to_world, world, displayed)))


def slice_world_position(
    data_to_world: np.ndarray, data_index: Sequence[float], axis: int
) -> float:
    """The world position along ``axis`` (the one axis a 2D view does not display) at
    which napari draws the slice through ``data_index``.

    napari picks the slice from the world position along that axis alone, so on a tilted
    grid the world position of ``data_index`` itself (which the in-plane position moves)
    would draw another slice, the further from the grid's middle the more.

    Examples
    --------
    >>> tilted = np.diag([2.0, 1.0, 1.0, 1.0]); tilted[0, 1] = 0.5  # z moves with the row
    >>> slice_world_position(tilted, (3.0, 8.0, 2.0), axis=0)  # voxel (3, 8, 2) is at z 10
    6.0
    """
    inverse = np.linalg.inv(np.asarray(data_to_world, float))
    n = inverse.shape[0] - 1
    return float((float(data_index[axis]) - inverse[axis, n]) / inverse[axis, axis])


def view_couples_axes(data_to_world: np.ndarray, displayed: Sequence[int]) -> bool:
    """True when the transform mixes displayed and hidden axes (a tilted grid), so the
    full inverse transform of a point and the voxel drawn there can differ."""
    matrix = np.asarray(data_to_world, float)
    n = matrix.shape[0] - 1
    shown = [int(a) for a in displayed]
    hidden = [a for a in range(n) if a not in shown]
    if not hidden:
        return False
    scale = np.abs(matrix[:-1, :-1]).max()
    mixed = (
        np.abs(matrix[np.ix_(shown, hidden)]).max() + np.abs(matrix[np.ix_(hidden, shown)]).max()
    )
    return bool(mixed > 1e-9 * scale)


class _DrawnVoxel:
    """Layer mixin: what napari hands over as the full inverse transform of the mouse's
    point goes to the voxel drawn there (:meth:`_as_shown`), and a 2D view's value under
    the mouse (napari's status bar, the labels picker, the point hovered) is read there."""

    def _as_shown(self, coords: np.ndarray, snap_hidden: bool = False) -> np.ndarray:
        """Data coordinates (rows of points) of the full inverse transform -> drawn voxels
        (``snap_hidden``: on the drawn slice itself, whole voxels along the hidden axes)."""
        coords = np.asarray(coords, float)
        if self._slice_input.ndisplay != 2:
            return coords
        displayed = list(self._slice_input.displayed)
        matrix = data_to_world_matrix(self)
        if not view_couples_axes(matrix, displayed):
            return coords
        points = np.atleast_2d(coords)
        world = points @ matrix[:-1, :-1].T + matrix[:-1, -1]
        shown = np.stack([point_shown_at(matrix, w, displayed) for w in world])
        if snap_hidden:
            hidden = [a for a in range(shown.shape[1]) if a not in displayed]
            shown[:, hidden] = np.round(shown[:, hidden])
        return shown.reshape(coords.shape)

    def get_value(self, position, *, view_direction=None, dims_displayed=None, world=False):
        if world and dims_displayed is not None and len(dims_displayed) == 2:
            if len(position) == self.ndim:
                matrix = data_to_world_matrix(self)
                if view_couples_axes(matrix, dims_displayed):
                    position, world = point_shown_at(matrix, position, dims_displayed), False
        return super().get_value(
            position, view_direction=view_direction, dims_displayed=dims_displayed, world=world
        )


class ShownSliceImage(_DrawnVoxel, Image):
    """napari's Image layer whose value under the mouse (the CT's HU in the status bar)
    is the voxel drawn there, also on a tilted series."""

    @property
    def _type_string(self) -> str:
        return "image"  # napari derives it from the class name; its keys and writers use it


class ShownSliceLabels(_DrawnVoxel, Labels):
    """napari's Labels layer whose brush, fill bucket and polygon paint the voxels the 2D
    view draws under the mouse, also on a tilted series (see the module docs).

    napari hands these methods the full inverse transform of the mouse's point; each
    coordinate goes back to that world point and on to the voxel drawn there. Calls in
    the 3D view, and on grids aligned with the view, are napari's unchanged.
    """

    @property
    def _type_string(self) -> str:
        # napari's key bindings (their "active layer type is labels" context), writers and
        # layer copies go by this name, which it derives from the class name
        return "labels"

    def paint(self, coord, new_label, refresh=True):  # noqa: D102 (napari's docstring)
        super().paint(self._as_shown(coord), new_label, refresh)

    def fill(self, coord, new_label, refresh=True):  # noqa: D102
        super().fill(self._as_shown(coord), new_label, refresh)

    def paint_polygon(self, points, new_label):  # noqa: D102
        # napari truncates polygon vertices to int: round the drawn voxels' coordinates
        super().paint_polygon(np.round(self._as_shown(points)), new_label)


class ShownSlicePoints(_DrawnVoxel, Points):
    """napari's Points layer whose add mode puts a point on the voxel drawn under the
    mouse (napari's own puts it at the full inverse transform: on a tilted axial block,
    slices off the one the reader clicked), and whose hovered point is the one drawn."""

    @property
    def _type_string(self) -> str:
        return "points"  # napari derives it from the class name; its keys and writers use it

    def add(self, coords) -> None:  # noqa: D102 (napari's docstring)
        # on the slice drawn, not between slices (napari shows a point on the slice its
        # rounded position is in; the grade sheet stores the slice's instance number)
        super().add(self._as_shown(coords, snap_hidden=True))
