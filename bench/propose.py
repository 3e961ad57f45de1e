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

Each pipeline runs in its own child process, so its peak RSS (``VmHWM``) is its own.
Run: ``python bench/propose.py [--threads 2] [--shape 300 512 512] [--spacing 1.5 0.8 0.8]``.

``--device cuda`` runs the sliding window (bf16/fp16 autocast) and the baseline's
full-resolution interpolation on the GPU, adds *ours (linear, refined)* on the CPU of the
same machine as a reference (time ratio and voxel agreement of the GPU labels with the CPU
labels), and reports peak GPU memory. ``--repeat N`` runs each pipeline N times in its
process: the first run is *cold* (CUDA context, cuDNN set-up, model load), the best of the
others *warm* (what each further case of a batch ``atlas-annotate propose`` costs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from baseline import peak_rss_mb


def _child(which: str, path: str, out: str, threads: int, device: str, repeat: int) -> None:
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    labels, cold = _pipeline(which, path, device)  # stages of the first (cold) run
    times = [time.perf_counter() - t0]
    for _ in range(repeat - 1):
        t0 = time.perf_counter()
        labels, _ = _pipeline(which, path, device)
        times.append(time.perf_counter() - t0)
    np.save(out, labels)
    peak_mb = peak_rss_mb()
    result = {
        "seconds": times[0],
        "warm_seconds": min(times[1:], default=None),
        "peak_rss_mb": peak_mb,
    }
    if device.startswith("cuda"):
        result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["gpu"] = torch.cuda.get_device_name()
    print(json.dumps({**result, **cold}))


def _pipeline(which: str, path: str, device: str):
    """Load the CT at ``path`` and propose organs with pipeline ``which``; (labels, stages)."""
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
            device=device,
            upsample=parts[1],
            refine=parts[-1] == "refined",
        )
        labels, stages = proposal.labels, proposal.seconds
    else:
        labels, stages = _baseline(volume, STARTER_FOLDER, device)
    return labels, {"load": t_load, **stages}


def _baseline(volume, folder, device: str):
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
    loaded = load_model(folder, device)
    grid, image = model_input(volume, loaded.bundle)
    stages["preprocess"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    probs = predict_probabilities(loaded, image)
    stages["inference"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        full = F.interpolate(
            probs.to(loaded.device)[None],
            size=grid.canonical_shape,
            mode="trilinear",
            align_corners=False,
        )[0]  # float32, all classes, full resolution (the Invertd step)
        del probs
        labels = full.argmax(dim=0, keepdim=True)
        del full
    n = len(loaded.bundle.classes)
    keep = KeepLargestConnectedComponent(applied_labels=list(range(1, n + 1)), independent=True)
    labels = keep(labels)
    labels = np.asarray(labels[0].cpu()).astype(np.uint8)
    stages["postprocess"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = np.ascontiguousarray(grid.from_canonical(labels))
    stages["to_image_grid"] = time.perf_counter() - t0
    return labels, stages


def _run(which: str, path: Path, out: Path, threads: int, device: str, repeat: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        which,
        str(path),
        str(out),
        "--threads",
        str(threads),
        "--device",
        device,
        "--repeat",
        str(repeat),
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
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--repeat", type=int, default=1, help="runs per pipeline (>1: warm)")
    parser.add_argument("--child", nargs=3, metavar=("WHICH", "PATH", "OUT"))
    args = parser.parse_args()
    if args.child:
        _child(*args.child, threads=args.threads, device=args.device, repeat=args.repeat)
        return 0

    from napari_atlas_annotate.io.nifti import save_nifti
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom
    from napari_atlas_annotate.training.organs import dice_per_class

    on_gpu = args.device != "cpu"
    ours = ["ours-linear-refined", "ours-linear"] + ([] if on_gpu else ["ours-nearest"])
    # (name shown, pipeline, device)
    runs = [(w, w, args.device) for w in [*ours, "baseline"]]
    if on_gpu:
        runs.append(("cpu:ours-linear-refined", "ours-linear-refined", "cpu"))
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
            f" device {args.device}; {args.threads} CPU threads;"
            f" load average {os.getloadavg()[0]:.1f}"
        )
        results = {}
        for name, which, device in runs:
            results[name] = r = _run(
                which, path, tmp / f"{name}.npy", args.threads, device, args.repeat
            )
            warm = f" (warm {r['warm_seconds']:.1f} s)" if r.get("warm_seconds") else ""
            gpu = f"  GPU peak {r['gpu_peak_mb'] / 1024:5.2f} GB" if "gpu_peak_mb" in r else ""
            print(
                f"{name:>23}: {r['seconds']:6.1f} s{warm}  peak RSS "
                f"{r['peak_rss_mb'] / 1024:5.2f} GB{gpu}  "
                + " ".join(f"{k}={r[k]:.1f}" for k in STAGES if k in r)
            )
        if on_gpu:
            print(f"GPU: {results[ours[0]].get('gpu')}")
        maps = {name: np.load(tmp / f"{name}.npy") for name in results}
        n = int(max(max(m.max() for m in maps.values()), truth.max()))
        dice = {name: float(np.nanmean(dice_per_class(m, truth, n))) for name, m in maps.items()}
        agree = {w: float(np.mean(maps[w] == maps["baseline"])) for w in ours}
    base = results["baseline"]
    for which in ours:
        r = results[which]
        print(
            f"ratio baseline/{which}: time {base['seconds'] / r['seconds']:.2f}x, "
            f"peak RSS {base['peak_rss_mb'] / r['peak_rss_mb']:.2f}x; "
            f"voxel agreement with baseline {agree[which]:.4f}"
        )
    if on_gpu:
        cpu, gpu = results["cpu:ours-linear-refined"], results[ours[0]]
        same = float(np.mean(maps["cpu:ours-linear-refined"] == maps[ours[0]]))
        print(
            f"ratio cpu/{args.device} for ours-linear-refined: time "
            f"{cpu['seconds'] / gpu['seconds']:.2f}x cold"
            + (
                f", {cpu['warm_seconds'] / gpu['warm_seconds']:.2f}x warm"
                if gpu.get("warm_seconds") and cpu.get("warm_seconds")
                else ""
            )
            + f"; voxel agreement of the {args.device} labels with the CPU labels {same:.5f}"
        )
    print("mean Dice vs truth: " + ", ".join(f"{w} {d:.3f}" for w, d in dice.items()))
    for which in ours:
        r = results[which]
        ok = r["seconds"] < 60 and r["peak_rss_mb"] < 4096
        print(f"target (< 60 s, < 4 GB) {which}:", "met" if ok else "NOT met")
    return 0


STAGES = (
    "load",
    "load_model",
    "preprocess",
    "inference",
    "postprocess",
    "to_image_grid",
    "cleanup_image_grid",
    "refine_borders",
)


if __name__ == "__main__":
    sys.exit(main())
