"""Why a correction tool changed nothing, in the annotator's words.

A tool that finds nothing to do (:mod:`.tools`) leaves the labels as they are: nothing is
logged and no undo step is made. The annotator still pressed a button and deserves to know
why nothing happened (``the liver is already one piece``) rather than read ``0 voxels
changed``. Each function here looks at the labels the tool was given and returns that
reason; call it only when the tool's result equals its input.

Slices are numbered from 0 along the axis the tool ran on, as napari's slider shows them.

Examples
--------
>>> import numpy as np
>>> labels = np.zeros((4, 6, 6), np.uint8)
>>> labels[1:3, 1:4, 1:4] = 5
>>> why_largest_unchanged(labels, 5, "liver")
'the liver is already one piece'
"""

from __future__ import annotations

import numpy as np

from .tools import class_pieces, fill_between_slices


def _absent(name: str) -> str:
    return f"there is no {name} in these labels (pick the class to work on, keys 1-9)"


def _ranges(indices: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def why_fill_unchanged(labels: np.ndarray, class_id: int, name: str, axis: int = 0) -> str:
    """Why :func:`~.tools.fill_between_slices` filled nothing.

    Parameters
    ----------
    labels
        The labels the tool was given.
    class_id, name
        The class interpolated and its name.
    axis
        The axis the tool stepped along.
    """
    mask = np.moveaxis(np.asarray(labels) == class_id, axis, 0)
    drawn = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)).tolist()
    if not drawn:
        return f"{_absent(name)}; draw it on two slices, then fill between them"
    if len(drawn) == 1:
        return (
            f"the {name} is drawn on slice {drawn[0]} only; draw it on another slice too, "
            "then fill between them"
        )
    skipped = sorted(set(range(drawn[0], drawn[-1] + 1)) - set(drawn))
    if not skipped:
        return (
            f"the {name} is drawn on every slice from {drawn[0]} to {drawn[-1]}; no slice in "
            "between was skipped"
        )
    labels = np.asarray(labels)
    alone = np.where(labels == class_id, labels, 0)  # the class without the others
    if np.array_equal(fill_between_slices(alone, class_id, axis), alone):
        return (
            f"the {name}'s outlines on either side of the skipped slices ({_ranges(skipped)}) "
            "do not overlap, so there is no shape to interpolate; draw it on a slice in "
            "between"
        )
    return (
        f"on the skipped slices ({_ranges(skipped)}) the {name}'s interpolated outline "
        "lies on other classes only, and only background is filled"
    )


def _pieces(labels: np.ndarray, class_id: int, connectivity: int) -> np.ndarray:
    """Voxel counts of the class's connected pieces, largest first."""
    pieces = class_pieces(labels, class_id, connectivity)
    if pieces is None:
        return np.zeros(0, np.int64)
    return np.sort(pieces[2][1:])[::-1]


def why_largest_unchanged(
    labels: np.ndarray, class_id: int, name: str, connectivity: int = 1
) -> str:
    """Why :func:`~.tools.keep_largest_component` erased nothing (same ``connectivity``)."""
    sizes = _pieces(labels, class_id, connectivity)
    if sizes.size == 0:
        return _absent(name)
    return f"the {name} is already one piece"


def why_islands_unchanged(
    labels: np.ndarray, class_id: int, name: str, min_voxels: int, connectivity: int = 1
) -> str:
    """Why :func:`~.tools.remove_small_islands` erased nothing (same parameters)."""
    sizes = _pieces(labels, class_id, connectivity)
    if sizes.size == 0:
        return _absent(name)
    if sizes.size == 1:
        return f"the {name} is one piece of {sizes[0]:,} voxels, no island to remove"
    shown = [f"{s:,}" for s in sizes[:5].tolist()]
    if sizes.size > 5:
        listed = f"{', '.join(shown)} voxels and {sizes.size - 5} more pieces"
    else:
        listed = f"{', '.join(shown[:-1])} and {shown[-1]} voxels"
    return (
        f"none of the {name}'s {sizes.size} pieces is smaller than {min_voxels:,} voxels "
        f"({listed}, largest first); raise the size limit to remove the small ones"
    )
