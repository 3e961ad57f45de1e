"""Experiment: how far do more labelled cases and more training move held-out corrections?

The campaign's edit target (round 3 needs at most half of round 1's voxels edited) asks the
fine-tuned organ model to halve the voxels an annotator corrects. A campaign round on CPU
trains 300 iterations on the 6-18 cases labelled so far. This script asks what the same
model and fine-tuning recipe reach with far more of both, on the campaign's own held-out
phantoms (``atlas-annotate campaign --seed S`` with the same shape and site):

* baseline: the packaged starter (what round 1 proposes);
* ours: the starter fine-tuned on the *true* labels of ``--train-cases`` site phantoms (the
  campaign's case seeds, so 18 = its three rounds' cases) for each budget in
  ``--iterations``, each from the starter with its own one-cycle schedule.

Each model is scored as the campaign scores it (``campaign.evaluate_on_phantoms``: proposals
on the image grid with border refinement): mean Dice, voxels to edit per case, and the ratio
to the starter's voxels to edit. Use ``--device cuda`` where a GPU is lent.

Run: ``python bench/organ_ceiling.py [--train-cases 18 36] [--iterations 300 1200]``.
"""

from __future__ import annotations

import argparse
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-cases", type=int, nargs="+", default=[18])
    parser.add_argument("--iterations", type=int, nargs="+", default=[300])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--site", type=int, default=1)
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 112, 112))
    parser.add_argument("--eval-cases", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from napari_atlas_annotate.campaign import (
        CampaignSettings,
        ct_phantom,
        evaluate_on_phantoms,
        held_out_ct_phantoms,
    )
    from napari_atlas_annotate.models.bundle import ModelBundle
    from napari_atlas_annotate.models.devices import select_device
    from napari_atlas_annotate.models.inference import LoadedModel
    from napari_atlas_annotate.models.organ_model import STARTER_FOLDER
    from napari_atlas_annotate.training.dataset import prepare_case
    from napari_atlas_annotate.training.organs import TrainSettings, fine_tune

    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    shape = tuple(args.shape)
    campaign = CampaignSettings(
        seed=args.seed, site=args.site, shape=shape, eval_cases=args.eval_cases
    )
    held_out = held_out_ct_phantoms(campaign)
    starter = ModelBundle.load(STARTER_FOLDER)
    base = evaluate_on_phantoms(
        LoadedModel(starter, starter.load_network(device), device), held_out
    )
    print(
        f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'});"
        f" held-out phantoms: {args.eval_cases}, shape {shape}, site {args.site}, seed {args.seed}"
    )
    print(
        f"baseline (starter): Dice {base.mean_dice:.3f}, voxels to edit per case "
        f"{base.wrong_voxels:.0f} (off the border band {base.wrong_off_boundary:.0f})"
    )
    cases = []
    for n in sorted(set(args.train_cases)):
        while len(cases) < n:
            i = len(cases)
            image, label, _ = ct_phantom(campaign, i)
            cases.append(prepare_case(f"c{i}", image, label.array, starter.spacing, starter.window))
        for iterations in args.iterations:
            settings = TrainSettings(
                epochs=max(1, iterations // campaign.iterations_per_epoch),
                iterations_per_epoch=campaign.iterations_per_epoch,
                learning_rate=campaign.learning_rate,
                intensity_jitter=campaign.intensity_jitter,
                seed=args.seed,
            )
            network = starter.load_network(device)
            t0 = time.perf_counter()
            stats = fine_tune(network, cases[:n], settings, device)
            seconds = time.perf_counter() - t0
            score = evaluate_on_phantoms(LoadedModel(starter, network, device), held_out)
            print(
                f"ours: {n:3d} cases x {stats['iterations']:5d} iterations ({seconds:6.1f} s):"
                f" Dice {score.mean_dice:.3f}, voxels to edit per case {score.wrong_voxels:.0f}"
                f" (off band {score.wrong_off_boundary:.0f});"
                f" ratio to baseline {score.wrong_voxels / base.wrong_voxels:.2f}x",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
