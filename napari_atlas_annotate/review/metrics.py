"""Agreement metrics between annotators of one case (GUI-free, numpy in, plain data out).

Masks: per class and per annotator pair, Dice (counted as ``monai.metrics.compute_dice``
counts it, without one-hot maps: :func:`dice_per_class`), the 95th
percentile symmetric Hausdorff distance in millimetres
(``monai.metrics.compute_hausdorff_distance(percentile=95, spacing=...)``, surfaces from
MONAI's erosion edges, spacing from the image affine) and the volume difference in
millilitres (voxel volume = ``|det(affine[:3, :3])|`` mm^3), and the disputed volume per
class and in all (:mod:`.disputed`: what some annotators labelled and others did not).
Grades: per cell who said what, quadratic weighted Cohen's kappa per condition and overall,
confusion matrices.

Edge cases (chosen so that "both left it empty" counts as agreement):

* Dice of two empty masks is 1.0 (MONAI ``ignore_empty=False``); one empty: 0.0.
* HD95 of two empty masks is 0.0; with exactly one empty it is undefined (MONAI: inf)
  and reported as ``None`` (``null`` in JSON).

MONAI (and so torch) is imported inside the functions that use it, so importing this
module stays light.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..spine_grades import CONDITIONS, GRADES, LEVELS
from .disputed import disputed_counts, disputed_voxels
from .kappa import confusion_matrix, kappa_from_confusion

PAIR_SEPARATOR = "|"


def pair_key(a: str, b: str) -> str:
    """``'A|B'``: the key of an annotator pair in every per-pair dict."""
    return f"{a}{PAIR_SEPARATOR}{b}"


def annotator_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """All unordered pairs, in the order the names are given."""
    return list(itertools.combinations(names, 2))


def voxel_volume_ml(affine: np.ndarray) -> float:
    """Volume of one voxel in millilitres from a ``(z, y, x) -> RAS`` mm affine."""
    return abs(float(np.linalg.det(np.asarray(affine, float)[:3, :3]))) / 1000.0


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size (mm) along z, y, x: the lengths of the affine's columns."""
    return tuple(float(s) for s in np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0))


def _foreground_box(maps: Sequence[np.ndarray], margin: int = 1) -> tuple[slice, ...]:
    """Bounding box of every map's foreground plus ``margin``: metrics are unchanged by
    cropping to it (MONAI erodes with a zero border) and much cheaper."""
    union = np.logical_or.reduce([np.asarray(m) != 0 for m in maps])
    box = []
    for axis, size in enumerate(union.shape):  # per axis: which slices hold any label
        others = tuple(a for a in range(union.ndim) if a != axis)
        held = np.flatnonzero(union.any(axis=others))
        if not held.size:
            return tuple(slice(0, 0) for _ in union.shape)
        box.append(slice(max(int(held[0]) - margin, 0), min(int(held[-1]) + margin + 1, size)))
    return tuple(box)


def label_pair_counts(a: np.ndarray, b: np.ndarray, n_classes: int) -> np.ndarray:
    """``counts[i, j]``: voxels labelled ``i`` in ``a`` and ``j`` in ``b`` (labels
    ``0..n_classes``), counted over the maps' foreground box (row and column 0 then leave
    out the background outside it, which no metric here needs)."""
    box = _foreground_box([a, b])
    k = n_classes + 1
    pairs = np.asarray(a[box]).astype(np.uint16 if k * k <= 2**16 else np.int64)
    pairs *= k
    pairs += np.asarray(b[box]).astype(pairs.dtype, copy=False)
    return np.bincount(pairs.ravel(), minlength=k * k)[: k * k].reshape(k, k)


def dice_from_counts(counts: np.ndarray) -> list[float]:
    """Dice of classes ``1..`` from :func:`label_pair_counts` (both empty: 1.0)."""
    both = np.diag(counts)[1:]
    sizes = counts.sum(axis=1)[1:] + counts.sum(axis=0)[1:]
    return [
        1.0 if size == 0 else 2.0 * float(n) / float(size)
        for n, size in zip(both, sizes, strict=True)
    ]


def dice_per_class(a: np.ndarray, b: np.ndarray, n_classes: int) -> list[float]:
    """Dice of classes ``1..n_classes`` between two label maps (both empty: 1.0).

    From one count of the (label in ``a``, label in ``b``) pairs over the maps' foreground
    box: the same values as ``monai.metrics.compute_dice`` on one-hot maps (a test checks
    it), about 14x faster on a 512x512x300 CT (0.4 s instead of 5.5 s), which makes up
    most of ranking a case for review.
    """
    return dice_from_counts(label_pair_counts(a, b, n_classes))


def hd95_per_class(
    a: np.ndarray, b: np.ndarray, n_classes: int, spacing: Sequence[float]
) -> list[float | None]:
    """Symmetric 95th-percentile Hausdorff distance (mm) of classes ``1..n_classes``.

    ``0.0`` when both maps lack the class, ``None`` when exactly one does.
    """
    import warnings

    import torch
    from monai.metrics import compute_hausdorff_distance

    out: list[float | None] = []
    for value in range(1, n_classes + 1):
        ma, mb = a == value, b == value
        has_a, has_b = bool(ma.any()), bool(mb.any())
        if not has_a and not has_b:
            out.append(0.0)
            continue
        if has_a != has_b:
            out.append(None)
            continue
        box = _foreground_box([ma, mb])
        ya = torch.as_tensor(np.ascontiguousarray(ma[box]))[None, None]
        yb = torch.as_tensor(np.ascontiguousarray(mb[box]))[None, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MONAI warns on empty channels; handled above
            hd = compute_hausdorff_distance(
                ya,
                yb,
                include_background=True,
                percentile=95,
                spacing=[float(s) for s in spacing],
            )
        value_mm = float(hd[0, 0])
        out.append(value_mm if math.isfinite(value_mm) else None)
    return out


@dataclass
class MaskAgreement:
    """Pairwise agreement of annotators' label maps for one case.

    Attributes
    ----------
    annotators
        Annotator names, in the order the maps were given.
    classes
        Class names (label ``i`` is ``classes[i - 1]``).
    dice, hd95, volume_diff_ml
        ``{class: {"A|B": value}}``; ``volume_diff_ml`` is ``volume(A) - volume(B)``.
    volume_ml
        ``{class: {annotator: ml}}``.
    disputed_ml
        ``{class: ml}``: volume some but not all annotators gave the class
        (:mod:`.disputed`).
    total_disputed_ml
        Volume where the annotators' labels are not all the same.
    """

    annotators: list[str]
    classes: list[str]
    dice: dict[str, dict[str, float]] = field(default_factory=dict)
    hd95: dict[str, dict[str, float | None]] = field(default_factory=dict)
    volume_ml: dict[str, dict[str, float]] = field(default_factory=dict)
    volume_diff_ml: dict[str, dict[str, float]] = field(default_factory=dict)
    disputed_ml: dict[str, float] = field(default_factory=dict)
    total_disputed_ml: float = 0.0

    def worst_class(self) -> tuple[str, str, float] | None:
        """``(class, pair, Dice)`` with the lowest pairwise Dice over the classes someone
        labelled (class order breaks ties); ``None`` when nobody labelled anything."""
        worst = None
        for name, pairs in self.dice.items():
            if not any(v > 0 for v in self.volume_ml[name].values()):
                continue
            for pair, d in pairs.items():
                if worst is None or d < worst[2]:
                    worst = (name, pair, d)
        return worst

    def min_dice(self, present_only: bool = True) -> float:
        """Lowest pairwise Dice over classes (those someone labelled, if ``present_only``)."""
        values = [
            d
            for name, pairs in self.dice.items()
            if not present_only or any(v > 0 for v in self.volume_ml[name].values())
            for d in pairs.values()
        ]
        return min(values) if values else 1.0

    @classmethod
    def from_dict(cls, data: Mapping) -> MaskAgreement:
        """The agreement :meth:`to_dict` gave."""
        classes = data["classes"]
        return cls(
            list(data["annotators"]),
            list(classes),
            dice={name: dict(c["dice"]) for name, c in classes.items()},
            hd95={name: dict(c["hd95"]) for name, c in classes.items()},
            volume_ml={name: dict(c["volume_ml"]) for name, c in classes.items()},
            volume_diff_ml={name: dict(c["volume_diff_ml"]) for name, c in classes.items()},
            disputed_ml={name: float(c["disputed_ml"]) for name, c in classes.items()},
            total_disputed_ml=float(data["disputed_ml"]),
        )

    def to_dict(self) -> dict:
        return {
            "annotators": list(self.annotators),
            "disputed_ml": self.total_disputed_ml,
            "classes": {
                name: {
                    "dice": self.dice[name],
                    "hd95": self.hd95[name],
                    "volume_ml": self.volume_ml[name],
                    "volume_diff_ml": self.volume_diff_ml[name],
                    "disputed_ml": self.disputed_ml[name],
                }
                for name in self.classes
            },
        }


def mask_agreement(
    masks: Mapping[str, np.ndarray],
    affine: np.ndarray,
    classes: Sequence[str],
    *,
    distances: bool = True,
) -> MaskAgreement:
    """Dice, HD95 (mm) and volume differences (ml) for every class and annotator pair.

    Parameters
    ----------
    masks
        ``{annotator: label map}``, all on the case's image grid.
    affine
        The grid's ``(z, y, x) -> RAS`` affine (spacing and voxel volume come from it).
    classes
        Class names; label ``i`` is ``classes[i - 1]``.
    distances
        Compute HD95 (distance transforms, the costly part); without, HD95 is ``None``.
    """
    names = list(masks)
    shapes = {tuple(np.shape(m)) for m in masks.values()}
    if len(shapes) > 1:
        raise ValueError(f"annotators' masks have different shapes {sorted(shapes)}")
    n = len(classes)
    spacing = voxel_spacing(affine)
    voxel_ml = voxel_volume_ml(affine)
    result = MaskAgreement(names, list(classes))
    counts = {(a, b): label_pair_counts(masks[a], masks[b], n) for a, b in annotator_pairs(names)}
    volumes = {}  # each class's voxels, from a pair's counts (a label is inside the box)
    for (a, b), pair in counts.items():
        volumes.setdefault(a, pair.sum(axis=1)[1:] * voxel_ml)
        volumes.setdefault(b, pair.sum(axis=0)[1:] * voxel_ml)
    for who in names:  # a lone reader: no pair to count with
        if who not in volumes:
            volumes[who] = label_pair_counts(masks[who], masks[who], n).sum(axis=1)[1:] * voxel_ml
    maps = list(masks.values())
    disputed = disputed_counts(maps, range(1, n + 1))
    result.total_disputed_ml = float(disputed_voxels(maps).sum()) * voxel_ml
    for c, name in enumerate(classes):
        result.dice[name], result.hd95[name], result.volume_diff_ml[name] = {}, {}, {}
        result.volume_ml[name] = {who: float(volumes[who][c]) for who in names}
        result.disputed_ml[name] = disputed[c + 1] * voxel_ml
    for a, b in annotator_pairs(names):
        key = pair_key(a, b)
        dice = dice_from_counts(counts[(a, b)])
        hd = hd95_per_class(masks[a], masks[b], n, spacing) if distances else [None] * n
        for c, name in enumerate(classes):
            result.dice[name][key] = dice[c]
            result.hd95[name][key] = hd[c]
            result.volume_diff_ml[name][key] = float(volumes[a][c] - volumes[b][c])
    return result


# -- grades ----------------------------------------------------------------------------------
@dataclass
class GradeAgreement:
    """Agreement of annotators' grade sheets for one study.

    Attributes
    ----------
    cells
        ``{"<condition>_<level>": {annotator: grade or None}}``: who said what.
    kappa
        ``{"overall" | condition: {"A|B": quadratic weighted kappa or None}}``.
    confusion
        ``{"overall" | condition: {"A|B": 3x3 counts}}`` (rows A, columns B, grades
        mildest first).
    """

    annotators: list[str]
    cells: dict[str, dict[str, str | None]]
    kappa: dict[str, dict[str, float | None]]
    confusion: dict[str, dict[str, list[list[int]]]]

    def min_kappa(self) -> float:
        values = [v for v in self.kappa["overall"].values() if v is not None]
        return min(values) if values else 1.0

    def disputed_cells(self) -> list[str]:
        return [
            cell
            for cell, said in self.cells.items()
            if len({g for g in said.values() if g is not None}) > 1
        ]

    def to_dict(self) -> dict:
        return {
            "annotators": list(self.annotators),
            "kappa": self.kappa,
            "confusion": self.confusion,
            "cells": self.cells,
            "disputed_cells": self.disputed_cells(),
        }


def grade_agreement(sheets: Mapping[str, object]) -> GradeAgreement:
    """Who said what per cell, weighted kappa per condition and overall, confusion matrices.

    Parameters
    ----------
    sheets
        ``{annotator: GradeSheet}``.
    """
    names = list(sheets)
    cells = {
        f"{c}_{lv}": {who: sheets[who].grades.get((c, lv)) for who in names}
        for c in CONDITIONS
        for lv in LEVELS
    }
    kappa: dict[str, dict[str, float | None]] = {"overall": {}, **{c: {} for c in CONDITIONS}}
    confusion: dict[str, dict[str, list[list[int]]]] = {k: {} for k in kappa}
    for a, b in annotator_pairs(names):
        key = pair_key(a, b)
        total = np.zeros((len(GRADES), len(GRADES)), np.int64)
        for condition in CONDITIONS:
            ga = [sheets[a].grades.get((condition, lv)) for lv in LEVELS]
            gb = [sheets[b].grades.get((condition, lv)) for lv in LEVELS]
            m = confusion_matrix(ga, gb, GRADES)
            total += m
            kappa[condition][key] = kappa_from_confusion(m, "quadratic")
            confusion[condition][key] = m.tolist()
        kappa["overall"][key] = kappa_from_confusion(total, "quadratic")
        confusion["overall"][key] = total.tolist()
    return GradeAgreement(names, cells, kappa, confusion)
