"""Starter lumbar grader on held-out phantoms of other sites vs the constant class prior.

    .venv/bin/python bench/grader.py [--studies 24]

Prints, per site, the RSNA 2024 score of the committed starter grader and of the class-prior
baseline (site-0 training frequencies; lower is better), their ratio, the disc-level
localisation error in Sagittal T2 pixels, and the grading time per study (CPU, 1 thread).
"""

from __future__ import annotations

import argparse
import time

import torch

from napari_atlas_annotate.models.grader import load_grader
from napari_atlas_annotate.models.grader_eval import evaluate_grader
from napari_atlas_annotate.phantoms.spine import make_spine_phantom
from napari_atlas_annotate.training.grader import truth_sheet


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=24)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_grader()
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


if __name__ == "__main__":
    main()
