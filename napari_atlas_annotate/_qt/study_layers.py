"""Showing the next lumbar study in the open study's image layers.

Removing a study's layers and adding the next one's costs about a second per study (napari
cleans the canvas up and builds a visual per layer). When the next study has the same
series, the grade sheet and the lead's review dock put its images into the open study's
layers instead: the same data, grid, name and display range a new layer would get.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._napari.layers import show_in_layer

if TYPE_CHECKING:
    from .grade_sheet import StudySeries


def same_series(viewer: Any, shown: Mapping[str, StudySeries], loaded: list[StudySeries]) -> bool:
    """Whether ``loaded`` (from :func:`~.grade_sheet.load_study_series`) can be shown in
    the image layers of ``shown``: the same series (by name, in the same order), each an
    image layer the dock added itself (``owned``) and still in the viewer, the new ones
    read but not yet added."""
    old = list(shown.values())
    return len(old) == len(loaded) and all(
        o.description == n.description
        and o.owned
        and n.owned
        and isinstance(n.layer, tuple)
        and o.layer in viewer.layers
        for o, n in zip(old, loaded, strict=True)
    )


def show_in_place(
    shown: Mapping[str, StudySeries], loaded: list[StudySeries]
) -> dict[str, StudySeries]:
    """Put each series of ``loaded`` into the image layer (and Points layer, if any) of
    the same series in ``shown`` (check :func:`same_series` first); the series by name,
    as :func:`~.grade_sheet.add_series_layers` returns them."""
    for old, new in zip(list(shown.values()), loaded, strict=True):
        show_in_layer(old.layer, *new.layer)
        new.layer, new.points = old.layer, old.points
    return {series.description: series for series in loaded}
