"""Agreement between two readers' ordinal grades: confusion matrix and weighted Cohen's kappa.

scikit-learn is not a dependency, so :func:`cohen_kappa` implements
``sklearn.metrics.cohen_kappa_score(a, b, weights=...)`` in numpy with one documented
difference: when both readers give one and the same grade to every item, the chance
agreement is total and kappa is 0/0 (scikit-learn returns nan); here it is 1.0, because
the readers agree perfectly. This happens often for one spine condition of one study
(five levels, all Normal/Mild).

Examples
--------
>>> grades = ["Normal/Mild", "Moderate", "Severe"]
>>> a = ["Normal/Mild", "Normal/Mild", "Moderate", "Severe"]
>>> b = ["Normal/Mild", "Moderate", "Moderate", "Severe"]
>>> round(cohen_kappa(a, b, grades, weights="quadratic"), 4)
0.8
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(a: Sequence, b: Sequence, categories: Sequence) -> np.ndarray:
    """Counts ``m[i, j]`` of items that reader A put in ``categories[i]`` and B in ``[j]``.

    Items that either reader left empty (``None``) are skipped.

    Raises
    ------
    ValueError
        When the two sequences differ in length or hold a value not in ``categories``.
    """
    if len(a) != len(b):
        raise ValueError(f"readers graded different numbers of items ({len(a)} and {len(b)})")
    index = {c: i for i, c in enumerate(categories)}
    m = np.zeros((len(categories), len(categories)), np.int64)
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            continue
        if x not in index or y not in index:
            bad = x if x not in index else y
            raise ValueError(f"grade {bad!r} is not one of {list(categories)}")
        m[index[x], index[y]] += 1
    return m


def kappa_from_confusion(matrix: np.ndarray, weights: str | None = "quadratic") -> float | None:
    """Cohen's kappa of a confusion matrix; ``None`` when it holds no items.

    Parameters
    ----------
    matrix
        Square count matrix (rows: reader A, columns: reader B).
    weights
        ``None`` (unweighted), ``"linear"`` or ``"quadratic"`` disagreement weights
        ``|i - j|`` or ``(i - j)**2``.
    """
    observed = np.asarray(matrix, float)
    n = observed.sum()
    if n == 0:
        return None
    k = observed.shape[0]
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j).astype(float)
    elif weights == "quadratic":
        w = (i - j).astype(float) ** 2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}")
    expected = np.outer(observed.sum(1), observed.sum(0)) / n
    disagree_expected = float((w * expected).sum())
    disagree_observed = float((w * observed).sum())
    if disagree_expected == 0.0:
        # Both readers used one and the same category for everything: perfect agreement.
        return 1.0
    return 1.0 - disagree_observed / disagree_expected


def cohen_kappa(
    a: Sequence, b: Sequence, categories: Sequence, weights: str | None = "quadratic"
) -> float | None:
    """Weighted Cohen's kappa of two readers' grades of the same items.

    Parameters
    ----------
    a, b
        Grades per item, in the same item order; ``None`` marks an item a reader skipped
        (such items are left out).
    categories
        Ordered categories, mildest first (ordinal weights use their positions).
    weights
        ``"quadratic"`` (default), ``"linear"`` or ``None``.

    Returns
    -------
    float or None
        Kappa in [-1, 1]; ``None`` when no item was graded by both readers.
    """
    return kappa_from_confusion(confusion_matrix(a, b, categories), weights)
