"""Starter lumbar grader on held-out phantoms of other sites vs the constant class prior.

    .venv/bin/python bench/grader.py [--studies 24] [--grader BUNDLE]

Prints, per site, the RSNA 2024 score of the committed starter grader and of the class-prior
baseline (site-0 training frequencies; lower is better), their ratio, the disc-level
localisation error in Sagittal T2 pixels, and the grading time per study (CPU, 1 thread).

Then the same studies with the level heatmaps decoded one by one (each at its own maximum,
the grader before ordered decoding) against the ordered joint decode it uses now
(``grader_levels.decode_heatmaps(min_separation=...)``): RSNA score, level errors and the
studies with two levels on one disc (closer than half the median gap).

Then the same studies with the Axial T2 acquired as five stacks, one angled through each
disc (``make_spine_phantom(axial_stacks=LEVELS)``), against the one-block Axial T2 they
have otherwise: subarticular log loss and the subarticular points' distance from the
reader's (mm). A study like that could not be loaded at all before stacks were read.

    .venv/bin/python bench/grader.py --compare OLD_BUNDLE [--grader NEW_BUNDLE]

Scores two grader bundles side by side on the same held-out studies instead (e.g. the
starter saved to /tmp before retraining it, against the retrained one): per site and per
Axial T2 acquisition (one block, five angled stacks), each grader's RSNA score and terms,
the median of the per-study scores (the log loss is heavy-tailed: one confident miss can
move a 24-study mean), the subarticular points' distance from the reader's, and the shares
of 1000 paired bootstrap resamples of the studies in which the new grader scores lower
and higher, per term.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from napari_atlas_annotate.models import grader as grader_module
from napari_atlas_annotate.models.grader import (
    STARTER_GRADER,
    SeriesCache,
    grade_study,
    load_grader,
    locate_levels,
)
from napari_atlas_annotate.models.grader_eval import evaluate_grader
from napari_atlas_annotate.models.grader_geometry import point_to_world
from napari_atlas_annotate.models.grader_levels import decode_heatmaps
from napari_atlas_annotate.models.rsna_metric import TERMS, rsna_score
from napari_atlas_annotate.phantoms.spine import make_spine_phantom
from napari_atlas_annotate.spine_grades import LEVELS
from napari_atlas_annotate.training.grader import truth_sheet


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=24)
    parser.add_argument("--grader", type=Path, default=STARTER_GRADER, help="bundle to score")
    parser.add_argument(
        "--compare", type=Path, help="an older grader bundle to score side by side (only this)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_grader(args.grader)
    if args.compare is not None:
        compare_bundles(load_grader(args.compare), model, args.studies)
        return
    train_truth = {s: truth_sheet(make_spine_phantom(s, 0).grades) for s in range(48)}
    for site in (0, 1, 2, 3):
        cases = [make_spine_phantom(7000 + i, site) for i in range(args.studies)]
        t0 = time.perf_counter()
        r = evaluate_grader(model, cases, train_truth)
        per_study = (time.perf_counter() - t0) / len(cases)
        print(
            f"site {site}: grader {r['score']:.3f} (spinal {r['spinal']:.3f}, foraminal "
            f"{r['foraminal']:.3f}, subarticular {r['subarticular']:.3f}, any_severe "
            f"{r['any_severe_spinal']:.3f}) | class prior {r['baseline_score']:.3f} | "
            f"ratio {r['score'] / r['baseline_score']:.2f} | levels: mean "
            f"{r['level_error_px_mean']:.2f} px, median {r['level_error_px_median']:.2f} px, "
            f"{100 * r['level_within_5px']:.1f} % within 5 px | {per_study:.2f} s/study "
            f"(grading + evaluation)"
        )
    compare_decoding(model, train_truth, args.studies)
    compare_axial_stacks(model, train_truth, args.studies)


def one_by_one(logits, window=3, min_separation=None):
    """Baseline: every level at its own heatmap's maximum (no order, no spacing)."""
    return decode_heatmaps(logits, window)


def collapsed(model, cases) -> int:
    """Studies with two adjacent levels closer than half the median gap."""
    n = 0
    for case in cases:
        world, _ = locate_levels(model, SeriesCache(case.series))
        gaps = np.linalg.norm(np.diff(world, axis=0), axis=1)
        n += bool(gaps.min() < 0.5 * np.median(gaps))
    return n


def compare_decoding(model, train_truth, studies: int) -> None:
    for site in (0, 1, 2, 3):
        cases = [make_spine_phantom(7000 + i, site) for i in range(studies)]
        rows = {}
        for name, patch in (("one by one", one_by_one), ("ordered", None)):
            with mock.patch.object(grader_module, "decode_heatmaps", patch or decode_heatmaps):
                r = evaluate_grader(model, cases, train_truth)
                rows[name] = (r, collapsed(model, cases))
        for name, (r, bad) in rows.items():
            print(
                f"site {site} {name:<10}: score {r['score']:.3f} | levels mean "
                f"{r['level_error_px_mean']:.2f} px, {100 * r['level_within_5px']:.1f} % within "
                f"5 px | {bad}/{studies} studies with two levels on one disc"
            )
        base, ours = rows["one by one"][0]["score"], rows["ordered"][0]["score"]
        print(f"site {site}: ordered / one-by-one score ratio {ours / base:.3f}")


def subarticular_point_errors(model, cases, sheets=None) -> np.ndarray:
    """Distance (mm) of each proposed subarticular point from the reader's.

    ``sheets``: the model's grade sheets of ``cases`` when already graded.
    """
    errors = []
    for i, case in enumerate(cases):
        truth = truth_sheet(case.grades, case.points, case.series_ids)
        sheet = grade_study(case.series, model, "cpu") if sheets is None else sheets[i]
        cache = SeriesCache(case.series)
        for cell, point in sheet.points.items():
            if "subarticular" in cell[0]:
                want = truth.points[cell]
                got = point_to_world(cache.volume_of(point), point)
                errors.append(np.linalg.norm(got - point_to_world(cache.volume_of(want), want)))
    return np.asarray(errors)


def bootstrap_wins(truth, old, new, resamples: int = 1000, seed: int = 0) -> dict[str, tuple]:
    """Per term, the shares of paired bootstrap resamples where ``new`` is lower / higher."""
    rng = np.random.default_rng(seed)
    keys = (*TERMS, "score")
    lower, higher = dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)
    for _ in range(resamples):
        draw = rng.integers(len(truth), size=len(truth))
        t = {j: truth[k] for j, k in enumerate(draw)}
        a = rsna_score(t, {j: old[k] for j, k in enumerate(draw)})
        b = rsna_score(t, {j: new[k] for j, k in enumerate(draw)})
        for key in keys:
            lower[key] += bool(b[key] < a[key])
            higher[key] += bool(b[key] > a[key])
    return {k: (lower[k] / resamples, higher[k] / resamples) for k in keys}


def compare_bundles(old_model, new_model, studies: int) -> None:
    """Both graders on the same studies, one block and angled stacks, with bootstrap wins."""
    for site in (0, 1, 2, 3):
        for name, stacks in (("one block", ()), ("5 stacks", LEVELS)):
            cases = [
                make_spine_phantom(7000 + i, site, axial_stacks=stacks) for i in range(studies)
            ]
            truth = {i: truth_sheet(c.grades, c.points, c.series_ids) for i, c in enumerate(cases)}
            rows = {}
            for label, model in (("old", old_model), ("new", new_model)):
                sheets = {i: grade_study(c.series, model, "cpu") for i, c in enumerate(cases)}
                score = rsna_score(truth, sheets)
                per_study = [rsna_score({0: truth[i]}, {0: sheets[i]})["score"] for i in truth]
                err = subarticular_point_errors(model, cases, sheets)
                rows[label] = sheets
                print(
                    f"site {site} axial {name:<9} {label}: score {score['score']:.3f} (spinal "
                    f"{score['spinal']:.3f}, foraminal {score['foraminal']:.3f}, subarticular "
                    f"{score['subarticular']:.3f}, any_severe {score['any_severe_spinal']:.3f}) "
                    f"| per-study median {np.median(per_study):.3f} | subarticular points "
                    f"{err.mean():.1f} mm mean, {np.median(err):.1f} mm median",
                    flush=True,
                )
            wins = bootstrap_wins(truth, rows["old"], rows["new"])
            shares = ", ".join(
                f"{key} {100 * lo:.0f} / {100 * hi:.0f} %" for key, (lo, hi) in wins.items()
            )
            print(f"site {site} axial {name:<9} new lower / higher in resamples: {shares}")


def compare_axial_stacks(model, train_truth, studies: int) -> None:
    for site in (0, 1, 2, 3):
        rows = {}
        for name, stacks in (("one block", ()), ("5 stacks", LEVELS)):
            cases = [
                make_spine_phantom(7000 + i, site, axial_stacks=stacks) for i in range(studies)
            ]
            r = evaluate_grader(model, cases, train_truth)
            rows[name] = (r["subarticular"], subarticular_point_errors(model, cases))
        for name, (loss, err) in rows.items():
            print(
                f"site {site} axial {name:<9}: subarticular log loss {loss:.3f} | points "
                f"{err.mean():.1f} mm mean, {np.median(err):.1f} mm median from the reader's"
            )
        ratio = rows["5 stacks"][0] / rows["one block"][0]
        print(f"site {site}: subarticular loss, stacks / one block {ratio:.2f}")


if __name__ == "__main__":
    main()
