"""Benchmark: the review dock's ranking of a project's double-read CTs, opened twice.

An organ project of ``--cases`` real-size cases (300 x 512 x 512 phantom labels, one image
all cases reference: reading images is not what is measured), each read by alice (the
truth) and bob (the liver grown by 1-3 voxels, so the cases rank apart). The review dock
ranks every case read twice each time it opens (and after each Finalize or Reopen): what
it calls is timed, twice in a row, in a fresh child process per code version on its own
copy of the project.

* ours: ``review_project(project, distances=False)``: Dice only (HD95 when a case opens),
  counted from label pairs, kept in the project database per set of readers' versions;
* baseline (``--baseline-ref``, default 27acd03, the commit before this work):
  ``review_project(project)``, what its dock called: MONAI Dice and HD95 for every case,
  every time.

Both must rank the cases the same way with the same Dice (checked). Run: ``python
bench/review_rank.py [--cases 6] [--baseline-ref 27acd03]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import sys
import time
from pathlib import Path

from baseline import code_versions, head_commit, session_on_copy

DEFAULT_REF = "27acd03"


def make_project(work: Path, cases: int) -> None:
    """``work/data/project``: ``cases`` cases of one upsampled phantom, two readers each."""
    from organ_dock import upsampled_phantom
    from scipy import ndimage

    from napari_atlas_annotate.io.nifti import save_nifti
    from napari_atlas_annotate.project import ImageRef, Project

    folder = work / "data"
    if (folder / "project").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    image, labels = upsampled_phantom(0)
    path = save_nifti(image, folder / "ct.nii.gz")
    liver = labels == 5
    with Project.create(folder / "project", task="organs") as project:
        for i in range(cases):
            case_id = f"ct{i:03d}"
            project.add_case(case_id, [ImageRef(str(path), "CT")])
            bob = labels.copy()
            grown = ndimage.binary_dilation(liver, iterations=1 + i % 3)
            bob[grown & (labels == 0)] = 5
            project.save_mask_version(case_id, labels, kind="imported", annotator="alice")
            project.save_mask_version(case_id, bob, kind="imported", annotator="bob")
            print(f"case {case_id} stored", flush=True)


def child(project_folder: str) -> None:
    """Open the ranking twice, as the dock of this code version does; print RESULT."""
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.review.cases import review_project

    dock_call = {}
    if "distances" in inspect.signature(review_project).parameters:
        dock_call = {"distances": False}
    seconds, rankings = [], []
    with Project(project_folder) as project:
        for _ in range(2):
            t0 = time.perf_counter()
            reviews, _ = review_project(project, **dock_call)
            seconds.append(time.perf_counter() - t0)
            rankings.append([(r.case_id, r.masks.min_dice()) for r in reviews])
    print("RESULT " + json.dumps({"seconds": seconds, "ranking": rankings[-1]}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--baseline-ref", default=DEFAULT_REF)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_review_rank"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    make_project(args.work, args.cases)
    versions = code_versions(args.work, args.baseline_ref)
    found = {
        name: session_on_copy(__file__, args.work, name, code, [])
        for name, code in versions.items()
    }
    ours, base = found["ours"], found["baseline"]
    same = [c for c, _ in ours["ranking"]] == [c for c, _ in base["ranking"]] and all(
        abs(a[1] - b[1]) < 1e-6 for a, b in zip(ours["ranking"], base["ranking"], strict=True)
    )
    print(f"{args.cases} cases of 300x512x512, two readers each; seconds to rank them")
    print(f"{'':28s}{'first open (s)':>16s}{'second open (s)':>17s}")
    labels = {"ours": f"ours ({head_commit()})", "baseline": f"baseline ({args.baseline_ref})"}
    for name, result in found.items():
        first, second = result["seconds"]
        print(f"{labels[name]:28s}{first:16.2f}{second:17.4f}")
    (of, os_), (bf, bs) = ours["seconds"], base["seconds"]
    print(f"{'baseline / ours':28s}{bf / of:15.1f}x{bs / os_:16.0f}x")
    print(f"same ranking and Dice: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
