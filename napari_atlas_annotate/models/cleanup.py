"""Post-processing of a predicted label map (uint8, at model or image resolution)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage


def keep_largest_components(labels: np.ndarray, class_ids: Iterable[int]) -> np.ndarray:
    """Keep only the largest 26-connected component of each class in ``class_ids``.

    Organs such as the liver or a kidney are one piece; stray islands of a class elsewhere
    are set to background. Works in place on ``labels`` and returns it.

    Examples
    --------
    >>> a = np.zeros((1, 1, 7), np.uint8); a[0, 0, [0, 1, 2, 5]] = 3
    >>> keep_largest_components(a, [3])[0, 0].tolist()
    [3, 3, 3, 0, 0, 0, 0]
    """
    structure = np.ones((3, 3, 3), bool)
    objects = ndimage.find_objects(labels)
    for cid in class_ids:
        if cid > len(objects) or objects[cid - 1] is None:
            continue
        box = objects[cid - 1]
        sub = labels[box]
        mask = sub == cid
        components, n = ndimage.label(mask, structure=structure)
        if n <= 1:
            continue
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        sub[mask & (components != int(sizes.argmax()))] = 0
    return labels
