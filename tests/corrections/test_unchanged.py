"""Why a correction tool changed nothing: each reason is given only where the tool really
leaves the labels as they were, and names what the annotator can do about it."""

import numpy as np
import pytest

from napari_atlas_annotate.corrections import (
    fill_between_slices,
    keep_largest_component,
    remove_small_islands,
    why_fill_unchanged,
    why_islands_unchanged,
    why_largest_unchanged,
)

LIVER, SPLEEN = 5, 8


def _labels():
    return np.zeros((10, 12, 12), np.uint8)


def _fill_cases():
    absent = _labels()
    one = _labels()
    one[4, 2:6, 2:6] = LIVER
    every = _labels()
    every[2:7, 2:6, 2:6] = LIVER
    apart = _labels()  # outlines on slices 1 and 5 far apart: no shape between
    apart[1, 0:2, 0:2] = LIVER
    apart[5, 10:12, 10:12] = LIVER
    covered = _labels()  # the gap between two outlines is all spleen
    covered[[1, 5], 2:8, 2:8] = LIVER
    covered[2:5] = SPLEEN
    return [
        (absent, "there is no liver"),
        (one, "drawn on slice 4 only"),
        (every, "drawn on every slice from 2 to 6"),
        (apart, "outlines on either side of the skipped slices (2-4) do not overlap"),
        (covered, "on the skipped slices (2-4) the liver's interpolated outline lies on other"),
    ]


@pytest.mark.parametrize(("labels", "said"), _fill_cases())
def test_fill_between_slices_says_why_it_filled_nothing(labels, said):
    assert np.array_equal(fill_between_slices(labels, LIVER), labels)
    assert said in why_fill_unchanged(labels, LIVER, "liver")


def test_fill_reasons_follow_the_axis_it_ran_along():
    labels = _labels()
    labels[3:5, 2:6, 7] = LIVER  # one slice along the last axis
    assert np.array_equal(fill_between_slices(labels, LIVER, axis=2), labels)
    assert "drawn on slice 7 only" in why_fill_unchanged(labels, LIVER, "liver", axis=2)


def test_keep_largest_component_says_the_class_is_one_piece_or_absent():
    labels = _labels()
    assert "there is no liver" in why_largest_unchanged(labels, LIVER, "liver")
    labels[2:5, 2:5, 2:5] = LIVER
    labels[6, 8, 8] = SPLEEN  # another class's piece is not the liver's
    assert np.array_equal(keep_largest_component(labels, LIVER), labels)
    assert why_largest_unchanged(labels, LIVER, "liver") == "the liver is already one piece"


def test_remove_islands_says_no_piece_is_below_the_limit():
    labels = _labels()
    assert "there is no liver" in why_islands_unchanged(labels, LIVER, "liver", 5)
    labels[2:5, 2:5, 2:5] = LIVER  # 27 voxels
    assert np.array_equal(remove_small_islands(labels, LIVER, 5), labels)
    assert "one piece of 27 voxels" in why_islands_unchanged(labels, LIVER, "liver", 5)
    labels[7:9, 8:10, 8:10] = LIVER  # a second piece of 8 voxels
    assert np.array_equal(remove_small_islands(labels, LIVER, 8), labels)
    said = why_islands_unchanged(labels, LIVER, "liver", 8)
    assert "none of the liver's 2 pieces is smaller than 8 voxels (27 and 8 voxels" in said
    assert "raise the size limit" in said
