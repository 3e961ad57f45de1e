"""Does the queue put the proposals that need the most correcting first?

``atlas-annotate propose`` orders a project's queue by each proposal's uncertainty (mean
normalised softmax entropy over the proposed organs), so radiologists (and AbdomenAtlas-
style review rounds that only look at the top of the queue) see the worst proposals first.
This bench proposes ``--cases`` CT phantoms of site 1 (the site the starter was not trained
on: unenhanced scans, fatty livers, thick slices) with the packaged starter, exactly as
``propose`` does, scores each proposal against the phantom's truth, and compares two
orders of the same cases:

* **ours**: most uncertain first (the queue);
* **baseline**: the order the cases were added (what a queue without uncertainty gives;
  any fixed order unrelated to the proposals is a random one, whose expected share of the
  errors in the first quarter is 25 %).

It prints the Spearman rank correlation of the uncertainty with the voxels to edit and
with the gross errors (wrong voxels farther than one voxel from a true organ border:
missed or leaked organ parts), and the share of all voxels to edit / gross errors that
each order puts in the first quarter and the first half of the queue, with the ratio.

    python bench/queue_order.py [--cases 24] [--shape 64 112 112] [--seed 0] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _shares(order: list[int], values: np.ndarray, fraction: float) -> float:
    k = max(1, int(round(len(order) * fraction)))
    return float(values[order[:k]].sum() / values.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 112, 112))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from scipy import stats

    from napari_atlas_annotate.models.border_refinement import border_band
    from napari_atlas_annotate.models.inference import load_model, propose_organs
    from napari_atlas_annotate.models.registry import STARTERS
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom

    loaded = load_model(STARTERS["organs"], "cpu")
    uncertainty, wrong, gross = [], [], []
    t0 = time.perf_counter()
    for i in range(args.cases):
        image, label, info = make_ct_phantom(
            1_000_000 * (args.seed + 1) + i, shape=tuple(args.shape), site=1
        )
        proposal = propose_organs(image, loaded, threads=args.threads)
        miss = proposal.labels != label.array
        uncertainty.append(proposal.uncertainty)
        wrong.append(int(miss.sum()))
        gross.append(int((miss & ~border_band(label.array)).sum()))
        print(
            f"case {i:2d} {info['phase']:<13s} fatty liver {str(info['fatty_liver']):5s} "
            f"uncertainty {proposal.uncertainty:.4f}  to edit {wrong[-1]:6d}  "
            f"gross {gross[-1]:5d}",
            flush=True,
        )
    seconds = time.perf_counter() - t0
    wrong_a, gross_a = np.array(wrong, float), np.array(gross, float)
    ours = [int(i) for i in np.argsort(-np.array(uncertainty), kind="stable")]
    baseline = list(range(args.cases))
    print(f"\n{args.cases} site-1 phantoms {tuple(args.shape)}, starter, {seconds:.0f} s")
    for name, values in (("voxels to edit", wrong_a), ("gross errors", gross_a)):
        rho = stats.spearmanr(uncertainty, values).statistic
        print(f"{name}: Spearman rank correlation with the uncertainty {rho:.3f}")
    print(
        "share of all errors in the first part of the queue (ours / baseline = ratio; "
        "a random order gives the part's own share on average; best: the cases sorted by "
        "their errors):"
    )
    for name, values in (("voxels to edit", wrong_a), ("gross errors", gross_a)):
        best = [int(i) for i in np.argsort(-values, kind="stable")]
        for fraction in (0.25, 0.5):
            a, b = _shares(ours, values, fraction), _shares(baseline, values, fraction)
            print(
                f"  {name:<15s} first {fraction:.0%}: {a:6.1%} / {b:6.1%} = {a / b:.2f}x"
                f"  (best {_shares(best, values, fraction):.1%})"
            )


if __name__ == "__main__":
    main()
