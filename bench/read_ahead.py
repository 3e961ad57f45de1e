"""Benchmark: *Submit and next case* in the organ dock with the next CT read ahead.

The dataset: ``--cases`` phantom abdominal CTs at real size (``organ_dock``'s: phantoms at
75 x 128 x 128 upsampled to 300 x 512 x 512), each with a weak proposal, in one organ
project, saved as ``--format``:

* ``nifti``: ``.nii.gz`` files (AbdomenAtlas's format);
* ``dicom``: a folder of 300 uncompressed DICOM files per CT (the project's
  ``write_dicom_series``; Explicit VR Little Endian, int16 with a rescale), as hospital
  CT mostly arrives;
* ``dicom-j2k``: the same files compressed to JPEG 2000 lossless (``Dataset.compress``),
  whose decoding holds the GIL for about 30 ms a slice.

``--slices`` takes every n-th slice of the phantom (``--slices 2``: 150 x 512 x 512) where
a smaller dataset will do.

The session, in a fresh child process under ``xvfb-run`` with a headless napari viewer:
open the project (the dock shows the most uncertain case), then on each case one brush
stroke, ``--dwell`` seconds of the radiologist looking at it (Qt events processed; the
read ahead of the next case runs meanwhile), and *Submit and next case* (timed: store the
label, list the cases, open the next case). During each dwell a 5 ms Qt timer records the
longest gap between its ticks: how long the GUI thread was kept from painting.

Versions, taking turns ``--repeat`` times (best mean per action reported):

* **ours**: this checkout; the dock reads the next case (NIfTI file or DICOM series)
  while the open one is worked on (``io/prefetch.py``);
* **baseline: no read ahead**: the same code with ``ImagePrefetch.start`` made to read
  nothing, so every case is read when it is opened (what the dock did before).

Both sessions must store the same masks (sha256) and show the same images (checked);
each version's peak RSS is printed (the read ahead holds one more CT), and how many of
the cases opened came from the read ahead.

Run: ``xvfb-run -a python bench/read_ahead.py [--format nifti|dicom|dicom-j2k] [--cases 4]
[--dwell 3] [--repeat 2] [--slices 1]``.
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

from baseline import interleaved, peak_rss_mb, print_seconds_per_action, session_on_copy
from organ_dock import upsampled_phantom

ANNOTATOR = "dr_bench"


FORMATS = ("nifti", "dicom", "dicom-j2k")


def _jpeg2000(folder: Path) -> None:
    """Compress each file of a series to JPEG 2000 lossless, in place."""
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    for file in sorted(folder.iterdir()):
        ds = pydicom.dcmread(file)
        ds.compress(JPEG2000Lossless)
        ds.save_as(file)


def save_image(image, images: Path, case_id: str, fmt: str) -> Path:
    """``image`` under ``images`` as ``fmt`` (:data:`FORMATS`); the path to add."""
    from napari_atlas_annotate.io.dicom_writer import write_dicom_series
    from napari_atlas_annotate.io.nifti import save_nifti

    if fmt == "nifti":
        return save_nifti(image, images / f"{case_id}.nii.gz")
    folder = images / case_id
    write_dicom_series(
        image, folder, modality="CT", series_description="CT abdomen", patient_id=case_id,
        uid_seed=f"read-ahead-bench-{case_id}",
    )  # fmt: skip
    if fmt == "dicom-j2k":
        _jpeg2000(folder)
    return folder


def make_dataset(root: Path, cases: int, seed: int, fmt: str, slices: int) -> None:
    """``cases`` real-size CTs as ``fmt`` and a project ``root/project`` with a proposal
    each (every ``slices``-th slice)."""

    from napari_atlas_annotate.project import ImageRef, Project
    from napari_atlas_annotate.volume import Volume

    with Project.create(root / "project", task="organs") as project:
        for i in range(cases):
            image, labels = upsampled_phantom(seed + i)
            if slices > 1:
                affine = image.affine.copy()
                affine[:3, 0] *= slices
                array = image.array[::slices].copy()
                image, labels = Volume(array, affine, "CT", image.metadata), labels[::slices]
            case_id = f"ct{i:03d}"
            path = save_image(image, root / "images", case_id, fmt)
            project.add_case(case_id, [ImageRef(str(path), "CT")])
            proposal = labels.copy()
            proposal[:, : labels.shape[1] // 3] = 0  # the helper model missed a third
            project.save_mask_version(case_id, proposal, kind="proposal", model_version="m")
            project.set_uncertainty(case_id, 1.0 - i / cases)


def _session(project_folder: str, dwell: float, read_ahead: bool) -> dict:
    import napari
    import numpy as np
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_atlas_annotate._qt import annotator
    from napari_atlas_annotate.io.prefetch import ImagePrefetch

    if not read_ahead:
        ImagePrefetch.start = lambda self, *a, **k: False  # every case read when opened
    taken = [0]
    real_take = ImagePrefetch.take

    def take(self, *args, **kwargs):
        volume = real_take(self, *args, **kwargs)
        taken[0] += volume is not None
        return volume

    ImagePrefetch.take = take
    viewer = napari.Viewer(show=False)
    app = QApplication.instance()
    dock = annotator.add_annotator_dock(viewer, project_folder, ANNOTATOR)
    app.processEvents()
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps[-1] = max(gaps[-1], now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    seconds, cpu, images, stored = [], [], [], []
    while dock.case_id is not None:
        images.append(hashlib.sha256(np.ascontiguousarray(dock.volume.array)).hexdigest())
        dock.select_class(5)
        layer = dock.labels_layer
        z = layer.data.shape[0] // 2
        with layer.block_history():
            for x in range(200, 260, 6):
                layer.paint((z, 250, x), 5)
        gaps.append(0.0)
        last[0] = time.perf_counter()
        timer.start(5)
        end = time.perf_counter() + dwell
        while time.perf_counter() < end:  # the radiologist looks at the case
            app.processEvents()
            time.sleep(0.002)
        timer.stop()
        done = dock.case_id
        start, start_cpu = time.perf_counter(), time.process_time()
        version = dock.submit()
        app.processEvents()
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        stored.append(hashlib.sha256(dock.project.read_mask(version)).hexdigest())
        if dock.case_id == done:  # the last case: nothing left to open
            seconds.pop(), cpu.pop()
            break
    viewer.close()
    return {
        "seconds": seconds,
        "cpu": cpu,
        "gaps": gaps,
        "images": images,
        "stored": stored,
        "peak_rss_mb": peak_rss_mb(),
        "taken": taken[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=FORMATS, default="nifti")
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--slices", type=int, default=1, help="keep every n-th slice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dwell", type=float, default=3.0, help="seconds on each case")
    parser.add_argument("--repeat", type=int, default=2, help="sessions per version (best)")
    parser.add_argument("--keep", help="folder to keep the data in (default: a temp folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--no-read-ahead", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(_session(args.child, args.dwell, not args.no_read_ahead)))
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="read_ahead_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        if not (work / "data" / "project").is_dir():
            shutil.rmtree(work / "data", ignore_errors=True)
            make_dataset(work / "data", args.cases, args.seed, args.format, args.slices)
        files = [f for f in (work / "data" / "images").rglob("*") if f.is_file()]
        size = sum(f.stat().st_size for f in files) / 2**20
        depth = len(range(0, 300, args.slices))
        print(
            f"dataset: {args.cases} CTs of {depth}x512x512 as {args.format} ({len(files)} "
            f"files, {size:.0f} MB), ready in {time.perf_counter() - start:.0f} s; "
            f"{args.dwell:g} s on each case"
        )
        flags = {"ours": [], "baseline": ["--no-read-ahead"]}
        tries = interleaved(
            {"ours": None, "baseline": None},
            args.repeat,
            lambda name, code: session_on_copy(
                __file__, work, name, code, ["--dwell", str(args.dwell), *flags[name]]
            ),
        )
        n = len(tries["ours"][0]["seconds"])
        print(
            f"\nseconds per Submit and next case ({n} a session; best mean of {args.repeat} "
            "sessions); wall clock and this process's CPU time"
        )
        print_seconds_per_action(tries, "no read ahead")
        for name, found in tries.items():
            worst = max(max(r["gaps"]) for r in found) * 1000
            rss = min(r["peak_rss_mb"] for r in found)
            taken = min(r["taken"] for r in found)
            print(
                f"{name}: longest GUI-thread pause while on a case: {worst:.0f} ms; "
                f"peak RSS {rss:.0f} MB; cases opened from the read ahead: {taken} of {n}"
            )
        first = tries["ours"][0]
        same = all(
            r["images"] == first["images"] and r["stored"] == first["stored"]
            for found in tries.values()
            for r in found
        )
        print(f"images shown and masks stored, every session: {'same' if same else 'DIFFERENT'}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
