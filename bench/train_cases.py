"""Benchmark: getting a retraining round's cases ready, with and without the case cache.

Every round trains on every labelled case of the project. Three ways to get them ready,
each in its own child process (so its memory is its own), on the same project:

* **baseline: prepare every case in memory** (what each round did before the cache, and
  what a MONAI ``CacheDataset`` does at the start of each run): read the image (DICOM by
  default), the label version and the proposal it corrected, resample to the model grid,
  keep the arrays in memory.
* **ours, first round** (:class:`napari_atlas_annotate.training.case_cache.CaseCache`,
  empty): the same work, plus writing each prepared case to ``PROJECT/cache/training``.
* **ours, later rounds** (cache filled): each case memory-mapped from the cache.

After the cases are ready, each child draws 200 training patches from them the way
``fine_tune`` does and reports the time. Memory is reported as the process's peak RSS
(``VmHWM``) and, at the end, as ``RssAnon`` (private memory the system cannot reclaim:
in-memory cases) and ``RssFile`` (file pages of memory-mapped cases, which it can drop and
read again).

Run: ``python bench/train_cases.py [--cases 12] [--shape 150 256 256] [--format dicom]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _memory() -> dict:
    """RssAnon, RssFile and the peak RSS (VmHWM) in MB, from /proc/self/status.

    VmHWM belongs to the process's own address space; ``ru_maxrss`` would carry the parent's
    peak over ``exec``, so the children would report the set-up's memory, not theirs.
    """
    out = {}
    names = {"RssAnon:": "RssAnon", "RssFile:": "RssFile", "VmHWM:": "peak_rss_mb"}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(maxsplit=1)[0] if line else ""
        if key in names:
            out[names[key]] = int(line.split()[1]) / 1024
    return out


def _child(which: str, folder: str) -> None:
    import torch

    from napari_atlas_annotate.models.registry import active_model
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.training.case_cache import CaseCache
    from napari_atlas_annotate.training.dataset import project_cases, training_versions
    from napari_atlas_annotate.training.organs import TrainSettings, sample_patch

    torch.set_num_threads(1)
    with Project(folder) as project:
        bundle, versions = active_model(project), training_versions(project)
        cache = None if which == "baseline" else CaseCache(project)
        t0 = time.perf_counter()
        cases = project_cases(project, bundle, versions, cache=cache)
        ready = time.perf_counter() - t0
        settings = TrainSettings()
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for _ in range(200):
            case = cases[int(rng.integers(len(cases)))]
            patch = sample_patch(case, settings.patch_size, rng, settings.foreground_probability)
            np.stack([patch[0]])
        sampling = time.perf_counter() - t0
        memory = _memory()  # before the checksum reads every voxel
        checksum = float(sum(float(np.asarray(c.image, np.float64).sum()) for c in cases))
        result = {"seconds": ready, "sampling_seconds": sampling, "checksum": checksum}
        print(json.dumps({**result, "hits": getattr(cache, "hits", None), **memory}))


def _make_project(root: Path, n: int, shape, fmt: str) -> Path:
    from scipy import ndimage

    from napari_atlas_annotate.io.nifti import load_nifti
    from napari_atlas_annotate.phantoms import write_phantoms
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.project.sources import cases_from_manifest

    manifest = write_phantoms(root / "data", n, 0, 0, fmt, ct_shape=tuple(shape), site=1)
    folder = root / "project"
    with Project.create(folder, task="organs") as project:
        for case in cases_from_manifest(manifest, "organs"):
            project.add_case(case.id, case.images, truth=case.truth, source=case.source)
            labels = load_nifti(case.truth["label"]).array.astype(np.uint8)
            proposal = ndimage.grey_erosion(labels, size=(1, 3, 3))  # borders a voxel in
            base = project.save_mask_version(case.id, proposal, kind="proposal")
            project.save_mask_version(
                case.id, labels, kind="corrected", annotator="sim", parent_id=base.id
            )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--shape", type=int, nargs=3, default=[150, 256, 256])
    parser.add_argument("--format", choices=["dicom", "nifti"], default="dicom")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-train-cases-") as tmp:
        t0 = time.perf_counter()
        folder = _make_project(Path(tmp), args.cases, args.shape, args.format)
        print(
            f"{args.cases} site-1 CT phantoms {tuple(args.shape)} as {args.format}, each with "
            f"a proposal and a corrected version ({time.perf_counter() - t0:.0f} s to make)"
        )
        shutil.rmtree(folder / "cache", ignore_errors=True)
        rows = {}
        for which in ("baseline", "first round", "later rounds"):
            key = "baseline" if which == "baseline" else "cached"
            run = subprocess.run(
                [sys.executable, __file__, "--child", key, str(folder)],
                check=True,
                capture_output=True,
                text=True,
            )
            rows[which] = json.loads(run.stdout.strip().splitlines()[-1])
    assert len({r["checksum"] for r in rows.values()}) == 1, "prepared cases differ"
    print(
        "| how | cases ready | 200 patches | peak RSS | private (RssAnon) at end | "
        "file pages (RssFile) at end |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for which, r in rows.items():
        print(
            f"| {which} | {r['seconds']:.1f} s | {r['sampling_seconds']:.2f} s | "
            f"{r['peak_rss_mb']:.0f} MB | {r['RssAnon']:.0f} MB | {r['RssFile']:.0f} MB |"
        )
    base, warm = rows["baseline"], rows["later rounds"]
    print(
        f"ratio baseline / ours (later rounds): time {base['seconds'] / warm['seconds']:.1f}x, "
        f"private memory {base['RssAnon'] / warm['RssAnon']:.1f}x; first round costs "
        f"{rows['first round']['seconds'] / base['seconds']:.2f}x the baseline"
    )


if __name__ == "__main__":
    main()
