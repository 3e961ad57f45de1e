"""The CT display windows radiologists switch between, as width and level in HU.

A window of width ``W`` and level ``L`` shows ``[L - W/2, L + W/2]`` from black to white:
the abdomen window for organ borders, a narrow liver window for lesions and vessels in
the liver, wide lung and bone windows for the bases of the lungs and the spine that
abdominal organs touch. The values are the usual ones (Radiopaedia's "windowing (CT)"
table; 3D Slicer's CT presets are within a few tens of HU of them).

Examples
--------
>>> ABDOMEN.limits
(-160.0, 240.0)
>>> matching_window((-160.0, 240.0)).name
'Abdomen'
>>> describe((-35.0, 115.0))
'W 150 L 40'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CTWindow:
    """A named display window: ``width`` and ``level`` in HU."""

    name: str
    width: float
    level: float

    @property
    def limits(self) -> tuple[float, float]:
        """``(low, high)`` contrast limits of the window."""
        return self.level - self.width / 2, self.level + self.width / 2

    @property
    def label(self) -> str:
        return f"{self.name} ({describe(self.limits)})"


ABDOMEN = CTWindow("Abdomen", 400.0, 40.0)
#: In the order a dock lists them; the first is what a CT opens with.
CT_WINDOWS: tuple[CTWindow, ...] = (
    ABDOMEN,
    CTWindow("Liver", 150.0, 30.0),
    CTWindow("Lung", 1500.0, -600.0),
    CTWindow("Bone", 1800.0, 400.0),
)


def describe(limits: tuple[float, float]) -> str:
    """Contrast limits as a radiologist reads them: ``W <width> L <level>``."""
    low, high = (float(v) for v in limits)
    return f"W {high - low:.0f} L {(low + high) / 2:.0f}"


def matching_window(limits: tuple[float, float], tolerance: float = 0.5) -> CTWindow | None:
    """The window whose limits are ``limits`` (to ``tolerance`` HU), else None."""
    low, high = (float(v) for v in limits)
    for window in CT_WINDOWS:
        a, b = window.limits
        if abs(a - low) <= tolerance and abs(b - high) <= tolerance:
            return window
    return None
