"""NIfTI (.nii, .nii.gz) in and out through nibabel, with the (z, y, x) convention."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

from ..volume import Volume, nifti_affine_from_zyx, zyx_affine_from_nifti
from .atomic import atomic_path
from .errors import VolumeLoadError, VolumeLoadWarning

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_path(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith(NIFTI_SUFFIXES)


def load_nifti(path: str | Path, *, dtype: np.dtype | None = None) -> Volume:
    """Read a 3D NIfTI file into a :class:`Volume` (array transposed to (z, y, x)).

    Scaling (scl_slope / scl_inter) is applied; integer files without scaling keep their
    integer type. 4D files with more than one volume are refused, since picking a volume
    silently would be a guess. A file without orientation (qform_code and sform_code both
    0) is loaded on nibabel's fall-back grid with a :class:`VolumeLoadWarning`, and
    ``metadata["placeholder_geometry"]`` is True, as for DICOM without patient geometry.
    """
    path = Path(path)
    img = _open(path)
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise VolumeLoadError(
            path,
            f"is {len(img.shape)}D with shape {img.shape}; a 3D volume is needed.",
            "Split the file into 3D volumes first (e.g. nibabel.funcs.four_to_three) "
            "and load the one you want.",
        )
    # nibabel moves scl_slope/scl_inter onto the array proxy at load time.
    slope = float(getattr(img.dataobj, "slope", 1.0))
    inter = float(getattr(img.dataobj, "inter", 0.0))
    scaled = slope != 1.0 or inter != 0.0
    try:
        if scaled or dtype is not None and np.issubdtype(dtype, np.floating):
            data = np.asanyarray(img.dataobj, dtype=np.float32 if dtype is None else dtype)
        else:
            data = np.asanyarray(img.dataobj)
    except (EOFError, OSError, ValueError) as exc:
        raise VolumeLoadError(
            path,
            f"data could not be read ({exc}); the file is probably truncated.",
            "Copy the file again from its source.",
        ) from exc
    data = data.reshape(shape)
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    array = np.ascontiguousarray(data.transpose(2, 1, 0))
    affine = zyx_affine_from_nifti(img.affine)
    _check_orthogonal_axes(path, affine)
    intent = str(img.header.get_intent()[0]) if hasattr(img.header, "get_intent") else ""
    descrip = img.header.get("descrip")
    meta = {
        "source": str(path),
        "format": "nifti",
        "intent": intent,
        "description": descrip.item().decode(errors="ignore") if descrip is not None else "",
    }
    if not has_orientation(img):
        meta["placeholder_geometry"] = True
        warnings.warn(
            f"{path}: the file carries no orientation (qform_code and sform_code are 0); "
            "loaded on nibabel's fall-back grid (voxel sizes only, no origin or direction). "
            "Labels drawn on it cannot be placed in patient space or overlaid on other "
            "images; convert the source again with its orientation (e.g. dcm2niix).",
            VolumeLoadWarning,
            stacklevel=2,
        )
    return Volume(array, affine, modality="", metadata=meta)


#: Largest |cosine| between two voxel axes taken as perpendicular (about 0.06 degrees off).
ORTHOGONAL_COSINE = 1e-3


def _check_orthogonal_axes(path: Path, affine: np.ndarray) -> None:
    """Refuse a grid whose voxel axes are not perpendicular (a sheared sform: a
    gantry-tilted CT converted without tilt correction). Labels, exports and DICOM cannot
    carry such a grid exactly, so it is refused as a tilted DICOM series is."""
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    cosines = np.abs(axes.T @ axes - np.eye(3))
    worst = float(cosines.max())
    if worst > ORTHOGONAL_COSINE:
        angle = 90.0 - float(np.degrees(np.arccos(min(worst, 1.0))))
        raise VolumeLoadError(
            path,
            f"its voxel axes are not perpendicular (sheared by about {angle:.2f} degrees, as a "
            "gantry-tilted CT converted without tilt correction is), so its labels could not "
            "be exported or overlaid exactly.",
            "Convert the source again with tilt correction, e.g. `dcm2niix` (which writes a "
            "tilt-corrected '_Tilt_' NIfTI) or 3D Slicer, and use the corrected volume.",
        )


def has_orientation(img) -> bool:
    """Whether a nibabel image's header says where its voxels lie (a qform or sform code
    other than 0); formats without the codes count as having it."""
    header = img.header
    try:
        codes = int(header["qform_code"]), int(header["sform_code"])
    except (KeyError, ValueError, TypeError):
        return True
    return any(codes)


def nifti_grid(path: str | Path) -> tuple[tuple[int, ...], np.ndarray]:
    """``(shape, affine)`` of a 3D NIfTI file as :func:`load_nifti` gives them ((z, y, x)
    order), from its header alone."""
    img = _open(Path(path))
    return tuple(int(n) for n in img.shape[:3][::-1]), zyx_affine_from_nifti(img.affine)


def _open(path: Path):
    """nibabel's image of ``path`` (header read, data not yet), or a clear error."""
    if not path.exists():
        raise VolumeLoadError(path, "file does not exist.", "Check the path.")
    try:
        return nib.load(str(path))
    except Exception as exc:  # nibabel raises several types for corrupt files
        raise VolumeLoadError(
            path, f"not a readable NIfTI file ({exc}).", "Check that the file is complete."
        ) from exc


def label_dtype(labels: np.ndarray) -> np.dtype:
    """uint8 when every class fits, else uint16 (labels above 65535 are refused)."""
    top = int(labels.max()) if labels.size else 0
    low = int(labels.min()) if labels.size else 0
    if low < 0:
        raise ValueError(f"label values must be >= 0; found {low}")
    if top <= 255:
        return np.dtype(np.uint8)
    if top <= 65535:
        return np.dtype(np.uint16)
    raise ValueError(f"label value {top} does not fit in uint16")


def save_nifti(volume: Volume, path: str | Path, *, dtype: np.dtype | None = None) -> Path:
    """Write ``volume`` as NIfTI on its own grid and affine, atomically."""
    data = volume.array if dtype is None else volume.array.astype(dtype, copy=False)
    # The (x, y, z) view of a C-ordered (z, y, x) array is Fortran-ordered, the order NIfTI
    # stores: nibabel writes it as it is (a contiguous copy first cost 0.3 s and the array's
    # size again for a 300x512x512 label at every Submit).
    img = nib.Nifti1Image(data.transpose(2, 1, 0), nifti_affine_from_zyx(volume.affine))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    img.header.set_xyzt_units("mm")
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


def save_labels(labels: np.ndarray, reference: Volume, path: str | Path) -> Path:
    """Write a label map on ``reference``'s grid (uint8, or uint16 above 255), atomically.

    Raises ``ValueError`` when the label shape does not match the image: a mask on another
    grid must be resampled explicitly, never saved with the image's affine.
    """
    labels = np.asarray(labels)
    if tuple(labels.shape) != reference.shape:
        raise ValueError(f"label shape {labels.shape} does not match image shape {reference.shape}")
    dtype = label_dtype(labels)
    vol = Volume(labels.astype(dtype, copy=False), reference.affine, metadata={})
    path = save_nifti(vol, path)
    return path
