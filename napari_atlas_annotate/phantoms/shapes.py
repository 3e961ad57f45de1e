"""Geometry primitives for the phantoms, evaluated only inside their bounding boxes.

Anatomy is described in a patient frame in millimetres: ``u`` lateral (+ = patient left),
``v`` antero-posterior (+ = posterior), ``w`` cranio-caudal (+ = superior). A :class:`Grid`
says which array axis carries which of ``u``, ``v``, ``w`` (axial CT: ``(w, v, u)``, a
sagittal MR: ``(u, w, v)``) and the coordinate of every index along it, so one anatomical
description renders onto any axis-aligned series. Shapes return a field or mask for the
sub-box they can touch, which keeps a 300x512x512 case cheap: most primitives are small.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy import ndimage

AXES = ("u", "v", "w")


class Grid:
    """Coordinates (mm, patient frame) of every index of a 3D array.

    Parameters
    ----------
    order
        Patient axis carried by array axes 0, 1, 2, e.g. ``("w", "v", "u")``.
    coords
        ``{axis name: 1D monotonic coordinates}`` for the three axes.
    """

    def __init__(self, order: Sequence[str], coords: dict[str, np.ndarray]) -> None:
        if sorted(order) != sorted(AXES):
            raise ValueError(f"order must be a permutation of {AXES}, not {order}")
        self.order = tuple(order)
        self.coords = {k: np.asarray(v, np.float32) for k, v in coords.items()}
        self.shape = tuple(len(self.coords[name]) for name in self.order)

    def box(self, lo: Sequence[float], hi: Sequence[float]) -> tuple[slice, slice, slice] | None:
        """Index slices of the sub-array whose voxels lie in ``[lo, hi]`` ((u, v, w) mm).

        ``None`` when the box misses the grid.
        """
        lims = dict(zip(AXES, zip(lo, hi, strict=True), strict=True))
        out = []
        for name in self.order:
            c = self.coords[name]
            a, b = lims[name]
            idx = np.nonzero((c >= a) & (c <= b))[0]
            if idx.size == 0:
                return None
            out.append(slice(int(idx[0]), int(idx[-1]) + 1))
        return tuple(out)  # type: ignore[return-value]

    def full(self) -> tuple[slice, slice, slice]:
        """Slices covering the whole grid."""
        return (slice(None), slice(None), slice(None))

    def uvw(self, sl: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable ``(U, V, W)`` coordinate arrays (float32) of the sub-box ``sl``."""
        out = {}
        for axis, name in enumerate(self.order):
            shape = [1, 1, 1]
            c = self.coords[name][sl[axis]]
            shape[axis] = c.size
            out[name] = c.reshape(shape)
        return out["u"], out["v"], out["w"]


def random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A rotation matrix (columns = local axes in (u, v, w)) within ``max_deg`` per axis."""
    a, b, c = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotation_about(axis: str, degrees: float) -> np.ndarray:
    """Rotation by ``degrees`` about patient axis ``'u'``, ``'v'`` or ``'w'``."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    i, j = {"u": (1, 2), "v": (2, 0), "w": (0, 1)}[axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def random_ripples(
    rng: np.random.Generator, size_mm: float, n: int = 5, amp: float = 0.12
) -> list[tuple[np.ndarray, float, float]]:
    """Low-frequency plane waves ``(wave vector, phase, amplitude)`` that deform a shape.

    Wavelengths are 0.9-2.2 times ``size_mm`` so the outline bends without fragmenting.
    """
    waves = []
    for _ in range(n):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        k = 2 * np.pi / (size_mm * rng.uniform(0.9, 2.2))
        waves.append((d * k, float(rng.uniform(0, 2 * np.pi)), float(amp * rng.uniform(0.4, 1.0))))
    return waves


def ellipsoid_field(
    grid: Grid,
    center: Sequence[float],
    semi: Sequence[float],
    rotation: np.ndarray | None = None,
    ripples: Sequence[tuple[np.ndarray, float, float]] = (),
    margin: float = 1.25,
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """Implicit field of a deformed ellipsoid in its bounding box (inside where < 1).

    Parameters
    ----------
    center, semi
        Centre and semi-axes (mm) in (u, v, w); semi-axes along the rotated local axes.
    rotation
        3x3 matrix whose columns are the local axes in (u, v, w).
    ripples
        Plane waves added to the field (see :func:`random_ripples`).
    margin
        Bounding box half-size as a multiple of the largest semi-axis.

    Returns
    -------
    (slices, field) or None
        ``field`` is float32, shaped like the sub-box; ``None`` when the box misses the grid.
    """
    c = np.asarray(center, float)
    half = margin * float(max(semi))
    sl = grid.box(c - half, c + half)
    if sl is None:
        return None
    u, v, w = grid.uvw(sl)
    d = (u - np.float32(c[0]), v - np.float32(c[1]), w - np.float32(c[2]))
    r = np.eye(3) if rotation is None else np.asarray(rotation, float)
    field = None
    for i in range(3):
        q = d[0] * np.float32(r[0, i]) + d[1] * np.float32(r[1, i]) + d[2] * np.float32(r[2, i])
        term = np.square(q * np.float32(1.0 / semi[i]))
        field = term if field is None else field + term
    for k, phase, amp in ripples:
        arg = d[0] * np.float32(k[0]) + d[1] * np.float32(k[1]) + d[2] * np.float32(k[2])
        field = field + np.float32(amp) * np.sin(arg + np.float32(phase))
    return sl, field  # the sums of (z,1,1), (1,y,1), (1,1,x) terms are full sub-box arrays


def tube_segments(
    grid: Grid, points: np.ndarray, radii: np.ndarray
) -> Iterator[tuple[tuple[slice, slice, slice], np.ndarray]]:
    """Masks of a tube along a polyline, one capsule per segment (radius linear in between).

    Yields ``(slices, mask)`` per segment; the union over segments is the tube.
    """
    points = np.asarray(points, float)
    radii = np.asarray(radii, float)
    for a, b, ra, rb in zip(points[:-1], points[1:], radii[:-1], radii[1:], strict=True):
        rmax = max(ra, rb)
        sl = grid.box(np.minimum(a, b) - rmax, np.maximum(a, b) + rmax)
        if sl is None:
            continue
        u, v, w = grid.uvw(sl)
        seg = b - a
        length2 = float(seg @ seg) or 1e-9
        du, dv, dw = u - np.float32(a[0]), v - np.float32(a[1]), w - np.float32(a[2])
        t = du * np.float32(seg[0]) + dv * np.float32(seg[1]) + dw * np.float32(seg[2])
        t = np.clip(t * np.float32(1.0 / length2), 0, 1)
        dist2 = (
            np.square(du - t * np.float32(seg[0]))
            + np.square(dv - t * np.float32(seg[1]))
            + np.square(dw - t * np.float32(seg[2]))
        )
        r = np.float32(ra) + t * np.float32(rb - ra)
        yield sl, dist2 <= r * r


def smooth_curve(
    rng: np.random.Generator, anchors: np.ndarray, jitter_mm: float, n: int = 24
) -> np.ndarray:
    """A smooth polyline through jittered anchor points (piecewise-linear, then smoothed)."""
    anchors = np.asarray(anchors, float) + rng.normal(0, jitter_mm, np.shape(anchors))
    seg = np.linalg.norm(np.diff(anchors, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)])
    t = np.linspace(0, s[-1], n)
    pts = np.stack([np.interp(t, s, anchors[:, i]) for i in range(3)], axis=1)
    smooth = ndimage.gaussian_filter1d(pts, sigma=n / 12, axis=0, mode="nearest")
    smooth[0], smooth[-1] = pts[0], pts[-1]
    return smooth


def smooth_noise(
    rng: np.random.Generator, shape: Sequence[int], cells: Sequence[int]
) -> np.ndarray:
    """A smooth random field (float32, about unit standard deviation) of ``shape``.

    Drawn on a coarse grid of ``cells`` nodes per axis and interpolated linearly one axis
    at a time (the last, largest step slice by slice), so the cost is about two passes
    over the output and no full-size temporaries.
    """
    cells = [max(2, int(c)) for c in cells]
    coarse = rng.standard_normal(cells).astype(np.float32)
    coarse = ndimage.gaussian_filter(coarse, 0.7, mode="wrap")
    coarse /= max(float(coarse.std()), 1e-6)
    small = _lerp_axis(_lerp_axis(coarse, shape[2], 2), shape[1], 1)
    i0, i1, t = _lerp_weights(cells[0], shape[0])
    out = np.empty(tuple(shape), np.float32)
    for z in range(shape[0]):
        np.multiply(small[i0[z]], np.float32(1 - t[z]), out=out[z])
        out[z] += small[i1[z]] * np.float32(t[z])
    return out


def _lerp_weights(n_in: int, n_out: int):
    """Neighbour indices and weights of linear interpolation from n_in to n_out cells."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def _lerp_axis(a: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    i0, i1, t = _lerp_weights(a.shape[axis], n_out)
    shape = [1] * a.ndim
    shape[axis] = n_out
    t = t.reshape(shape)
    return np.take(a, i0, axis=axis) * (1 - t) + np.take(a, i1, axis=axis) * t


def gaussian_kernel_energy(sigma: float, truncate: float = 4.0) -> float:
    """Sum of squared weights of scipy's 1D Gaussian kernel (variance gain of filtering)."""
    if sigma <= 0:
        return 1.0
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=float)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    return float(np.sum(k * k))


def correlated_noise(
    rng: np.random.Generator, shape: Sequence[int], sigma_vox: Sequence[float], sd: float
) -> np.ndarray:
    """Gaussian noise (float32) with standard deviation ``sd``, smoothed by ``sigma_vox``.

    The smoothing correlates neighbouring voxels like a CT reconstruction kernel; the
    output is rescaled analytically (no extra pass) so its standard deviation is ``sd``.
    """
    white = rng.standard_normal(tuple(shape), dtype=np.float32)
    out = ndimage.gaussian_filter(white, sigma=list(sigma_vox), mode="reflect", truncate=3.0)
    del white
    gain = float(np.prod([gaussian_kernel_energy(s, truncate=3.0) for s in sigma_vox]))
    out *= np.float32(sd / np.sqrt(gain))
    return out
