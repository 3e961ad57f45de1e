"""Train the round-0 organ helper model on site-0 CT phantoms and write it as the starter.

The starter ships inside the package (``napari_atlas_annotate/models/starter/organs/``) so a
new project can propose from its first case, with no download. It is trained only on
phantoms from acquisition site 0; the simulated campaign then shows it adapting to another
site from radiologists' corrections.

Usage::

    python scripts/make_starter_models.py [--out FOLDER] [--cases 24] [--epochs 64] [--threads 1]
        [--channels 16 32 64 128] [--res-units 1]

Deterministic for a given seed (fixed phantom seeds, numpy and torch seeds).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.models.bundle import ModelBundle, build_network, save_bundle
from napari_atlas_annotate.models.devices import select_device
from napari_atlas_annotate.models.inference import LoadedModel
from napari_atlas_annotate.models.organ_model import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_SPACING,
    DEFAULT_WINDOW,
    STARTER_FOLDER,
    organ_metadata,
)
from napari_atlas_annotate.phantoms.ct import make_ct_phantom
from napari_atlas_annotate.training.dataset import prepare_case
from napari_atlas_annotate.training.organs import TrainSettings, evaluate, fine_tune


def phantom_cases(seeds, site, shape, spacing):
    cases = []
    for seed in seeds:
        image, label, _ = make_ct_phantom(seed, shape=shape, site=site)
        cases.append(
            prepare_case(f"site{site}-{seed}", image, label.array, spacing, DEFAULT_WINDOW)
        )
    return cases


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STARTER_FOLDER)
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--shape", type=int, nargs=3, default=(96, 160, 160))
    parser.add_argument("--epochs", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=25, help="iterations per epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--spacing", type=float, nargs=3, default=DEFAULT_SPACING, help="model voxel size (mm)"
    )
    parser.add_argument(
        "--channels",
        type=int,
        nargs="+",
        default=DEFAULT_ARCHITECTURE["kwargs"]["channels"],
        help="UNet channels per level (the shipped starter: 16 32 64 128)",
    )
    parser.add_argument(
        "--res-units",
        type=int,
        default=DEFAULT_ARCHITECTURE["kwargs"]["num_res_units"],
        help="residual units per UNet level (the shipped starter: 1)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    classes = list(ABDOMEN_ATLAS_CLASSES)
    shape = tuple(args.shape)
    t0 = time.perf_counter()
    train_seeds = list(range(args.seed * 1000, args.seed * 1000 + args.cases))
    spacing = tuple(args.spacing)
    train = phantom_cases(train_seeds, 0, shape, spacing)
    val_site0 = phantom_cases(range(900_000, 900_004), 0, shape, spacing)
    val_site1 = phantom_cases(range(900_000, 900_004), 1, shape, spacing)
    print(f"phantoms ready in {time.perf_counter() - t0:.1f} s", flush=True)

    architecture = copy.deepcopy(DEFAULT_ARCHITECTURE)
    architecture["kwargs"]["channels"] = list(args.channels)
    architecture["kwargs"]["strides"] = [2] * (len(args.channels) - 1)
    architecture["kwargs"]["num_res_units"] = args.res_units
    metadata = organ_metadata("organs-starter", classes, spacing=spacing, architecture=architecture)
    device = select_device(args.device)
    network = build_network(metadata["architecture"], len(classes))
    settings = TrainSettings(
        epochs=args.epochs,
        iterations_per_epoch=args.iterations,
        learning_rate=3e-3,
        corrected_weight=0.0,
        seed=args.seed,
    )

    def report(done, total, stage):
        if done % args.iterations == 0:
            print(f"  {stage} {done}/{total} ({time.perf_counter() - t0:.0f} s)", flush=True)

    stats = fine_tune(network, train, settings, device, progress=report)
    print(f"trained: {stats}", flush=True)

    staging = args.out.parent / f".{args.out.name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    training = {
        "source": "phantoms",
        "site": 0,
        "cases": [c.case_id for c in train],
        "phantom_shape": list(shape),
        "settings": {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in vars(settings).items()
            if k != "extra"
        },
        "history": stats,
        "script": "scripts/make_starter_models.py",
    }
    metadata["training"] = training
    save_bundle(staging, network, metadata)
    loaded = LoadedModel(ModelBundle.load(staging), network.eval(), device)
    metrics = {
        "site0_holdout": evaluate(loaded, val_site0),
        "site1_holdout": evaluate(loaded, val_site1),
    }
    for name, m in metrics.items():
        m.pop("dice_per_case", None)
        print(name, round(m["mean_dice"], 4), m["dice_per_class"], flush=True)
    meta_path = staging / "configs" / "metadata.json"
    data = json.loads(meta_path.read_text())
    data["metrics"] = metrics
    meta_path.write_text(json.dumps(data, indent=2))
    if args.out.exists():
        shutil.rmtree(args.out)
    staging.rename(args.out)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out} ({size / 1e6:.2f} MB) in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
