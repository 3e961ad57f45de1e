"""Label corrections without a GUI: interpolation, threshold painting, island cleanup, why a
tool changed nothing, and the recorder that turns editor changes into logged edit events."""

from .recording import IDLE_CAP_SECONDS, ActiveClock, EditRecorder
from .tools import (
    fill_between_slices,
    keep_largest_component,
    remove_small_islands,
    threshold_paint,
)
from .unchanged import why_fill_unchanged, why_islands_unchanged, why_largest_unchanged

__all__ = [
    "IDLE_CAP_SECONDS",
    "ActiveClock",
    "EditRecorder",
    "fill_between_slices",
    "keep_largest_component",
    "remove_small_islands",
    "threshold_paint",
    "why_fill_unchanged",
    "why_islands_unchanged",
    "why_largest_unchanged",
]
