"""Where annotators' label maps disagree: per class, its volume, and the slice to look at.

A voxel is *disputed for a class* when some annotators gave it that class and others did
not (everybody or nobody giving it the class is agreement). A voxel is disputed when the
annotators did not all give it the same label. The lead reads the first as "how much of
the liver is in question" (millilitres, beside the Dice) and goes to the slice holding the
most of it.

Examples
--------
>>> import numpy as np
>>> a = np.array([[[0, 5, 5, 8]]]); b = np.array([[[0, 5, 0, 0]]])
>>> int(disputed_voxels([a, b], 5).sum()), int(disputed_voxels([a, b]).sum())
(1, 2)
>>> disputed_counts([a, b], [5, 8])
{5: 1, 8: 1}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _maps(label_maps: Sequence[np.ndarray]) -> list[np.ndarray]:
    maps = [np.asarray(m) for m in label_maps]
    if not maps:
        raise ValueError("no label maps given: a disputed region needs annotators")
    shapes = {m.shape for m in maps}
    if len(shapes) > 1:
        raise ValueError(f"label maps have different shapes {sorted(shapes)}")
    return maps


def disputed_voxels(label_maps: Sequence[np.ndarray], value: int | None = None) -> np.ndarray:
    """Boolean map of the voxels the annotators disagree on.

    Parameters
    ----------
    label_maps
        The annotators' label maps, on one grid.
    value
        A class's label value: only voxels some (not all) annotators gave this class;
        ``None``: every voxel whose labels are not all the same.
    """
    maps = _maps(label_maps)
    if value is None:
        out = np.zeros(maps[0].shape, bool)
        for m in maps[1:]:
            out |= m != maps[0]
        return out
    given = [m == value for m in maps]
    return np.logical_or.reduce(given) & ~np.logical_and.reduce(given)


def disputed_counts(label_maps: Sequence[np.ndarray], values: Sequence[int]) -> dict[int, int]:
    """Number of voxels disputed for each class value (one pass over the disputed voxels)."""
    maps = _maps(label_maps)
    differ = disputed_voxels(maps)
    said = np.stack([m[differ] for m in maps])  # (annotators, disputed voxels)
    # at a voxel where labels differ, nobody-or-everybody cannot hold for a value some gave
    return {int(v): int(np.any(said == v, axis=0).sum()) for v in values}


class Disputes:
    """The voxels where annotators' label maps differ, found once per case, for going
    from class to class: each class's most disputed slice is then counted over those
    voxels alone (a few thousand of a CT's 78 million) instead of the whole grid.

    Parameters
    ----------
    label_maps
        The annotators' label maps, on one grid.
    """

    def __init__(self, label_maps: Sequence[np.ndarray]) -> None:
        maps = _maps(label_maps)
        self.shape = maps[0].shape
        self.where = np.flatnonzero(disputed_voxels(maps))  # C-order flat indices
        self.said = np.stack([m.reshape(-1)[self.where] for m in maps])  # (readers, voxels)

    def of_class(self, value: int | None = None) -> np.ndarray:
        """Flat indices of the voxels disputed for ``value`` (``None``: all disputed)."""
        if value is None:
            return self.where
        given = self.said == value
        return self.where[given.any(axis=0) & ~given.all(axis=0)]

    def most_disputed_slice(
        self, axis: int, value: int | None = None
    ) -> tuple[int, int, list[float]] | None:
        """The slice along ``axis`` holding the most disputed voxels (of ``value``, if
        given): its index, how many it holds and their mean index along every axis (the
        slice's own axis included). ``None`` when the annotators agree everywhere (for
        that class); ties go to the lowest index."""
        at = np.unravel_index(self.of_class(value), self.shape)
        if not at[axis].size:
            return None
        per_slice = np.bincount(at[axis], minlength=self.shape[axis])
        index = int(np.argmax(per_slice))
        inside = at[axis] == index
        return index, int(per_slice[index]), [float(np.mean(i[inside])) for i in at]


def most_disputed_slice(
    label_maps: Sequence[np.ndarray], axis: int, value: int | None = None
) -> tuple[int, int] | None:
    """The slice along ``axis`` holding the most disputed voxels (of ``value``, if given).

    Returns
    -------
    (index, voxels) or None
        The slice index on the maps' grid and how many disputed voxels it holds; ``None``
        when the annotators agree everywhere (for that class). Ties go to the lowest index.
    """
    found = Disputes(label_maps).most_disputed_slice(axis, value)
    return None if found is None else found[:2]
