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


def add_site_arguments(parser: argparse.ArgumentParser) -> None:
    """``--train-cases``, ``--seed``, ``--shape`` and ``--threads`` of the CPU experiments
    on site-1 phantoms (:meth:`SitePhantoms.on_cpu`)."""
    parser.add_argument("--train-cases", type=int, default=18)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 112, 112))
    parser.add_argument("--threads", type=int, default=1)


class SitePhantoms:
    """The campaign's site phantoms prepared as the campaign's models see them: its held-out
    phantoms (``held_out``) and, by :meth:`training_cases`, its first case phantoms with
    their *true* labels on the starter's grid; :meth:`train_and_score` trains and scores a
    network on them (shared with ``bench/organ_capacity.py`` and ``bench/organ_growth.py``)."""

    def __init__(self, seed: int, site: int, shape, eval_cases: int) -> None:
        from napari_atlas_annotate.campaign import CampaignSettings, held_out_ct_phantoms
        from napari_atlas_annotate.models.bundle import ModelBundle
        from napari_atlas_annotate.models.organ_model import STARTER_FOLDER

        self.campaign = CampaignSettings(
            seed=seed, site=site, shape=tuple(shape), eval_cases=eval_cases
        )
        self.held_out = held_out_ct_phantoms(self.campaign)
        self.starter = ModelBundle.load(STARTER_FOLDER)  # its grid, window and classes
        self._cases: list = []

    @classmethod
    def on_cpu(cls, args: argparse.Namespace) -> tuple[SitePhantoms, list]:
        """Site-1 phantoms as :func:`add_site_arguments` asks (four held-out), torch on
        ``args.threads`` CPU threads, and the ``args.train_cases`` training cases."""
        import torch

        torch.set_num_threads(args.threads)
        phantoms = cls(args.seed, 1, args.shape, 4)
        return phantoms, phantoms.training_cases(args.train_cases)

    def training_cases(self, n: int) -> list:
        """The first ``n`` case phantoms (made once) as training cases."""
        from napari_atlas_annotate.campaign import ct_phantom
        from napari_atlas_annotate.training.dataset import prepare_case

        while len(self._cases) < n:
            i = len(self._cases)
            image, label, _ = ct_phantom(self.campaign, i)
            self._cases.append(
                prepare_case(f"c{i}", image, label.array, self.starter.spacing, self.starter.window)
            )
        return self._cases[:n]

    def campaign_recipe(self, iterations: int):
        """The campaign's fine-tuning settings for about ``iterations`` iterations."""
        from napari_atlas_annotate.training.organs import TrainSettings

        c = self.campaign
        return TrainSettings(
            epochs=max(1, iterations // c.iterations_per_epoch),
            iterations_per_epoch=c.iterations_per_epoch,
            learning_rate=c.learning_rate,
            intensity_jitter=c.intensity_jitter,
            seed=c.seed,
        )

    def train_and_score(self, network, cases, settings, device):
        """Fine-tune ``network`` on ``cases``, then score it as the campaign does on the
        held-out phantoms: ``(training stats, training seconds, score)``."""
        from napari_atlas_annotate.campaign import evaluate_on_phantoms
        from napari_atlas_annotate.models.inference import LoadedModel
        from napari_atlas_annotate.training.organs import fine_tune

        t0 = time.perf_counter()
        stats = fine_tune(network, cases, settings, device)
        seconds = time.perf_counter() - t0
        score = evaluate_on_phantoms(LoadedModel(self.starter, network, device), self.held_out)
        return stats, seconds, score


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

    from napari_atlas_annotate.campaign import evaluate_on_phantoms
    from napari_atlas_annotate.models.devices import select_device
    from napari_atlas_annotate.models.inference import LoadedModel

    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    shape = tuple(args.shape)
    phantoms = SitePhantoms(args.seed, args.site, shape, args.eval_cases)
    held_out, starter = phantoms.held_out, phantoms.starter
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
    for n in sorted(set(args.train_cases)):
        cases = phantoms.training_cases(n)
        for iterations in args.iterations:
            network = starter.load_network(device)
            stats, seconds, score = phantoms.train_and_score(
                network, cases, phantoms.campaign_recipe(iterations), device
            )
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
