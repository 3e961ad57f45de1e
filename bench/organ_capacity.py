"""Experiment: does a larger organ network leave fewer voxels to edit?

The edit target's evidence (``bench/organ_ceiling.py``) shows the packaged organ network,
a small MONAI UNet, levelling off at about 2,600 voxels to edit per held-out case however
many cases and iterations it is fine-tuned with. This script trains networks of two sizes
*from scratch*, with the same data and the same number of iterations, on the true labels
of the campaign's first ``--train-cases`` site phantoms, and scores each as the campaign
scores a model (``campaign.evaluate_on_phantoms``: proposals on the image grid with border
refinement, on the campaign's held-out phantoms):

* baseline ``small``: the packaged starter's architecture (UNet 16-32-64-128, one residual
  unit, instance norm: 2.4 MB of float32 weights);
* ``deep``: the same with two residual units a level (4.8 MB);
* ``wide``: UNet 32-64-128-256, one residual unit (9.6 MB);
* ``big``: UNet 32-64-128-256, two residual units (19.0 MB).

Run: ``python bench/organ_capacity.py [--iterations 1500] [--archs small big]`` (CPU, one
thread: about 15 minutes for ``small`` and 30 for ``big`` at 1500 iterations).
"""

from __future__ import annotations

import argparse

from organ_ceiling import SitePhantoms, add_site_arguments

ARCHITECTURES = {
    "small": {"channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 1},
    "deep": {"channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 2},
    "wide": {"channels": [32, 64, 128, 256], "strides": [2, 2, 2], "num_res_units": 1},
    "big": {"channels": [32, 64, 128, 256], "strides": [2, 2, 2], "num_res_units": 2},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["small", "big"], choices=ARCHITECTURES)
    parser.add_argument("--iterations", type=int, default=1500)
    add_site_arguments(parser)
    args = parser.parse_args()

    import torch

    from napari_atlas_annotate.models.bundle import build_network
    from napari_atlas_annotate.training.organs import TrainSettings

    cpu = torch.device("cpu")
    phantoms, cases = SitePhantoms.on_cpu(args)
    held_out, starter = phantoms.held_out, phantoms.starter
    print(
        f"{args.train_cases} site-1 phantoms (true labels), {args.iterations} iterations from "
        f"scratch; {len(held_out)} held-out phantoms {tuple(args.shape)}, seed {args.seed}"
    )
    for name in args.archs:
        torch.manual_seed(args.seed)
        kwargs = dict(ARCHITECTURES[name], norm="instance")
        network = build_network({"name": "UNet", "kwargs": kwargs}, len(starter.classes))
        weights_mb = sum(p.numel() for p in network.parameters()) * 4 / 1e6
        settings = TrainSettings(
            epochs=max(1, args.iterations // 25),
            iterations_per_epoch=25,
            learning_rate=3e-3,
            intensity_jitter=0.05,
            corrected_weight=0.0,
            seed=args.seed,
        )
        _, seconds, score = phantoms.train_and_score(network, cases, settings, cpu)
        print(
            f"{name} ({weights_mb:.1f} MB): {seconds:6.0f} s training, Dice "
            f"{score.mean_dice:.3f}, voxels to edit per case {score.wrong_voxels:.0f} "
            f"(off the border band {score.wrong_off_boundary:.0f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
