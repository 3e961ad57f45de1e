"""Train (or retrain each round) the lumbar stenosis grader from graded studies.

:func:`train_grader` takes ``(series, GradeSheet)`` pairs: a study's volumes and its true
(corrected) grade sheet. Cells with no grade are skipped; points are optional:

* studies whose sheet has the five spinal canal points on the Sagittal T2/STIR train the
  level locator (others are graded from the locator's own levels);
* every point, on whichever series, updates the mean offset of its condition from the
  level's canal point, which places crops and proposed points;
* every graded cell trains its group's crop classifier with a loss weighted 1/2/4 by the
  true grade, as the RSNA metric weighs rows.

A part of the studies is held out to fit one softmax temperature per condition group
(calibration matters: the metric is a log loss), then training resumes on all studies.

Examples
--------
>>> model, metrics = train_grader([(case.series, case.sheet)], epochs=2)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..grade_sheet import GradeSheet
from ..models.grader import (
    SeriesCache,
    cell_crop,
    condition_point_world,
    locate_levels,
    resolve_device,
)
from ..models.grader_geometry import point_to_world
from ..models.grader_levels import heatmap_targets, levels_to_plane, locator_center, locator_input
from ..models.grader_net import GROUP_OF, GROUP_SERIES, GraderNet
from ..spine_grades import CONDITIONS, GRADE_WEIGHTS, GRADES, LEVELS
from ..volume import Volume

Progress = Callable[[float, str], None]

#: Loss weight of each grade index (the metric's row weights).
_CLASS_WEIGHTS = [GRADE_WEIGHTS[g] for g in GRADES]


@dataclass
class _Study:
    cache: SeriesCache
    grades: dict[tuple[str, str], int]
    points: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    levels: np.ndarray | None = None  # (5, 3) canal points used to place crops

    def spinal_points(self) -> np.ndarray:
        return np.array(
            [self.points.get(("spinal_canal_stenosis", lv), [np.nan] * 3) for lv in LEVELS]
        )


def _prepare(index: int, series: Mapping[str, Volume], sheet: GradeSheet) -> _Study:
    if not isinstance(sheet, GradeSheet):
        raise TypeError(f"study {index}: truth must be a GradeSheet, not {type(sheet).__name__}")
    try:
        cache = SeriesCache(series)
    except ValueError as exc:
        raise ValueError(f"study {index}: {exc}") from None
    grades = {cell: GRADES.index(g) for cell, g in sheet.grades.items() if g is not None}
    points = {}
    for cell, point in sheet.points.items():
        vol = cache.volume_of(point)
        if vol is None:
            continue  # a point on a series this study does not have: unusable
        try:
            points[cell] = point_to_world(vol, point)
        except ValueError as exc:
            raise ValueError(f"study {index}, {cell[0]} at {cell[1]}: {exc}") from None
    return _Study(cache, grades, points)


def _fit_placement(model: GraderNet, studies: Sequence[_Study]) -> None:
    """Update offsets, midline and group prior in ``model.config`` from the studies."""
    cfg = model.config
    lateral = []
    for s in studies:
        canal = s.spinal_points()
        ok = np.isfinite(canal).all(axis=1)
        if ok.any():
            center = locator_center(s.cache.series["Sagittal T2/STIR"], {"midline_offset": [0]})
            lateral.append(float(np.mean(canal[ok, 0]) - center[0]))
    if lateral:
        cfg["midline_offset"] = [float(np.mean(lateral)), 0.0, 0.0]
    for c in CONDITIONS:
        for i, lv in enumerate(LEVELS):
            deltas = [
                s.points[(c, lv)] - s.spinal_points()[i]
                for s in studies
                if (c, lv) in s.points and np.isfinite(s.spinal_points()[i]).all()
            ]
            if deltas:
                cfg["offsets"][c][lv] = [float(v) for v in np.mean(deltas, axis=0)]
    counts = {g: np.ones(3) for g in GROUP_SERIES}  # +1 smoothing
    for s in studies:
        for (c, _lv), k in s.grades.items():
            counts[GROUP_OF[c]][k] += 1
    cfg["group_prior"] = {g: (v / v.sum()).tolist() for g, v in counts.items()}


def _locator_batch(
    model: GraderNet, studies: Sequence[_Study], rng: np.random.Generator, augment: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cfg = model.config
    shape = tuple(cfg["locator"]["shape"])
    sigma = float(cfg["locator"].get("sigma_px", 1.5))
    xs, ys, masks = [], [], []
    for s in studies:
        vol = s.cache.series["Sagittal T2/STIR"]
        center = locator_center(vol, cfg)
        rot = 0.0
        if augment:
            center = center + np.array([rng.normal(0, 2.0), *rng.uniform(-15, 15, 2)])
            rot = float(rng.uniform(-8, 8))
        x = locator_input(vol, s.cache.data("Sagittal T2/STIR"), cfg, center, rot)
        if augment:
            x = _intensity_augment(x, rng)
        rowcols = levels_to_plane(s.spinal_points(), center, cfg, rot)
        y = heatmap_targets(np.nan_to_num(rowcols, nan=-1e6), shape, sigma)
        xs.append(x)
        ys.append(y)
        masks.append(y.reshape(len(LEVELS), -1).sum(axis=1) > 0.5)
    return (
        torch.from_numpy(np.stack(xs)),
        torch.from_numpy(np.stack(ys)),
        torch.from_numpy(np.stack(masks)),
    )


def _intensity_augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = np.clip(x, 0, None) ** np.float32(rng.uniform(0.75, 1.35))
    x = x * np.float32(rng.uniform(0.8, 1.2)) + np.float32(rng.normal(0, 0.03))
    return (x + rng.normal(0, rng.uniform(0, 0.05), x.shape)).astype(np.float32)


def _heatmap_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between target distributions and the per-map spatial softmax."""
    logp = torch.log_softmax(logits.flatten(2), dim=2)
    ce = -(target.flatten(2) * logp).sum(dim=2)  # (B, 5)
    m = mask.float()
    return (ce * m).sum() / m.sum().clamp(min=1)


def _crop_items(studies: Sequence[_Study], model: GraderNet) -> dict[str, list]:
    """``{group: [(study, condition, centre RAS, grade index)]}`` for every graded cell."""
    items: dict[str, list] = {g: [] for g in GROUP_SERIES}
    for s in studies:
        centers = condition_point_world(model, s.levels)
        for (c, lv), k in s.grades.items():
            if GROUP_SERIES[GROUP_OF[c]][0] in s.cache.series:
                items[GROUP_OF[c]].append((s, c, centers[(c, lv)], k))
    return items


def _crop_batch(
    model: GraderNet, batch: Sequence, rng: np.random.Generator, augment: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for s, c, center, k in batch:
        if augment:
            center = center + rng.normal(0, 1.5, 3)
            x = cell_crop(model, s.cache, c, center, rotation_deg=float(rng.uniform(-6, 6)))
            x = _intensity_augment(x, rng)
        else:
            x = cell_crop(model, s.cache, c, center)
        xs.append(x)
        ys.append(k)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.long)


def _set_levels(model: GraderNet, studies: Sequence[_Study], device: torch.device) -> float:
    """Canal points that place each study's crops; returns the locator's mean error (mm)."""
    model.eval()
    errors = []
    for s in studies:
        found, _ = locate_levels(model, s.cache, device)
        truth = s.spinal_points()
        ok = np.isfinite(truth).all(axis=1)
        errors.extend(np.linalg.norm((found - truth)[ok][:, 1:], axis=1).tolist())
        # Training crops sit where inference will put them: the located levels (with the
        # inference's lateral rule), replaced by the true level where it is known.
        levels = found.copy()
        levels[ok, 1:] = truth[ok, 1:]
        s.levels = levels
    return float(np.mean(errors)) if errors else float("nan")


def _fit_temperatures(
    model: GraderNet, items: dict[str, list], device: torch.device
) -> dict[str, float]:
    """Per-group softmax temperature minimising the weighted log loss on ``items``."""
    model.eval()
    temps = {}
    # Never sharpen (T < 1): the held-out site is harder than the calibration studies,
    # and one confident mistake costs up to -log(eps) = 36 in the log loss.
    grid = np.exp(np.linspace(0.0, np.log(8.0), 60))
    for group, rows in items.items():
        if len(rows) < 10:
            temps[group] = 1.0
            continue
        x, y = _crop_batch(model, rows, np.random.default_rng(0), augment=False)
        with torch.no_grad():
            logits = model.classify(group, x.to(device)).float().cpu()
        w = torch.tensor(_CLASS_WEIGHTS)[y]
        losses = [
            float((w * torch.nn.functional.cross_entropy(logits / t, y, reduction="none")).sum())
            for t in grid
        ]
        temps[group] = float(grid[int(np.argmin(losses))])
    return temps


def train_grader(
    studies: Sequence[tuple[Mapping[str, Volume], GradeSheet]],
    init: GraderNet | None = None,
    epochs: int = 40,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    seed: int = 0,
    lr: float = 2e-3,
    batch_size: int = 32,
    calibration_fraction: float = 0.2,
    locator_steps: int = 8,
) -> tuple[GraderNet, dict]:
    """Train a grader on graded studies (from scratch, or fine-tune ``init``).

    Parameters
    ----------
    studies
        ``[(series, truth)]``: ``{SeriesDescription: Volume}`` and the study's GradeSheet.
    init
        A grader to start from (the previous round's); it is copied, not modified.
    epochs
        Passes over the studies (augmented crops and slabs each time).
    device
        ``'auto'`` (CUDA when available), ``'cpu'``, ``'cuda'``.
    progress
        Called as ``progress(fraction_done, message)``.
    cancel
        Polled between batches; when it returns True training stops and the model as it
        is is returned with ``metrics['cancelled'] = True``.
    seed
        Seeds numpy and torch: the same data and seed give the same model (on CPU).
    calibration_fraction
        Share of studies held out (when there are at least 10) for fitting temperatures.
    locator_steps
        Minimum number of locator batches per epoch.

    Returns
    -------
    (GraderNet, dict)
        The trained model (eval mode, on CPU) and metrics: ``n_studies``, ``n_cells``,
        ``epochs_done``, ``locator_loss``, ``grade_loss`` (weighted log loss, last epoch),
        ``level_error_mm`` (training studies), ``temperatures``, ``seconds``,
        ``cancelled``.
    """
    if not studies:
        raise ValueError("train_grader needs at least one graded study")
    t0 = time.perf_counter()
    dev = resolve_device(device)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    prepared = [_prepare(i, series, sheet) for i, (series, sheet) in enumerate(studies)]
    model = copy.deepcopy(init) if init is not None else GraderNet()
    model = model.cpu()
    _fit_placement(model, prepared)
    model = model.to(dev)

    loc_studies = [s for s in prepared if np.isfinite(s.spinal_points()).all(axis=1).any()]
    order = rng.permutation(len(prepared))
    n_cal = int(round(calibration_fraction * len(prepared))) if len(prepared) >= 10 else 0
    cal = [prepared[i] for i in order[:n_cal]]
    fit = [prepared[i] for i in order[n_cal:]]

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    total_epochs = max(1, int(epochs))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda e: (0.3 if e == 0 else 1.0) * 0.5 * (1 + math.cos(math.pi * e / total_epochs)),
    )
    class_w = torch.tensor(_CLASS_WEIGHTS, device=dev)
    cal_set = {id(s) for s in cal}
    metrics: dict = {"cancelled": False}
    loc_loss = grade_loss = float("nan")
    epochs_done = 0
    levels_every = max(1, total_epochs // 4)

    def stopped() -> bool:
        return bool(cancel is not None and cancel())

    for epoch in range(total_epochs):
        if epoch % levels_every == 0 or epoch == total_epochs - 1:
            _set_levels(model, prepared, dev)
        final_phase = epoch >= total_epochs - max(1, total_epochs // 5)
        train_on = prepared if final_phase else fit
        model.train()
        steps = []
        loc_pool = [s for s in loc_studies if final_phase or id(s) not in cal_set]
        # The locator has one sample per study (the grades 25): repeat its augmented
        # slabs so both parts get a similar number of optimiser steps.
        loc_batch = max(1, batch_size // 4)
        if loc_pool:
            n_loc = max(locator_steps, -(-len(loc_pool) // loc_batch))
            for _ in range(n_loc):
                pick = rng.choice(len(loc_pool), min(loc_batch, len(loc_pool)), replace=False)
                steps.append(("locator", [loc_pool[j] for j in pick]))
        items = _crop_items(train_on, model)
        for group, rows in items.items():
            perm = rng.permutation(len(rows))
            for start in range(0, len(rows), batch_size):
                steps.append((group, [rows[j] for j in perm[start : start + batch_size]]))
        losses = {"locator": [], "grade": []}
        for k in rng.permutation(len(steps)):
            if stopped():
                metrics["cancelled"] = True
                break
            kind, batch = steps[k]
            if kind == "locator":
                x, y, m = _locator_batch(model, batch, rng, augment=True)
                loss = _heatmap_loss(model.locate(x.to(dev)), y.to(dev), m.to(dev))
                losses["locator"].append(float(loss.detach()))
            else:
                x, y = _crop_batch(model, batch, rng, augment=True)
                y = y.to(dev)
                ce = torch.nn.functional.cross_entropy(
                    model.classify(kind, x.to(dev)), y, reduction="none"
                )
                loss = (ce * class_w[y]).sum() / class_w[y].sum()
                losses["grade"].append(float(loss.detach()))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if metrics["cancelled"]:
            break
        epochs_done = epoch + 1
        loc_loss = float(np.mean(losses["locator"])) if losses["locator"] else float("nan")
        grade_loss = float(np.mean(losses["grade"])) if losses["grade"] else float("nan")
        scheduler.step()
        if progress is not None:
            progress(
                epochs_done / total_epochs,
                f"epoch {epochs_done}/{total_epochs}: locator {loc_loss:.3f}, "
                f"grades {grade_loss:.3f}",
            )
        if cal and not final_phase and epoch + 1 == total_epochs - max(1, total_epochs // 5):
            _set_levels(model, prepared, dev)
            model.config["temperature"] = _fit_temperatures(model, _crop_items(cal, model), dev)

    model = model.cpu().eval()
    level_error = _set_levels(model, prepared, torch.device("cpu"))
    metrics.update(
        n_studies=len(prepared),
        n_cells=sum(len(s.grades) for s in prepared),
        n_locator_studies=len(loc_studies),
        epochs_done=epochs_done,
        locator_loss=loc_loss,
        grade_loss=grade_loss,
        level_error_mm=level_error,
        temperatures=dict(model.config.get("temperature", {})),
        seconds=time.perf_counter() - t0,
    )
    if math.isnan(level_error):
        metrics.pop("level_error_mm")
    return model, metrics


def truth_sheet(
    grades: Mapping[str, str | None],
    points: Sequence = (),
    series_ids: Mapping[str, int] | None = None,
) -> GradeSheet:
    """A GradeSheet from RSNA-style truth (``train.csv`` row + coordinate rows).

    Parameters
    ----------
    grades
        ``{'<condition>_<level>': grade or None}`` (a ``read_grades_csv`` row, a
        ``SpineCase.grades``).
    points
        :class:`~napari_atlas_annotate.spine_grades.LevelPoint` rows (``series_id``,
        ``instance_number``, ``condition``, ``level``, ``x``, ``y``).
    series_ids
        ``{SeriesDescription: series_id}`` to name each point's series; a point whose
        series id is not listed is skipped.

    Examples
    --------
    >>> sheet = truth_sheet(case.grades, case.points, case.series_ids)  # doctest: +SKIP
    """
    from ..grade_sheet import LevelPoint as SheetPoint
    from ..spine_grades import normalize_grade, parse_column

    sheet = GradeSheet()
    for column, grade in grades.items():
        sheet.set_grade(*parse_column(column), normalize_grade(grade))
    names = {int(sid): desc for desc, sid in (series_ids or {}).items()}
    for p in points:
        desc = names.get(int(p.series_id))
        if desc is not None:
            point = SheetPoint(desc, int(p.instance_number), float(p.x), float(p.y))
            sheet.set_point(p.condition, p.level, point)
    return sheet
