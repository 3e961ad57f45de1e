"""The HU window every organ model sees: clip, then scale to 0..1; voxels that are not
numbers read as air."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: What a CT voxel that is not a number (NaN, +-inf) is read as: air. Converters write NaN
#: outside the scanner's field of view; one such voxel, passed on, turns every output of
#: the network it reaches into NaN.
AIR_HU = -1024.0


#: A CT has air (about -1000 HU) around the body, in the lungs or in the bowel; an image
#: with no voxel below this was most likely stored without its rescale intercept.
AIR_BELOW_HU = -500.0


def finite_values(sample: np.ndarray) -> np.ndarray:
    """The values of ``sample`` that are numbers, flattened for a float array (one NaN
    makes a minimum or a percentile NaN); an integer array as it is."""
    sample = np.asarray(sample)
    if not np.issubdtype(sample.dtype, np.floating):
        return sample
    return sample[np.isfinite(sample)]


def lowest_value(array: np.ndarray) -> float | None:
    """The lowest voxel value that is a number, from a strided sample of ``array`` (about a
    million voxels at most); None when it holds none."""
    step = max(1, int(round((array.size / 1_000_000) ** (1 / 3))))
    sample = finite_values(array[::step, ::step, ::step])
    return float(sample.min()) if sample.size else None


def hounsfield_doubt(array: np.ndarray) -> str:
    """Why a CT's values may not be HU ("" when they look like HU): no air in it. Stored
    without its rescale intercept (air at 0 instead of -1024), a CT is read about 1000 HU
    too bright by every organ model (the packaged starter then puts organs in the wrong
    places)."""
    lowest = lowest_value(array)
    if lowest is None or lowest < AIR_BELOW_HU:
        return ""
    return (
        f"no voxel below {AIR_BELOW_HU:g} HU (the lowest is {lowest:g}), where a CT has air "
        "at about -1000 HU. If it was stored without its rescale intercept (air at 0 instead "
        "of -1024), the helper model misreads every voxel: convert it again with the "
        "intercept applied (e.g. dcm2niix from the DICOM series) and add it again. A CT "
        "cropped inside the body, with no air at all, can ignore this."
    )


def count_non_finite(array: np.ndarray) -> int:
    """How many voxels of ``array`` are NaN or infinite (none in an integer array)."""
    if not np.issubdtype(array.dtype, np.floating):
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def finite(array: np.ndarray, fill: float = AIR_HU) -> np.ndarray:
    """``array`` with NaN and infinite voxels set to ``fill``; the array itself when it has
    none (always for integer arrays), else a copy."""
    if not count_non_finite(array):
        return array
    return np.nan_to_num(array, nan=fill, posinf=fill, neginf=fill)


def normalise_intensity(array: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """Clip to the HU ``window`` and scale to 0..1 (in place on a float32 array); a voxel
    that is not a number reads as the window's low end (air)."""
    lo, hi = (float(w) for w in window)
    np.nan_to_num(array, copy=False, nan=lo, posinf=lo, neginf=lo)
    np.clip(array, lo, hi, out=array)
    array -= np.float32(lo)
    array *= np.float32(1.0 / (hi - lo))
    return array
