"""Edit-log cost per brush stroke, next to napari's own paint, and log size next to snapshots.

Baseline: napari's ``Labels.paint`` of one brush dab (what the user waits for anyway) on a
300x512x512 uint8 label volume, and a full snapshot of that volume (``np.save`` and
gzipped NIfTI) per stroke, which is what "save the label after every edit" would cost.
Ours: the edit hook's work per stroke (box diff + one SQLite WAL commit through
``Project.log_event``), and the bytes the edit log grows by.

Run: ``.venv/bin/python bench/edit_log.py [--strokes 200] [--brush 10]``
"""

from __future__ import annotations

import argparse
import gzip
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _db_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("project.sqlite*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=200)
    parser.add_argument("--brush", type=int, default=10)
    parser.add_argument("--shape", type=int, nargs=3, default=(300, 512, 512))
    args = parser.parse_args()

    from napari.layers import Labels

    from napari_atlas_annotate._qt.edit_recorder import LabelsEditHook
    from napari_atlas_annotate.corrections import EditRecorder
    from napari_atlas_annotate.io.nifti import save_labels
    from napari_atlas_annotate.project import ImageRef, Project
    from napari_atlas_annotate.volume import Volume

    shape = tuple(args.shape)
    rng = np.random.default_rng(0)
    labels = np.zeros(shape, np.uint8)
    labels[40:260, 100:400, 80:300] = 5  # a liver-sized block, so dabs hit real labels
    dabs = [
        (
            int(rng.integers(0, shape[0])),
            int(rng.integers(20, shape[1] - 20)),
            int(rng.integers(20, shape[2] - 20)),
            int(rng.integers(1, 10)),
        )
        for _ in range(args.strokes)
    ]

    plain = Labels(labels.copy())
    plain.brush_size = args.brush
    napari_ms = []
    for z, y, x, value in dabs:
        t0 = time.perf_counter()
        with plain.block_history():
            plain.paint((z, y, x), value)
        napari_ms.append((time.perf_counter() - t0) * 1e3)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        project = Project.create(tmp / "p", task="organs")
        project.add_case("bench", [ImageRef(str(tmp / "not-read.nii.gz"))])
        layer = Labels(labels.copy())
        layer.brush_size = args.brush
        recorder = EditRecorder(project, "bench", "bench", labels, None)
        hook = LabelsEditHook(layer, recorder)
        timed = []
        record = recorder.record

        def timed_record(*a, **k):
            t0 = time.perf_counter()
            try:
                return record(*a, **k)
            finally:
                timed.append((time.perf_counter() - t0) * 1e3)

        recorder.record = timed_record
        bytes_before = _db_bytes(tmp / "p")
        total_ms = []
        for z, y, x, value in dabs:
            t0 = time.perf_counter()
            with layer.block_history():
                layer.paint((z, y, x), value)
            total_ms.append((time.perf_counter() - t0) * 1e3)
        hook.flush()
        project._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log_bytes = _db_bytes(tmp / "p") - bytes_before
        diff_bytes = sum(len(e.diff.to_bytes()) for e in hook.events)
        assert np.array_equal(layer.data, plain.data)

        buffer = io.BytesIO()
        np.save(buffer, np.asarray(layer.data))
        npy_bytes = buffer.tell()
        t0 = time.perf_counter()
        save_labels(
            np.asarray(layer.data),
            Volume(np.asarray(layer.data), np.eye(4)),
            tmp / "snapshot.nii.gz",
        )
        nifti_s = time.perf_counter() - t0
        nifti_bytes = (tmp / "snapshot.nii.gz").stat().st_size
        gz_npy = len(gzip.compress(buffer.getvalue(), 1))
        project.close()

    med = statistics.median
    n = len(hook.events)
    print(f"volume {shape} uint8, {args.strokes} brush dabs (2D brush {args.brush}), {n} logged")
    print(f"napari paint per dab        median {med(napari_ms):7.3f} ms")
    print(f"edit log per dab (ours)     median {med(timed):7.3f} ms  (diff + WAL commit)")
    print(f"paint + hook per dab        median {med(total_ms):7.3f} ms")
    print(f"ratio  log / napari paint   {med(timed) / med(napari_ms):7.2f}x")
    print(
        f"log bytes for {n} strokes   {log_bytes:,} B database growth "
        f"({diff_bytes:,} B of diffs, {log_bytes / max(n, 1):,.0f} B per stroke)"
    )
    print(
        f"one full snapshot           np.save {npy_bytes:,} B, gzip-1 {gz_npy:,} B, "
        f"NIfTI .nii.gz {nifti_bytes:,} B ({nifti_s:.2f} s to write)"
    )
    print(
        f"ratio  snapshot per stroke / log per stroke: np.save "
        f"{npy_bytes / (log_bytes / max(n, 1)):,.0f}x, NIfTI "
        f"{nifti_bytes / (log_bytes / max(n, 1)):,.0f}x"
    )
    print(
        f"ratio  {n} snapshots (NIfTI) / whole log for {n} strokes: "
        f"{nifti_bytes * n / max(log_bytes, 1):,.0f}x"
    )


if __name__ == "__main__":
    main()
