"""Label corrections without a GUI: interpolation, threshold painting, island cleanup, and
the recorder that turns editor changes into logged edit events."""

from .recording import IDLE_CAP_SECONDS, ActiveClock, EditRecorder
from .tools import (
    fill_between_slices,
    keep_largest_component,
    remove_small_islands,
    threshold_paint,
)

__all__ = [
    "IDLE_CAP_SECONDS",
    "ActiveClock",
    "EditRecorder",
    "fill_between_slices",
    "keep_largest_component",
    "remove_small_islands",
    "threshold_paint",
]
