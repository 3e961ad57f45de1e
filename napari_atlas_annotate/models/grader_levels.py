"""Disc-level localisation on the Sagittal T2: the locator's input, targets and decoding.

The locator sees a mid-sagittal slab resampled in the canonical sagittal frame (see
:mod:`.grader_geometry`) at a fixed pixel size, so its input has the same anatomical scale
on every site. It outputs one heatmap per disc level; a level's position is the
probability-weighted centroid around the heatmap's peak, mapped back to patient
coordinates.
"""

from __future__ import annotations

import numpy as np

from ..volume import Volume
from .grader_geometry import (
    plane_pixel_to_world,
    sample_slab,
    volume_center,
    world_to_plane_pixel,
)


def locator_center(volume: Volume, config: dict) -> np.ndarray:
    """RAS centre of the locator's slab: the volume centre moved to the usual midline."""
    center = volume_center(volume)
    center[0] += float(config["midline_offset"][0])  # lateral (R-L) component only
    return center


def locator_input(
    volume: Volume,
    data: np.ndarray,
    config: dict,
    center: np.ndarray | None = None,
    rotation_deg: float = 0.0,
) -> np.ndarray:
    """The locator's input slab ``(planes, H, W)`` (float32) of a Sagittal T2 volume."""
    loc = config["locator"]
    return sample_slab(
        volume,
        data,
        locator_center(volume, config) if center is None else center,
        "sagittal",
        tuple(loc["shape"]),
        float(loc["pixel_mm"]),
        tuple(loc["slab_mm"]),
        rotation_deg=rotation_deg,
    )


def heatmap_targets(rowcols: np.ndarray, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """One normalised Gaussian per level ``(5, H, W)`` (a distribution over pixels each).

    A level outside the plane gets an all-zero map (it is ignored by the loss).
    """
    rows, cols = shape
    rr = np.arange(rows, dtype=np.float32)[:, None]
    cc = np.arange(cols, dtype=np.float32)[None, :]
    out = np.zeros((len(rowcols), rows, cols), np.float32)
    for i, (r, c) in enumerate(np.asarray(rowcols, np.float32)):
        if not (0 <= r <= rows - 1 and 0 <= c <= cols - 1):
            continue
        g = np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * sigma_px**2))
        out[i] = g / g.sum()
    return out


def decode_heatmaps(logits: np.ndarray, window: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Peak positions of level heatmap logits ``(5, H, W)``.

    Returns
    -------
    rowcols : np.ndarray
        ``(5, 2)`` sub-pixel ``(row, col)``: softmax-weighted centroid in a
        ``(2 * window + 1)``-pixel square around each map's maximum.
    confidence : np.ndarray
        ``(5,)`` softmax mass inside that square (1 = all probability at the peak).
    """
    n, rows, cols = logits.shape
    flat = logits.reshape(n, -1).astype(np.float64)
    flat = np.exp(flat - flat.max(axis=1, keepdims=True))
    prob = (flat / flat.sum(axis=1, keepdims=True)).reshape(n, rows, cols)
    rowcols = np.zeros((n, 2))
    confidence = np.zeros(n)
    for i in range(n):
        r0, c0 = np.unravel_index(int(np.argmax(prob[i])), (rows, cols))
        rs = slice(max(0, r0 - window), min(rows, r0 + window + 1))
        cs = slice(max(0, c0 - window), min(cols, c0 + window + 1))
        patch = prob[i][rs, cs]
        mass = float(patch.sum())
        rr, cc = np.mgrid[rs, cs]
        rowcols[i] = (float((rr * patch).sum() / mass), float((cc * patch).sum() / mass))
        confidence[i] = mass
    return rowcols, confidence


def levels_to_plane(
    world: np.ndarray, center: np.ndarray, config: dict, rotation_deg: float = 0.0
) -> np.ndarray:
    """``(5, 2)`` plane pixels ``(row, col)`` of RAS level points (NaN rows stay NaN)."""
    loc = config["locator"]
    out = np.full((len(world), 2), np.nan)
    for i, p in enumerate(np.asarray(world, float)):
        if np.isfinite(p).all():
            out[i] = world_to_plane_pixel(
                center, "sagittal", tuple(loc["shape"]), float(loc["pixel_mm"]), p
            )
    if rotation_deg:
        # sample_slab rotates the sampling axes by +angle; points rotate by -angle.
        rows, cols = loc["shape"]
        mid = np.array([(rows - 1) / 2, (cols - 1) / 2])
        t = np.deg2rad(rotation_deg)
        rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
        out = (out - mid) @ rot.T + mid
    return out


def plane_to_levels(rowcols: np.ndarray, center: np.ndarray, config: dict) -> np.ndarray:
    """RAS points ``(5, 3)`` of plane pixels ``(row, col)`` of the locator's middle plane."""
    loc = config["locator"]
    return np.stack(
        [
            plane_pixel_to_world(
                center, "sagittal", tuple(loc["shape"]), float(loc["pixel_mm"]), r, c
            )
            for r, c in rowcols
        ]
    )
