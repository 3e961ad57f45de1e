"""3D Slicer layout: ``<case>/ct.nii.gz`` and ``<case>/segmentation.seg.nrrd`` (a named,
coloured segment per class the case holds, on the CT's own grid: Slicer opens both and
the segments overlay the CT exactly), written with slicerio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..project.slicer_segmentations import read_segments, write_segmentation
from ..volume import Volume
from .errors import ExportError
from .nifti_writer import write_nifti

SEGMENTATION_NAME = "segmentation.seg.nrrd"


def write_case(image: Volume, labels: np.ndarray, classes: list[str], case_dir: Path) -> list[Path]:
    """Write one case; returns the files written (the CT, then the segmentation)."""
    case_dir = Path(case_dir)
    ct = write_nifti(image.array, image.affine, case_dir / "ct.nii.gz")
    seg = write_segmentation(
        np.asarray(labels), image.affine, classes, case_dir / SEGMENTATION_NAME
    )
    return [ct, seg]


def check_segmentation(path: Path, labels: np.ndarray, affine: np.ndarray, classes) -> None:
    """Read a written segmentation back: its grid must be the CT's and each segment the
    voxels of its class; :class:`ExportError` otherwise."""
    written_affine, segments = read_segments(path)
    if not np.allclose(written_affine, affine, atol=1e-4):
        raise ExportError(f"{path}: written off the CT's grid; nothing was exported (a bug).")
    for name, mask in segments:
        if mask.shape != labels.shape or not np.array_equal(
            mask, labels == classes.index(name) + 1
        ):
            raise ExportError(
                f"{path}: segment {name!r} does not read back as its class; nothing was "
                "exported (a bug)."
            )
