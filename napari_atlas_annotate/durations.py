"""Durations as people read them in a command's output: ``42 s``, ``7 min``, ``3.5 h``.

One rounding for every place that reports time on task or time left (``status``, a
``propose`` batch's progress), so the same time reads the same everywhere.
"""

from __future__ import annotations


def duration(seconds: float) -> str:
    """``42 s`` below two minutes, ``7 min`` below two hours, else hours to a tenth.

    Examples
    --------
    >>> duration(42.4), duration(420), duration(3 * 3600 + 1800)
    ('42 s', '7 min', '3.5 h')
    """
    seconds = max(0.0, float(seconds))
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
