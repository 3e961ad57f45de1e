"""Combining several annotators' label maps: majority vote, STAPLE and a disagreement map.

All functions take label maps (integer arrays on one grid, 0 = background, ``1..n`` =
classes) and return arrays on the same grid, so the result overlays the image exactly.

Rules, stated once:

* **Majority vote**: each voxel gets the label more annotators gave it than any other. A
  tie for the most votes is background, between background and an organ as between two
  organs (the conservative choice: an organ voxel needs a plurality of its own; with two
  readers, only what both labelled alike). ``monai.transforms.VoteEnsemble`` would give a
  tie to the lowest label value, which gave two readers' swapped kidneys all to the
  left kidney; the counts here are per label instead of a one-hot float array.
* **Disagreement map**: per voxel, how many annotators did not give the most common label
  (``n_annotators - largest agreeing group``); 0 where everybody agrees. It does not
  depend on how ties are broken.
* **STAPLE** (Warfield et al., IEEE TMI 2004): binary STAPLE per class by
  expectation-maximisation of each annotator's sensitivity and specificity. The
  multi-class label is the class with the highest posterior where that posterior is above
  0.5, else background. Voxels that no annotator labelled outside the class's bounding
  box (plus a margin) are left out of the estimate, so a huge empty background does not
  inflate every specificity to 1.

Examples
--------
>>> import numpy as np
>>> a = np.array([[0, 1, 1, 2]]); b = np.array([[0, 1, 2, 2]]); c = np.array([[1, 1, 2, 0]])
>>> majority_vote([a, b, c]).tolist()
[[0, 1, 2, 2]]
>>> disagreement_map([a, b, c]).tolist()
[[1, 0, 1, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _stack(label_maps: Sequence[np.ndarray]) -> list[np.ndarray]:
    maps = [np.asarray(m) for m in label_maps]
    if not maps:
        raise ValueError("no label maps given: consensus needs at least one annotator")
    shape = maps[0].shape
    for m in maps[1:]:
        if m.shape != shape:
            raise ValueError(
                f"label maps have different shapes ({shape} and {m.shape}); they must all be "
                "on the case's image grid"
            )
    return maps


def _vote_counts(maps: list[np.ndarray]) -> np.ndarray:
    """(n_labels + 1, *shape) uint8/uint16 counts of annotators giving each label value."""
    n_labels = max(int(m.max()) for m in maps) if maps[0].size else 0
    dtype = np.uint8 if len(maps) < 256 else np.uint16
    counts = np.zeros((n_labels + 1, *maps[0].shape), dtype)
    for m in maps:
        for value in range(n_labels + 1):
            counts[value] += m == value
    return counts


def _votes(maps: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote and disagreement map, counted only where the readers differ.

    Readers agree on almost every voxel of a CT (all but a few thousand of 78 million at
    512x512x300), so the vote there is the first reader's label and the per-label counts
    are taken on the voxels that differ only, instead of a ``(labels, *shape)`` count array
    and its argmax over the whole grid (about 6 s a case)."""
    first = maps[0]
    differ = np.zeros(first.shape, bool)
    for m in maps[1:]:
        differ |= m != first
    where = np.flatnonzero(differ)
    # C order, so that reshape(-1) below is a view of it (a transposed reader's map is not)
    vote = np.array(first, dtype=np.result_type(*(m.dtype for m in maps)), order="C")
    disagreement = np.zeros(first.shape, np.uint8)
    if where.size:
        counts = _vote_counts([m.reshape(-1)[where] for m in maps])
        most = counts.max(axis=0)
        winner = np.argmax(counts, axis=0)
        winner[(counts == most).sum(axis=0) > 1] = 0  # a tie for the most votes: background
        vote.reshape(-1)[where] = winner
        disagreement.reshape(-1)[where] = len(maps) - most
    return vote, disagreement


def majority_vote(label_maps: Sequence[np.ndarray]) -> np.ndarray:
    """Per-voxel most common label; a tie for the most votes is background (module notes)."""
    return _votes(_stack(label_maps))[0]


def disagreement_map(label_maps: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 count of annotators who did not give the voxel its most common label."""
    return _votes(_stack(label_maps))[1]


def vote_and_disagreement(label_maps: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`majority_vote` and :func:`disagreement_map` of the same maps, counted once."""
    return _votes(_stack(label_maps))


@dataclass
class StapleResult:
    """Binary STAPLE of one class.

    Attributes
    ----------
    posterior
        float32 probability that each voxel belongs to the class (0 outside the region).
    sensitivity, specificity
        Estimated per-annotator sensitivity (p) and specificity (q), in annotator order.
    iterations
        EM iterations run.
    """

    posterior: np.ndarray
    sensitivity: np.ndarray
    specificity: np.ndarray
    iterations: int


def staple_binary(
    masks: Sequence[np.ndarray],
    *,
    margin: int = 2,
    max_iter: int = 200,
    tol: float = 1e-7,
    initial: float = 0.99,
    reestimate_prior: bool = True,
) -> StapleResult:
    """Binary STAPLE (EM over annotators' sensitivity and specificity).

    The E-step only depends on which annotators marked a voxel, so EM runs on the counts of
    the ``2**n`` rater patterns inside the region (the union's bounding box grown by
    ``margin``) rather than on every voxel: exact, and fast for a few annotators.

    Parameters
    ----------
    masks
        One boolean mask per annotator, same shape.
    margin
        Voxels added around the union's bounding box to form the estimation region.
    max_iter, tol
        EM stops after ``max_iter`` iterations or when no parameter moves more than ``tol``.
    initial
        Starting sensitivity and specificity of every annotator.
    reestimate_prior
        Update the class fraction in each M-step (starting from the annotators' mean
        fraction). Warfield's original keeps that starting value fixed; when some
        annotators are noisy it is inflated and EM can settle on trusting a careful
        annotator's false positives (measured: 433 wrong voxels against 62 with the update,
        on a 16x32x32 test with raters at 1 %, 2 %, 30 %, 30 % noise).
    """
    maps = [np.asarray(m, bool) for m in _stack(masks)]
    n = len(maps)
    if n > 16:
        raise ValueError(f"STAPLE here supports up to 16 annotators, got {n}")
    union = np.logical_or.reduce(maps)
    posterior = np.zeros(union.shape, np.float32)
    if not union.any():
        return StapleResult(posterior, np.ones(n), np.ones(n), 0)
    nz = np.nonzero(union)
    region = tuple(
        slice(max(int(i.min()) - margin, 0), min(int(i.max()) + margin + 1, s))
        for i, s in zip(nz, union.shape, strict=True)
    )
    # Pattern code of each voxel: bit j set when annotator j marked it.
    code = np.zeros(union[region].shape, np.int32)
    for j, m in enumerate(maps):
        code |= m[region].astype(np.int32) << j
    counts = np.bincount(code.ravel(), minlength=2**n).astype(float)
    decisions = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(float)
    present = counts > 0
    d, c = decisions[present], counts[present]
    prior = float((d * c[:, None]).sum() / (n * c.sum()))  # mean fraction marked
    p = np.full(n, initial)
    q = np.full(n, initial)
    eps = 1e-12
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - iterations reported
        log_a = np.log(prior + eps) + (d * np.log(p + eps) + (1 - d) * np.log(1 - p + eps)).sum(1)
        log_b = np.log(1 - prior + eps) + ((1 - d) * np.log(q + eps) + d * np.log(1 - q + eps)).sum(
            1
        )
        w = 1.0 / (1.0 + np.exp(np.clip(log_b - log_a, -700, 700)))
        wc, vc = w * c, (1 - w) * c
        new_p = (wc[:, None] * d).sum(0) / max(wc.sum(), eps)
        new_q = (vc[:, None] * (1 - d)).sum(0) / max(vc.sum(), eps)
        if reestimate_prior:
            prior = float(wc.sum() / c.sum())
        moved = max(np.abs(new_p - p).max(), np.abs(new_q - q).max())
        p, q = new_p, new_q
        if moved < tol:
            break
    table = np.zeros(2**n, np.float32)
    table[present] = w
    posterior[region] = table[code]
    return StapleResult(posterior, p, q, it)


def staple(label_maps: Sequence[np.ndarray], n_classes: int | None = None) -> np.ndarray:
    """Multi-class STAPLE label: per class binary STAPLE, then the most probable class
    where its posterior exceeds 0.5, else background.

    Parameters
    ----------
    label_maps
        One label map per annotator.
    n_classes
        Highest class value to consider; defaults to the highest value present.
    """
    maps = _stack(label_maps)
    if n_classes is None:
        n_classes = max(int(m.max()) for m in maps) if maps[0].size else 0
    dtype = np.result_type(*(m.dtype for m in maps))
    best = np.full(maps[0].shape, 0.5, np.float32)
    out = np.zeros(maps[0].shape, dtype)
    for value in range(1, n_classes + 1):
        post = staple_binary([m == value for m in maps]).posterior
        better = post > best
        out[better] = value
        best[better] = post[better]
    return out
