"""One key (G) against one click of a 3D brush: how much of a missed organ part comes back?

A proposal that misses an organ's pole leaves the radiologist painting it back. This bench
cuts the upper half (cranial) off one organ of each CT phantom's truth, as a proposal
missing that pole would, points at the deepest voxel of the missing part (the natural
place to click), and compares what one action there brings back:

* **ours**: ``grow_from_voxel`` with the dock's defaults (± 60 HU, within 30 mm), which
  grows into connected unlabelled voxels that look like the pointed one;
* **baseline**: napari's 3D brush (``n_edit_dimensions = 3``) of the same reach: one dab
  paints a 30 mm ball of the class into the unlabelled voxels there.

For each it reports the share of the missing part brought back and the voxels painted
outside the organ (leaks the annotator must then erase), summed over cases, and the ratio
of the wrong voxels left after the action (missing still + leaked) baseline / ours. The
grow is also run without its bridge cut (``cut_bridges=False``, the grow before that
guard), and a table per site and organ gives all three with the part of the missing voxels
within the radius of the pointed voxel ("in reach": what one action there could bring back).

    python bench/region_grow.py [--cases 6] [--sites 0 1] [--shape 64 112 112]
                                [--organs kidney_left kidney_right spleen | all]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from napari_atlas_annotate.corrections.region_grow import grow_from_voxel
from napari_atlas_annotate.phantoms.ct import CLASSES, make_ct_phantom

TOLERANCE, RADIUS_MM = 60.0, 30.0


def _brush(labels, seed, class_id, spacing, radius_mm) -> np.ndarray:
    """One 3D brush dab: a ball of ``radius_mm`` painted into unlabelled voxels."""
    grid = np.ogrid[tuple(slice(0, n) for n in labels.shape)]
    d2 = sum(((g - i) * s) ** 2 for g, i, s in zip(grid, seed, spacing, strict=True))
    out = labels.copy()
    out[(d2 <= radius_mm**2) & (labels == 0)] = class_id
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--sites", type=int, nargs="+", default=(0, 1))
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 112, 112))
    parser.add_argument(
        "--organs",
        nargs="+",
        default=("kidney_left", "kidney_right", "spleen"),
        choices=(*CLASSES, "all"),
        help="classes to cut a half from, or all",
    )
    args = parser.parse_args()
    organs = CLASSES if "all" in args.organs else args.organs

    # missing, back, leaked
    totals = {"ours": np.zeros(3), "baseline": np.zeros(3), "uncut": np.zeros(3)}
    table: dict[tuple[int, str], np.ndarray] = {}  # missing, in reach, (back, leaked) x 3
    per_case: list[float] = []
    seconds = 0.0
    print("site case organ missing | ours: back leaked | brush: back leaked")
    for site in args.sites:
        for case in range(args.cases):
            image, truth, _ = make_ct_phantom(case, shape=tuple(args.shape), site=site)
            for organ in organs:
                class_id = CLASSES.index(organ) + 1
                whole = truth.array == class_id
                slices = np.nonzero(whole.any(axis=(1, 2)))[0]
                if len(slices) < 2:
                    continue
                missing = whole.copy()
                missing[: slices[len(slices) // 2]] = False
                labels = truth.array.copy()
                labels[missing] = 0
                depth = ndimage.distance_transform_edt(missing, sampling=image.spacing)
                seed = np.unravel_index(int(np.argmax(depth)), depth.shape)
                t0 = time.perf_counter()
                ours = grow_from_voxel(
                    labels, image.array, seed, class_id, image.spacing, TOLERANCE, RADIUS_MM
                ).apply(labels)
                seconds += time.perf_counter() - t0
                uncut = grow_from_voxel(
                    labels,
                    image.array,
                    seed,
                    class_id,
                    image.spacing,
                    TOLERANCE,
                    RADIUS_MM,
                    cut_bridges=False,
                ).apply(labels)
                brush = _brush(labels, seed, class_id, image.spacing, RADIUS_MM)
                reach = int(((brush == class_id) & missing).sum())  # the brush fills its ball
                row = [site, case, organ, int(missing.sum())]
                entry = [int(missing.sum()), reach]
                for name, result in (("ours", ours), ("baseline", brush), ("uncut", uncut)):
                    painted = result == class_id
                    back = int((painted & missing).sum())
                    leaked = int((painted & ~whole).sum())
                    totals[name] += (missing.sum(), back, leaked)
                    entry += [back, leaked]
                    if name != "uncut":
                        row += [back, leaked]
                table[site, organ] = table.get((site, organ), 0) + np.array(entry)
                per_case.append(row[4] / max(1, row[3]))
                print(*row)
    print(
        "\n| site | organ | missing (in reach) | grow: back, leaked, wrong left "
        "| grow without bridge cut | 3D brush dab |\n| --- | --- | --- | --- | --- | --- |"
    )
    for (site, organ), (missing, reach, *pairs) in sorted(table.items()):
        cells = []
        for back, leaked in (pairs[0:2], pairs[4:6], pairs[2:4]):
            cells.append(f"{back / missing:.1%}, {leaked:,}, {missing - back + leaked:,}")
        print(
            f"| {site} | {organ} | {missing:,} ({reach / missing:.0%}) | "
            + " | ".join(cells)
            + " |"
        )
    print()
    for name, (missing, back, leaked) in totals.items():
        print(
            f"{name}: {back / missing:.1%} of {int(missing)} missing voxels back, "
            f"{int(leaked)} leaked; wrong voxels left {int(missing - back + leaked)}"
        )
    wrong = {k: v[0] - v[1] + v[2] for k, v in totals.items()}
    print(
        f"bridge cut: wrong voxels left {wrong['uncut']:.0f} -> {wrong['ours']:.0f} "
        f"({wrong['ours'] / wrong['uncut'] - 1:+.1%}), leaked {totals['uncut'][2]:.0f} -> "
        f"{totals['ours'][2]:.0f} ({totals['ours'][2] / max(1, totals['uncut'][2]) - 1:+.1%})"
    )
    print(f"ours per organ part: {min(per_case):.0%}..{max(per_case):.0%} back")
    print(
        f"ratio baseline / ours (wrong voxels left after one action): "
        f"{wrong['baseline'] / wrong['ours']:.2f}x"
    )
    print(f"grow time: {seconds / len(per_case) * 1000:.1f} ms per action")


if __name__ == "__main__":
    main()
