"""Benchmark: end-to-end organ proposal for a 512x512x300 CT on 2 CPU threads.

Both pipelines start from the same NIfTI file and the same model (the packaged starter)
and return a uint8 label map on the image's own grid:

* **ours (linear, refined)**: the default of
  :func:`napari_atlas_annotate.models.inference.propose_organs`: everything in *ours
  (linear)*, then organ borders snapped to the image's edges by a random walker on a band
  half a model voxel wide (:mod:`napari_atlas_annotate.models.border_refinement`).
* **ours (linear)** (``refine=False``, ``upsample='linear'``): load, reorient and resample
  to 3 mm, sliding window,
  softmax at model resolution, then trilinear interpolation of the softmax onto the image
  grid and argmax *a slab of a few slices at a time* (at most 64 MB of interpolated
  probabilities at once), largest component per organ within its bounding box on the image
  grid.
* **ours (nearest)** (``refine=False``, ``upsample='nearest'``): argmax to uint8 at model
  resolution, largest component per organ there,
  nearest lookup of the uint8 map back onto the image grid.
* **baseline: MONAI tutorial-style post-processing** (what ``Invertd`` + ``AsDiscreted`` +
  ``KeepLargestConnectedComponentd`` do): the same load, resampling and sliding window, but
  the float32 softmax of all 10 channels is resampled back to the full image grid, argmax
  is taken there, and ``monai.transforms.KeepLargestConnectedComponent`` runs on the full
  resolution label map.

Each pipeline runs in its own child process, so its peak RSS (``ru_maxrss``) is its own.
Run: ``python bench/propose.py [--threads 2] [--shape 300 512 512] [--spacing 1.5 0.8 0.8]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _child(which: str, path: str, out: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from napari_atlas_annotate.io import load_volume
    from napari_atlas_annotate.models.organ_model import STARTER_FOLDER

    t0 = time.perf_counter()
    volume = load_volume(path)
    t_load = time.perf_counter() - t0
    if which.startswith("ours"):
        from napari_atlas_annotate.models.inference import propose_organs

        parts = which.split("-")
        proposal = propose_organs(
            volume,
            STARTER_FOLDER,
            device="cpu",
            upsample=parts[1],
            refine=parts[-1] == "refined",
        )
        labels = proposal.labels
        stages = proposal.seconds
    else:
        labels, stages = _baseline(volume, STARTER_FOLDER)
    seconds = time.perf_counter() - t0
    np.save(out, labels)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "load": t_load, "peak_rss_mb": peak_mb, **stages}))


def _baseline(volume, folder):
    import torch
    import torch.nn.functional as F
    from monai.transforms import KeepLargestConnectedComponent

    from napari_atlas_annotate.models.inference import (
        load_model,
        model_input,
        predict_probabilities,
    )

    stages = {}
    t0 = time.perf_counter()
    loaded = load_model(folder, "cpu")
    grid, image = model_input(volume, loaded.bundle)
    stages["preprocess"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    probs = predict_probabilities(loaded, image)
    stages["inference"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        full = F.interpolate(
            probs[None], size=grid.canonical_shape, mode="trilinear", align_corners=False
        )[0]  # float32, all classes, full resolution (the Invertd step)
        del probs
        labels = full.argmax(dim=0, keepdim=True)
        del full
    n = len(loaded.bundle.classes)
    keep = KeepLargestConnectedComponent(applied_labels=list(range(1, n + 1)), independent=True)
    labels = keep(labels)
    labels = np.asarray(labels[0]).astype(np.uint8)
    stages["postprocess"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = np.ascontiguousarray(grid.from_canonical(labels))
    stages["to_image_grid"] = time.perf_counter() - t0
    return labels, stages


def _run(which: str, path: Path, out: Path, threads: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        which,
        str(path),
        str(out),
        "--threads",
        str(threads),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shape", type=int, nargs=3, default=(300, 512, 512))
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.5, 0.8, 0.8))
    parser.add_argument("--child", nargs=3, metavar=("WHICH", "PATH", "OUT"))
    args = parser.parse_args()
    if args.child:
        _child(*args.child, threads=args.threads)
        return 0

    from napari_atlas_annotate.io.nifti import save_nifti
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom
    from napari_atlas_annotate.training.organs import dice_per_class

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image, label, info = make_ct_phantom(
            7, shape=tuple(args.shape), site=1, spacing=tuple(args.spacing)
        )
        path = save_nifti(image, tmp / "ct.nii.gz")
        truth = label.array.copy()
        del image, label
        print(
            f"CT phantom {tuple(args.shape)} spacing {[round(s, 2) for s in info['spacing']]} mm;"
            f" {args.threads} CPU threads; load average {os.getloadavg()[0]:.1f}"
        )
        results = {}
        names = ("ours-linear-refined", "ours-linear", "ours-nearest", "baseline")
        ours = names[:-1]
        for which in names:
            results[which] = _run(which, path, tmp / f"{which}.npy", args.threads)
            r = results[which]
            print(
                f"{which:>19}: {r['seconds']:6.1f} s  peak RSS {r['peak_rss_mb'] / 1024:5.2f} GB  "
                + " ".join(
                    f"{k}={r[k]:.1f}"
                    for k in (
                        "load",
                        "preprocess",
                        "inference",
                        "postprocess",
                        "to_image_grid",
                        "cleanup_image_grid",
                        "refine_borders",
                    )
                    if k in r
                )
            )
        maps = {which: np.load(tmp / f"{which}.npy") for which in names}
        n = int(max(max(m.max() for m in maps.values()), truth.max()))
        dice = {which: float(np.nanmean(dice_per_class(m, truth, n))) for which, m in maps.items()}
        agree = {w: float(np.mean(maps[w] == maps["baseline"])) for w in ours}
    base = results["baseline"]
    for which in ours:
        r = results[which]
        print(
            f"ratio baseline/{which}: time {base['seconds'] / r['seconds']:.2f}x, "
            f"peak RSS {base['peak_rss_mb'] / r['peak_rss_mb']:.2f}x; "
            f"voxel agreement with baseline {agree[which]:.4f}"
        )
    print("mean Dice vs truth: " + ", ".join(f"{w} {d:.3f}" for w, d in dice.items()))
    for which in ours:
        r = results[which]
        ok = r["seconds"] < 60 and r["peak_rss_mb"] < 4096
        print(f"target (< 60 s, < 4 GB) {which}:", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
