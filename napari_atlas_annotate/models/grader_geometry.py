"""Patient-frame geometry for the lumbar grader: planes, crops and points across series.

The grader never works in a series' own pixel grid. It samples planes defined in patient
coordinates (RAS millimetres, through :attr:`Volume.affine`), so the same anatomy gives the
same network input whatever the site's pixel spacing, field of view, slice order or
orientation, and a point found on one series maps exactly onto another.

Canonical views (rows down the image, columns to the right):

* sagittal: rows run superior -> inferior, columns anterior -> posterior, slab slices
  along the patient's left (or, with ``lateral=-1``, right);
* axial: rows run anterior -> posterior, columns towards ``lateral`` (+1 = patient left,
  -1 = patient right, so a right-side crop is the mirror image of a left-side one).

Examples
--------
>>> import numpy as np
>>> from napari_atlas_annotate.volume import Volume
>>> vol = Volume(np.zeros((5, 6, 7), np.float32), np.diag([2.0, 1.0, 1.0, 1.0]))
>>> voxel_to_world(vol, world_to_voxel(vol, np.array([4.0, 2.0, 3.0])))
array([4., 2., 3.])
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..grade_sheet import LevelPoint
from ..volume import Volume
from .intensity import finite_values

#: RAS unit vectors of the canonical directions.
SUPERIOR = np.array([0.0, 0.0, 1.0])
ANTERIOR = np.array([0.0, 1.0, 0.0])
LEFT = np.array([-1.0, 0.0, 0.0])


def view_axes(view: str, lateral: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row_dir, col_dir, normal)`` RAS unit vectors of a canonical view.

    ``lateral`` (+1 left, -1 right) orients the slab normal of sagittal views and the
    columns of axial views, so left and right crops are mirror images of each other.
    """
    if view == "sagittal":
        return -SUPERIOR, -ANTERIOR, LEFT * lateral
    if view == "axial":
        return -ANTERIOR, LEFT * lateral, -SUPERIOR
    raise ValueError(f"unknown view {view!r}; expected 'sagittal' or 'axial'")


def world_to_voxel(volume: Volume, points: np.ndarray) -> np.ndarray:
    """RAS mm ``(..., 3)`` -> fractional voxel indices ``(..., 3)`` in (z, y, x) order."""
    inv = np.linalg.inv(volume.affine)
    pts = np.asarray(points, np.float64)
    return pts @ inv[:3, :3].T + inv[:3, 3]


def voxel_to_world(volume: Volume, index: np.ndarray) -> np.ndarray:
    """Voxel indices ``(..., 3)`` in (z, y, x) order -> RAS mm ``(..., 3)``."""
    idx = np.asarray(index, np.float64)
    return idx @ volume.affine[:3, :3].T + volume.affine[:3, 3]


def volume_center(volume: Volume) -> np.ndarray:
    """RAS position of the centre of the volume's voxel grid."""
    return voxel_to_world(volume, (np.asarray(volume.shape, float) - 1) / 2)


def normalized_intensity(volume: Volume) -> np.ndarray:
    """The volume as float32 scaled by its 1st-99th percentile range (site independent).

    MR intensities have no absolute scale; a linear rescale by robust percentiles makes
    scanners and sites comparable. The result is about 0 for background and about 1 for
    the brightest tissue. Voxels that are not numbers (NaN, +-inf) read as background (0).
    """
    arr = np.asarray(volume.array, np.float32)
    sample = finite_values(arr[:: max(1, arr.shape[0] // 8), ::2, ::2])
    lo, hi = np.percentile(sample, [1.0, 99.0]) if sample.size else (0.0, 1.0)
    scale = float(hi - lo) if hi > lo else 1.0
    scaled = (arr - np.float32(lo)) / np.float32(scale)
    return np.nan_to_num(scaled, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


def sample_slab(
    volume: Volume,
    data: np.ndarray,
    center: np.ndarray,
    view: str,
    shape: tuple[int, int],
    pixel_mm: float,
    offsets_mm: tuple[float, ...] = (0.0,),
    lateral: int = 1,
    rotation_deg: float = 0.0,
    order: int = 1,
) -> np.ndarray:
    """Resample parallel planes of ``data`` (on ``volume``'s grid) in a canonical view.

    Parameters
    ----------
    volume
        Gives the geometry (affine) of ``data``.
    data
        Array on the volume's grid (e.g. :func:`normalized_intensity`).
    center
        RAS mm of the centre of the middle plane.
    view, lateral
        See :func:`view_axes`.
    shape
        ``(rows, cols)`` of each plane.
    pixel_mm
        Pixel size of the planes.
    offsets_mm
        Positions of the planes along the view's normal.
    rotation_deg
        In-plane rotation (used for augmentation).
    order
        Spline order of the interpolation (1 = linear).

    Returns
    -------
    np.ndarray
        float32 ``(len(offsets_mm), rows, cols)``; outside the volume is 0.
    """
    row_dir, col_dir, normal = view_axes(view, lateral)
    if rotation_deg:
        t = np.deg2rad(rotation_deg)
        row_dir, col_dir = (
            np.cos(t) * row_dir + np.sin(t) * col_dir,
            -np.sin(t) * row_dir + np.cos(t) * col_dir,
        )
    rows, cols = shape
    r = (np.arange(rows) - (rows - 1) / 2) * pixel_mm
    c = (np.arange(cols) - (cols - 1) / 2) * pixel_mm
    o = np.asarray(offsets_mm, np.float64)
    pts = (
        np.asarray(center, np.float64)[None, None, None, :]
        + o[:, None, None, None] * normal
        + r[None, :, None, None] * row_dir
        + c[None, None, :, None] * col_dir
    )
    idx = world_to_voxel(volume, pts.reshape(-1, 3)).T
    out = ndimage.map_coordinates(data, idx, order=order, mode="constant", cval=0.0)
    return out.reshape(len(o), rows, cols).astype(np.float32, copy=False)


def plane_pixel_to_world(
    center: np.ndarray,
    view: str,
    shape: tuple[int, int],
    pixel_mm: float,
    row: float,
    col: float,
    lateral: int = 1,
) -> np.ndarray:
    """RAS mm of pixel ``(row, col)`` of the middle plane sampled by :func:`sample_slab`."""
    row_dir, col_dir, _ = view_axes(view, lateral)
    rows, cols = shape
    return (
        np.asarray(center, np.float64)
        + (row - (rows - 1) / 2) * pixel_mm * row_dir
        + (col - (cols - 1) / 2) * pixel_mm * col_dir
    )


def world_to_plane_pixel(
    center: np.ndarray,
    view: str,
    shape: tuple[int, int],
    pixel_mm: float,
    point: np.ndarray,
    lateral: int = 1,
) -> tuple[float, float]:
    """``(row, col)`` of a RAS point projected onto the middle plane (inverse of above)."""
    row_dir, col_dir, _ = view_axes(view, lateral)
    rows, cols = shape
    d = np.asarray(point, np.float64) - np.asarray(center, np.float64)
    return (
        float(d @ row_dir / pixel_mm + (rows - 1) / 2),
        float(d @ col_dir / pixel_mm + (cols - 1) / 2),
    )


def instance_numbers(volume: Volume) -> list[int]:
    """1-based instance number of each z slice (``metadata['instance_numbers']`` or z+1)."""
    numbers = volume.metadata.get("instance_numbers")
    if numbers is not None and len(numbers) == volume.shape[0]:
        return [int(n) for n in numbers]
    return list(range(1, volume.shape[0] + 1))


def point_to_world(volume: Volume, point: LevelPoint) -> np.ndarray:
    """RAS mm of a :class:`LevelPoint` (``x`` column, ``y`` row of slice ``instance``)."""
    numbers = instance_numbers(volume)
    if point.instance not in numbers:
        raise ValueError(
            f"point on {point.series!r} names instance {point.instance}, which that series "
            f"(instances {numbers[0]}..{numbers[-1]}) does not have"
        )
    z = numbers.index(point.instance)
    return voxel_to_world(volume, np.array([z, point.y, point.x], np.float64))


def world_to_point(volume: Volume, series: str, world: np.ndarray) -> LevelPoint:
    """Nearest-slice :class:`LevelPoint` of a RAS point on ``volume`` (named ``series``)."""
    z, y, x = world_to_voxel(volume, world)
    zi = int(np.clip(np.rint(z), 0, volume.shape[0] - 1))
    return LevelPoint(series, instance_numbers(volume)[zi], float(x), float(y))
