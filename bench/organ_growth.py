"""Experiment: does the starter, grown wider without changing what it computes, fine-tune
to fewer voxels to edit than the starter itself?

``bench/organ_capacity.py`` shows capacity is a lever when networks are trained from
scratch, and ``bench/RESULTS.md`` shows a wider starter trained on site 0 generalises worse
to the campaign's site. This script keeps the packaged starter's knowledge and grows it:
every channel of the MONAI UNet 16-32-64-128 is duplicated into UNet 32-64-128-256 with
each copy's outgoing weights halved (Net2WiderNet, Chen et al. 2016), so the grown network
starts out computing the starter's own function (instance norm without affine and
one-parameter PReLU keep duplicated channels identical). A little noise breaks the copies'
symmetry. Both networks are then fine-tuned with the campaign's recipe on the true labels
of the campaign's first ``--train-cases`` site-1 phantoms, and scored as the campaign
scores a model (``campaign.evaluate_on_phantoms`` on its held-out phantoms).

* baseline: the starter fine-tuned (what a campaign round does);
* ours: the grown starter fine-tuned with the same data, recipe and iterations.

Run: ``python bench/organ_growth.py [--iterations 300 900] [--train-cases 18]`` (CPU).
"""

from __future__ import annotations

import argparse

from organ_ceiling import SitePhantoms, add_site_arguments


def _channel_map(small: int, wide: int, split: int | None = None):
    """Index of the small network's channel each wide channel copies (``split``: the
    concatenation point of a skip connection's input, [skip, upsampled])."""
    import torch

    if small == wide:
        return torch.arange(wide)
    if split is None:
        return torch.arange(wide) % small
    rest = small - split
    first = torch.arange(2 * split) % split
    second = split + torch.arange(wide - 2 * split) % rest
    return torch.cat([first, second])


def widen(small_net, wide_net, channels, noise: float, seed: int) -> None:
    """Copy ``small_net`` into ``wide_net`` (same MONAI UNet, each width doubled) so that
    ``wide_net`` computes the same function, plus relative Gaussian ``noise``."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    small_modules = dict(small_net.named_modules())
    with torch.no_grad():
        for name, wide in wide_net.named_modules():
            small = small_modules[name]
            if isinstance(wide, torch.nn.PReLU):
                wide.weight.copy_(small.weight)
            if not isinstance(wide, torch.nn.Conv3d | torch.nn.ConvTranspose3d):
                continue
            transposed = isinstance(wide, torch.nn.ConvTranspose3d)
            out_dim, in_dim = (1, 0) if transposed else (0, 1)
            w = small.weight
            split = channels[name.count("submodule")] if transposed else None
            in_map = _channel_map(w.shape[in_dim], wide.weight.shape[in_dim], split)
            out_map = _channel_map(w.shape[out_dim], wide.weight.shape[out_dim])
            copies = torch.bincount(in_map, minlength=w.shape[in_dim]).float()
            grown = w.index_select(in_dim, in_map) / copies[in_map].view(
                [-1 if d == in_dim else 1 for d in range(w.ndim)]
            )
            grown = grown.index_select(out_dim, out_map)
            if noise and grown.shape != w.shape:
                grown = grown + noise * w.std() * torch.randn(grown.shape, generator=generator)
            wide.weight.copy_(grown)
            if wide.bias is not None:
                wide.bias.copy_(small.bias[out_map])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, nargs="+", default=[300])
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--which", nargs="+", default=["starter", "grown"])
    add_site_arguments(parser)
    args = parser.parse_args()

    import copy

    import torch

    from napari_atlas_annotate.campaign import evaluate_on_phantoms
    from napari_atlas_annotate.models.bundle import build_network
    from napari_atlas_annotate.models.inference import LoadedModel

    cpu = torch.device("cpu")
    phantoms, cases = SitePhantoms.on_cpu(args)
    held_out, starter = phantoms.held_out, phantoms.starter
    kwargs = starter.architecture["kwargs"]
    wide_arch = copy.deepcopy(starter.architecture)
    wide_arch["kwargs"]["channels"] = [2 * c for c in kwargs["channels"]]

    def grown_starter(noise: float = args.noise):
        network = build_network(wide_arch, len(starter.classes))
        widen(starter.load_network(cpu), network, kwargs["channels"], noise, args.seed)
        return network.eval()

    probe = torch.randn(1, 1, 32, 48, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = starter.load_network(cpu)(probe)
        gap = (grown_starter(0.0)(probe) - reference).abs().max().item()
        gap_noisy = (grown_starter()(probe) - reference).abs().max().item()
    print(f"grown without noise vs starter: max |logit difference| {gap:.2e}")
    print(f"grown with noise {args.noise}: {gap_noisy:.2e}")
    base = evaluate_on_phantoms(LoadedModel(starter, grown_starter(), cpu), held_out)
    print(f"grown before training: Dice {base.mean_dice:.3f}, to edit {base.wrong_voxels:.0f}")

    makers = {"starter": lambda: starter.load_network(cpu), "grown": grown_starter}
    for iterations in args.iterations:
        left = {}
        for which in args.which:
            network = makers[which]()
            _, seconds, score = phantoms.train_and_score(
                network, cases, phantoms.campaign_recipe(iterations), cpu
            )
            print(
                f"{which}: {args.train_cases} cases x {iterations} iterations ({seconds:5.0f} s):"
                f" Dice {score.mean_dice:.3f}, voxels to edit per case {score.wrong_voxels:.0f}"
                f" (off band {score.wrong_off_boundary:.0f})",
                flush=True,
            )
            left[which] = score.wrong_voxels
        if len(left) == 2:
            ratio = left["grown"] / left["starter"]
            print(f"grown / starter at {iterations} iterations: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
