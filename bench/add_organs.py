"""Benchmark: ``atlas-annotate add PROJECT PACS --labels pacs`` on an organ (CT) DICOM
dataset exported from a PACS, at a few hundred studies.

The dataset: ``--unique`` phantom CT series (``write_phantoms``, ``--shape``, default
(40, 96, 96)), each with a DICOM SEG of two organs (``build_segmentation``) in a folder of
its own beside it, laid out as ``PACS/<study>/ct/<instance>.dcm`` and
``PACS/<study>/seg/seg.dcm`` (the SEG finds its CT by referenced series, across folders),
then copied under new study folder names (every DICOM UID rewritten, SEG included, and
the last pixel of each CT file changed, so each copy is a study of its own) until there
are as many studies as the largest ``--studies``. Generating phantoms is not what is
measured, so it is done once; each size ``N`` is a folder of hard links to the first
``N`` studies.

Each run is a fresh child process on a fresh organs project, calling the command line's
``main`` in-process and reporting its wall time and peak RSS (``VmHWM``):

* **ours**: this checkout;
* **baseline**: the package as of ``--baseline-ref`` (extracted with ``git archive`` and
  put first on ``PYTHONPATH``), the code before a change: by default dc473e4, before
  ``add`` dropped the headers of an organ dataset's files after scanning them.

Both runs must leave the same project and print the same: the child prints a digest of
every case (id, images: path, description, series, stack) and of every imported mask,
and one of what the command printed (stdout and stderr), and the benchmark says whether
ours and the baseline's agree. ``--no-check`` adds the same without loading each image.
``--tracemalloc`` prints, for ours at the largest size, where the memory held at the
peak was allocated.

Run: ``python bench/add_organs.py [--studies 50 200] [--unique 4] [--baseline-ref dc473e4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baseline import (
    baseline_code,
    child_env,
    init_project,
    run_child,
    timed_add,
)

#: pydicom's UID root, with which the phantoms' and the SEGs' UIDs all begin.
UID_ROOT = b"1.2.826.0.1.3680043.8.498."


# -- the dataset ---------------------------------------------------------------------------
def _source_studies(folder: Path, unique: int, shape: tuple[int, int, int], seed: int) -> Path:
    """``unique`` phantom CT series, each with a SEG in a folder beside it."""
    import numpy as np

    from napari_atlas_annotate.export.dicom_seg import build_segmentation, write_segmentation
    from napari_atlas_annotate.io import load_volume
    from napari_atlas_annotate.phantoms import write_phantoms

    write_phantoms(folder / "phantoms", unique, 0, seed, "dicom", ct_shape=shape)
    pacs = folder / "pacs"
    for k, case in enumerate(sorted((folder / "phantoms" / "ct").iterdir())):
        study = pacs / f"study_{k:05d}"
        shutil.copytree(case / "dicom", study / "ct")
        image = load_volume(study / "ct")
        labels = np.zeros(image.shape, np.uint8)
        z, y, x = image.shape
        labels[z // 4 : z // 2, y // 4 : y // 2, x // 4 : x // 2] = 1
        labels[z // 2 : 3 * z // 4, y // 2 : 3 * y // 4, x // 2 : 3 * x // 4] = 2
        seg = build_segmentation(
            image.metadata["files"], labels, ["spleen", "liver"], "x", keep_identifiers=True
        )
        (study / "seg").mkdir()
        write_segmentation(seg, study / "seg" / "seg.dcm")
    return pacs


def _dataset(folder: Path, total: int, unique: int, shape, seed: int) -> Path:
    """``total`` studies: the source studies and copies of them under new UIDs."""
    source = _source_studies(folder / "source", unique, shape, seed)
    studies = sorted(source.iterdir())
    root = folder / "all"
    for j in range(total):
        study, copy = studies[j % len(studies)], j // len(studies)
        root_uid = UID_ROOT if copy == 0 else b"1.2.826.0.1.3680043.9.%03d." % (99 + copy)
        for f in study.rglob("*.dcm"):
            dest = root / f"study_{j:05d}" / f.relative_to(study)
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = f.read_bytes().replace(UID_ROOT, root_uid)
            if copy and f.parent.name == "ct":  # other voxels, or it is the same image again
                data = data[:-2] + struct.pack("<H", copy)
            dest.write_bytes(data)
    return root


def _subset(full: Path, n: int, folder: Path) -> Path:
    """A folder holding the first ``n`` studies of ``full`` (hard links)."""
    for study in sorted(full.iterdir())[:n]:
        for f in study.rglob("*.dcm"):
            dest = folder / study.name / f.relative_to(study)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(f, dest)
    return folder


# -- one measured run (child process) ------------------------------------------------------
def _child(args) -> None:
    argv = ["add", args.project, args.images, "--labels", "pacs"]
    argv += ["--no-check"] if args.no_check else []
    result = timed_add(argv, args.project, "pacs")
    print("RESULT " + json.dumps(result))


def _run(images: Path, project: Path, code: Path | None, no_check: bool) -> dict:
    env = child_env(code)
    init_project(project, "organs", env)
    argv = [sys.executable, __file__, "--child", "--project", str(project), "--images", str(images)]
    argv += ["--no-check"] if no_check else []
    return run_child(argv, env)


def _peak_at_scan(images: Path, code: Path | None) -> str:
    """Where the memory held at the peak of ``find_cases`` + a whole add was allocated:
    the top lines of a tracemalloc snapshot taken when the scan has given its first case."""
    script = (
        "import tracemalloc, sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "tracemalloc.start(8)\n"
        "from napari_atlas_annotate.project.sources import find_cases\n"
        f"found = find_cases([{str(images)!r}], 'organs', lazy=True)\n"
        "first = next(iter(found.cases))\n"
        "snap = tracemalloc.take_snapshot()\n"
        "cur, peak = tracemalloc.get_traced_memory()\n"
        "print(f'traced at the first case: {cur / 2**20:.1f} MB (peak {peak / 2**20:.1f} MB)')\n"
        "for stat in snap.statistics('lineno')[:8]:\n"
        "    print('  ', stat)\n"
    )
    env = child_env(code)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--unique", type=int, default=4, help="phantom studies generated")
    parser.add_argument("--shape", type=int, nargs=3, default=[40, 96, 96])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline-ref", default="dc473e4", help="git ref of the baseline ('' for none)"
    )
    parser.add_argument("--no-check", action="store_true", help="also time add --no-check")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="where the memory at the first case goes"
    )
    parser.add_argument("--keep", help="folder to keep the data in (default: a temp folder)")
    # child mode
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="add_organs_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        full = _dataset(work / "data", max(args.studies), args.unique, tuple(args.shape), args.seed)
        files = sum(1 for _ in full.rglob("*.dcm"))
        print(
            f"dataset: {max(args.studies)} CT studies of {tuple(args.shape)} with a DICOM SEG "
            f"each in a folder beside the series, {files} DICOM files ({args.unique} phantoms), "
            f"made in {time.perf_counter() - start:.0f} s"
        )
        baseline = (
            baseline_code(args.baseline_ref, work / "baseline") if args.baseline_ref else None
        )
        checks = [False, True] if args.no_check else [False]
        for n in args.studies:
            root = _subset(full, n, work / f"n{n}")
            for no_check in checks:
                flag = " --no-check" if no_check else ""
                tag = f"{n}{'_nc' if no_check else ''}"
                runs = {f"ours{flag}": _run(root, work / f"p{tag}_ours", None, no_check)}
                if baseline is not None:
                    runs[f"baseline{flag}"] = _run(root, work / f"p{tag}_base", baseline, no_check)
                for name, r in runs.items():
                    print(
                        f"N={n:4d} {name:21s} {r['seconds']:7.1f} s  {r['seconds'] / n:6.3f} "
                        f"s/study  peak {r['peak_rss_mb']:6.0f} MB  added {r['added']}  "
                        f"digest {r['digest']}"
                    )
                    if r["code"] or r["added"] != n:
                        print("   ", "\n    ".join(r["summary"]))
                if baseline is not None:
                    ours, base = runs[f"ours{flag}"], runs[f"baseline{flag}"]
                    same = "same" if ours["digest"] == base["digest"] else "DIFFERENT"
                    said = "same" if ours["output"] == base["output"] else "DIFFERENT"
                    print(
                        f"N={n:4d} ratio baseline / ours{flag}: time "
                        f"{base['seconds'] / ours['seconds']:.2f}x; peak RSS "
                        f"{base['peak_rss_mb'] / ours['peak_rss_mb']:.2f}x; projects {same}, "
                        f"output {said}"
                    )
        if args.tracemalloc:
            n = max(args.studies)
            print(f"\ntracemalloc, ours, N={n}:\n" + _peak_at_scan(work / f"n{n}", None))
            if baseline is not None:
                print(f"tracemalloc, baseline, N={n}:\n" + _peak_at_scan(work / f"n{n}", baseline))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
