"""The HU window every organ model sees: clip, then scale to 0..1; voxels that are not
numbers read as air."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: What a CT voxel that is not a number (NaN, +-inf) is read as: air. Converters write NaN
#: outside the scanner's field of view; one such voxel, passed on, turns every output of
#: the network it reaches into NaN.
AIR_HU = -1024.0


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
