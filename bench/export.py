"""Benchmark: AbdomenAtlas class masks of one 512x512x300 case, our exporter vs nibabel.

Baseline: ``nib.save`` of each of the 9 class masks as a uint8 ``.nii.gz`` with nibabel's
default gzip settings (level 1), one after another, the usual way people write this
layout. Ours: :func:`napari_atlas_annotate.export.abdomenatlas.write_class_masks` (zlib
run-length strategy, atomic writes, one thread per core), measured with 1 thread and with
the default. Masks stay on the full CT grid in both (no cropping). Also times a whole case
(ct.nii.gz + 9 masks + combined_labels.nii.gz) both ways, and checks that every file reads
back identically with nibabel.

Run: ``.venv/bin/python bench/export.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.export import abdomenatlas
from napari_atlas_annotate.volume import Volume, nifti_affine_from_zyx

SHAPE = (300, 512, 512)
AFFINE = np.array([[0, 0, -0.78, 200], [0, -0.78, 0, 200], [1.0, 0, 0, -300], [0, 0, 0, 1.0]])


def phantom(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth int16 CT (body ellipse, organs brighter, mild noise) and 9 organ labels."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    labels = np.zeros(SHAPE, np.uint8)
    sizes = [
        (60, 12, 12),
        (25, 20, 18),
        (45, 30, 25),
        (45, 30, 25),
        (80, 90, 80),
        (30, 20, 45),
        (70, 14, 14),
        (40, 35, 30),
        (45, 45, 50),
    ]
    centres = [
        (150, 300, 256),
        (140, 260, 180),
        (150, 320, 330),
        (150, 320, 180),
        (120, 240, 170),
        (160, 290, 270),
        (150, 300, 230),
        (130, 280, 350),
        (110, 220, 320),
    ]
    for k, ((rz, ry, rx), (cz, cy, cx)) in enumerate(zip(sizes, centres, strict=True), 1):
        blob = ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1
        labels[blob & (labels == 0)] = k
    body = ((y - 256) / 180.0) ** 2 + ((x - 256) / 230.0) ** 2 < 1
    ct = np.where(body, 0, -1000).astype(np.int16) + (labels.astype(np.int16) * 15)
    ct += rng.integers(-8, 9, SHAPE, dtype=np.int16) * body
    return ct, labels


def nibabel_masks(labels: np.ndarray, folder: Path) -> list[Path]:
    aff = nifti_affine_from_zyx(AFFINE)
    paths = []
    for value, name in enumerate(ABDOMEN_ATLAS_CLASSES, start=1):
        mask = (labels == value).astype(np.uint8).transpose(2, 1, 0)
        path = folder / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(mask, aff), path)
        paths.append(path)
    return paths


def nibabel_case(ct: np.ndarray, labels: np.ndarray, folder: Path) -> None:
    aff = nifti_affine_from_zyx(AFFINE)
    nib.save(nib.Nifti1Image(ct.transpose(2, 1, 0), aff), folder / "ct.nii.gz")
    nibabel_masks(labels, folder / "segmentations")
    nib.save(nib.Nifti1Image(labels.transpose(2, 1, 0), aff), folder / "combined_labels.nii.gz")


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "segmentations").mkdir()
            t = time.perf_counter()
            fn(Path(tmp))
            times.append(time.perf_counter() - t)
    return min(times)


def folder_size(fn) -> tuple[int, list[np.ndarray]]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "segmentations").mkdir()
        paths = fn(Path(tmp))
        size = sum(os.path.getsize(p) for p in paths)
        arrays = [np.asanyarray(nib.load(p).dataobj) for p in paths]
        affines = [nib.load(p).affine for p in paths]
    return size, arrays, affines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ct, labels = phantom()
    print(
        f"case {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]}, 9 classes, {os.cpu_count()} CPU cores, "
        f"best of {args.repeats}"
    )

    def ours(threads):
        return lambda d: abdomenatlas.write_class_masks(
            labels, AFFINE, d, list(ABDOMEN_ATLAS_CLASSES), threads=threads
        )

    t_base = best(lambda d: nibabel_masks(labels, d), args.repeats)
    t_one = best(ours(1), args.repeats)
    t_ours = best(ours(None), args.repeats)
    size_base, arr_base, aff_base = folder_size(lambda d: nibabel_masks(labels, d))
    size_ours, arr_ours, aff_ours = folder_size(ours(None))
    same = all(np.array_equal(a, b) for a, b in zip(arr_base, arr_ours, strict=True)) and all(
        np.allclose(a, b) for a, b in zip(aff_base, aff_ours, strict=True)
    )
    print(
        f"9 class masks  nibabel nib.save (default gzip): {t_base:6.2f} s  "
        f"{size_base / 1e6:6.2f} MB"
    )
    print(
        f"9 class masks  ours, 1 thread:                  {t_one:6.2f} s  ({t_base / t_one:.2f}x)"
    )
    print(
        f"9 class masks  ours, {abdomenatlas.default_threads()} threads:                "
        f"  {t_ours:6.2f} s  {size_ours / 1e6:6.2f} MB  ({t_base / t_ours:.2f}x faster, "
        f"{size_base / size_ours:.1f}x smaller)"
    )
    print(f"identical voxels and affines on read-back: {same}")
    t_case_base = best(lambda d: nibabel_case(ct, labels, d), max(1, args.repeats - 1))
    vol = Volume(ct, AFFINE, "CT")
    t_case_ours = best(
        lambda d: abdomenatlas.write_case(vol, labels, list(ABDOMEN_ATLAS_CLASSES), d),
        max(1, args.repeats - 1),
    )
    print(
        f"whole case (ct + 9 masks + combined)  nibabel: {t_case_base:6.2f} s  ours: "
        f"{t_case_ours:6.2f} s  ({t_case_base / t_case_ours:.2f}x)"
    )


if __name__ == "__main__":
    main()
