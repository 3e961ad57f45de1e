"""The HU window every organ model sees: clip, then scale to 0..1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalise_intensity(array: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """Clip to the HU ``window`` and scale to 0..1 (in place on a float32 array)."""
    lo, hi = (float(w) for w in window)
    np.clip(array, lo, hi, out=array)
    array -= np.float32(lo)
    array *= np.float32(1.0 / (hi - lo))
    return array
