"""Majority vote, disagreement map and STAPLE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import VoteEnsemble

from napari_atlas_annotate.review.consensus import (
    disagreement_map,
    majority_vote,
    staple,
    staple_binary,
    vote_and_disagreement,
)


def test_majority_vote_is_monai_vote_ensemble_but_for_ties_which_are_background():
    rng = np.random.default_rng(3)
    maps = [rng.integers(0, 4, size=(5, 7, 6)).astype(np.uint8) for _ in range(4)]  # many ties
    ours = majority_vote(maps)
    stacked = torch.stack([torch.as_tensor(m)[None] for m in maps])  # (E, 1, z, y, x)
    theirs = VoteEnsemble(num_classes=4)(stacked)[0].numpy()  # argmax of the one-hot mean
    counts = np.stack([sum((m == v).astype(int) for m in maps) for v in range(4)])
    tied = (counts == counts.max(axis=0)).sum(axis=0) > 1
    assert tied.any() and (~tied).any()
    np.testing.assert_array_equal(ours[~tied], theirs[~tied])
    assert (ours[tied] == 0).all()  # MONAI gives a tie to the lowest label, an organ too
    assert ours.dtype == np.uint8


def test_vote_on_mostly_agreeing_readers_equals_the_per_voxel_rule():
    # As on a real CT: the readers agree almost everywhere. The maps are transposed views
    # (not contiguous) of different integer types, as label files may load.
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 6, size=(12, 9, 10)).astype(np.uint8)
    maps = []
    for k in range(3):
        m = truth.copy()
        flip = rng.random(truth.shape) < 0.05
        m[flip] = rng.integers(0, 8, size=int(flip.sum()))
        maps.append((m.astype(np.int16) if k == 1 else m).transpose(2, 0, 1))
    vote, dissent = vote_and_disagreement(maps)
    assert 0 < np.count_nonzero(dissent) < dissent.size // 5
    stacked = np.stack([np.asarray(m).ravel() for m in maps])
    for i in range(stacked.shape[1]):
        counts = np.bincount(stacked[:, i], minlength=8)
        tie = np.count_nonzero(counts == counts.max()) > 1
        assert vote.ravel()[i] == (0 if tie else np.argmax(counts))  # a tie: background
        assert dissent.ravel()[i] == len(maps) - counts.max()
    assert vote.dtype == np.int16 and vote.shape == maps[0].shape
    np.testing.assert_array_equal(vote, majority_vote(maps))
    np.testing.assert_array_equal(dissent, disagreement_map(maps))
    alone, none = vote_and_disagreement([maps[0]])
    np.testing.assert_array_equal(alone, maps[0])
    assert not none.any()


def test_a_tie_is_background_and_disagreement_counts_dissenters():
    # two readers' swapped kidneys went all to the left kidney (the lower label)
    a = np.array([0, 3, 2, 2, 1])
    b = np.array([4, 3, 1, 2, 1])
    c = np.array([5, 3, 1, 0, 2])
    assert majority_vote([a, b]).tolist() == [0, 3, 0, 2, 1]
    assert majority_vote([a, b, c]).tolist() == [0, 3, 1, 2, 1]
    assert disagreement_map([a, b]).tolist() == [1, 0, 1, 0, 0]
    assert disagreement_map([a, b, c]).tolist() == [2, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="different shapes"):
        majority_vote([a, a[:3]])


def test_staple_trusts_the_reliable_annotators():
    rng = np.random.default_rng(0)
    truth = np.zeros((16, 32, 32), bool)
    truth[4:12, 8:24, 8:24] = True
    noisy = [truth ^ (rng.random(truth.shape) < e) for e in (0.01, 0.02, 0.3, 0.3)]
    result = staple_binary(noisy)
    # The two careful annotators get the highest sensitivity and specificity.
    assert list(np.argsort(-result.sensitivity)[:2]) in ([0, 1], [1, 0])
    assert list(np.argsort(-result.specificity)[:2]) in ([0, 1], [1, 0])
    staple_err = np.count_nonzero((result.posterior > 0.5) != truth)
    vote_err = np.count_nonzero(majority_vote([n.astype(np.uint8) for n in noisy]) != truth)
    assert staple_err < vote_err  # a 2-2 vote ties to background; STAPLE weighs the raters
    # The estimates recover the simulated rates.
    np.testing.assert_allclose(result.sensitivity, [0.99, 0.98, 0.7, 0.7], atol=0.04)
    np.testing.assert_allclose(result.specificity, [0.99, 0.98, 0.7, 0.7], atol=0.04)


def test_staple_multiclass_identical_and_empty():
    a = np.zeros((6, 8, 8), np.uint8)
    a[1:4, 2:6, 2:4] = 1
    a[1:4, 2:6, 5:7] = 2
    np.testing.assert_array_equal(staple([a, a, a]), a)
    empty = np.zeros_like(a)
    np.testing.assert_array_equal(staple([empty, empty]), empty)
