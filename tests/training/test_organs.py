"""Held-out scoring against labels whose borders annotators left a voxel off."""

import numpy as np
import pytest

from napari_atlas_annotate.training.organs import dice_per_class, tolerant_dice


def _box_labels(shape=(20, 40, 40)) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[4:16, 6:26, 6:26] = 1
    labels[6:14, 28:36, 28:36] = 2
    return labels


def _set_dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_zero_tolerance_is_plain_dice():
    labels = _box_labels()
    proposal = np.roll(labels, 1, axis=2)
    [score] = tolerant_dice([proposal], labels, 2, 0)
    np.testing.assert_allclose(score, dice_per_class(proposal, labels, 2))


def test_borders_within_twice_the_tolerance_do_not_count_missed_parts_do():
    # the labels keep the borders of the model that proposed them ("old"): the annotator
    # repainted a missed part of organ 1 but left every border alone
    old = _box_labels()
    labels = old.copy()
    old[4:16, 6:26, 6:12][old[4:16, 6:26, 6:12] == 1] = 0  # old missed this slab of organ 1
    # "new" found the whole organ, but its borders sit two voxels to the side of the labels'
    # (each of the two models one voxel from the true border, on opposite sides)
    new = np.roll(labels, 2, axis=2)
    plain_old, plain_new = dice_per_class(old, labels, 2), dice_per_class(new, labels, 2)
    assert plain_new[1] < plain_old[1] == 1.0  # plain Dice: organ 2 for the old model
    assert np.mean(plain_old) > np.mean(plain_new)  # and the old model overall
    tol_old, tol_new = tolerant_dice([old, new], labels, 2, 1)
    np.testing.assert_allclose(tol_new, [1.0, 1.0])  # within 2 voxels: forgiven
    assert tol_old[0] < 0.9 and tol_old[1] == 1.0  # the missed slab still counts
    assert np.nanmean(tol_new) > np.nanmean(tol_old)
    # what is left out is exactly the cube of 5 voxels around each label border
    from scipy import ndimage

    band = ndimage.maximum_filter(labels, 5) != ndimage.minimum_filter(labels, 5)
    keep = ~band
    expected = _set_dice((old == 1) & keep, (labels == 1) & keep)
    assert tol_old[0] == pytest.approx(expected)


def test_an_organ_inside_the_band_only_drops_out():
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[5:7, 5:7, 5:7] = 1  # thinner than the band: nothing of it is left to judge
    [scores] = tolerant_dice([np.zeros_like(labels)], labels, 1, 1)
    assert np.isnan(scores[0])


def test_dice_is_monais_on_one_hot_maps():
    """The pair count gives DiceMetric's values, NaN where a class is in neither map."""
    import torch
    from monai.metrics import DiceMetric

    rng = np.random.default_rng(3)
    n = 4
    truth = rng.integers(0, n, (12, 20, 24)).astype(np.uint8)  # class 4 nowhere
    pred = truth.copy()
    pred[rng.random(truth.shape) < 0.3] = rng.integers(0, n, 1)[0]
    pred[0, 0, 0] = 3
    truth[truth == 3] = 0  # class 3 only in the prediction
    one_hot = [
        torch.nn.functional.one_hot(torch.from_numpy(m).long()[None], n + 1).permute(0, 4, 1, 2, 3)
        for m in (pred, truth)
    ]
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=False)
    expected = metric(*one_hot)[0].numpy()
    expected[3] = np.nan  # absent from both: MONAI says 1 (ignore_empty=False), we say NaN
    got = dice_per_class(pred, truth, n)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[2] == 0.0 and np.isnan(got[3])
    with pytest.raises(ValueError, match="label 5"):
        dice_per_class(pred, np.full_like(truth, 5), n)
