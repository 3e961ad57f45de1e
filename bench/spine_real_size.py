"""Benchmark: the lumbar (spine) workflow of a reader and a lead at real RSNA image sizes.

The dataset: ``--studies`` phantom lumbar studies (``make_spine_phantom``; every other
one with an Axial T2 of five angled stacks in one series, as many real studies have),
each series upsampled in-plane (``scipy.ndimage.zoom``, linear) to RSNA's sizes, 512 px
for the sagittals and 448 px for the axials (the phantoms are 128 and 96 px), the
affine's in-plane columns scaled so the physical extent stays the same and every
point's column/row scaled with them, written as DICOM in Kaggle's layout
(``train_images/<study>/<series>/<instance>.dcm`` and the three CSVs). That is 15 + 15
sagittal slices of 512 x 512 and 48 axial slices of 448 x 448, 78 files a study (real
studies have 15-20 sagittal slices of 384-640 px and 30-60 axial slices of 320-512 px,
about 150 files).

Each step is a fresh child process (``--threads``, default 1: OpenMP and torch), run on
each code version's own project, one after another:

* **add**: ``atlas-annotate add PROJECT ROOT/train_images --labels rsna``;
* **propose**: ``atlas-annotate propose PROJECT --device cpu --threads 1`` (the grader;
  its imports, torch and MONAI, done before the clock starts and reported apart);
* **open**: the grade sheet dock (``GradeSheetWidget``, under ``xvfb-run``) opening the
  first case; **next**: moving on to each following case (``load_case``); **submit**:
  Submit of each case after one grade change (all three per study);
* **export**: ``atlas-annotate export PROJECT --format rsna --status corrected``.

Code versions: **ours** (this checkout) and **baseline**, the package as of
``--baseline-ref`` (extracted with ``git archive`` and put first on ``PYTHONPATH``). The
benchmark checks that both give the same results: every proposal's grades, probabilities
(to 1e-6) and points (to 1e-4 px), the submitted sheets, and the exported CSVs.
``--profile STEP`` adds a profiled run of ours for that step and prints the top of
cProfile.

Run: ``xvfb-run -a python bench/spine_real_size.py [--studies 4] [--baseline-ref REF]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from baseline import baseline_code, child_env, init_project, profile_text, run_child

LEVELS = ("l1_l2", "l2_l3", "l3_l4", "l4_l5", "l5_s1")
#: In-plane size of each series at RSNA's sizes.
SIZES = {"Sagittal T1": 512, "Sagittal T2/STIR": 512, "Axial T2": 448}
STEPS = ("add", "propose", "open", "next", "cell", "submit", "export")
ANNOTATOR = "dr_bench"


# -- the dataset ---------------------------------------------------------------------------
def _upsampled(volume, size: int):
    """``volume`` zoomed in-plane to ``size`` x ``size`` (linear), same physical extent;
    returns it and the factor by which its column/row indices grow."""
    import numpy as np
    from scipy import ndimage

    from napari_atlas_annotate.volume import Volume

    _, ny, nx = volume.shape
    if ny != nx:
        raise ValueError(f"expected square slices, got {volume.shape}")
    array = ndimage.zoom(np.asarray(volume.array), (1, size / ny, size / nx), order=1)
    assert array.shape[1:] == (size, size), array.shape
    factor = (size - 1) / (ny - 1)  # zoom maps the corner pixels onto each other
    affine = np.array(volume.affine, float)
    affine[:3, 1:3] /= factor
    meta = dict(volume.metadata)
    return Volume(array.astype(volume.array.dtype), affine, volume.modality, meta), factor


def _write_study(root: Path, seed: int, stacked: bool) -> tuple:
    """One real-size study under ``root/train_images``; its CSV rows."""
    import dataclasses

    from napari_atlas_annotate.phantoms.spine import make_spine_phantom
    from napari_atlas_annotate.phantoms.writer import write_spine_study
    from napari_atlas_annotate.spine_grades import SERIES_DESCRIPTIONS

    case = make_spine_phantom(seed, axial_stacks=LEVELS if stacked else ())
    series, factors = {}, {}
    for key, volume in case.series.items():
        desc = volume.metadata["series_description"]
        series[key], factors[case.series_ids[desc]] = _upsampled(volume, SIZES[desc])
    points = [
        dataclasses.replace(p, x=p.x * factors[p.series_id], y=p.y * factors[p.series_id])
        for p in case.points
    ]
    big = dataclasses.replace(case, series=series, points=points)
    write_spine_study(big, root / "train_images", f"bench-real-size-{seed}")
    rows = [(case.study_id, case.series_ids[d], d) for d in SERIES_DESCRIPTIONS]
    return case.study_id, case.grades, points, rows


def make_dataset(root: Path, studies: int, seed: int) -> Path:
    """``studies`` real-size studies in Kaggle's layout under ``root``; returns
    ``root/train_images``."""
    from napari_atlas_annotate.phantoms.writer import case_seed
    from napari_atlas_annotate.spine_grades import (
        write_coordinates_csv,
        write_grades_csv,
        write_series_descriptions_csv,
    )

    grades, points, series = {}, [], []
    for i in range(studies):
        sid, g, p, s = _write_study(root, case_seed(seed, i, 2), stacked=i % 2 == 0)
        grades[sid] = g
        points += p
        series += s
    write_grades_csv(root / "train.csv", grades)
    write_coordinates_csv(root / "train_label_coordinates.csv", points)
    write_series_descriptions_csv(root / "train_series_descriptions.csv", series)
    return root / "train_images"


# -- one measured step (child process) -----------------------------------------------------
def _sheet_record(sheet) -> dict:
    return {
        "|".join(cell): {
            "grade": sheet.grades.get(cell),
            "probs": sheet.probabilities.get(cell),
            "point": (
                None
                if sheet.points.get(cell) is None
                else [
                    sheet.points[cell].series,
                    sheet.points[cell].instance,
                    sheet.points[cell].x,
                    sheet.points[cell].y,
                ]
            ),
        }
        for cell in sheet.cells()
    }


def _sheets(folder: str, kinds: tuple[str, ...]) -> dict:
    from napari_atlas_annotate.project import Project

    out = {}
    with Project(folder) as project:
        for case in sorted(project.cases(), key=lambda c: c.id):
            version = project.latest_version(case.id, kinds=kinds)
            if version is not None:
                out[case.id] = _sheet_record(project.read_grades(version))
    return out


def _cli(argv: list[str]) -> float:
    from napari_atlas_annotate.cli import main

    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(argv)
    seconds = time.perf_counter() - start
    if code:
        raise RuntimeError(f"{argv} exited {code}:\n{out.getvalue()[-3000:]}")
    return seconds


def _sheet_steps(folder: str, profiler) -> dict:
    """Open the first case in the grade sheet dock, then each next one; change one grade
    and Submit each. Seconds of each action."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_atlas_annotate._qt.grade_sheet import GradeSheetWidget
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.spine_grades import CONDITIONS, LEVELS

    with Project(folder) as project:
        ids = sorted(c.id for c in project.cases())
    viewer = napari.Viewer(show=False)
    widget = GradeSheetWidget(viewer, folder, ANNOTATOR)
    viewer.window.add_dock_widget(widget, area="right")
    app = QApplication.instance()
    times: dict[str, list[float]] = {"open": [], "next": [], "cell": [], "submit": []}
    for k, case_id in enumerate(ids):
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        ok = widget.load_case(case_id)
        app.processEvents()
        if profiler:
            profiler.disable()
        times["open" if k == 0 else "next"].append(time.perf_counter() - start)
        if not ok:
            raise RuntimeError(f"{case_id}: {widget.last_error}")
        start = time.perf_counter()  # a click on a cell: go to its point, cycle its grade
        row, col = CONDITIONS.index("spinal_canal_stenosis"), LEVELS.index("l4_l5")
        widget.go_to(CONDITIONS[row], LEVELS[col])
        widget._cell_clicked(row, col)
        app.processEvents()
        times["cell"].append(time.perf_counter() - start)
        start = time.perf_counter()
        widget.submit()
        app.processEvents()
        times["submit"].append(time.perf_counter() - start)
    widget.close_case()
    viewer.close()
    return times


def _child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    profiler = None
    if args.child_profile:
        import cProfile

        profiler = cProfile.Profile()
    project, step = args.project, args.child
    result: dict = {}
    if step == "sheet":
        result["times"] = _sheet_steps(project, profiler)
        result["sheets"] = _sheets(project, ("corrected",))
    else:
        argv = {
            "add": ["add", project, args.images, "--labels", "rsna"],
            "propose": ["propose", project, "--device", "cpu", "--threads", str(args.threads)],
            "export": ["export", project, "--format", "rsna", "--out", args.out]
            + ["--status", "corrected", "--keep-identifiers"],
        }[step]
        if step == "propose":  # the grader's imports (torch, MONAI): once per session
            start = time.perf_counter()
            import napari_atlas_annotate.models.spine_proposals  # noqa: F401

            result["import_seconds"] = time.perf_counter() - start
        if profiler:
            profiler.enable()
        result["seconds"] = _cli(argv)
        if profiler:
            profiler.disable()
        if step == "propose":
            result["sheets"] = _sheets(project, ("proposal",))
        if step == "export":
            h = hashlib.sha256()
            for f in sorted(Path(args.out).rglob("*.csv")):
                h.update(f.name.encode() + f.read_bytes())
            result["digest"] = h.hexdigest()[:16]
    if profiler:
        result["profile"] = profile_text(profiler, args.child_profile)
    print("RESULT " + json.dumps(result))


def _run(
    step: str, project: Path, images: Path, out: Path, code: Path | None, profile=0, threads=1
) -> dict:
    env = child_env(code, threads)
    argv = [sys.executable, __file__, "--child", step, "--project", str(project)]
    argv += ["--images", str(images), "--out", str(out), "--threads", str(threads)]
    argv += ["--child-profile", str(profile)] if profile else []
    return run_child(argv, env, f"child {step}")


def _pipeline(
    work: Path, images: Path, code: Path | None, name: str, profile: dict, threads: int = 1
) -> dict:
    """Every step on a fresh project with one code version; per step seconds and results."""
    project = work / f"project_{name}"
    init_project(project, "spine", child_env(code))
    out = work / f"export_{name}"
    runs = {}
    for step in ("add", "propose", "sheet", "export"):
        runs[step] = _run(step, project, images, out, code, profile.get(step, 0), threads)
    return runs


def _same_sheets(a: dict, b: dict) -> str:
    """'same' when both hold the same cases, grades and points, probabilities to 1e-6."""
    if a.keys() != b.keys():
        return f"DIFFERENT cases {sorted(a)} vs {sorted(b)}"
    worst_p = worst_xy = 0.0
    for case in a:
        for cell, x in a[case].items():
            y = b[case][cell]
            if x["grade"] != y["grade"]:
                return f"DIFFERENT grade {case} {cell}"
            if (x["probs"] is None) != (y["probs"] is None):
                return f"DIFFERENT probabilities {case} {cell}"
            if x["probs"]:
                pairs = zip(x["probs"], y["probs"], strict=True)
                worst_p = max(worst_p, *(abs(u - v) for u, v in pairs))
            if (x["point"] is None) != (y["point"] is None):
                return f"DIFFERENT point {case} {cell}"
            if x["point"]:
                if x["point"][:2] != y["point"][:2]:
                    return f"DIFFERENT point series/instance {case} {cell}"
                pairs = zip(x["point"][2:], y["point"][2:], strict=True)
                worst_xy = max(worst_xy, *(abs(u - v) for u, v in pairs))
    if worst_p > 1e-6 or worst_xy > 1e-4:
        return f"DIFFERENT (max |dp| {worst_p:.2g}, max |dxy| {worst_xy:.2g} px)"
    return f"same (max |dp| {worst_p:.1g}, max |dxy| {worst_xy:.1g} px)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads")
    parser.add_argument("--baseline-ref", default="395d8da", help="git ref ('' for none)")
    parser.add_argument(
        "--profile",
        nargs="*",
        default=[],
        choices=("add", "propose", "sheet", "export"),
        help="steps to profile (ours, in an extra run)",
    )
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--keep", help="folder to keep the data in (default: a temp folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="spine_real_size_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        images = work / "data" / "train_images"
        if not images.is_dir():
            images = make_dataset(work / "data", args.studies, args.seed)
        files = sum(1 for _ in images.rglob("*.dcm"))
        size = sum(f.stat().st_size for f in images.rglob("*.dcm")) / 2**20
        print(
            f"dataset: {args.studies} studies, {files} DICOM files ({size:.0f} MB; sagittals "
            f"512 px, axials 448 px; {(args.studies + 1) // 2} with five angled axial "
            f"stacks), made in {time.perf_counter() - start:.0f} s"
        )
        versions = {"ours": None}
        if args.baseline_ref:
            base = work / f"baseline_{args.baseline_ref}"
            versions["baseline"] = base if base.is_dir() else baseline_code(args.baseline_ref, base)
        results = {}
        for name, code in versions.items():
            shutil.rmtree(work / f"project_{name}", ignore_errors=True)
            shutil.rmtree(work / f"export_{name}", ignore_errors=True)
            results[name] = _pipeline(work, images, code, name, {}, args.threads)
        n = args.studies
        rows = []
        for name, runs in results.items():
            print(f"{name}: the grader's imports {runs['propose']['import_seconds']:.1f} s")
        for name, runs in results.items():
            t = runs["sheet"]["times"]
            rows.append(
                (
                    name,
                    {
                        "add": runs["add"]["seconds"] / n,
                        "propose": runs["propose"]["seconds"] / n,
                        "open": sum(t["open"]),
                        "next": sum(t["next"]) / max(1, len(t["next"])),
                        "cell": sum(t["cell"]) / len(t["cell"]),
                        "submit": sum(t["submit"]) / len(t["submit"]),
                        "export": runs["export"]["seconds"],
                    },
                )
            )
        print(f"\nseconds per study (open: the first case; export: the whole project, {n} studies)")
        print(f"{'':10s}" + "".join(f"{s:>10s}" for s in STEPS))
        for name, row in rows:
            print(f"{name:10s}" + "".join(f"{row[s]:10.3f}" for s in STEPS))
        if len(rows) == 2:
            (_, ours), (_, base) = rows
            ratios = [f"{base[s] / ours[s]:9.2f}x" if ours[s] else f"{'-':>10s}" for s in STEPS]
            print(f"{'base/ours':10s}" + "".join(ratios))  # '-': no time (one study: no next)
            o, b = results["ours"], results["baseline"]
            print("proposals:", _same_sheets(o["propose"]["sheets"], b["propose"]["sheets"]))
            print("submitted:", _same_sheets(o["sheet"]["sheets"], b["sheet"]["sheets"]))
            same = o["export"]["digest"] == b["export"]["digest"]
            print("export CSVs:", "same" if same else "DIFFERENT")
        for step in args.profile:
            shutil.rmtree(work / "project_profile", ignore_errors=True)
            shutil.rmtree(work / "export_profile", ignore_errors=True)
            runs = _pipeline(work, images, None, "profile", {step: args.profile_top})
            print(f"\ncProfile of ours, {step}:")
            print(runs[step]["profile"])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
