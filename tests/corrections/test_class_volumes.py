"""Class volumes kept current from each edit's diff match a fresh count of the label map."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.corrections.class_volumes import ClassVolumes
from napari_atlas_annotate.project.edit_log import diff_labels


def test_volumes_follow_edits_as_a_recount_would():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (6, 20, 20)).astype(np.uint8)
    volumes = ClassVolumes(labels, voxel_ml=0.8 * 0.8 * 3 / 1000)
    diffs = []
    for _ in range(30):
        after = labels.copy()
        z, y, x = rng.integers(0, 6), rng.integers(0, 15), rng.integers(0, 15)
        after[z, y : y + 5, x : x + 5] = rng.integers(0, 7)  # classes 4-6 appear too
        diff = diff_labels(labels, after)
        if diff is not None:
            volumes.apply(diff)
            diffs.append(diff)
        labels = after
        recount = np.bincount(labels.ravel(), minlength=7)
        assert [volumes.voxels(v) for v in range(7)] == recount.tolist()
    for diff in reversed(diffs):  # undo everything: the diff of an undo is old <-> new
        before = labels.copy()
        diff.revert(labels)
        volumes.apply(diff_labels(before, labels))
    assert volumes.voxels(5) == 0 and volumes.voxels(6) == 0


def test_ml_and_absent_classes():
    labels = np.zeros((3, 10, 10), np.uint8)
    labels[1, 2:6, 2:6] = 5
    volumes = ClassVolumes(labels, voxel_ml=2.5 / 1000)
    assert volumes.ml(5) == pytest.approx(16 * 2.5 / 1000)
    assert volumes.voxels(9) == 0 and volumes.ml(9) == 0.0  # no such class painted yet
