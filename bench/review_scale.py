"""Benchmark: the lead's review list on an AbdomenAtlas-scale project (20,000 cases).

The project is ``bench/project_scale.py``'s (cases that all reference one 4 x 8 x 8 NIfTI,
so reading images and labels is not what is measured), with each of 4 annotators working on
``--worked`` of the cases (default a quarter: about 2,800 cases end up double read) and the
lead's finals and reopens. Before the timing, every double-read case is compared once with
this checkout (the metrics the project keeps, as after any first review), so both sides
time the steady state: what the lead waits for each time the list is ranked again.

Each side runs in a fresh child process on the same project (read only, except the
Finalize, which runs once on a copy):

* **ours**: this checkout;
* **baseline**: the package as of ``--baseline-ref`` (extracted with ``git archive`` and
  put first on ``PYTHONPATH``), by default bebee86, the commit before the review index.

Timed (best of ``--repeat``): ``review_project(project, distances=False)`` (the ranking;
``atlas-annotate review`` does the same with HD95), ``uncompared_cases`` (what the dock
asks first), opening the review dock on the project (the list) and its
``refresh_cases()`` (what each *Finalize* and *Reopen* runs again); and once, on a copy,
the dock's *Finalize* of its first listed case (store, rank again, show the case). Each
child prints a digest of the ranking, the dock's list and the list after the Finalize;
the benchmark says whether ours and the baseline's agree.

Run: ``xvfb-run -a python bench/review_scale.py [--cases 20000] [--worked 0.25]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from baseline import baseline_code, best_of, child_env, head_commit, run_child
from project_scale import make_project, project_arguments

BASELINE_REF = "bebee86"


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def compare_all(folder: Path) -> int:
    """Compare every double-read case once (metrics kept, as after a first review)."""
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.review.cases import review_project

    with Project(folder) as project:
        reviews, _ = review_project(project, distances=False)
    return len(reviews)


def child(folder: str, repeat: int) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_atlas_annotate._qt.review import ReviewDock
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.review.cases import review_project, uncompared_cases

    times, digests = {}, {}
    with Project(folder) as project:
        times["review_project"], (reviews, skipped) = best_of(
            lambda: review_project(project, distances=False), repeat
        )
        digests["ranking"] = _digest([[r.to_dict() for r in reviews], [s["id"] for s in skipped]])
        times["uncompared_cases"], todo = best_of(lambda: uncompared_cases(project), repeat)
        digests["uncompared"] = _digest(todo)

    viewer = napari.Viewer(show=False)
    docks = []

    def open_dock():
        dock = ReviewDock(viewer)
        dock.lead_edit.setText("lead")
        dock.open_project(folder)
        docks.append(dock)
        return dock

    def rows(dock) -> list[str]:
        return [dock.case_list.item(i).text() for i in range(dock.case_list.count())]

    times["dock_open"], dock = best_of(open_dock, repeat)
    times["dock_refresh"], _ = best_of(dock.refresh_cases, repeat)
    digests["dock"] = _digest(rows(dock))
    with tempfile.TemporaryDirectory(prefix="review_scale-finalize-") as tmp:
        copy = Path(tmp) / "project"  # a Finalize writes: on a copy, once
        shutil.copytree(folder, copy)
        lead = ReviewDock(viewer)
        lead.lead_edit.setText("lead")
        lead.open_project(copy)
        docks.append(lead)
        first = lead.case_ids()[0]
        lead.load_case(first)
        while lead.task.running:  # nothing should run in the background here
            QApplication.processEvents()
            time.sleep(0.01)
        t0 = time.perf_counter()
        version = lead.finalize()
        times["dock_finalize"] = time.perf_counter() - t0
        digests["dock_finalize"] = _digest([rows(lead), first, version is not None])
    result = {"times": times, "digests": digests, "rows": len(rows(dock))}
    for d in docks:
        d.close_case()
    viewer.close()
    print("RESULT " + json.dumps(result))


def _run(folder: Path, code: Path | None, repeat: int) -> dict:
    argv = [sys.executable, __file__, "--child", str(folder), "--repeat", str(repeat)]
    return run_child(argv, child_env(code))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    project_arguments(parser, worked=0.25)
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--child", metavar="PROJECT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return

    with tempfile.TemporaryDirectory(prefix="review_scale-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        made = make_project(
            tmp / "project", args.cases, args.annotators, args.worked, args.strokes, args.seed
        )
        compared = compare_all(tmp / "project")
        print(
            f"project: {made['cases']} cases, {compared} double read, {args.annotators} "
            f"annotators + 1 lead, {made['versions']} versions, {made['reopened']} finals "
            f"reopened (made and compared in {time.perf_counter() - t0:.1f} s)"
        )
        ours = _run(tmp / "project", None, args.repeat)
        code = baseline_code(args.baseline_ref, tmp / "baseline")
        base = _run(tmp / "project", code, args.repeat)
    print(
        f"best of {args.repeat} (Finalize: once), seconds; ours = {head_commit()}, "
        f"baseline = {args.baseline_ref}"
    )
    print(f"{'':<18}{'ours':>8}{'baseline':>10}{'ratio':>8}")
    for key, t in ours["times"].items():
        b = base["times"][key]
        print(f"{key:<18}{t:>8.3f}{b:>10.3f}{b / t:>7.1f}x")
    print(f"dock: {ours['rows']} rows")
    same = [k for k in ours["digests"] if ours["digests"][k] == base["digests"][k]]
    differ = [k for k in ours["digests"] if k not in same]
    print("same results as the baseline: " + (", ".join(same) or "none"))
    if differ:
        print("DIFFERENT from the baseline: " + ", ".join(differ))


if __name__ == "__main__":
    main()
