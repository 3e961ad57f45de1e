"""Grow a class from one voxel into the connected voxels that look like it (no GUI).

A proposal that misses part of an organ (a kidney's lower pole, a liver lobe at a site
whose livers are darker) leaves the radiologist painting it back slice by slice. ITK-SNAP
and 3D Slicer answer this with a seeded region grow; so does this tool: the annotator points
at a voxel of the missed part and the class grows from there, in 3D, into the unlabelled
voxels whose intensity, and lightly smoothed intensity, are within ``tolerance`` of the
pointed voxel's and that connect to it, no further than ``radius_mm`` from it. Voxels of
other classes are never taken, so a grow stops at the neighbouring organ's border as the
labels already have it.
The same walk with ``erase`` takes back a leak: pointed at a proposal's liver label spilling
into the bowel beside it, the labelled voxels that look like the pointed one go, the liver
(another intensity) stays.

The radius is the leak guard: fat, bowel and muscle touch organs of similar density, and an
unbounded grow would follow them across the abdomen. Smoothing pulls an organ's outermost
voxels towards its neighbour's intensity, so the voxels next to the grown part (two steps) whose own
intensity is within the tolerance join as well; holes left inside (noisy voxels beyond the
tolerance, vessels) are filled when they are enclosed in 3D.

Examples
--------
>>> import numpy as np
>>> image = np.full((12, 12, 12), -100.0, np.float32); image[2:10, 2:10, 2:10] = 60.0
>>> labels = np.zeros(image.shape, np.uint8); labels[2:5, 2:10, 2:10] = 5  # 3 of 8 slices
>>> g = grow_from_voxel(labels, image, (7, 5, 5), 5, (1.0, 1.0, 1.0), 50.0, 20.0)
>>> g.changed, int((g.apply(labels) == 5).sum()), round(g.reference)
(320, 512, 60)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.segmentation import flood

#: Gaussian smoothing (voxels) of the image before comparing intensities: CT noise at 1 mm
#: (10-20 HU) would otherwise leave the grown part full of holes at a tight tolerance.
SMOOTHING_VOXELS: float = 0.8

#: Bridges and rims thinner than a ball of this radius (mm; at least one voxel) do not carry
#: a grow into a neighbour (:func:`_cut_bridges`). 3 mm cut more leaks on 0.7-0.9 mm phantoms
#: but took back less of thin kidney poles (bench/region_grow.py).
BRIDGE_MM: float = 2.0


@dataclass(frozen=True)
class Growth:
    """What a grow would change: ``labels`` replace the input inside the box ``region``."""

    region: tuple[slice, ...]
    labels: np.ndarray
    changed: int
    reference: float  # the pointed voxel's smoothed intensity
    why_nothing: str | None = None  # set when nothing changed

    def apply(self, labels: np.ndarray) -> np.ndarray:
        """A copy of ``labels`` with the grow written in."""
        out = np.array(labels, copy=True)
        out[self.region] = self.labels
        return out


def _name(classes: Sequence[str], label: int) -> str:
    return classes[label - 1] if 0 < label <= len(classes) else f"label {label}"


def _bridge_element(spacing: Sequence[float]) -> np.ndarray:
    """A ball of :data:`BRIDGE_MM` in voxels of ``spacing``, at least the 6-voxel cross."""
    half = [max(1, math.floor(BRIDGE_MM / float(s))) for s in spacing]
    grid = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    ball = sum((g * float(s)) ** 2 for g, s in zip(grid, spacing, strict=True)) <= BRIDGE_MM**2
    cross = ndimage.generate_binary_structure(len(spacing), 1)
    ball[tuple(slice(h - 1, h + 2) for h in half)] |= cross
    return ball


def _cut_bridges(
    candidate: np.ndarray, seed: tuple[int, ...], spacing: Sequence[float]
) -> np.ndarray:
    """``candidate`` without what joins the seed's part only through thin bridges.

    An opening restricted to the seed's part: the candidate is eroded by a ball of
    :data:`BRIDGE_MM` (at least the 6-voxel cross), the piece holding the seed kept and
    dilated back, so a neighbour of the same intensity reached only through a bridge or a
    rim thinner than the ball (the blurred border between fat and a brighter organ passes
    through bile's HU) is left out. Where the seed itself lies in a part that thin, the
    candidate is kept as it is.
    """
    element = _bridge_element(spacing)
    core = ndimage.binary_erosion(candidate, element)
    if not core[seed]:
        return candidate
    core = flood(core, seed, connectivity=1)
    kept = ndimage.binary_dilation(core, element) & candidate
    # the opening shaves the part's own edges and corners too: give back one step of them
    cross = ndimage.generate_binary_structure(candidate.ndim, 1)
    return ndimage.binary_dilation(kept, cross, mask=candidate) | kept


def grow_from_voxel(
    labels: np.ndarray,
    image: np.ndarray,
    seed: Sequence[int],
    class_id: int,
    spacing: Sequence[float],
    tolerance: float,
    radius_mm: float,
    classes: Sequence[str] = (),
    erase: bool = False,
    cut_bridges: bool = True,
) -> Growth:
    """Grow ``class_id`` from the voxel ``seed`` (an index into ``labels``), or with
    ``erase`` take back the part of it around ``seed`` that looks like ``seed`` (a leak).

    Parameters
    ----------
    labels, image
        Label map and image (e.g. CT in HU) on the same grid, in the same axis order.
    seed
        The pointed voxel. It must be unlabelled or already ``class_id`` (with ``erase``:
        ``class_id``).
    class_id
        The class to grow (>= 1).
    spacing
        Voxel size (mm) along each axis of the arrays.
    tolerance
        Largest difference (image units, e.g. HU) from the pointed voxel's smoothed
        intensity for a voxel to join.
    radius_mm
        No voxel further than this from the pointed voxel joins.
    classes
        Class names (label ``i`` is ``classes[i - 1]``), for :attr:`Growth.why_nothing`.
    erase
        Take back instead of grow: the ``class_id`` voxels connected to ``seed`` through
        voxels like it (same tolerance and radius) become unlabelled; a leak into bowel
        or fat goes, the organ (another intensity) stays.
    cut_bridges
        Leave out what joins the grown part only through bridges or rims thinner than a
        ball of :data:`BRIDGE_MM` (see :func:`_cut_bridges`; not with ``erase``).
        ``False`` grows as before this guard (for the bench's comparison).

    Returns
    -------
    Growth
        ``changed`` voxels that become ``class_id`` (unlabelled with ``erase``); 0 with
        ``why_nothing`` saying why (the pointed voxel belongs to another class, nothing
        similar around it is unlabelled).
    """
    labels = np.asarray(labels)
    image = np.asarray(image)
    if labels.shape != image.shape:
        raise ValueError(f"labels {labels.shape} and image {image.shape} must share a grid")
    if class_id < 1:
        raise ValueError(f"class id must be a foreground label (>= 1), not {class_id}")
    if len(seed) != labels.ndim or len(spacing) != labels.ndim:
        raise ValueError(f"seed {tuple(seed)} and spacing must give one value per axis")
    if tolerance < 0 or radius_mm <= 0:
        raise ValueError(f"tolerance ({tolerance}) must be >= 0 and radius ({radius_mm}) > 0")
    seed = tuple(int(i) for i in seed)
    name = _name(classes, class_id)
    empty = (slice(0, 0),) * labels.ndim
    if any(not 0 <= i < n for i, n in zip(seed, labels.shape, strict=True)):
        return Growth(empty, labels[empty], 0, math.nan, "the cursor is not over the image")
    owner = int(labels[seed])
    if erase and owner != class_id:
        other = "unlabelled" if owner == 0 else f"the {_name(classes, owner)}"
        return Growth(
            empty,
            labels[empty],
            0,
            math.nan,
            f"the voxel under the cursor is {other}, not the {name}; point at the part of "
            f"the {name} to take back",
        )
    if owner not in (0, class_id):
        other = _name(classes, owner)
        return Growth(
            empty,
            labels[empty],
            0,
            math.nan,
            f"the voxel under the cursor is {other}; point at an unlabelled voxel of the "
            f"{name}, or pick the {other} to grow it",
        )

    half = [max(1, math.ceil(radius_mm / float(s))) for s in spacing]
    region = tuple(
        slice(max(0, i - h), min(n, i + h + 1))
        for i, h, n in zip(seed, half, labels.shape, strict=True)
    )
    local = tuple(i - r.start for i, r in zip(seed, region, strict=True))
    raw = image[region].astype(np.float32)
    crop = ndimage.gaussian_filter(raw, SMOOTHING_VOXELS, mode="nearest", truncate=2.5)
    reference = float(crop[local])
    offsets = tuple(slice(r.start - i, r.stop - i) for i, r in zip(seed, region, strict=True))
    grid = np.ogrid[offsets]
    distance2 = sum((g * float(s)) ** 2 for g, s in zip(grid, spacing, strict=True))
    old = labels[region]
    free = (old == class_id) if erase else (old == 0) | (old == class_id)
    near = free & (distance2 <= radius_mm**2)
    like = near & (np.abs(raw - reference) <= tolerance)
    # a voxel joins when it and its smoothed neighbourhood are both like the pointed one:
    # the smoothing keeps noise from cutting the part up, the voxel's own value keeps the
    # walk off the blurred rim of a brighter or darker neighbour
    candidate = like & (np.abs(crop - reference) <= tolerance)
    # the pointed voxel joins even when its own value is off (noise, the rim of gas): a flood
    # from an unlike voxel would take the unlike voxels around it instead
    candidate[local] = True
    if cut_bridges and not erase:
        candidate = _cut_bridges(candidate, local, spacing)
    grown = flood(candidate, local, connectivity=1)
    # smoothing also pulls the part's own outermost voxels (at a corner, two deep) towards
    # the neighbour's intensity: take back those within two steps whose own value is like
    grown = ndimage.binary_dilation(grown, iterations=2, mask=like) | grown
    grown = ndimage.binary_fill_holes(grown) & free
    new = np.array(old, copy=True)
    new[grown] = 0 if erase else class_id
    changed = int(np.count_nonzero(new != old))
    why = None
    if changed == 0:
        why = (
            f"no unlabelled voxel within {tolerance:g} of {reference:.0f} connects to the "
            f"voxel under the cursor within {radius_mm:g} mm; raise the tolerance or the "
            "radius, or paint it"
        )
    return Growth(region, new, changed, reference, why)
