"""AbdomenAtlas layout: ``<case>/ct.nii.gz``, ``<case>/segmentations/<class>.nii.gz`` (uint8
0/1, one per project class, empty masks included) and ``<case>/combined_labels.nii.gz``,
all on the CT's own grid and affine (never cropped or resampled).

The per-class masks are written in parallel threads (zlib releases the GIL while it
compresses) with zlib's run-length strategy; see ``bench/export.py`` for the numbers
against nibabel's default ``nib.save``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..volume import Volume
from .nifti_writer import write_nifti, write_nifti_zslab


def default_threads() -> int:
    """Writer threads: one per CPU core, at most 8."""
    import os

    return max(1, min(8, os.cpu_count() or 1))


def occupied_slices(labels: np.ndarray) -> tuple[int, int]:
    """``(z0, z1)``: the slices holding any non-zero label (``(0, 0)`` when none)."""
    rows = np.flatnonzero(labels.reshape(labels.shape[0], -1).max(axis=1))
    return (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)


def write_class_masks(
    labels: np.ndarray,
    affine: np.ndarray,
    folder: str | Path,
    classes: list[str],
    *,
    threads: int | None = None,
) -> list[Path]:
    """One uint8 0/1 ``<class>.nii.gz`` per class (label value ``i`` = ``classes[i-1]``),
    each on the full grid of ``labels``; only the slices a class occurs in are compared and
    compressed (:func:`.nifti_writer.write_nifti_zslab`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels)
    u0, u1 = occupied_slices(labels)

    def one(item: tuple[int, str]) -> Path:
        value, name = item
        slab = (labels[u0:u1] == value).view(np.uint8)  # numpy releases the GIL here
        rows = np.flatnonzero(slab.reshape(len(slab), -1).max(axis=1))
        z0, z1 = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
        return write_nifti_zslab(
            slab[z0:z1], u0 + z0, labels.shape, affine, folder / f"{name}.nii.gz"
        )

    items = list(enumerate(classes, start=1))
    with ThreadPoolExecutor(threads or default_threads()) as pool:
        return list(pool.map(one, items))


def write_case(
    image: Volume,
    labels: np.ndarray,
    classes: list[str],
    case_dir: str | Path,
    *,
    threads: int | None = None,
) -> list[Path]:
    """Write one case in AbdomenAtlas layout; returns the files written."""
    case_dir = Path(case_dir)
    label_dtype = np.uint8 if len(classes) < 256 else np.uint16
    labels = np.asarray(labels).astype(label_dtype, copy=False)
    with ThreadPoolExecutor(2) as pool:
        ct = pool.submit(write_nifti, image.array, image.affine, case_dir / "ct.nii.gz")
        combined = pool.submit(
            write_nifti, labels, image.affine, case_dir / "combined_labels.nii.gz", mask=True
        )
        masks = write_class_masks(
            labels, image.affine, case_dir / "segmentations", classes, threads=threads
        )
        return [ct.result(), *masks, combined.result()]
