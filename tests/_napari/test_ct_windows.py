"""CT display windows: width and level as radiologists name them."""

from __future__ import annotations

import pytest

from napari_atlas_annotate._napari.ct_windows import (
    ABDOMEN,
    CT_WINDOWS,
    describe,
    matching_window,
)
from napari_atlas_annotate._napari.layers import CT_WINDOW


def test_limits_are_level_plus_minus_half_the_width():
    liver = next(w for w in CT_WINDOWS if w.name == "Liver")
    assert liver.limits == (-45.0, 105.0)
    assert describe(liver.limits) == "W 150 L 30"
    assert liver.label == "Liver (W 150 L 30)"


def test_a_ct_opens_in_the_first_window_listed():
    assert CT_WINDOWS[0] is ABDOMEN and CT_WINDOW == ABDOMEN.limits


@pytest.mark.parametrize("window", CT_WINDOWS, ids=lambda w: w.name)
def test_each_window_is_recognised_from_its_limits(window):
    low, high = window.limits
    assert matching_window((low + 0.4, high - 0.4)) is window
    assert matching_window((low + 2.0, high)) is None


def test_windows_are_distinct():
    assert len({w.limits for w in CT_WINDOWS}) == len(CT_WINDOWS)
