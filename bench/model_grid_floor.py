"""Experiment: how many wrong voxels does the model's grid alone leave?

A helper model decides on its own grid (3 mm by default) and its class scores come back
onto the image's grid by trilinear interpolation (``ModelGrid.scores_to_labels``). Even a
perfect model, one whose scores are the true share of each class in every model voxel,
then leaves some voxels wrong: this script counts them on the campaign's held-out phantoms
for several model spacings, so the edit target's evidence can tell the grid's share from
the model's. The true shares are the area averages of each class's mask
(``ModelGrid.fraction_to_model``), the same resampling the image gets.

Run: ``python bench/model_grid_floor.py [--shape 64 112 112] [--spacing 3 2] [--site 1]``.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> int:
    from napari_atlas_annotate.campaign import HELD_OUT_INDEX, CampaignSettings, ct_phantom
    from napari_atlas_annotate.models.model_grid import ModelGrid

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 112, 112))
    parser.add_argument("--spacing", type=float, nargs="+", default=(3.0, 2.5, 2.0))
    parser.add_argument("--site", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=4)
    args = parser.parse_args()

    settings = CampaignSettings(seed=args.seed, site=args.site, shape=tuple(args.shape))
    phantoms = [ct_phantom(settings, HELD_OUT_INDEX + i) for i in range(args.cases)]
    voxel = np.mean([p[2]["spacing"] for p in phantoms], axis=0)
    print(
        f"{args.cases} held-out site-{args.site} phantoms {tuple(args.shape)}, voxels about "
        f"{' x '.join(f'{v:.2f}' for v in voxel)} mm"
    )
    print("model spacing | wrong voxels per case (perfect class shares) | per case")
    for mm in args.spacing:
        wrong = []
        for image, label, _ in phantoms:
            truth = label.array
            grid = ModelGrid.for_image(truth.shape, image.affine, (mm, mm, mm))
            shares = np.stack(
                [grid.fraction_to_model(truth == c) for c in range(int(truth.max()) + 1)]
            )
            wrong.append(int((grid.scores_to_labels(shares) != truth).sum()))
        print(f"{mm:g} mm | {np.mean(wrong):.1f} | {wrong}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
