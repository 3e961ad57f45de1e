"""Train the committed starter lumbar grader on site-0 spine phantoms (deterministic).

    .venv/bin/python scripts/make_starter_grader.py [--studies 48] [--epochs 30]
        [--stacked-share 0.5]

Writes ``napari_atlas_annotate/models/starter/grader/`` (``configs/metadata.json`` +
``models/model.pt``) and prints the held-out RSNA score on phantoms of another site next
to the constant class-prior baseline. CPU, one thread: about 3 minutes.

Many lumbar protocols (and much of RSNA 2024) acquire the Axial T2 as several blocks, each
angled through one disc, saved as one series; others as one block. ``--stacked-share``
of the training studies (spread evenly over the seeds; half by default) therefore have
their Axial T2 as five angled stacks (``make_spine_phantom(axial_stacks=LEVELS)``), the
rest as one block. A phantom's sagittal series, grades and anatomy do not depend on how its
axial is acquired, so the mix changes only what the subarticular classifier sees.
``--stacked-share 0`` gives the one-block-only training of the first starter.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from napari_atlas_annotate.models.grader import STARTER_GRADER, save_grader
from napari_atlas_annotate.models.grader_eval import evaluate_grader
from napari_atlas_annotate.phantoms.spine import make_spine_phantom
from napari_atlas_annotate.spine_grades import LEVELS
from napari_atlas_annotate.training.grader import train_grader, truth_sheet

TRAIN_SEED0 = 0  # site-0 training phantoms: seeds 0 .. studies-1
HELDOUT_SEED0 = 5000  # held-out phantoms of other sites: seeds 5000 ..


def stacked_studies(studies: int, share: float) -> list[bool]:
    """Which of ``studies`` training studies get an Axial T2 of angled stacks.

    ``round(share * studies)`` of them, spread evenly (for 0.5: every second study).

    Examples
    --------
    >>> stacked_studies(6, 0.5)
    [False, True, False, True, False, True]
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"--stacked-share must be between 0 and 1, not {share}")
    n = round(share * studies)
    return [(i + 1) * n // studies > i * n // studies for i in range(studies)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--heldout", type=int, default=24)
    parser.add_argument(
        "--stacked-share",
        type=float,
        default=0.5,
        help="share of the training studies whose Axial T2 is five angled stacks (0..1)",
    )
    parser.add_argument("--out", type=Path, default=STARTER_GRADER)
    args = parser.parse_args(argv)
    try:
        stacked = stacked_studies(args.studies, args.stacked_share)
    except ValueError as exc:
        parser.error(str(exc))
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    t0 = time.perf_counter()
    studies = []
    for i, seed in enumerate(range(TRAIN_SEED0, TRAIN_SEED0 + args.studies)):
        case = make_spine_phantom(seed, site=0, axial_stacks=LEVELS if stacked[i] else ())
        studies.append((case.series, truth_sheet(case.grades, case.points, case.series_ids)))
    model, metrics = train_grader(
        studies,
        epochs=args.epochs,
        device="cpu",
        seed=0,
        progress=lambda f, msg: print(f"[{f:4.0%}] {msg}", flush=True),
    )
    train_s = time.perf_counter() - t0
    heldout = {}
    train_truth = {i: sheet for i, (_, sheet) in enumerate(studies)}
    for site in (1, 2):
        for axial, stacks in (("", ()), ("_axial_stacks", LEVELS)):
            cases = [
                make_spine_phantom(HELDOUT_SEED0 + i, site=site, axial_stacks=stacks)
                for i in range(args.heldout)
            ]
            key = f"site{site}{axial}"
            heldout[key] = evaluate_grader(model, cases, train_truth)
            print(f"held-out {key}: {heldout[key]}", flush=True)
    stacked_seeds = [TRAIN_SEED0 + i for i, s in enumerate(stacked) if s]
    save_grader(
        model,
        args.out,
        {
            "training_data": (
                f"{args.studies} spine phantoms, site 0, seeds {TRAIN_SEED0}.."
                f"{TRAIN_SEED0 + args.studies - 1} (napari_atlas_annotate.phantoms.spine); "
                f"{len(stacked_seeds)} of them (axial_stacks_seeds, spread evenly) with the "
                "Axial T2 as five angled stacks (axial_stacks=LEVELS), the rest one block"
            ),
            "axial_stacks_seeds": stacked_seeds,
            "training_metrics": {k: v for k, v in metrics.items() if k != "seconds"},
            "heldout": heldout,
            "made_by": (
                f"scripts/make_starter_grader.py --studies {args.studies} --epochs "
                f"{args.epochs} --stacked-share {args.stacked_share:g}"
            ),
        },
    )
    print(f"trained in {train_s:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
