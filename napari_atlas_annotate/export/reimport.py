"""Re-import checks: what an export wrote reads back onto its image's exact grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from ..volume import zyx_affine_from_nifti
from .errors import ExportError


def check_nifti_grid(path: Path, shape_zyx, affine_zyx: np.ndarray, atol: float = 1e-3) -> None:
    """Raise :class:`ExportError` unless ``path``'s header has this (z, y, x) shape and
    affine (sform and qform both). Reads the header only."""
    img = nib.load(str(path))
    shape = tuple(int(s) for s in img.shape)[::-1]
    if shape != tuple(int(s) for s in shape_zyx):
        raise ExportError(f"{path}: re-import gives shape {shape}, expected {tuple(shape_zyx)}")
    for name, (matrix, code) in (
        ("sform", img.header.get_sform(coded=True)),
        ("qform", img.header.get_qform(coded=True)),
    ):
        if not code or not np.allclose(zyx_affine_from_nifti(matrix), affine_zyx, atol=atol):
            raise ExportError(f"{path}: re-imported {name} differs from the image's affine")
