"""Organ classes of a label map: ids, names and fixed display colours.

Label value ``i`` (1-based) is the ``i``-th configured class name; 0 is background. The nine
AbdomenAtlas 1.0 classes have fixed colours so a liver is the same brown in every case,
every project and every screenshot. Classes a project adds get deterministic colours from a
fallback palette. Pure Python: no napari, no Qt.

Examples
--------
>>> class_id("liver")
5
>>> colors = class_colors(["liver", "tumour"])
>>> colors[1] == CLASS_COLORS["liver"]
True
>>> colors[0]
(0, 0, 0)
"""

from __future__ import annotations

from collections.abc import Sequence

#: AbdomenAtlas 1.0 organ classes, label ids 1..9 in this order.
ABDOMEN_ATLAS_CLASSES: tuple[str, ...] = (
    "aorta",
    "gall_bladder",
    "kidney_left",
    "kidney_right",
    "liver",
    "pancreas",
    "postcava",
    "spleen",
    "stomach",
)

#: Fixed RGB (0-255) colour of each AbdomenAtlas class; chosen to be told apart at a glance
#: and loosely anatomical (arterial red, venous blue, liver brown, bile green).
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "aorta": (220, 40, 40),
    "gall_bladder": (40, 180, 60),
    "kidney_left": (255, 200, 40),
    "kidney_right": (250, 120, 30),
    "liver": (160, 80, 45),
    "pancreas": (240, 140, 200),
    "postcava": (40, 90, 220),
    "spleen": (150, 60, 200),
    "stomach": (60, 200, 200),
}

#: Colours for classes without a fixed colour, used in order (then cycled).
_FALLBACK_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 128, 0),
    (0, 128, 128),
    (170, 110, 40),
    (255, 250, 200),
    (128, 0, 0),
    (170, 255, 195),
    (0, 0, 128),
    (255, 215, 180),
    (220, 190, 255),
    (70, 240, 240),
)

BACKGROUND_COLOR: tuple[int, int, int] = (0, 0, 0)


def class_id(name: str, names: Sequence[str] = ABDOMEN_ATLAS_CLASSES) -> int:
    """Label value (1-based) of class ``name`` among ``names``.

    Raises
    ------
    KeyError
        When ``name`` is not one of ``names``; the message lists the known classes.
    """
    try:
        return list(names).index(name) + 1
    except ValueError:
        raise KeyError(f"unknown class {name!r}; known classes: {', '.join(names)}") from None


def class_names(n_labels: int, names: Sequence[str] | None = None) -> list[str]:
    """Names for label values ``1..n_labels``: the configured ones, then ``label_<i>``.

    Parameters
    ----------
    n_labels
        Highest label value to name.
    names
        Configured class names (label ``i`` is ``names[i - 1]``); ``None`` uses the
        AbdomenAtlas classes.
    """
    names = list(ABDOMEN_ATLAS_CLASSES if names is None else names)
    return [names[i - 1] if i <= len(names) else f"label_{i}" for i in range(1, n_labels + 1)]


def class_colors(names: Sequence[str]) -> dict[int, tuple[int, int, int]]:
    """RGB (0-255) colour per label value for the configured ``names``.

    Label 0 (background) maps to black; the caller draws it transparent. Known
    AbdomenAtlas classes keep their fixed colour wherever they appear in ``names``;
    others take the fallback palette in order.

    Parameters
    ----------
    names
        Class names; label ``i`` is ``names[i - 1]``.

    Returns
    -------
    dict
        ``{0: BACKGROUND_COLOR, 1: colour of names[0], ...}``.
    """
    colors: dict[int, tuple[int, int, int]] = {0: BACKGROUND_COLOR}
    spare = 0
    for i, name in enumerate(names, start=1):
        if name in CLASS_COLORS:
            colors[i] = CLASS_COLORS[name]
        else:
            colors[i] = _FALLBACK_PALETTE[spare % len(_FALLBACK_PALETTE)]
            spare += 1
    return colors
