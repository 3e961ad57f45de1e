"""Correction tools on small arrays with exact expected results."""

import numpy as np
import pytest

from napari_atlas_annotate.corrections import (
    fill_between_slices,
    keep_largest_component,
    remove_small_islands,
    threshold_paint,
)


def test_fill_between_identical_slices_copies_the_outline():
    labels = np.zeros((5, 10, 10), np.uint8)
    labels[0, 2:6, 3:8] = 2
    labels[4, 2:6, 3:8] = 2
    out = fill_between_slices(labels, 2)
    expected = np.zeros_like(labels)
    expected[:, 2:6, 3:8] = 2
    np.testing.assert_array_equal(out, expected)
    assert labels[2].sum() == 0  # input untouched


def test_fill_between_translated_box_moves_halfway():
    labels = np.zeros((3, 12, 16), np.uint8)
    labels[0, 3:8, 2:8] = 1
    labels[2, 3:8, 4:10] = 1
    out = fill_between_slices(labels, 1)
    expected = np.zeros((12, 16), np.uint8)
    expected[3:8, 3:9] = 1
    np.testing.assert_array_equal(out[1], expected)


def test_fill_between_keeps_other_classes_and_drawn_slices():
    labels = np.zeros((6, 8, 8), np.uint8)
    labels[0, 2:6, 2:6] = 1
    labels[2, 3:5, 3:5] = 1  # drawn by hand: stays as drawn
    labels[5, 2:6, 2:6] = 1
    labels[3, 2, 2] = 7  # another organ inside the interpolated outline
    out = fill_between_slices(labels, 1)
    np.testing.assert_array_equal(out[2], labels[2])
    # Slices 1 and 3-4 are interpolated from their own neighbours (0|2 and 2|5) ...
    alone = labels.copy()
    alone[3, 2, 2] = 0
    without_other = fill_between_slices(alone, 1)
    np.testing.assert_array_equal(out[1], fill_between_slices(labels[:3], 1)[1])
    # ... and the other organ's voxel only blocks itself.
    assert out[3, 2, 2] == 7
    expected3 = without_other[3].copy()
    expected3[2, 2] = 7
    np.testing.assert_array_equal(out[3], expected3)
    assert (out[3] == 1).sum() >= 4 and (out[4, 2:6, 2:6] == 1).sum() >= 12
    np.testing.assert_array_equal(out[:, 0, :], 0)


def test_fill_between_along_another_axis():
    labels = np.zeros((6, 8, 9), np.uint8)
    labels[1:4, 2:5, 0] = 3
    labels[1:4, 2:5, 4] = 3
    out = fill_between_slices(labels, 3, axis=2)
    expected = np.zeros_like(labels)
    expected[1:4, 2:5, 0:5] = 3
    np.testing.assert_array_equal(out, expected)


def test_fill_between_single_slice_changes_nothing():
    labels = np.zeros((4, 5, 5), np.uint8)
    labels[1, 1:3, 1:3] = 1
    np.testing.assert_array_equal(fill_between_slices(labels, 1), labels)


def test_threshold_paint_only_inside_window():
    labels = np.zeros((1, 3, 4), np.uint8)
    labels[0, 0, 0] = 4
    image = np.array([[[50, 100, 150, 200], [10, 60, 90, 300], [0, 0, 0, 0]]], np.int16)
    stroke = np.zeros(labels.shape, bool)
    stroke[0, :2, :] = True
    out = threshold_paint(labels, image, stroke, 5, 60, 150)
    expected = np.array([[[4, 5, 5, 0], [0, 5, 5, 0], [0, 0, 0, 0]]], np.uint8)
    np.testing.assert_array_equal(out, expected)


def test_threshold_paint_rejects_bad_input():
    labels = np.zeros((2, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="same grid"):
        threshold_paint(labels, np.zeros((2, 2, 3)), np.ones((2, 2, 2), bool), 1, 0, 1)
    with pytest.raises(ValueError, match="empty"):
        threshold_paint(labels, np.zeros((2, 2, 2)), np.ones((2, 2, 2), bool), 1, 5, 1)


def test_remove_small_islands_face_connectivity():
    labels = np.zeros((3, 6, 6), np.uint8)
    labels[0:2, 0:2, 0:2] = 1  # 8 voxels
    labels[2, 5, 5] = 1  # 1 voxel
    labels[2, 4, 4] = 1  # touches the previous one only at an edge: separate piece
    labels[1, 4:6, 0:2] = 1  # 4 voxels
    labels[0, 5, 5] = 2  # other class, small, untouched
    out = remove_small_islands(labels, 1, min_voxels=4)
    expected = labels.copy()
    expected[2, 5, 5] = 0
    expected[2, 4, 4] = 0
    np.testing.assert_array_equal(out, expected)
    # With 26-connectivity the two edge-touching voxels form one piece of 2.
    joined = remove_small_islands(labels, 1, min_voxels=2, connectivity=3)
    assert joined[2, 5, 5] == 1 and joined[2, 4, 4] == 1
    labels[2, 4, 5] = 1  # now face-connected: one piece of 3
    kept = remove_small_islands(labels, 1, min_voxels=3)
    assert kept[2, 5, 5] == kept[2, 4, 4] == kept[2, 4, 5] == 1


def test_remove_small_islands_never_removes_the_organ_itself():
    # a limit above a small organ's size erased all of it: "91 voxels changed", 0.0 ml
    labels = np.zeros((4, 8, 8), np.uint8)
    labels[1:3, 1:4, 1:4] = 7  # the gall bladder: one piece of 18 voxels
    out = remove_small_islands(labels, 7, min_voxels=19)
    np.testing.assert_array_equal(out, labels)
    labels[3, 7, 7] = 7  # and an island of 1: it goes, the organ stays
    out = remove_small_islands(labels, 7, min_voxels=19)
    assert out[3, 7, 7] == 0 and (out == 7).sum() == 18
    assert (remove_small_islands(np.zeros_like(labels), 7, 5) == 0).all()  # absent: as is


def test_keep_largest_component():
    labels = np.zeros((2, 5, 5), np.uint8)
    labels[0, 0:3, 0:3] = 3  # 9 voxels
    labels[1, 4, 4] = 3
    labels[0, 4, 0:2] = 3
    labels[1, 0, 4] = 6
    out = keep_largest_component(labels, 3)
    expected = np.zeros_like(labels)
    expected[0, 0:3, 0:3] = 3
    expected[1, 0, 4] = 6
    np.testing.assert_array_equal(out, expected)
    absent = keep_largest_component(labels, 5)
    np.testing.assert_array_equal(absent, labels)


def test_tools_refuse_background_class():
    with pytest.raises(ValueError, match="foreground"):
        keep_largest_component(np.zeros((2, 2, 2), np.uint8), 0)
