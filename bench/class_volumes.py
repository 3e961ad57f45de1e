"""Benchmark: the annotator dock's class volumes on a real-size CT label map.

The label map: a phantom's organ labels upsampled to 300 x 512 x 512 (``organ_dock``'s
``upsampled_phantom``), then ``--strokes`` brush strokes (a ball of 10 voxels' radius of a
random class at a random labelled voxel), each as the edit log stores it (a
:class:`LabelDiff` from ``diff_labels`` over the stroke's box).

Timed side by side in one run:

* **case open** - ours: :class:`ClassVolumes` (counts the labelled voxels, background is
  the rest); baseline: ``np.bincount`` of the whole map (what a plain count does);
* **after each stroke** - ours: ``ClassVolumes.apply(diff)`` (moves the counts by the
  stroke's changed voxels); baseline: ``np.bincount`` of the whole map again.

Both must give the same counts after every stroke (checked). Run: ``python
bench/class_volumes.py [--strokes 20] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from baseline import best_of
from organ_dock import upsampled_phantom

from napari_atlas_annotate.corrections.class_volumes import ClassVolumes
from napari_atlas_annotate.project.edit_log import diff_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    image, labels = upsampled_phantom(args.seed)
    voxel_ml = float(np.prod(image.spacing)) / 1000
    n_classes = int(labels.max()) + 1
    print(f"label map {labels.shape} {labels.dtype}, {np.count_nonzero(labels):,} labelled")

    ours_open, volumes = best_of(lambda: ClassVolumes(labels, voxel_ml))
    base_open, counts = best_of(lambda: np.bincount(labels.ravel(), minlength=n_classes))
    assert [volumes.voxels(v) for v in range(n_classes)] == counts.tolist()

    rng = np.random.default_rng(args.seed)
    zz, yy, xx = np.ogrid[-10:11, -10:11, -10:11]
    ball = zz**2 + yy**2 + xx**2 <= 100
    labelled = np.argwhere(labels[::4, ::8, ::8] != 0) * (4, 8, 8)
    ours_stroke, base_stroke = [], []
    for _ in range(args.strokes):
        z, y, x = (int(v) for v in labelled[rng.integers(len(labelled))])
        box = tuple(slice(max(c - 10, 0), c + 11) for c in (z, y, x))
        region = labels[box]
        before = region.copy()
        inside = ball[tuple(slice(0, n) for n in region.shape)]
        region[inside] = rng.integers(1, n_classes)
        diff = diff_labels(before, region)
        if diff is None:
            continue
        t = time.perf_counter()
        volumes.apply(diff)
        ours_stroke.append(time.perf_counter() - t)
        t = time.perf_counter()
        counts = np.bincount(labels.ravel(), minlength=n_classes)
        base_stroke.append(time.perf_counter() - t)
        assert [volumes.voxels(v) for v in range(counts.size)] == counts.tolist()

    ours_each, base_each = float(np.median(ours_stroke)), float(np.median(base_stroke))
    print("| step | ours (ClassVolumes) | baseline (np.bincount of the map) | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| case open | {ours_open * 1e3:.0f} ms | {base_open * 1e3:.0f} ms | "
        f"{base_open / ours_open:.1f}x |"
    )
    print(
        f"| each stroke (median of {len(ours_stroke)}) | {ours_each * 1e3:.2f} ms | "
        f"{base_each * 1e3:.0f} ms | {base_each / ours_each:.0f}x |"
    )
    print("counts identical after every stroke")


if __name__ == "__main__":
    main()
