"""One record per 2D image of a series: where it lies and how its values scale.

Classic single-frame files give one :class:`FrameRef` each; enhanced multi-frame files
(Enhanced CT/MR) give one per frame, with geometry and rescale taken from the
per-frame functional groups, falling back to the shared ones, then to top-level tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from .errors import VolumeLoadError


@dataclass
class FrameRef:
    """A 2D image inside a file, with the header facts the reader needs.

    Attributes
    ----------
    path
        File holding the image.
    frame
        0-based frame index in a multi-frame file; None for a single-frame file.
    position
        ImagePositionPatient (LPS mm) of the first transmitted pixel, or None.
    orientation
        ImageOrientationPatient: row cosine then column cosine (LPS), or None.
    pixel_spacing
        PixelSpacing: (spacing between rows, spacing between columns) in mm, or None.
    """

    path: Path
    frame: int | None
    position: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    spacing_between_slices: float | None
    slope: float
    intercept: float
    rows: int | None
    columns: int | None
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    sop_uid: str
    instance_number: int | None

    @property
    def label(self) -> str:
        """File name, plus the 1-based frame number for a multi-frame file."""
        return self.path.name if self.frame is None else f"{self.path.name} frame {self.frame + 1}"


def _floats(ds: Dataset | None, keyword: str, count: int, path: Path) -> np.ndarray | None:
    if ds is None or keyword not in ds or ds[keyword].value in (None, ""):
        return None
    value = ds[keyword].value
    values = [value] if isinstance(value, (int, float, str, bytes)) else list(value)
    try:
        arr = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.size != count or not np.all(np.isfinite(arr)):
        raise VolumeLoadError(
            path,
            f"has a malformed {keyword} ({value!r}; {count} numbers expected).",
            "The file's header is damaged; re-export the series from its source.",
        )
    return arr


def _number(ds: Dataset | None, keyword: str, default: float | None) -> float | None:
    if ds is None or keyword not in ds or ds[keyword].value in (None, ""):
        return default
    try:
        return float(ds[keyword].value)
    except (TypeError, ValueError):
        return default


def _int(ds: Dataset, keyword: str, default: int | None) -> int | None:
    value = _number(ds, keyword, None)
    return default if value is None else int(value)


def _first_item(groups: list[Dataset | None], sequence: str) -> Dataset | None:
    """The first item of ``sequence`` in the first functional group that has it."""
    for group in groups:
        if group is not None and sequence in group and len(group[sequence].value):
            return group[sequence].value[0]
    return None


def _frame(ds: Dataset, path: Path, frame: int | None, groups: list[Dataset | None]) -> FrameRef:
    """A FrameRef; ``groups`` are functional-group items to search before ``ds`` itself."""
    plane_pos = _first_item(groups, "PlanePositionSequence")
    plane_ori = _first_item(groups, "PlaneOrientationSequence")
    measures = _first_item(groups, "PixelMeasuresSequence")
    transform = _first_item(groups, "PixelValueTransformationSequence")
    # Enhanced files keep geometry in functional groups; top-level tags there describe
    # no particular frame, so they are only used for classic single-frame files.
    top = None if groups else ds
    position = _floats(plane_pos if plane_pos is not None else top, "ImagePositionPatient", 3, path)
    orientation = _floats(
        plane_ori if plane_ori is not None else top, "ImageOrientationPatient", 6, path
    )
    spacing = _floats(measures, "PixelSpacing", 2, path)
    if spacing is None:
        spacing = _floats(ds, "PixelSpacing", 2, path)
    scale_src = transform if transform is not None else ds
    return FrameRef(
        path=path,
        frame=frame,
        position=position,
        orientation=orientation,
        pixel_spacing=None if spacing is None else (float(spacing[0]), float(spacing[1])),
        slice_thickness=_number(measures, "SliceThickness", _number(ds, "SliceThickness", None)),
        spacing_between_slices=_number(
            measures, "SpacingBetweenSlices", _number(ds, "SpacingBetweenSlices", None)
        ),
        slope=_number(scale_src, "RescaleSlope", 1.0) or 1.0,
        intercept=_number(scale_src, "RescaleIntercept", 0.0) or 0.0,
        rows=_int(ds, "Rows", None),
        columns=_int(ds, "Columns", None),
        samples_per_pixel=_int(ds, "SamplesPerPixel", 1) or 1,
        bits_allocated=_int(ds, "BitsAllocated", 16) or 16,
        bits_stored=_int(ds, "BitsStored", None) or _int(ds, "BitsAllocated", 16) or 16,
        signed=bool(_int(ds, "PixelRepresentation", 0)),
        sop_uid=str(ds.get("SOPInstanceUID", "") or ""),
        instance_number=_int(ds, "InstanceNumber", None),
    )


def frames_of_file(ds: Dataset, path: Path) -> list[FrameRef]:
    """The 2D images of one file (its header ``ds``, read with or without pixels)."""
    n = max(int(_number(ds, "NumberOfFrames", 1) or 1), 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared_item = shared[0] if shared else None
    if n == 1 and per_frame is None and shared is None:
        return [_frame(ds, path, None, [])]
    frames = []
    for k in range(n):
        item = per_frame[k] if per_frame is not None and k < len(per_frame) else None
        frames.append(_frame(ds, path, k, [item, shared_item]))
    return frames


def frames_of_series(headers: list[Dataset], files: list[Path]) -> list[FrameRef]:
    """All 2D images of a series, in file order (not yet sorted in space)."""
    frames: list[FrameRef] = []
    for ds, path in zip(headers, files, strict=True):
        frames.extend(frames_of_file(ds, path))
    return frames
