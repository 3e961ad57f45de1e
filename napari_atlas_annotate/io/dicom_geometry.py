"""Order a series' images in space and derive the ``(z, y, x) -> RAS`` affine.

The convention (see :mod:`napari_atlas_annotate.volume`): ``x`` runs along a row
(ImageOrientationPatient[0:3], spacing PixelSpacing[1]), ``y`` down the rows
(ImageOrientationPatient[3:6], spacing PixelSpacing[0]) and ``z`` along the slice normal
``row x column``. Slices are sorted by the projection of ImagePositionPatient on that normal,
never by file name or InstanceNumber, and the z spacing comes from the positions.

Everything that would make one affine a lie is refused with a message naming the files:
mixed sizes or orientations, duplicate positions, missing slices, uneven spacing and
gantry tilt. The one exception is a series holding several *stacks*: blocks of parallel
images at different angles, as lumbar axial T2 series often are (a block angled through
each disc). :func:`orientation_groups` finds them, and each is loaded as a volume of its own.
An MR series may also hold blocks at the *same* angle, apart along their normal (a block at
each disc, the vertebral bodies between them skipped): :func:`parallel_blocks` splits an
orientation group at gaps of at least :data:`BLOCK_GAP_FACTOR` slice steps when every block
has :data:`MIN_STACK_IMAGES` images. A CT is never split: a gap there is missing slices.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..volume import LPS_TO_RAS
from .dicom_frames import FrameRef
from .dicom_scan import name_list
from .errors import VolumeLoadError, VolumeLoadWarning

#: Slice positions closer than this (mm) along the normal are the same position.
DUPLICATE_TOL_MM = 0.01
#: A step larger than this multiple of the median step means slices are missing.
GAP_FACTOR = 1.5
#: Relative spread of slice steps: silently accepted below the first, warned up to the
#: second, refused above it (one affine cannot describe the grid any more).
SPACING_OK, SPACING_WARN = 0.01, 0.05
#: Tolerance on direction cosines (DS strings carry limited precision).
COSINE_TOL = 1e-3
#: A block of parallel images needs at least this many to count as a stack of its own;
#: fewer are a localizer (scout) saved into the series.
MIN_STACK_IMAGES = 3
#: In an MR series, parallel images apart by at least this many slice steps are separate
#: blocks (a lumbar axial block per disc); smaller gaps are missing slices.
BLOCK_GAP_FACTOR = 4.0


@dataclass
class SliceStack:
    """Where each image goes and the grid they form.

    Attributes
    ----------
    order
        Indices into the frame list, in increasing z.
    affine
        4x4 ``(z, y, x, 1) -> (R, A, S, 1)`` mapping in mm.
    placeholder
        True when the images carry no patient geometry and the affine is made up.
    """

    order: list[int]
    affine: np.ndarray
    placeholder: bool = False


def check_uniform(frames: list[FrameRef], source: Path) -> None:
    """Refuse series mixing image sizes or orientations, naming the odd files."""
    sizes = [(f.rows, f.columns) for f in frames]
    (rows, cols), _ = Counter(sizes).most_common(1)[0]
    odd = [f for f, s in zip(frames, sizes, strict=True) if s != (rows, cols)]
    if odd:
        odd_desc = sorted({f"{f.rows}x{f.columns}" for f in odd})
        raise VolumeLoadError(
            source,
            f"mixes image sizes: {len(frames) - len(odd)} images are {rows}x{cols} "
            f"(Rows x Columns) but {name_list([f.label for f in odd])} "
            f"{'is' if len(odd) == 1 else 'are'} {', '.join(odd_desc)}.",
            "One series must hold one image size: remove the odd files (a truncated header"
            " shows as None) or load them as a series of their own.",
        )
    colour = [f.label for f in frames if f.samples_per_pixel != 1]
    if colour:
        raise VolumeLoadError(
            source,
            f"holds colour images (SamplesPerPixel={frames[0].samples_per_pixel}): "
            f"{name_list(colour)}.",
            "Annotation needs a greyscale CT or MR series; load the original acquisition, "
            "not a screenshot or a rendered image.",
        )
    oriented = [f for f in frames if f.orientation is not None]
    if not oriented:
        return
    keys = [tuple(np.round(f.orientation, 3)) for f in oriented]
    reference = np.array(Counter(keys).most_common(1)[0][0])
    odd = [f for f in oriented if np.abs(f.orientation - reference).max() > COSINE_TOL * 2]
    if odd:
        raise VolumeLoadError(
            source,
            f"mixes image orientations: {len(oriented) - len(odd)} images have "
            f"ImageOrientationPatient {_fmt(reference)} but "
            f"{name_list([f.label for f in odd])} differ (e.g. {_fmt(odd[0].orientation)}). "
            "This is usually a localizer (scout) saved in the same series.",
            "Remove those files, or load the series they belong to on its own.",
        )


def orientation_groups(frames: list[FrameRef]) -> list[list[int]]:
    """Indices of the images sharing each ImageOrientationPatient, in acquisition order.

    Images without an orientation go with the first group. Groups are ordered by their
    lowest InstanceNumber (the order they were acquired in), then by first index.

    Examples
    --------
    A series of two axial blocks at different angles gives two groups; a plain series one.
    """
    groups: list[tuple[np.ndarray, list[int]]] = []
    loose: list[int] = []
    for i, f in enumerate(frames):
        if f.orientation is None:
            loose.append(i)
            continue
        for reference, members in groups:
            if np.abs(f.orientation - reference).max() <= COSINE_TOL * 2:
                members.append(i)
                break
        else:
            groups.append((np.asarray(f.orientation, float), [i]))
    if not groups:
        return [loose]
    groups[0][1].extend(loose)
    return by_acquisition(frames, [members for _, members in groups])


def by_acquisition(frames: list[FrameRef], groups: list[list[int]]) -> list[list[int]]:
    """``groups`` ordered by their lowest InstanceNumber (acquisition order), then index."""

    def first_acquired(members: list[int]) -> tuple[int, int]:
        numbers = [frames[i].instance_number for i in members]
        known = [n for n in numbers if n is not None]
        return (min(known) if known else 2**31, min(members))

    return sorted(groups, key=first_acquired)


def typical_step(steps: np.ndarray) -> float:
    """The median of the slice steps near the smallest one (mm).

    Taken from the steps near the smallest, so that a gap in a short series (steps 2, 1)
    does not drag the reference up and hide itself.
    """
    return float(np.median(steps[steps <= GAP_FACTOR * steps.min()]))


def parallel_blocks(frames: list[FrameRef], members: list[int]) -> list[list[int]]:
    """Split parallel images (one orientation group) into blocks apart along the normal.

    Returns ``[members]`` unchanged unless the sorted positions have gaps of at least
    :data:`BLOCK_GAP_FACTOR` typical steps and every block between them holds at least
    :data:`MIN_STACK_IMAGES` images; images without geometry or sharing a position are
    left to the checks of :func:`stack_frames`. Blocks come in slice-position order.

    Examples
    --------
    Five slices 4 mm apart, a 20 mm gap, five more: two blocks. One slice missing (an
    8 mm step): one group, which :func:`stack_frames` then refuses as missing a slice.
    """
    chosen = [frames[i] for i in members]
    if len(members) < 2 * MIN_STACK_IMAGES or any(
        f.position is None or f.orientation is None for f in chosen
    ):
        return [members]
    row, col = chosen[0].orientation[:3], chosen[0].orientation[3:]
    normal = np.cross(row, col)
    length = float(np.linalg.norm(normal))
    if length < 0.5:
        return [members]
    d = np.array([float(f.position @ normal) / length for f in chosen])
    order = np.argsort(d, kind="stable")
    steps = np.diff(d[order])
    if steps.min() < DUPLICATE_TOL_MM:
        return [members]
    cuts = np.flatnonzero(steps >= BLOCK_GAP_FACTOR * typical_step(steps)) + 1
    runs = np.split(order, cuts)
    if len(runs) < 2 or min(len(r) for r in runs) < MIN_STACK_IMAGES:
        return [members]
    return [[members[int(k)] for k in run] for run in runs]


def _fmt(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def _plane_axes(frame: FrameRef, source: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit row cosine, column cosine and slice normal (LPS) of ``frame``."""
    row, col = frame.orientation[:3], frame.orientation[3:]
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if min(nr, nc) < 0.5 or abs(np.dot(row, col)) / (nr * nc) > COSINE_TOL:
        raise VolumeLoadError(
            frame.path,
            f"has an ImageOrientationPatient {_fmt(frame.orientation)} that is not two "
            "perpendicular unit vectors.",
            "The header is damaged; re-export the series from its source.",
        )
    row, col = row / nr, col / nc
    normal = np.cross(row, col)
    return row, col, normal / np.linalg.norm(normal)


def _check_steps(d: np.ndarray, labels: list[str], source: Path) -> float:
    """Validate sorted positions ``d`` along the normal; return the z spacing (mm)."""
    steps = np.diff(d)
    dup = np.flatnonzero(steps < DUPLICATE_TOL_MM)
    if dup.size:
        k = int(dup[0])
        raise VolumeLoadError(
            source,
            f"has images sharing a slice position ({dup.size} duplicate(s)), e.g. "
            f"{labels[k]} and {labels[k + 1]} both at {d[k]:.3f} mm along the slice "
            "normal. The series holds more than one image per position (echoes, phases, "
            "b-values, a repeated acquisition) or duplicated files.",
            "Split it by EchoTime / TemporalPositionIdentifier / AcquisitionNumber (e.g. with "
            "dcm2niix) or remove the duplicates, then load one 3D stack.",
        )
    median = typical_step(steps)
    gaps = np.flatnonzero(steps > GAP_FACTOR * median)
    if gaps.size:
        k = int(gaps[0])
        missing = int(round(steps[k] / median)) - 1
        more = f" ({gaps.size} gaps in all)" if gaps.size > 1 else ""
        raise VolumeLoadError(
            source,
            f"{max(missing, 1)} slice(s) missing between {labels[k]} at {d[k]:.3f} mm and "
            f"{labels[k + 1]} at {d[k + 1]:.3f} mm along the slice normal (step "
            f"{steps[k]:.3f} mm, expected spacing {median:.3f} mm){more}.",
            "Re-export the complete series from PACS or the scanner.",
        )
    spread = np.abs(steps - median) / median
    worst = int(np.argmax(spread))
    if spread[worst] > SPACING_OK:
        detail = (
            f"uneven slice spacing: steps range {steps.min():.4f}..{steps.max():.4f} mm "
            f"(median {median:.4f} mm; {100 * spread[worst]:.1f}% off between "
            f"{labels[worst]} and {labels[worst + 1]})"
        )
        if spread[worst] > SPACING_WARN:
            raise VolumeLoadError(
                source,
                f"has {detail}, more than {100 * SPACING_WARN:.0f}%: one voxel grid cannot "
                "hold it without misplacing slices.",
                "Resample the series to even spacing (e.g. dcm2niix, 3D Slicer's "
                "'Resample Scalar Volume') and load the result.",
            )
        mean = (d[-1] - d[0]) / (len(d) - 1)
        misplaced = float(np.abs(d - d[0] - np.arange(len(d)) * mean).max())
        warnings.warn(
            f"{source}: {detail}; loaded with the mean spacing {mean:.4f} mm (slices "
            f"misplaced by at most {misplaced:.3f} mm).",
            VolumeLoadWarning,
            stacklevel=4,
        )
    return float((d[-1] - d[0]) / (len(d) - 1))


def _check_tilt(positions: np.ndarray, normal: np.ndarray, pixel_spacing, source: Path) -> None:
    """Refuse slices whose positions drift sideways (gantry tilt, sheared stacks)."""
    rel = positions - positions[0]
    along = rel @ normal
    lateral = np.linalg.norm(rel - along[:, None] * normal, axis=1)
    tolerance = max(0.1 * min(pixel_spacing), DUPLICATE_TOL_MM)
    if lateral.max() > tolerance:
        angle = float(np.degrees(np.arctan2(lateral[-1], abs(along[-1]))))
        raise VolumeLoadError(
            source,
            f"slices are not stacked along their normal: positions drift sideways by up to "
            f"{lateral.max():.2f} mm over {abs(along[-1]):.1f} mm (gantry tilt of about "
            f"{angle:.2f} degrees), so no single affine describes the series.",
            "Correct the tilt by resampling, e.g. `dcm2niix` (which writes a "
            "tilt-corrected '_Tilt_' NIfTI) or 3D Slicer, and load the corrected volume.",
        )


def stack_frames(frames: list[FrameRef], source: Path) -> SliceStack:
    """Sort ``frames`` along the slice normal and build the volume's affine.

    Parameters
    ----------
    frames
        The series' images (any order), already checked by :func:`check_uniform`.
    source
        Path named in error messages (the folder or file being loaded).

    Raises
    ------
    VolumeLoadError
        Duplicate positions, missing slices, spacing uneven by more than 5%, gantry tilt,
        or images with and without geometry mixed.
    """
    has_geo = [f.position is not None and f.orientation is not None for f in frames]
    if not any(has_geo):
        return _placeholder_stack(frames, source)
    if not all(has_geo):
        lacking = [f.label for f, ok in zip(frames, has_geo, strict=True) if not ok]
        raise VolumeLoadError(
            source,
            f"{name_list(lacking)} lack ImagePositionPatient/ImageOrientationPatient while "
            "the other images have them, so they cannot be placed.",
            "Remove those files (they are often secondary captures saved into the series).",
        )
    row, col, normal = _plane_axes(frames[0], source)
    spacing = frames[0].pixel_spacing
    if spacing is None:
        warnings.warn(
            f"{source}: no PixelSpacing; assuming 1 mm pixels (distances will be wrong).",
            VolumeLoadWarning,
            stacklevel=3,
        )
        spacing = (1.0, 1.0)
    positions = np.array([f.position for f in frames])
    d = positions @ normal
    order = np.argsort(d, kind="stable")
    labels = [frames[i].label for i in order]
    if len(frames) > 1:
        dz = _check_steps(d[order], labels, source)
        _check_tilt(positions[order], normal, spacing, source)
    else:
        f = frames[0]
        dz = f.spacing_between_slices or f.slice_thickness or 1.0
    lps = np.eye(4)
    lps[:3, 0] = normal * dz
    lps[:3, 1] = col * spacing[0]
    lps[:3, 2] = row * spacing[1]
    lps[:3, 3] = positions[order[0]]
    return SliceStack([int(i) for i in order], LPS_TO_RAS @ lps)


def _placeholder_stack(frames: list[FrameRef], source: Path) -> SliceStack:
    """Images without patient geometry (secondary captures, stripped files): a made-up
    axial grid, in InstanceNumber order for single-frame files, frame order otherwise."""
    order = list(range(len(frames)))
    if any(f.frame is None for f in frames):
        order.sort(
            key=lambda i: (frames[i].instance_number is None, frames[i].instance_number or 0, i)
        )
    f = frames[0]
    spacing = f.pixel_spacing or (1.0, 1.0)
    dz = f.spacing_between_slices or f.slice_thickness or 1.0
    lps = np.eye(4)
    # z along +S, y along +P (down the rows), x along +L (along a row): DICOM's axial default.
    lps[:3, :3] = np.array([[0.0, 0, 1], [0, 1, 0], [1, 0, 0]]) @ np.diag([dz, *spacing])
    warnings.warn(
        f"{source}: the images carry no ImagePositionPatient/ImageOrientationPatient; loaded "
        f"on a placeholder axial grid at the origin (spacing {dz:g} x {spacing[0]:g} x "
        f"{spacing[1]:g} mm). Labels drawn on it cannot be placed in patient space or "
        "overlaid on other series.",
        VolumeLoadWarning,
        stacklevel=3,
    )
    return SliceStack(order, LPS_TO_RAS @ lps, placeholder=True)
