"""3D Slicer segmentations (``.seg.nrrd``) in and out, through ``slicerio``.

A radiologist who corrects in 3D Slicer saves a ``.seg.nrrd``: a NRRD label volume in LPS
space whose segments are named in the header (``Segment<n>_Name``, ``_LabelValue``,
``_Layer``). Slicer stores it cropped to the segments' extent, and where segments overlap
as several layers. Reading one gives each named segment's mask on the file's own lattice
(:func:`read_segments`); the import then maps the names to the project's classes, places
the box on the case's grid and merges overlaps as for per-class masks
(:func:`.importing.read_mask_labels`). :func:`write_segmentation` writes a label map on a
case's grid the same way, each class a named segment with its colour, so Slicer opens it
as a segmentation of the CT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import class_colors
from ..volume import nifti_affine_from_zyx, zyx_affine_from_nifti
from .errors import ProjectError

#: RAS <-> LPS (NRRD files from Slicer are in LPS).
_FLIP_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_slicer_segmentation(path: str | Path) -> bool:
    """Whether ``path`` names a NRRD file (Slicer saves segmentations as ``.seg.nrrd``)."""
    return str(path).lower().endswith(".nrrd")


def read_segments(path: Path) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The ``(z, y, x) -> RAS`` affine of a ``.seg.nrrd``'s voxels and each segment's name
    and boolean mask on them (``(z, y, x)``), in the file's order.

    Raises
    ------
    ProjectError
        The file is not a readable NRRD segmentation, or has no segments.
    """
    import slicerio

    try:
        seg = slicerio.read_segmentation(str(path))
    except Exception as exc:  # pynrrd and slicerio raise several types for a bad file
        raise ProjectError(
            f"{path}: not a readable 3D Slicer segmentation ({exc}). Save it again from "
            "Slicer (Segmentations: right-click, Export to files, .seg.nrrd) and import it "
            "again. Nothing was imported."
        ) from exc
    voxels = np.asarray(seg["voxels"])
    segments = seg.get("segments") or []
    if voxels.ndim not in (3, 4) or not segments:
        raise ProjectError(
            f"{path}: holds no segments (a segmentation saved empty, or a plain NRRD image); "
            "nothing to import."
        )
    layers = voxels if voxels.ndim == 4 else voxels[None]
    affine = zyx_affine_from_nifti(_FLIP_LPS @ np.asarray(seg["ijkToLPS"], float))
    out = []
    for segment in segments:
        name = str(segment.get("name") or segment.get("id"))
        layer = layers[int(segment.get("layer", 0))]
        out.append((name, (layer == int(segment["labelValue"])).transpose(2, 1, 0)))
    return affine, out


def write_segmentation(labels: np.ndarray, affine: np.ndarray, classes, path: Path) -> Path:
    """Write the ``(z, y, x)`` label map ``labels`` (values = ``classes`` ids from 1) on the
    grid of ``affine`` as a Slicer ``.seg.nrrd``, one named, coloured segment per class
    present; atomic."""
    import slicerio

    from ..io.atomic import atomic_path

    ijk_to_lps = _FLIP_LPS @ nifti_affine_from_zyx(affine)
    seg = slicerio.create_segmentation(labels.shape[::-1], ijk_to_lps)
    colors = class_colors(list(classes))
    for value, name in enumerate(classes, start=1):
        mask = labels == value
        if mask.any():
            color = [c / 255 for c in colors[value][:3]]
            segment = {"id": name, "name": name, "color": color}
            slicerio.add_segment(seg, mask.transpose(2, 1, 0), segment)
    with atomic_path(path) as tmp:
        slicerio.write_segmentation(str(tmp), seg)
    return Path(path)
