"""Benchmark: opening a compressed DICOM CT series (what each *Next* in the annotator dock
waits for on a PACS export).

A CT phantom (default 300x512x512) is written as a DICOM series, then copied in each of
the lossless transfer syntaxes PACS exports use (JPEG-LS, JPEG 2000, RLE). Each copy is
opened with ``load_volume`` twice in the same process, alternating, best of ``--repeat``:

* **ours**: this checkout, which decodes JPEG-LS with CharLS (pyjpegls) where it is
  installed (``dicom_pixels.FASTER_PLUGINS``);
* **baseline: pydicom's own plugin choice** (``FASTER_PLUGINS`` emptied), which for
  JPEG-LS is pylibjpeg-libjpeg.

Both must give the same voxels (checked). Transfer syntaxes without a faster plugin run
the same code in both columns (ratio about 1.0, the noise of the machine).

Run: ``python bench/dicom_decode.py [--shape 300 512 512] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from napari_atlas_annotate.io import dicom_pixels, load_volume
from napari_atlas_annotate.phantoms import write_phantoms

SYNTAXES = {"JPEG-LS lossless": JPEGLSLossless, "JPEG 2000 lossless": JPEG2000Lossless}
SYNTAXES["RLE lossless"] = RLELossless


def _series(work: Path, shape: tuple[int, int, int]) -> dict[str, Path]:
    """The phantom's series folder, uncompressed and in each of :data:`SYNTAXES`."""
    write_phantoms(work / "phantom", 1, 0, 0, "dicom", ct_shape=shape)
    plain = next((work / "phantom").rglob("dicom"))
    folders = {"uncompressed": plain}
    for name, syntax in SYNTAXES.items():
        dest = work / name.replace(" ", "_")
        dest.mkdir()
        for file in sorted(plain.iterdir()):
            ds = pydicom.dcmread(file)
            ds.compress(syntax)
            ds.save_as(dest / file.name)
        folders[name] = dest
    return folders


def _open(folder: Path, plugins: dict[str, str]) -> tuple[float, np.ndarray]:
    saved = dict(dicom_pixels.FASTER_PLUGINS)
    dicom_pixels.FASTER_PLUGINS.clear()
    dicom_pixels.FASTER_PLUGINS.update(plugins)
    dicom_pixels.faster_plugin.cache_clear()
    try:
        start = time.perf_counter()
        volume = load_volume(folder)
        return time.perf_counter() - start, volume.array
    finally:
        dicom_pixels.FASTER_PLUGINS.clear()
        dicom_pixels.FASTER_PLUGINS.update(saved)
        dicom_pixels.faster_plugin.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[300, 512, 512])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="folder to keep the data in (default: a temp folder)")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="dicom_decode_"))
    work.mkdir(parents=True, exist_ok=True)
    ours_plugins = dict(dicom_pixels.FASTER_PLUGINS)
    try:
        start = time.perf_counter()
        folders = _series(work, tuple(args.shape))
        print(
            f"series of {args.shape[0]} slices of {args.shape[1]}x{args.shape[2]} written "
            f"in {time.perf_counter() - start:.0f} s"
        )
        print(f"{'transfer syntax':<20} {'ours':>8} {'baseline':>9} {'ratio':>7}  same voxels")
        for name, folder in folders.items():
            ours, base = [], []
            for _ in range(args.repeat):  # alternating, so load drifts hit both alike
                t_ours, a = _open(folder, ours_plugins)
                t_base, b = _open(folder, {})
                ours.append(t_ours)
                base.append(t_base)
            same = bool(np.array_equal(a, b))
            print(
                f"{name:<20} {min(ours):7.2f}s {min(base):8.2f}s {min(base) / min(ours):6.2f}x  "
                f"{same}"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
