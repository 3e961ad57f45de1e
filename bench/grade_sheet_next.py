"""Benchmark: *Next* in the lumbar grade sheet (annotator dock, spine project).

The dataset: ``--studies`` phantom lumbar MRI studies written as DICOM by the package's
phantom writer (``atlas-annotate phantoms --mri N --ct 0 --format dicom``; three series
each, the same descriptions in every study), a spine project (``atlas-annotate init``)
they are added to (``atlas-annotate add PROJECT manifest.json``), and the helper grader's
proposals (``atlas-annotate propose``), so each sheet opens with grades and points.

Each code version runs in a fresh child process under ``xvfb-run`` (a headless napari
viewer, ``napari.Viewer(show=False)``) on its own copy of the project: the annotator dock
opens the project (``add_annotator_dock``), shows the first study of the queue, then
*Next* (``step_case(+1)``) is timed through the whole queue, ``--rounds`` times (back to
the first study, untimed, between rounds); the versions take turns ``--repeat`` times and
the best mean per Next is reported (the machine may be shared).

Code versions: **ours** (this checkout) and **baseline**, the package as of
``--baseline-ref`` (default ``a617681``, just before the grade sheet reused the layers of
a study with the same series), extracted with ``git archive`` and put first on
``PYTHONPATH``. The bench checks that both showed the same thing after every Next: the
case, the layers' names, the points of each Points layer (data rounded to 0.01 and
labels) and the sheet's grades.

Run: ``xvfb-run -a python bench/grade_sheet_next.py [--studies 4] [--rounds 3]``.
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

from baseline import (
    child_env,
    code_versions,
    interleaved,
    print_seconds_per_action,
    session_on_copy,
)

ANNOTATOR = "dr_bench"


# -- the dataset ---------------------------------------------------------------------------
def _cli(*argv: str) -> None:
    """``atlas-annotate ARGV`` with this checkout's package."""
    done = subprocess.run(
        [sys.executable, "-m", "napari_atlas_annotate.cli", *argv],
        capture_output=True,
        text=True,
        env=child_env(None, threads=2),
    )
    if done.returncode:
        raise RuntimeError(f"atlas-annotate {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")


def make_dataset(root: Path, studies: int, seed: int) -> Path:
    """``studies`` phantom lumbar studies (DICOM) in a spine project with proposals."""
    data, project = root / "phantoms", root / "project"
    _cli(
        "phantoms", "--out", str(data), "--ct", "0", "--mri", str(studies), "--seed", str(seed),
        "--format", "dicom",
    )  # fmt: skip
    _cli("init", str(project), "--task", "spine")
    _cli("add", str(project), str(data / "manifest.json"))
    _cli("propose", str(project))
    return project


# -- the session (child process) -----------------------------------------------------------
def _shown(viewer, dock) -> dict:
    """What the viewer and the sheet show: to compare the versions after each Next."""
    import numpy as np

    points = {}
    for layer in viewer.layers:
        if layer._type_string == "points":
            labels = list(layer.features["label"]) if "label" in layer.features else []
            points[layer.name] = [np.round(np.asarray(layer.data), 2).tolist(), labels]
    sheet = dock.grade_sheet.session.sheet
    return {
        "case": dock.case_id,
        "layers": [layer.name for layer in viewer.layers],
        "points": points,
        "grades": sorted(f"{k}={v}" for k, v in sheet.grades.items()),
    }


def _session(folder: str, rounds: int) -> dict:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_atlas_annotate._qt.annotator import add_annotator_dock

    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=False)
    dock = add_annotator_dock(viewer, folder, ANNOTATOR)
    app.processEvents()
    ids = dock.case_ids()
    seconds, cpu, seen = [], [], []
    for _ in range(rounds):
        if not dock.load_case(ids[0]):
            raise RuntimeError(dock.last_error)
        app.processEvents()
        seen.append(_shown(viewer, dock))
        for _ in ids[1:]:
            start, start_cpu = time.perf_counter(), time.process_time()
            dock.step_case(+1)
            app.processEvents()
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            seen.append(_shown(viewer, dock))
    errors = dock.last_error
    viewer.close()
    return {"seconds": seconds, "cpu": cpu, "seen": seen, "ids": ids, "last_error": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="passes through the queue")
    parser.add_argument("--repeat", type=int, default=2, help="sessions per version (best)")
    parser.add_argument("--baseline-ref", default="a617681", help="git ref")
    parser.add_argument("--keep", help="folder to keep the data in (default: a temp folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(_session(args.child, args.rounds)))
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="grade_sheet_next_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        if not (work / "data" / "project").is_dir():
            shutil.rmtree(work / "data", ignore_errors=True)
            make_dataset(work / "data", args.studies, args.seed)
        print(
            f"dataset: {args.studies} phantom lumbar studies (DICOM, 3 series each) with "
            f"proposals, ready in {time.perf_counter() - start:.0f} s"
        )
        versions = code_versions(work, args.baseline_ref)
        tries = interleaved(
            versions,
            args.repeat,
            lambda name, code: session_on_copy(
                __file__, work, name, code, ["--rounds", str(args.rounds)]
            ),
        )
        n = len(tries["ours"][0]["seconds"])
        print(
            f"\nseconds per Next ({n} Nexts a session: {args.rounds} pass(es) through "
            f"{args.studies} studies; best mean of {args.repeat} sessions); wall clock and "
            "this process's CPU time"
        )
        print_seconds_per_action(tries, args.baseline_ref)
        ours = tries["ours"][0]["seen"]
        same = all(r["seen"] == ours for found in tries.values() for r in found)
        sessions = sum(len(found) for found in tries.values())
        print(f"shown after every Next ({sessions} sessions): {'same' if same else 'DIFFERENT'}")
        points = sum(len(p[0]) for s in ours for p in s["points"].values())
        print(f"points shown over the Nexts of a session: {points}")
        for name, found in tries.items():
            for r in found:
                if r["last_error"]:
                    print(f"{name}: last error: {r['last_error']}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
