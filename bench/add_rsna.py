"""Benchmark: ``atlas-annotate add PROJECT ROOT/train_images --labels rsna`` on an RSNA 2024
lumbar dataset folder laid out as Kaggle ships it, at a few hundred studies.

The dataset: ``--unique`` phantom lumbar studies (``write_phantoms``; half of them with an
Axial T2 of five angled stacks in one series, as many real studies have), their
SeriesDescription stripped from every header (Kaggle's files carry none: the names come
from ``train_series_descriptions.csv``), then copied under new study and series folder
names with their rows in the three CSVs (every DICOM UID rewritten and the last pixel of
each file changed, so each copy is a study of its own; it keeps its source's grid, the
worst case for the voxel comparison), until there are as many studies as the largest
``--studies``. Generating phantoms is not what is measured, so it is done once; each size
``N`` is a folder of hard links to the first ``N`` studies with the CSV rows of those
studies.

Each run is a fresh child process on a fresh spine project, calling the command line's
``main`` in-process and reporting its wall time and peak RSS (``VmHWM``):

* **ours, --labels rsna**: this checkout;
* **ours, no --labels**: the same add without importing the grades;
* **baseline, --labels rsna**: the package as of ``--baseline-ref`` (extracted with
  ``git archive`` and put first on ``PYTHONPATH``), the code before a change: by default
  a51a726, before ``add`` read an RSNA folder study by study (924f06a: before the
  speed-ups).

Both ``--labels`` runs must leave the same project and print the same: the child prints a
digest of every case (id, images: path, description, series, stack) and of every imported
grade sheet, and one of what the command printed (stdout and stderr), and the benchmark says
whether ours and the baseline's agree. ``--profile`` adds one profiled run of
ours (``--labels``, the largest size) and prints the top of cProfile.

``--plain`` lays the same studies out as a hospital export rather than Kaggle's files:
SeriesDescription kept in the headers, no CSVs, so ``add`` cannot read the folder study by
study (that needs the RSNA layout) and scans it whole; ours and the baseline are then both
run without ``--labels`` (nothing to import), e.g. against 47127f5, before such a scan kept
compact per-file records instead of every file's header.

Run: ``python bench/add_rsna.py [--studies 50 200] [--unique 8] [--baseline-ref a51a726]``
or ``python bench/add_rsna.py --plain --baseline-ref 47127f5``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import struct
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

#: pydicom's UID root, with which the phantoms' UIDs all begin (``generate_uid``).
UID_ROOT = b"1.2.826.0.1.3680043.8.498."
LEVELS = ("l1_l2", "l2_l3", "l3_l4", "l4_l5", "l5_s1")
CSV_NAMES = ("train_series_descriptions.csv", "train.csv", "train_label_coordinates.csv")


# -- the dataset ---------------------------------------------------------------------------
def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)


def _source_studies(folder: Path, unique: int, seed: int, strip: bool = True) -> Path:
    """``unique`` phantom studies in RSNA layout (half with angled axial stacks), without
    SeriesDescription in their headers (``strip``); returns the RSNA root (``spine/``)."""
    import pydicom

    from napari_atlas_annotate.phantoms import write_phantoms

    stacked = unique // 2
    parts = {"a": stacked, "b": unique - stacked}
    parts = {part: n for part, n in parts.items() if n}  # --unique 1: no stacked study
    for part, n in parts.items():
        stacks = LEVELS if part == "a" else ()
        write_phantoms(folder / part, 0, n, seed + (part == "b"), axial_stacks=stacks)
    root = folder / "spine"
    (root / "train_images").mkdir(parents=True)
    for name in CSV_NAMES:
        tables = [_read_csv(folder / part / "spine" / name) for part in parts]
        _write_csv(root / name, tables[0][0], [row for _, rows in tables for row in rows])
    for part in parts:
        for study in (folder / part / "spine" / "train_images").iterdir():
            study.rename(root / "train_images" / study.name)
    for f in (root / "train_images").rglob("*.dcm") if strip else ():
        ds = pydicom.dcmread(f)
        del ds.SeriesDescription  # as Kaggle's files: the series CSV names the series
        ds.save_as(f)
    return root


def _dataset(folder: Path, total: int, unique: int, seed: int, strip: bool = True) -> Path:
    """``total`` studies in RSNA layout: the source studies and copies of them under new
    study/series ids and DICOM UIDs, with their CSV rows."""
    source = _source_studies(folder / "source", unique, seed, strip)
    tables = {name: _read_csv(source / name) for name in CSV_NAMES}
    studies = sorted(p.name for p in (source / "train_images").iterdir())
    root = folder / "all"
    images = root / "train_images"
    images.mkdir(parents=True)
    rng = random.Random(seed)
    used = {int(s) for s in studies}
    out_rows: dict[str, list[dict]] = {name: [] for name in CSV_NAMES}
    order = []
    for j in range(total):
        study, copy = studies[j % len(studies)], j // len(studies)
        if copy == 0:
            new_study, series_map, root_uid = study, {}, UID_ROOT
        else:
            new_study = str(rng.randrange(10**8, 4 * 10**9))
            while int(new_study) in used:
                new_study = str(rng.randrange(10**8, 4 * 10**9))
            used.add(int(new_study))
            series_map = {
                s.name: str(rng.randrange(10**8, 4 * 10**9))
                for s in (source / "train_images" / study).iterdir()
            }
            root_uid = b"1.2.826.0.1.3680043.9.%03d." % (99 + copy)  # same length
        order.append(new_study)
        for series in (source / "train_images" / study).iterdir():
            dest = images / new_study / series_map.get(series.name, series.name)
            dest.mkdir(parents=True)
            for f in series.iterdir():
                data = f.read_bytes().replace(UID_ROOT, root_uid)
                if copy:  # other voxels (the last pixel), or it is the same image again
                    data = data[:-2] + struct.pack("<H", copy)
                (dest / f.name).write_bytes(data)
        for name, (_, rows) in tables.items():
            for row in rows:
                if row["study_id"] == study:
                    new = dict(row, study_id=new_study)
                    if "series_id" in new:
                        new["series_id"] = series_map.get(new["series_id"], new["series_id"])
                    out_rows[name].append(new)
    for name, (header, _) in tables.items():
        _write_csv(root / name, header, out_rows[name])
    (root / "order.json").write_text(json.dumps(order))
    return root


def _subset(full: Path, n: int, folder: Path, csvs: bool = True) -> Path:
    """An RSNA root holding the first ``n`` studies of ``full`` (hard links) and their rows
    (``csvs``; without them, the folder of a hospital's export)."""
    studies = json.loads((full / "order.json").read_text())[:n]
    keep = set(studies)
    for study in studies:
        for series in (full / "train_images" / study).iterdir():
            dest = folder / "train_images" / study / series.name
            dest.mkdir(parents=True)
            for f in series.iterdir():
                os.link(f, dest / f.name)
    for name in CSV_NAMES if csvs else ():
        header, rows = _read_csv(full / name)
        _write_csv(folder / name, header, [r for r in rows if r["study_id"] in keep])
    return folder


# -- the CSVs at full size -----------------------------------------------------------------
def _csv_cost(full: Path, folder: Path, studies: int = 1975, sample: int = 5) -> None:
    """What reading the grade CSVs costs ``add --labels`` at RSNA's size: ``studies``
    studies (the rows of ``full`` repeated under new study ids; 25 coordinate rows each,
    RSNA has 48,692 for 1,975). ``import_labels`` reads both CSVs for every study
    (``read_grade_sheet``); reading them once per add would cost one read."""
    from napari_atlas_annotate.project.importing import read_grade_sheet
    from napari_atlas_annotate.spine_grades import read_coordinates_csv, read_grades_csv

    folder.mkdir(parents=True)
    tables = {name: _read_csv(full / name) for name in CSV_NAMES[1:]}
    base = sorted({r["study_id"] for r in tables["train.csv"][1]})
    copies = [(f"{k}{b}", b) for k in range(1, studies // len(base) + 2) for b in base]
    ids = [new for new, _ in copies[:studies]]
    for name, (header, rows) in tables.items():
        by_study = {b: [r for r in rows if r["study_id"] == b] for b in base}
        out = [dict(r, study_id=new) for new, b in copies[:studies] for r in by_study[b]]
        _write_csv(folder / name, header, out)
    grades, points = folder / "train.csv", folder / "train_label_coordinates.csv"
    n_points = sum(1 for _ in open(points)) - 1
    start = time.perf_counter()
    for study in ids[:sample]:
        read_grade_sheet(grades, int(study), points)
    each = (time.perf_counter() - start) / sample
    start = time.perf_counter()
    read_grades_csv(grades), read_coordinates_csv(points)
    once = time.perf_counter() - start
    print(
        f"CSVs of {studies} studies ({n_points} coordinate rows): read per study as "
        f"import_labels does, {each:.3f} s a study = {each * studies:.0f} s per add; "
        f"read once, {once:.2f} s ({each * studies / once:.0f}x less)"
    )


# -- one measured run (child process) ------------------------------------------------------
def _child(args) -> None:
    argv = ["add", args.project, args.images] + (["--labels", "rsna"] if args.labels else [])
    result = timed_add(argv, args.project, "rsna", args.profile)
    print("RESULT " + json.dumps(result))


def _run(images: Path, project: Path, labels: bool, code: Path | None, profile: int = 0) -> dict:
    env = child_env(code)
    init_project(project, "spine", env)
    argv = [sys.executable, __file__, "--child", "--project", str(project), "--images", str(images)]
    argv += (["--labels"] if labels else []) + (["--profile", str(profile)] if profile else [])
    result = run_child(argv, env)
    if code is not None:
        result["package"] = str(code)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--unique", type=int, default=8, help="phantom studies generated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline-ref", default="a51a726", help="git ref of the baseline ('' for none)"
    )
    parser.add_argument("--profile", type=int, default=0, help="print the top N of cProfile")
    parser.add_argument("--keep", help="folder to keep the data in (default: a temp folder)")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="a hospital's layout: descriptions in the headers, no CSVs, no --labels",
    )
    # child mode
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    parser.add_argument("--labels", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="add_rsna_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        full = _dataset(work / "data", max(args.studies), args.unique, args.seed, not args.plain)
        files = sum(1 for _ in (full / "train_images").rglob("*.dcm"))
        print(
            f"dataset: {max(args.studies)} studies, {files} DICOM files "
            f"({files / max(args.studies):.0f} per study; {args.unique} phantoms, "
            f"{args.unique // 2} with five angled axial stacks), made in "
            f"{time.perf_counter() - start:.0f} s"
        )
        baseline = (
            baseline_code(args.baseline_ref, work / "baseline") if args.baseline_ref else None
        )
        if not args.plain:
            _csv_cost(full, work / "csv")
        labels = not args.plain
        lab = "--labels" if labels else "no --labels"
        rows = []
        for n in args.studies:
            root = _subset(full, n, work / f"n{n}", csvs=labels)
            runs = {f"ours, {lab}": _run(root / "train_images", work / f"p{n}_ours", labels, None)}
            if labels:
                runs["ours, no --labels"] = _run(
                    root / "train_images", work / f"p{n}_nolab", False, None
                )
            if baseline is not None:
                runs[f"baseline, {lab}"] = _run(
                    root / "train_images", work / f"p{n}_base", labels, baseline
                )
            for name, r in runs.items():
                print(
                    f"N={n:4d} {name:20s} {r['seconds']:7.1f} s  {r['seconds'] / n:6.3f} s/study  "
                    f"peak {r['peak_rss_mb']:6.0f} MB  added {r['added']}  digest {r['digest']}"
                )
                if r["code"] or r["added"] != n:
                    print("   ", "\n    ".join(r["summary"]))
            rows.append((n, runs))
            if baseline is not None:
                ours, base = runs[f"ours, {lab}"], runs[f"baseline, {lab}"]
                same = "same" if ours["digest"] == base["digest"] else "DIFFERENT"
                said = "same" if ours["output"] == base["output"] else "DIFFERENT"
                print(
                    f"N={n:4d} ratio baseline / ours ({lab}): "
                    f"{base['seconds'] / ours['seconds']:.2f}x; peak RSS "
                    f"{base['peak_rss_mb'] / ours['peak_rss_mb']:.2f}x; projects {same}, "
                    f"output {said}"
                )
        if args.profile:
            n = max(args.studies)
            images = work / f"n{n}" / "train_images"
            r = _run(images, work / "p_profile", labels, None, args.profile)
            print(f"\ncProfile, ours {lab}, N={n} ({r['seconds']:.1f} s under the profiler):")
            print(r["profile"])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
