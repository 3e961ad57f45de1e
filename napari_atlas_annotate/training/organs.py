"""Training an organ segmenter on model-grid cases: patch sampling, loss, validation.

The loss is MONAI's Dice loss plus a voxel-weighted cross entropy whose weight is
``1 + corrected_weight`` where radiologists corrected the proposal (from the edit log), so
the next model learns most from the model's own mistakes. Patches are random crops with a
foreground bias (a voxel of a randomly chosen present class as centre, else uniform), which
keeps small organs such as the gall bladder in the batches. No spatial flips: a left-right
flip would swap kidney_left and kidney_right.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..corrections.tools import keep_largest_components
from ..models.devices import autocast, grad_scaler
from ..models.inference import LoadedModel, predict_probabilities
from ..volume import Volume

#: ``progress(done, total, stage)``.
ProgressCallback = Callable[[int, int, str], None]


class TrainingCancelled(RuntimeError):
    """Raised when the ``cancel`` callable asked training to stop."""


@dataclass
class TrainingCase:
    """One labelled case on the model grid.

    Attributes
    ----------
    case_id
        Project case id (or a phantom name).
    image
        float32 normalised image, model grid (canonical axes).
    labels
        uint8 label map, model grid.
    corrected
        float32 0..1 fraction of each model voxel that radiologists corrected, or None.
    """

    case_id: str
    image: np.ndarray
    labels: np.ndarray
    corrected: np.ndarray | None = None


@dataclass
class TrainSettings:
    """Knobs of one training run (stored in the model's metadata)."""

    epochs: int = 10
    iterations_per_epoch: int = 20
    batch_size: int = 2
    patch_size: tuple[int, int, int] = (40, 64, 64)
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    corrected_weight: float = 2.0
    foreground_probability: float = 0.7
    intensity_jitter: float = 0.05
    max_minutes: float | None = None
    seed: int = 0
    extra: dict = field(default_factory=dict)


def _crop_start(shape: Sequence[int], patch: Sequence[int], centre: Sequence[int]) -> list[int]:
    return [
        int(min(max(c - p // 2, 0), max(s - p, 0)))
        for s, p, c in zip(shape, patch, centre, strict=True)
    ]


def _pad_to(array: np.ndarray, patch: Sequence[int], value: float = 0.0) -> np.ndarray:
    pad = [(0, max(p - s, 0)) for s, p in zip(array.shape, patch, strict=True)]
    if any(b for _, b in pad):
        return np.pad(array, pad, constant_values=value)
    return array


def sample_patch(
    case: TrainingCase, patch: Sequence[int], rng: np.random.Generator, fg_prob: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random crop (image, labels, corrected) of ``patch`` size with foreground bias."""
    shape = case.labels.shape
    if rng.random() < fg_prob:
        present = np.flatnonzero(np.bincount(case.labels.ravel()))[1:]
        if case.corrected is not None and rng.random() < 0.5 and case.corrected.any():
            pick = np.flatnonzero(case.corrected.ravel() > 0)
            centre = np.unravel_index(int(rng.choice(pick)), shape)
        elif present.size:
            cid = int(rng.choice(present))
            pick = np.flatnonzero(case.labels.ravel() == cid)
            centre = np.unravel_index(int(rng.choice(pick)), shape)
        else:
            centre = tuple(int(rng.integers(0, s)) for s in shape)
    else:
        centre = tuple(int(rng.integers(0, s)) for s in shape)
    start = _crop_start(shape, patch, centre)
    sl = tuple(slice(a, a + p) for a, p in zip(start, patch, strict=True))
    image = _pad_to(case.image[sl], patch)
    labels = _pad_to(case.labels[sl], patch)
    corrected = (
        _pad_to(case.corrected[sl], patch)
        if case.corrected is not None
        else np.zeros(labels.shape, np.float32)
    )
    return image, labels, corrected


def fine_tune(
    network,
    cases: Sequence[TrainingCase],
    settings: TrainSettings,
    device,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict:
    """Train ``network`` (in place) on ``cases``; returns loss history and timing.

    Stops early (without error) when ``settings.max_minutes`` is spent; raises
    :class:`TrainingCancelled` when ``cancel()`` returns True.
    """
    import torch
    import torch.nn.functional as F
    from monai.losses import DiceLoss

    if not cases:
        raise ValueError("no training cases: submit corrected labels for some cases first.")
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    device = torch.device(device)
    network.to(device).train()
    scaler = grad_scaler(device)
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    total = settings.epochs * settings.iterations_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, total_steps=max(total, 1), pct_start=0.1
    )
    dice = DiceLoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    patch = tuple(settings.patch_size)
    history: list[float] = []
    t_start = time.perf_counter()
    step = 0
    stopped = "completed"
    for _epoch in range(settings.epochs):
        losses = []
        for _ in range(settings.iterations_per_epoch):
            if cancel is not None and cancel():
                raise TrainingCancelled("training cancelled")
            if settings.max_minutes and time.perf_counter() - t_start > 60 * settings.max_minutes:
                stopped = "time budget"
                break
            batch = [
                sample_patch(
                    cases[int(rng.integers(len(cases)))],
                    patch,
                    rng,
                    settings.foreground_probability,
                )
                for _ in range(settings.batch_size)
            ]
            x = torch.from_numpy(np.stack([b[0] for b in batch])[:, None]).to(device)
            y = torch.from_numpy(np.stack([b[1] for b in batch]).astype(np.int64)).to(device)
            w = torch.from_numpy(np.stack([b[2] for b in batch])).to(device)
            if settings.intensity_jitter:
                j = settings.intensity_jitter
                scale = torch.from_numpy(rng.uniform(1 - j, 1 + j, (len(batch), 1, 1, 1, 1)))
                shift = torch.from_numpy(rng.uniform(-j, j, (len(batch), 1, 1, 1, 1)))
                x = x * scale.float().to(device) + shift.float().to(device)
            with autocast(device):
                logits = network(x)
            logits = logits.float()
            weight = 1.0 + settings.corrected_weight * w
            ce = F.cross_entropy(logits, y, reduction="none")
            loss = dice(logits, y[:, None]) + (ce * weight).sum() / weight.sum()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if step < total - 1:
                scheduler.step()
            step += 1
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step, total, "training")
        if losses:
            history.append(float(np.mean(losses)))
        if stopped != "completed":
            break
    network.eval()
    return {
        "iterations": step,
        "loss_per_epoch": [round(v, 5) for v in history],
        "seconds": round(time.perf_counter() - t_start, 2),
        "stopped": stopped,
    }


def dice_per_class(pred: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """Dice of classes ``1..n_classes`` (NaN where a class is absent from both maps).

    The values of :class:`monai.metrics.DiceMetric` on one-hot maps (a test checks it),
    from one count of the (predicted, true) label pairs
    (:func:`..review.metrics.label_pair_counts`): one-hot maps of a 512x512x300 CT take
    about 12 GB, which a held-out check of real-size proposals cannot afford.
    """
    from ..review.metrics import label_pair_counts

    highest = max(int(pred.max(initial=0)), int(truth.max(initial=0)))
    if highest > n_classes:
        raise ValueError(f"label {highest} in a map scored for {n_classes} classes")
    counts = label_pair_counts(pred, truth, n_classes)
    both = np.diag(counts)[1:].astype(float)
    sizes = (counts.sum(axis=1)[1:] + counts.sum(axis=0)[1:]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes == 0, np.nan, 2.0 * both / sizes)


def predict_case(loaded: LoadedModel, image: np.ndarray) -> np.ndarray:
    """Argmax label map (uint8, model grid) of a model-grid image, with organ cleanup."""
    probs = predict_probabilities(loaded, image)
    labels = probs.argmax(dim=0).numpy().astype(np.uint8)
    ids = range(1, len(loaded.bundle.classes) + 1)
    return keep_largest_components(labels, ids)


def evaluate(loaded: LoadedModel, cases: Sequence[TrainingCase]) -> dict:
    """Per-class Dice on ``cases`` (model grid): per case, per class mean, overall mean."""
    n = len(loaded.bundle.classes)
    per_case = {
        case.case_id: dice_per_class(predict_case(loaded, case.image), case.labels, n)
        for case in cases
    }
    return _dice_summary(per_case, loaded.bundle.classes)


#: ``on_case(case_id, proposals, labels)``: sees each case's proposals (one per model).
CaseCallback = Callable[[str, list[np.ndarray], np.ndarray], None]


def evaluate_proposals(
    models: Sequence[LoadedModel],
    cases: Iterable[tuple[str, Volume, np.ndarray]],
    on_case: CaseCallback | None = None,
    *,
    label_tolerance: int = 0,
) -> list[dict]:
    """Score each model's proposals, as annotators would get them, against the labels.

    Each image is proposed exactly as :func:`~..models.inference.propose_organs` proposes it
    for a radiologist (on the image's own grid, organ cleanup, borders snapped to the
    image), so a model is judged on what it hands over, not on its raw model-grid output:
    the two can disagree (a fine-tuned model whose raw borders are worse but which misses
    less of each organ). Every ``(case_id, image, labels)`` is read once for all
    ``models``. Returns one dict per model: :func:`evaluate`'s keys plus
    ``voxels_to_edit_per_case`` (mean wrong voxels per case) and ``voxels_to_edit``.

    ``label_tolerance`` says how far off (in voxels) the annotators leave an organ border
    rather than repaint it. Such labels carry the borders of the model whose proposals were
    corrected, so on them Dice prefers that model whatever the truth; with a tolerance
    ``t`` > 0 the Dice (``mean_dice``, ``dice_per_class``) leaves out every voxel within
    ``2 t`` voxels of a label border (two models each within ``t`` of the true border can
    be ``2 t`` apart) and judges what annotators do repaint: missed and leaked organ parts.
    ``voxels_to_edit`` always counts every wrong voxel.
    """
    from ..models.inference import propose_organs

    dice: list[dict[str, np.ndarray]] = [{} for _ in models]
    wrong: list[dict[str, int]] = [{} for _ in models]
    for case_id, image, labels in cases:
        proposals = [propose_organs(image, loaded).labels for loaded in models]
        n_classes = max((len(m.bundle.classes) for m in models), default=0)
        scores = tolerant_dice(proposals, labels, n_classes, label_tolerance)
        for m, (proposal, score) in enumerate(zip(proposals, scores, strict=True)):
            dice[m][case_id] = score
            wrong[m][case_id] = int((proposal != labels).sum())
        if on_case is not None:
            on_case(case_id, proposals, labels)
    out = []
    for loaded, per_case, edits in zip(models, dice, wrong, strict=True):
        summary = _dice_summary(per_case, loaded.bundle.classes)
        summary["voxels_to_edit"] = edits
        summary["voxels_to_edit_per_case"] = (
            float(np.mean(list(edits.values()))) if edits else math.nan
        )
        out.append(summary)
    return out


def tolerant_dice(
    proposals: Sequence[np.ndarray],
    labels: np.ndarray,
    n_classes: int,
    label_tolerance: int = 0,
) -> list[np.ndarray]:
    """Per-class Dice of each of ``proposals`` against labels whose borders may be up to
    ``label_tolerance`` voxels off: voxels within ``2 * label_tolerance`` voxels (a cube)
    of a border between labels count for neither map (the band is found once for all
    proposals). 0 is plain :func:`dice_per_class`.
    """
    if label_tolerance <= 0:
        return [dice_per_class(p, labels, n_classes) for p in proposals]
    from ..models.border_refinement import border_band

    band = border_band(labels, (2 * int(label_tolerance),) * 3)
    reference = np.where(band, 0, labels)
    return [dice_per_class(np.where(band, 0, p), reference, n_classes) for p in proposals]


def _dice_summary(per_case: dict[str, np.ndarray], classes: Sequence[str]) -> dict:
    if not per_case:
        return {"mean_dice": math.nan, "dice_per_class": {}, "dice_per_case": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        by_class = np.nanmean(np.stack(list(per_case.values())), axis=0)
        mean = float(np.nanmean(by_class))
        by_case = {k: float(np.nanmean(v)) for k, v in per_case.items()}
    return {
        "mean_dice": mean,
        "dice_per_class": {c: _round(v) for c, v in zip(classes, by_class, strict=True)},
        "dice_per_case": by_case,
    }


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)
