"""Benchmark: the held-out Dice a training round scores each real-size proposal with.

``train`` promotes a retrained organ model only if the proposals it would hand a radiologist
(on each held-out case's own grid) beat the active model's, scored with
``training.organs.dice_per_class``. On a 300 x 512 x 512 CT that is a pair of 78.6 M-voxel
label maps per model and case. Each side runs in a fresh child process (its package first
on ``PYTHONPATH``), scoring the same pair (a phantom's labels upsampled to 300 x 512 x 512,
and the same with the liver grown by a voxel and the spleen dropped, as a proposal):

* **ours**: this checkout: one count of the (proposed, true) label pairs;
* **baseline** (``--baseline-ref``, default bebee86): MONAI ``DiceMetric`` on one-hot maps
  made with ``torch.nn.functional.one_hot``.

Prints each side's seconds (best of ``--repeat``), peak RSS (``VmHWM``) and the Dice, which
must agree. Run: ``python bench/held_out_dice.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from baseline import baseline_code, best_of, child_env, head_commit, peak_rss_mb, run_child

BASELINE_REF = "bebee86"


def child(folder: str, repeat: int) -> None:
    import numpy as np

    from napari_atlas_annotate.training.organs import dice_per_class

    truth = np.load(Path(folder) / "truth.npy")
    proposal = np.load(Path(folder) / "proposal.npy")
    before = peak_rss_mb()
    seconds, scores = best_of(lambda: dice_per_class(proposal, truth, 9), repeat)
    result = {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
        "dice": [None if np.isnan(v) else round(float(v), 6) for v in scores],
    }
    print("RESULT " + json.dumps(result))


def make_pair(folder: Path) -> None:
    import numpy as np
    from organ_dock import upsampled_phantom
    from scipy import ndimage

    _, truth = upsampled_phantom(0)
    proposal = truth.copy()
    proposal[ndimage.binary_dilation(truth == 5) & (truth == 0)] = 5  # liver grown
    proposal[truth == 8] = 0  # spleen missed
    np.save(folder / "truth.npy", truth)
    np.save(folder / "proposal.npy", proposal)
    print(f"label maps {truth.shape}, {truth.size / 1e6:.1f} M voxels each")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return
    with tempfile.TemporaryDirectory(prefix="held_out_dice-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        make_pair(tmp)
        print(f"made in {time.perf_counter() - t0:.1f} s")
        code = baseline_code(args.baseline_ref, tmp / "baseline")
        argv = [sys.executable, __file__, "--child", str(tmp), "--repeat", str(args.repeat)]
        ours = run_child(argv, child_env(None, threads=2), "ours")
        base = run_child(argv, child_env(code, threads=2), "baseline")
    print(f"best of {args.repeat}; ours = {head_commit()}, baseline = {args.baseline_ref}")
    print(f"{'':<10}{'seconds':>9}{'peak RSS MB':>13}{'(before)':>10}")
    for name, r in (("ours", ours), ("baseline", base)):
        print(f"{name:<10}{r['seconds']:>9.2f}{r['peak_rss_mb']:>13.0f}{r['rss_before_mb']:>10.0f}")
    grown = [r["peak_rss_mb"] - r["rss_before_mb"] for r in (ours, base)]
    print(
        f"ratio: {base['seconds'] / ours['seconds']:.1f}x faster, "
        f"{grown[1] / max(grown[0], 1):.0f}x less memory for the scoring"
    )
    print("same Dice: " + ("yes" if ours["dice"] == base["dice"] else f"NO {ours} {base}"))


if __name__ == "__main__":
    main()
