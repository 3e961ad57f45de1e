"""Regenerate the small committed example data set in ``sample_data/phantoms``.

One abdominal CT (NIfTI, 64x128x128, with its AbdomenAtlas organ label map) and one
RSNA-style lumbar MRI study (three DICOM series, grades and level points as RSNA CSVs),
all from ``napari_atlas_annotate.phantoms`` with a fixed seed, so running this again
rewrites the same files::

    python sample_data/make_sample_data.py
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from napari_atlas_annotate.phantoms import write_phantoms

SEED = 0
CT_SHAPE = (64, 128, 128)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "phantoms")
    args = parser.parse_args(argv)
    if (args.out / "manifest.json").exists():  # only ever clear a folder we made
        shutil.rmtree(args.out)
    manifest = write_phantoms(args.out, n_ct=1, n_mri=1, seed=SEED, fmt="nifti", ct_shape=CT_SHAPE)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {manifest} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
