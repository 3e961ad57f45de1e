"""Benchmark: an AbdomenAtlas-scale organ project (20,000 cases, several annotators) as the
annotation lead and the annotators see it: ``Project.status()``, ``atlas-annotate status``,
the queue, the annotator dock's open and its case-list refresh.

The project (made once, in a few seconds): ``--cases`` cases that all reference one tiny
NIfTI image (4 x 8 x 8 voxels: reading images is not what is measured), 60 % of them with
an uncertainty; a proposal on 80 % (a second, newer proposal on 10 %); ``--annotators``
annotators and one lead. Each annotator works on ``--worked`` of the cases: a third only
edited (unsubmitted strokes, on the proposal or on a blank label), a third submitted, a
third submitted and then edited again; one in ten of their worked cases is an imported
label instead. The lead finalizes 2 % of the cases and reopens a quarter of those. Cases
are added with one ``INSERT`` per row through the project's own connection (the rows
``Project.add_case`` writes: the first case is added with it and the rest copy its stored
form); versions reference one label file written by ``save_mask_version``; events are
rows as ``log_event`` writes them (``--strokes`` - 2 to + 3 per editing session, 3 to 8 by
default; no voxel diff).

Each side runs in a fresh child process on the same project, read only:

* **ours**: this checkout;
* **baseline**: the package as of ``--baseline-ref`` (extracted with ``git archive`` and
  put first on ``PYTHONPATH``), by default 29bab9a, the commit before the status and dock
  speed-ups.

Timed (best of ``--repeat``): ``Project.status()``, ``atlas-annotate status PROJECT``
(the command line's ``main`` in-process, output captured), ``Project.queue()``,
``queue(include_final=False)``, opening the annotator dock as the first annotator (it
lists every case with their state and opens their first case to do) and
``refresh_cases()`` (what the dock does after each submit), and once, on a copy of the
project, ``submit()`` of the case it opened (store the version, list the cases again,
open the next case to do). The dock runs in a napari
viewer that is not shown (use ``xvfb-run -a`` without a display). Each child prints a
digest of what it returned (the status dict, the command's output, both queues, the
dock's list and the case it opened); the benchmark says whether ours and the baseline's
agree. ``--profile N`` prints the top ``N`` of cProfile for one status and one dock open
of ours.

Run: ``xvfb-run -a python bench/project_scale.py [--cases 20000] [--annotators 4]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from baseline import baseline_code, best_of, child_env, run_child

BASELINE_REF = "29bab9a"
TOOLS = ("paint", "paint", "erase", "fill", "interpolate")


# -- the project ---------------------------------------------------------------------------
def make_project(
    folder: Path, n_cases: int, n_annotators: int, worked: float, strokes: int, seed: int
):
    """Write the benchmark project into ``folder`` (see the module docstring)."""
    import numpy as np

    from napari_atlas_annotate.io import save_nifti
    from napari_atlas_annotate.project import ImageRef, Project
    from napari_atlas_annotate.project.database import transaction
    from napari_atlas_annotate.volume import Volume

    rng = random.Random(seed)
    image_path = folder.parent / "tiny.nii.gz"
    save_nifti(Volume(np.zeros((4, 8, 8), np.int16), np.eye(4)), image_path)
    project = Project.create(folder, task="organs", classes=["liver", "spleen"])
    names = [f"reader{i + 1}" for i in range(n_annotators)]
    for name in names:
        project.ensure_annotator(name)
    project.ensure_annotator("lead", role="lead")
    ids = [f"case{i:05d}" for i in range(n_cases)]
    project.add_case(ids[0], [ImageRef(str(image_path), "CT")])
    proposal = project.save_mask_version(
        ids[0], np.zeros((4, 8, 8), np.uint8), kind="proposal", model_version="m1"
    )
    db = project._db
    first = db.execute("SELECT * FROM cases WHERE id = ?", (ids[0],)).fetchone()
    now = time.time()
    version_rows: list[tuple] = []  # (case, annotator, kind, last_event_id)
    event_rows: list[tuple] = []  # (case, annotator, base_version_id, tool, seconds)
    next_version = proposal.id + 1
    next_event = 1
    proposals: dict[str, int] = {ids[0]: proposal.id}

    def add_version(case_id, annotator, kind, last_event_id=None) -> int:
        nonlocal next_version
        version_rows.append((next_version, case_id, annotator, kind, last_event_id))
        next_version += 1
        return next_version - 1

    def add_events(case_id, annotator, base_id) -> int:
        nonlocal next_event
        for _ in range(rng.randint(max(1, strokes - 2), strokes + 3)):
            event_rows.append(
                (next_event, case_id, annotator, base_id, rng.choice(TOOLS), rng.uniform(2, 40))
            )
            next_event += 1
        return next_event - 1

    for case_id in ids[1:]:
        if rng.random() < 0.8:
            proposals[case_id] = add_version(case_id, None, "proposal")
            if rng.random() < 0.125:
                proposals[case_id] = add_version(case_id, None, "proposal")
    for name in names:
        for case_id in rng.sample(ids, int(worked * n_cases)):
            base = proposals.get(case_id)
            if rng.random() < 0.1:
                add_version(case_id, name, "imported")
                continue
            if rng.random() < 0.2:
                base = None  # strokes on a blank label
            kind = rng.randrange(3)
            last = add_events(case_id, name, base)
            if kind == 0:
                continue  # in progress
            own = add_version(case_id, name, "corrected", last)
            if kind == 2:
                add_events(case_id, name, own)  # edited again after submitting
    finals = rng.sample(ids, n_cases // 50)
    for case_id in finals:
        add_version(case_id, "lead", "final")
    reopened = [
        (case_id, v)
        for v, case_id, annotator, kind, _ in version_rows
        if kind == "final" and rng.random() < 0.25
    ]
    with transaction(db):
        db.executemany(
            "INSERT INTO cases(id, task, images, truth, source, added_at, position, uncertainty)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    case_id,
                    first["task"],
                    first["images"],
                    first["truth"],
                    first["source"],
                    now,
                    i,
                    round(rng.random(), 4) if rng.random() < 0.6 else None,
                )
                for i, case_id in enumerate(ids)
                if i
            ],
        )
        db.executemany(
            "INSERT INTO versions(id, case_id, annotator, kind, content, path, sha256,"
            " model_version, parent_id, last_event_id, created_at, note)"
            " VALUES (?, ?, ?, ?, 'mask', ?, ?, ?, NULL, ?, ?, NULL)",
            [
                (
                    v,
                    case_id,
                    annotator,
                    kind,
                    proposal.path,
                    proposal.sha256,
                    "m1" if kind == "proposal" else None,
                    last,
                    now,
                )
                for v, case_id, annotator, kind, last in version_rows
            ],
        )
        db.executemany(
            "INSERT INTO events(id, case_id, annotator, base_version_id, t, tool, class_id,"
            " n_changed, active_seconds) VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?)",
            [(e, c, a, b, now, tool, s) for e, c, a, b, tool, s in event_rows],
        )
        db.executemany(
            "INSERT INTO audit(case_id, actor, action, detail, t)"
            " VALUES (?, 'lead', 'reopen', ?, ?)",
            [(case_id, json.dumps({"final_version": v}), now) for case_id, v in reopened],
        )
    project.close()
    return {
        "cases": n_cases,
        "versions": len(version_rows) + 1,
        "events": len(event_rows),
        "reopened": len(reopened),
    }


def project_arguments(parser: argparse.ArgumentParser, worked: float) -> None:
    """The options of :func:`make_project` (and ``--repeat``), ``worked`` by default."""
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--annotators", type=int, default=4)
    parser.add_argument("--worked", type=float, default=worked, help="share each annotator works")
    parser.add_argument("--strokes", type=int, default=5, help="mean strokes per session")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)


# -- one side, in a child process ------------------------------------------------------------
def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def child(folder: str, repeat: int, profile: int) -> None:
    from napari_atlas_annotate import cli
    from napari_atlas_annotate.project import Project

    times, digests = {}, {}
    project = Project(folder)
    times["status"], status = best_of(project.status, repeat)
    digests["status"] = _digest({**status, "project": None})

    def command() -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cli.main(["status", folder])
        return out.getvalue()

    times["cli_status"], text = best_of(command, repeat)
    digests["cli_status"] = _digest(text.replace(str(Path(folder).resolve()), "PROJECT"))
    times["queue"], queue = best_of(project.queue, repeat)
    digests["queue"] = _digest([c.id for c in queue])
    times["queue_todo"], todo = best_of(lambda: project.queue(include_final=False), repeat)
    digests["queue_todo"] = _digest([c.id for c in todo])
    project.close()

    import napari

    from napari_atlas_annotate._qt.annotator import AnnotatorDock

    viewer = napari.Viewer(show=False)
    docks = []

    def open_dock():
        dock = AnnotatorDock(viewer, folder, "reader1")
        docks.append(dock)
        return dock

    times["dock_open"], dock = best_of(open_dock, repeat)
    times["dock_refresh"], _ = best_of(dock.refresh_cases, repeat)
    items = [dock.case_list.item(i).text() for i in range(dock.case_list.count())]
    digests["dock"] = _digest([items, dock.case_id, dock.last_error])
    with tempfile.TemporaryDirectory(prefix="project_scale-submit-") as tmp:
        copy = Path(tmp) / "project"  # a submit writes: on a copy, once
        shutil.copytree(folder, copy)
        submitter = AnnotatorDock(viewer, copy, "reader1")
        docks.append(submitter)
        submitted = submitter.case_id
        t0 = time.perf_counter()
        submitter.submit()
        times["dock_submit"] = time.perf_counter() - t0
        rows = [submitter.case_list.item(i).text() for i in range(submitter.case_list.count())]
        digests["dock_submit"] = _digest([rows, submitted, submitter.case_id])
    result = {"times": times, "digests": digests, "opened": dock.case_id, "rows": len(items)}
    if profile:
        import cProfile
        import pstats

        text = io.StringIO()
        for name, fn in (("status", Project(folder).status), ("dock open", open_dock)):
            profiler = cProfile.Profile()
            profiler.enable()
            fn()
            profiler.disable()
            text.write(f"--- {name}\n")
            pstats.Stats(profiler, stream=text).strip_dirs().sort_stats("cumulative").print_stats(
                profile
            )
        result["profile"] = text.getvalue()
    for d in docks:
        d.close_case()
        d.project.close()
    viewer.close()
    print("RESULT " + json.dumps(result))


def _run(folder: Path, code: Path | None, repeat: int, profile: int = 0) -> dict:
    env = child_env(code)
    argv = [sys.executable, __file__, "--child", str(folder), "--repeat", str(repeat)]
    argv += ["--profile", str(profile)] if profile else []
    return run_child(argv, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    project_arguments(parser, worked=0.05)
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--profile", type=int, default=0, help="top N of cProfile (ours)")
    parser.add_argument("--child", metavar="PROJECT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat, args.profile)
        return

    with tempfile.TemporaryDirectory(prefix="project_scale-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        made = make_project(
            tmp / "project", args.cases, args.annotators, args.worked, args.strokes, args.seed
        )
        print(
            f"project: {made['cases']} cases, {args.annotators} annotators + 1 lead, "
            f"{made['versions']} versions, {made['events']} events, {made['reopened']} "
            f"finals reopened (made in {time.perf_counter() - t0:.1f} s)"
        )
        ours = _run(tmp / "project", None, args.repeat, args.profile)
        base = None
        if not args.no_baseline:
            code = baseline_code(args.baseline_ref, tmp / "baseline")
            base = _run(tmp / "project", code, args.repeat)
    print(f"best of {args.repeat}, seconds; baseline = {args.baseline_ref}")
    print(f"{'':<14}{'ours':>9}{'baseline':>10}{'ratio':>8}")
    for key, t in ours["times"].items():
        line = f"{key:<14}{t:>9.3f}"
        if base:
            b = base["times"][key]
            line += f"{b:>10.3f}{b / t:>7.1f}x"
        print(line)
    print(f"dock: {ours['rows']} rows, opened {ours['opened']}")
    if base:
        same = [k for k in ours["digests"] if ours["digests"][k] == base["digests"][k]]
        differ = [k for k in ours["digests"] if k not in same]
        print("same results as the baseline: " + (", ".join(same) or "none"))
        if differ:
            print("DIFFERENT from the baseline: " + ", ".join(differ))
    if ours.get("profile"):
        print(ours["profile"])


if __name__ == "__main__":
    main()
