"""Readers and writers: files on disk <-> :class:`~napari_atlas_annotate.volume.Volume`.

``load_volume`` is the one entry point for images: NIfTI files go through nibabel, DICOM
files and folders through pydicom (see :mod:`.dicom`).
"""

from __future__ import annotations

from pathlib import Path

from ..volume import Study, Volume
from .errors import VolumeLoadError, VolumeLoadWarning
from .nifti import is_nifti_path, load_nifti, save_labels, save_nifti


def load_volume(path: str | Path, series: str | None = None, stack: int | None = None) -> Volume:
    """Load a CT or MR volume from a NIfTI file, a DICOM file, or a DICOM folder.

    Parameters
    ----------
    path
        ``.nii``/``.nii.gz`` file, a DICOM file (single- or multi-frame), or a folder
        holding one or more DICOM series (searched recursively).
    series
        For folders with several series: a SeriesInstanceUID, a SeriesDescription, or a
        series number. Without it a multi-series folder raises an error listing them.
    stack
        For a DICOM series holding several stacks at different angles (lumbar axial T2
        angled through each disc): which one, 1-based. Without it such a series raises an
        error listing its stacks.
    """
    path = Path(path)
    if not path.exists():
        raise VolumeLoadError(path, "does not exist.", "Check the path and try again.")
    if path.is_file() and is_nifti_path(path):
        if stack not in (None, 1):
            raise VolumeLoadError(
                path,
                f"is a NIfTI file; it has no stack {stack}.",
                "Leave the stack out for NIfTI images.",
            )
        return load_nifti(path)
    from .dicom import load_dicom

    return load_dicom(path, series=series, stack=stack)


def load_study(path: str | Path) -> Study:
    """Load every image series of a DICOM study folder, keyed by SeriesDescription."""
    from .dicom import load_dicom_study

    return load_dicom_study(Path(path))


def list_series(path: str | Path):
    """The DICOM series found under ``path`` (see :func:`.dicom.list_series`)."""
    from .dicom import list_series as _list

    return _list(Path(path))


__all__ = [
    "Study",
    "Volume",
    "VolumeLoadError",
    "VolumeLoadWarning",
    "is_nifti_path",
    "list_series",
    "load_nifti",
    "load_study",
    "load_volume",
    "save_labels",
    "save_nifti",
]
