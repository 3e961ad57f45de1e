"""Benchmark: opening the next lumbar study in the lead's review dock (spine project).

The dataset: ``--studies`` phantom lumbar MRI studies written as DICOM by the package's
phantom writer (three series each, the same descriptions in every study; with
``--axial-stacks`` the Axial T2 is five angled stacks, seven image layers a study), added
to a spine project, each read by three readers (alice: the phantom's grades and points;
bob and cy: a grade higher and a point 4 mm off on three cells of their own each), as the
review dock needs two readers or more.

Each code version runs in a fresh child process under ``xvfb-run`` (a headless napari
viewer, ``napari.Viewer(show=False)``) on its own copy of the project: the review dock
(``ReviewDock``) opens the project and the first study of its list (most disputed first),
then opening the next study of the list (``load_case``, what a click on it does) is timed
through the whole list, ``--rounds`` times (back to the first study, untimed, between
rounds); the versions take turns ``--repeat`` times and the best mean per open is reported
(the machine may be shared).

Code versions: **ours** (this checkout) and **baseline**, the package as of
``--baseline-ref`` (default ``346fca5``, just before the review dock showed the next study
in the open study's layers; it removed every image and Points layer and added the next
study's), extracted with ``git archive`` and put first on ``PYTHONPATH``. The bench checks
that both showed the same thing after every open: the case, the layers (name, kind,
visibility, a digest of the data, affine, contrast limits), each Points layer's points
(rounded to 0.01) and features, the table's rows and the series shown. It also counts the
opens that show the slice of the first row's point: the baseline's slider could move off it
(fixed with the reuse), so the slider is counted, not compared.

Run: ``xvfb-run -a python bench/review_dock_next.py [--studies 4] [--rounds 2]``.
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

from baseline import (
    child_env,
    code_versions,
    interleaved,
    print_seconds_per_action,
    run_child,
    session_on_copy,
)

READERS = ("alice", "bob", "cy")


# -- the dataset (a child with this checkout's package) ------------------------------------
def make_dataset(root: Path, studies: int, seed: int, axial_stacks: bool) -> None:
    """``studies`` phantom lumbar studies (DICOM) in a spine project, three readers each."""
    from napari_atlas_annotate.grade_sheet import GradeSheet, LevelPoint
    from napari_atlas_annotate.phantoms import write_phantoms
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.project.importing import read_grade_sheet
    from napari_atlas_annotate.project.sources import cases_from_path
    from napari_atlas_annotate.spine_grades import GRADES, LEVELS

    manifest = write_phantoms(
        root / "phantoms", 0, studies, seed, "dicom", axial_stacks=LEVELS if axial_stacks else ()
    )
    entries = {e["id"]: e for e in json.loads(manifest.read_text())["cases"]}
    with Project.create(root / "project", task="spine") as project:
        for case in cases_from_path(manifest, "spine"):
            project.add_case(case.id, case.images, truth=case.truth, source=case.source)
            e, at = entries[case.id], manifest.parent
            truth = read_grade_sheet(at / e["grades"], e["study_id"], at / e["points"])
            for k, who in enumerate(READERS):
                sheet = GradeSheet.from_dict(truth.to_dict())
                for cell in sorted(sheet.points)[3 * k : 3 * k + 3] if k else ():
                    sheet.set_grade(*cell, GRADES[(GRADES.index(sheet.grade(*cell)) + 1) % 3])
                    p = sheet.points[cell]
                    sheet.points[cell] = LevelPoint(p.series, p.instance, p.x + 4, p.y - 4)
                project.save_grades_version(case.id, sheet, kind="imported", annotator=who)


# -- the session (child process) -----------------------------------------------------------
def _shown(viewer, dock) -> dict:
    """What the viewer and the dock show: to compare the versions after each open."""
    import numpy as np

    layers = []
    for layer in viewer.layers:
        data = np.ascontiguousarray(layer.data)
        entry = [
            layer.name,
            layer._type_string,
            bool(layer.visible),
            hashlib.sha256(data.tobytes()).hexdigest()[:12],
            np.round(layer.affine.affine_matrix, 6).tolist(),
        ]
        if layer._type_string == "image":
            entry.append([float(c) for c in layer.contrast_limits])
        else:
            entry.append(np.round(np.asarray(layer.data), 2).tolist())
            entry.append({k: [str(x) for x in v] for k, v in layer.features.items()})
        layers.append(entry)
    table = dock.table
    rows = [
        [table.item(r, c).text() if table.item(r, c) else "" for c in (0, 2, 3, 4)]
        for r in range(table.rowCount())
    ]
    shown = dock.shown_series
    return {
        "case": dock.review.case_id,
        "layers": layers,
        "rows": rows,
        "series": shown.description if shown is not None else None,
    }


def _on_point_slice(dock) -> bool:
    """Whether the slice shown is the one the first row's point is on."""
    series, rows = dock.shown_series, dock.cell_rows()
    cell = next(c for c in dock.cells if c.key == rows[0])
    point = cell.focus_point()
    if series is None or point is None or point.instance not in series.numbers:
        return True  # nothing to check
    index = series.layer._data_slice.point[series.slice_world_axis()]
    return series.numbers[round(float(index))] == point.instance


def _session(folder: str, rounds: int) -> dict:
    import warnings

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_atlas_annotate._qt.review import ReviewDock

    warnings.filterwarnings("ignore", "Non-orthogonal slicing")  # angled stacks
    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=False)
    dock = ReviewDock(viewer, folder, lead="lead")
    app.processEvents()
    ids = dock.case_ids()
    seconds, cpu, seen, on_slice = [], [], [], 0
    for _ in range(rounds):
        if not dock.load_case(ids[0]):
            raise RuntimeError(dock.last_error)
        app.processEvents()
        for case_id in ids[1:]:
            start, start_cpu = time.perf_counter(), time.process_time()
            if not dock.load_case(case_id):
                raise RuntimeError(dock.last_error)
            app.processEvents()
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            seen.append(_shown(viewer, dock))
            on_slice += _on_point_slice(dock)
    viewer.close()
    return {"seconds": seconds, "cpu": cpu, "seen": seen, "on_slice": on_slice, "ids": ids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--axial-stacks", action="store_true", help="Axial T2 as 5 stacks")
    parser.add_argument("--rounds", type=int, default=2, help="passes through the list")
    parser.add_argument("--repeat", type=int, default=2, help="sessions per version (best)")
    parser.add_argument("--baseline-ref", default="346fca5", help="git ref")
    parser.add_argument("--keep", help="folder to keep the data in (default: a temp folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--make", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(_session(args.child, args.rounds)))
        return
    if args.make:
        make_dataset(Path(args.make), args.studies, args.seed, args.axial_stacks)
        print("RESULT {}")
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="review_dock_next_"))
    work.mkdir(parents=True, exist_ok=True)
    series = "Axial T2 as 5 angled stacks, 7 image layers" if args.axial_stacks else "3 series"
    try:
        start = time.perf_counter()
        if not (work / "data" / "project").is_dir():
            shutil.rmtree(work / "data", ignore_errors=True)
            argv = [sys.executable, __file__, "--make", str(work / "data")]
            argv += ["--studies", str(args.studies), "--seed", str(args.seed)]
            run_child(argv + ["--axial-stacks"] * args.axial_stacks, child_env(None), "dataset")
        print(
            f"dataset: {args.studies} phantom lumbar studies (DICOM, {series}) read by "
            f"{len(READERS)} readers each, ready in {time.perf_counter() - start:.0f} s"
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
            f"\nseconds per open of the next study ({n} opens a session: {args.rounds} "
            f"pass(es) through {args.studies} studies; best mean of {args.repeat} sessions); "
            "wall clock and this process's CPU time"
        )
        print_seconds_per_action(tries, args.baseline_ref)
        ours = tries["ours"][0]["seen"]
        same = all(r["seen"] == ours for found in tries.values() for r in found)
        sessions = sum(len(found) for found in tries.values())
        print(
            f"shown after every open ({sessions} sessions; layers, data, affines, contrast "
            f"limits, points, table, series): {'same' if same else 'DIFFERENT'}"
        )
        for name, found in tries.items():
            hits = found[0]["on_slice"]
            print(f"{name}: opens showing the slice of the first row's point: {hits}/{n}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
