"""Each class's volume in millilitres while a label is being corrected (ITK-SNAP's label
statistics), kept current edit by edit.

Counting a 512x512x300 label map takes 0.14 s (``bench/class_volumes.py``), too slow to
repeat after every brush stroke; an edit's
:class:`~napari_atlas_annotate.project.edit_log.LabelDiff` already holds the old and new
value of every voxel it changed, so the counts move by those alone.

Examples
--------
>>> import numpy as np
>>> labels = np.zeros((2, 4, 4), np.uint8); labels[0, :2, :2] = 5
>>> volumes = ClassVolumes(labels, voxel_ml=0.5)
>>> volumes.ml(5)
2.0
"""

from __future__ import annotations

import numpy as np

from ..project.edit_log import LabelDiff


class ClassVolumes:
    """Voxel counts per label value of one label map, and their volumes.

    Parameters
    ----------
    labels
        The label map (any integer dtype, values >= 0).
    voxel_ml
        The volume of one voxel in millilitres (the product of the spacing in mm / 1000).
    """

    def __init__(self, labels: np.ndarray, voxel_ml: float) -> None:
        self.voxel_ml = float(voxel_ml)
        labels = np.asarray(labels)
        # np.bincount of the whole map widens every voxel to int64 (0.14 s at 512x512x300,
        # bench/class_volumes.py); the labelled voxels are a small part of it: count those
        # (35 ms), background is the rest
        labelled = labels[labels != 0]
        self.counts = np.bincount(labelled, minlength=1).astype(np.int64)
        self.counts[0] = labels.size - labelled.size

    def _grow_to(self, n: int) -> None:
        if n > self.counts.size:
            self.counts = np.pad(self.counts, (0, n - self.counts.size))

    def apply(self, diff: LabelDiff) -> None:
        """Move the counts by an edit: its changed voxels leave their old class and join
        their new one (an undo's diff too: it is logged old -> new like any edit)."""
        old = np.bincount(np.asarray(diff.old, np.int64).ravel())
        new = np.bincount(np.asarray(diff.new, np.int64).ravel())
        self._grow_to(max(old.size, new.size))
        self.counts[: old.size] -= old
        self.counts[: new.size] += new

    def voxels(self, value: int) -> int:
        """Voxels labelled ``value``."""
        return int(self.counts[value]) if 0 <= value < self.counts.size else 0

    def ml(self, value: int) -> float:
        """Volume of class ``value`` in millilitres."""
        return self.voxels(value) * self.voxel_ml
