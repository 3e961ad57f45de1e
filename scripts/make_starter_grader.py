"""Train the committed starter lumbar grader on site-0 spine phantoms (deterministic).

    .venv/bin/python scripts/make_starter_grader.py [--studies 48] [--epochs 30]

Writes ``napari_atlas_annotate/models/starter/grader/`` (``configs/metadata.json`` +
``models/model.pt``) and prints the held-out RSNA score on phantoms of another site next
to the constant class-prior baseline. CPU, one thread: about 3 minutes.
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
from napari_atlas_annotate.training.grader import train_grader, truth_sheet

TRAIN_SEED0 = 0  # site-0 training phantoms: seeds 0 .. studies-1
HELDOUT_SEED0 = 5000  # held-out phantoms of other sites: seeds 5000 ..


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--heldout", type=int, default=24)
    parser.add_argument("--out", type=Path, default=STARTER_GRADER)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    t0 = time.perf_counter()
    studies = []
    for seed in range(TRAIN_SEED0, TRAIN_SEED0 + args.studies):
        case = make_spine_phantom(seed, site=0)
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
    for site in (1, 2):
        cases = [make_spine_phantom(HELDOUT_SEED0 + i, site=site) for i in range(args.heldout)]
        train_truth = {i: sheet for i, (_, sheet) in enumerate(studies)}
        heldout[f"site{site}"] = evaluate_grader(model, cases, train_truth)
        print(f"held-out site {site}: {heldout[f'site{site}']}", flush=True)
    save_grader(
        model,
        args.out,
        {
            "training_data": (
                f"{args.studies} spine phantoms, site 0, seeds {TRAIN_SEED0}.."
                f"{TRAIN_SEED0 + args.studies - 1} (napari_atlas_annotate.phantoms.spine)"
            ),
            "training_metrics": {k: v for k, v in metrics.items() if k != "seconds"},
            "heldout": heldout,
            "made_by": "scripts/make_starter_grader.py",
        },
    )
    print(f"trained in {train_s:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
