"""DICOM files and folders -> :class:`~napari_atlas_annotate.volume.Volume` / ``Study``.

The work is split by job: :mod:`.dicom_scan` finds series from headers,
:mod:`.dicom_frames` lists each series' 2D images, :mod:`.dicom_geometry` orders them in
space and builds the affine (refusing series that one affine cannot describe), and
:mod:`.dicom_pixels` decodes and rescales the pixels into one preallocated array.

Examples
--------
>>> vol = load_dicom("ct_folder/")  # doctest: +SKIP
>>> vol.array.shape, vol.orientation  # doctest: +SKIP
((120, 512, 512), ('S', 'P', 'L'))
>>> study = load_dicom_study("lumbar_study/")  # doctest: +SKIP
>>> list(study.series)  # doctest: +SKIP
['Sagittal T1', 'Sagittal T2/STIR', 'Axial T2']
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..stacks import stack_key
from ..volume import Study, Volume
from .dicom_frames import FrameRef, frames_of_series
from .dicom_geometry import (
    MIN_STACK_IMAGES,
    SliceStack,
    by_acquisition,
    check_uniform,
    orientation_groups,
    parallel_blocks,
    stack_frames,
)
from .dicom_pixels import planned_dtype, read_pixels
from .dicom_scan import SeriesInfo, list_series, name_list, scan_dicom, with_headers
from .errors import VolumeLoadError, VolumeLoadWarning

__all__ = [
    "SeriesInfo",
    "SeriesPlan",
    "list_series",
    "load_dicom",
    "load_dicom_study",
    "plan_series",
    "plan_stacks",
    "select_series",
]


@dataclass
class SeriesPlan:
    """A series' grid worked out from headers alone: what :func:`load_dicom` will read.

    Attributes
    ----------
    info
        The series as scanned.
    frames
        Its images in z order.
    stack
        Slice order and affine.
    source
        The path the user gave (named in messages, stored as ``metadata["source"]``).
    stack_number, stack_count
        Which of the series' stacks this is (1-based) and how many it has; 1 and 1 for an
        ordinary series (see :func:`plan_stacks`).
    """

    info: SeriesInfo
    frames: list[FrameRef]
    stack: SliceStack
    source: Path
    stack_number: int = 1
    stack_count: int = 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(z, y, x)`` size of the volume."""
        return (len(self.frames), int(self.frames[0].rows), int(self.frames[0].columns))

    @property
    def dtype(self) -> np.dtype:
        """Output type by the value policy of :mod:`.dicom_pixels` (int16 may widen to
        float32 if the decoded values overflow it)."""
        return planned_dtype(self.frames)

    def metadata(self) -> dict[str, Any]:
        """The ``Volume.metadata`` of the loaded series."""
        first = self.info.headers[0]
        syntax = first.file_meta.get("TransferSyntaxUID", "") if hasattr(first, "file_meta") else ""
        meta: dict[str, Any] = {
            "source": str(self.source),
            "format": "dicom",
            "series_uid": self.info.series_uid,
            "series_description": self.info.description,
            "series_number": self.info.series_number,
            "study_uid": str(first.get("StudyInstanceUID", "") or ""),
            "frame_of_reference_uid": str(first.get("FrameOfReferenceUID", "") or ""),
            "sop_class_uid": self.info.sop_class_uid,
            "sop_instance_uids": [f.sop_uid for f in self.frames],
            # RSNA coordinates name a slice by InstanceNumber; keep it per z slice.
            "instance_numbers": [f.instance_number for f in self.frames],
            "patient_id": str(first.get("PatientID", "") or ""),
            "patient_name": str(first.get("PatientName", "") or ""),
            "transfer_syntax": str(syntax),
            "files": [str(f.path) for f in self.frames],
            "placeholder_geometry": self.stack.placeholder,
        }
        if self.stack_count > 1:
            meta["stack"] = self.stack_number
            meta["stack_count"] = self.stack_count
        if any(f.frame is not None for f in self.frames):
            # DICOM SEG references frames of a multi-frame image by 1-based number.
            meta["frame_numbers"] = [None if f.frame is None else f.frame + 1 for f in self.frames]
        return meta

    def grid(self) -> Volume:
        """A Volume with this series' geometry and a zero-stride placeholder array (no
        pixels read): for describing a series cheaply, never for its values."""
        placeholder = np.broadcast_to(np.zeros((), dtype=self.dtype), self.shape)
        return Volume(placeholder, self.stack.affine.copy(), self.info.modality, self.metadata())

    def read(self, decoded: tuple[list[FrameRef], np.ndarray] | None = None) -> Volume:
        """Decode the pixels and return the Volume.

        Parameters
        ----------
        decoded
            Images already decoded (a read ahead, :mod:`.prefetch`): their frames, in any
            order, and the array :func:`.dicom_pixels.read_pixels` gave for them. Used,
            put in this plan's z order (copied only where that differs), when they are
            this plan's images; otherwise the pixels are decoded here.
        """
        array = None if decoded is None else _in_plan_order(self.frames, *decoded)
        if array is None:
            array = read_pixels(self.frames)
        return Volume(array, self.stack.affine.copy(), self.info.modality, self.metadata())


def _in_plan_order(
    frames: list[FrameRef], decoded: list[FrameRef], array: np.ndarray
) -> np.ndarray | None:
    """``array`` (the pixels of ``decoded``, slice k of frame k) in the order of
    ``frames``; None when they are not the same images (the value policy of
    :mod:`.dicom_pixels` depends on the whole set)."""
    where = {(f.path, f.frame): k for k, f in enumerate(decoded)}
    order = [where.get((f.path, f.frame), -1) for f in frames]
    if len(where) != len(decoded) or sorted(order) != list(range(len(decoded))):
        return None
    if order == list(range(len(order))):
        return array
    return np.ascontiguousarray(array[order])


def plan_series(
    info: SeriesInfo,
    source: str | Path,
    stack: int | None = None,
    frames: list[FrameRef] | None = None,
) -> SeriesPlan:
    """Check a series' headers and order its images (see :mod:`.dicom_geometry`).

    Parameters
    ----------
    stack
        For a series of several stacks (blocks of images at different angles): which one,
        1-based, as :func:`plan_stacks` numbers them. Without it such a series is refused
        with a message listing its stacks.
    frames
        The series' images as :func:`.dicom_frames.frames_of_series` lists them from
        ``info``'s headers, where that was done already (a read ahead, :mod:`.prefetch`:
        two thirds of the planning time of a 300-file series); listed here otherwise.

    Raises
    ------
    VolumeLoadError
        For non-image series, for every geometry problem listed in
        :func:`.dicom_geometry.stack_frames`, for a stack number the series lacks, and
        for a file changed since it was scanned without its header kept
        (:func:`.dicom_scan.with_headers`).
    """
    info = with_headers(info)  # read again where the scan dropped them
    stacks = plan_stacks(info, source, warn=False, frames=frames) if stack is not None else None
    if stacks is not None:
        if not 1 <= stack <= len(stacks):
            raise VolumeLoadError(
                _series_path(info, Path(source)),
                f"has {len(stacks)} stack(s); there is no stack {stack}.",
                f"Choose a stack from 1 to {len(stacks)}.",
            )
        return stacks[stack - 1]
    source = Path(source)
    where, frames = _checked_frames(info, source, frames)
    groups = _stack_groups(frames, info.modality)
    if len(groups) > 1:
        raise VolumeLoadError(
            where,
            f"holds {len(groups)} stacks of images {_stacks_phrase(frames, groups)} "
            f"({_stack_table(frames, groups)}), as lumbar axial series with a block at each "
            "disc often do; one volume cannot hold them.",
            "Load one stack (stack=1..N), or add the study to a spine project, which loads "
            "every stack as a series of its own.",
        )
    return _plan(info, frames, where, source)


def plan_stacks(
    info: SeriesInfo,
    source: str | Path,
    *,
    warn: bool = True,
    frames: list[FrameRef] | None = None,
) -> list[SeriesPlan]:
    """One plan per stack of a series: its images grouped by orientation.

    An ordinary series gives one plan. A series holding blocks of images at different
    angles (lumbar axial T2 angled through each disc) gives one per block of at least
    :data:`.dicom_geometry.MIN_STACK_IMAGES` images, in acquisition order; smaller blocks
    (localizers) are left out, with a :class:`VolumeLoadWarning` when ``warn``. An MR's
    blocks at one angle but apart along their normal are stacks too
    (:func:`.dicom_geometry.parallel_blocks`; warned, in case slices are missing instead).
    ``frames``: as :func:`plan_series`.

    Raises
    ------
    VolumeLoadError
        As :func:`plan_series`, for any stack.
    """
    source = Path(source)
    info = with_headers(info)  # read again where the scan dropped them
    where, frames = _checked_frames(info, source, frames)
    groups = _stack_groups(frames, info.modality)
    if len(groups) <= 1:
        return [_plan(info, frames, where, source)]
    if warn and len(orientation_groups(frames)) < len(groups):
        warnings.warn(
            f"{where}: loaded as {len(groups)} stacks ({_stacks_phrase(frames, groups)}): "
            f"{_stack_table(frames, groups)}. If slices are missing between them instead, "
            "re-export the complete series.",
            VolumeLoadWarning,
            stacklevel=2,
        )
    kept = {i for g in groups for i in g}
    dropped = [f.label for i, f in enumerate(frames) if i not in kept]
    if dropped and warn:
        warnings.warn(
            f"{where}: left out {name_list(dropped)}: too few images at their angle to form "
            f"a stack (a localizer?); loaded the {len(groups)} stacks.",
            VolumeLoadWarning,
            stacklevel=2,
        )
    return [
        _plan(info, [frames[i] for i in group], where, source, k, len(groups))
        for k, group in enumerate(groups, start=1)
    ]


def _plan(info, frames, where: Path, source: Path, number: int = 1, count: int = 1):
    """The plan of one stack's images: checked, ordered in space, with its affine."""
    check_uniform(frames, where)
    order = stack_frames(frames, where)
    return SeriesPlan(info, [frames[i] for i in order.order], order, source, number, count)


def _checked_frames(
    info: SeriesInfo, source: Path, frames: list[FrameRef] | None = None
) -> tuple[Path, list[FrameRef]]:
    if not info.is_image:
        raise _non_image_error(source, [info])
    where = _series_path(info, source)
    _refuse_mosaic(info, where)
    return where, frames_of_series(info.headers, info.files) if frames is None else frames


def _stack_groups(frames: list[FrameRef], modality: str) -> list[list[int]]:
    """The orientation groups big enough to be stacks (an MR's also split into blocks
    apart along their normal); all images when there is one."""
    groups = orientation_groups(frames)
    if modality.upper() == "MR":
        groups = by_acquisition(frames, [b for g in groups for b in parallel_blocks(frames, g)])
    stacks = [g for g in groups if len(g) >= MIN_STACK_IMAGES]
    return stacks if len(stacks) > 1 else [list(range(len(frames)))]


def _stacks_phrase(frames: list[FrameRef], groups: list[list[int]]) -> str:
    """How a series' stacks differ: in angle, in position along their normal, or both."""
    angles = {tuple(np.round(frames[g[0]].orientation, 3)) for g in groups}
    if len(angles) == len(groups):
        return "at different angles"
    if len(angles) == 1:
        return "at the same angle, apart along their normal"
    return "at different angles or apart along their normal"


def _stack_table(frames: list[FrameRef], groups: list[list[int]]) -> str:
    parts = []
    for k, group in enumerate(groups, start=1):
        numbers = [frames[i].instance_number for i in group if frames[i].instance_number]
        span = f", instances {min(numbers)}-{max(numbers)}" if numbers else ""
        parts.append(f"stack {k}: {len(group)} images{span}")
    return "; ".join(parts)


def _refuse_mosaic(info: SeriesInfo, where: Path) -> None:
    """Siemens mosaics tile many slices into one image: stacking them would be wrong."""
    mosaic = []
    for path, ds in zip(info.files, info.headers, strict=True):
        image_type = ds.get("ImageType", [])
        values = [image_type] if isinstance(image_type, str) else list(image_type)
        if "MOSAIC" in (str(v).upper() for v in values):
            mosaic.append(path.name)
    if mosaic:
        raise VolumeLoadError(
            where,
            f"holds Siemens mosaic images ({name_list(mosaic)}): each one tiles the slices "
            "of a whole volume (diffusion or fMRI) into a single 2D image.",
            "Convert the series with dcm2niix and load a 3D volume of the result.",
        )


def _series_path(info: SeriesInfo, source: Path) -> Path:
    """The path to name in messages: the file, or the series' folder."""
    if source.is_file():
        return source
    parents = {f.parent for f in info.files}
    return parents.pop() if len(parents) == 1 else source


def _non_image_error(path: Path, objects: list[SeriesInfo]) -> VolumeLoadError:
    info = objects[0]
    refs = sorted({_referenced_series(ds) for s in objects for ds in s.headers} - {""})
    ref_text = f" (it references series {', '.join(refs)})" if refs else ""
    others = f" ({len(objects)} non-image series in all)" if len(objects) > 1 else ""
    return VolumeLoadError(
        path,
        f"is {info.non_image}, not an image{ref_text}{others}.",
        "Load the image series it references (e.g. the CT or MR folder) instead.",
    )


def _referenced_series(ds) -> str:
    for keyword in ("ReferencedSeriesSequence", "ReferencedFrameOfReferenceSequence"):
        for item in ds.get(keyword, []) or []:
            if "SeriesInstanceUID" in item:
                return str(item.SeriesInstanceUID)
            for study in item.get("RTReferencedStudySequence", []) or []:
                for series in study.get("RTReferencedSeriesSequence", []) or []:
                    if "SeriesInstanceUID" in series:
                        return str(series.SeriesInstanceUID)
    return ""


def _series_table(series: list[SeriesInfo]) -> str:
    return "".join(f"\n  - {s.summary()}" for s in series)


def select_series(
    found: list[SeriesInfo], path: str | Path, series: str | int | None = None
) -> SeriesInfo:
    """Pick the image series to load from ``found`` (as returned by :func:`list_series`).

    Parameters
    ----------
    found
        Series under ``path``.
    path
        Where they were found (named in messages).
    series
        SeriesInstanceUID, SeriesDescription or SeriesNumber; needed when ``path`` holds
        more than one image series.

    Raises
    ------
    VolumeLoadError
        No image series, no match, an ambiguous match, or several series and no choice.
    """
    path = Path(path)
    images = [s for s in found if s.is_image]
    if series is not None and str(series).strip():
        matches = [s for s in found if s.matches(str(series))]
        image_matches = [s for s in matches if s.is_image]
        if not matches:
            raise VolumeLoadError(
                path,
                f"has no series matching {str(series)!r}. Series found:{_series_table(found)}\n",
                "Pass a SeriesInstanceUID, SeriesDescription or series number from the list.",
            )
        if not image_matches:
            raise _non_image_error(path, matches)
        if len(image_matches) > 1:
            raise VolumeLoadError(
                path,
                f"has {len(image_matches)} series matching {str(series)!r}:"
                f"{_series_table(image_matches)}\n",
                "Pass the SeriesInstanceUID to choose one.",
            )
        return image_matches[0]
    if not images:
        raise _non_image_error(path, found)
    if len(images) > 1:
        raise VolumeLoadError(
            path,
            f"holds {len(images)} image series:{_series_table(images)}\n",
            "Choose one with series= (Python) or --series (command line), giving its "
            "SeriesInstanceUID, SeriesDescription or series number.",
        )
    return images[0]


def load_dicom(
    path: str | Path, series: str | int | None = None, stack: int | None = None
) -> Volume:
    """Load one DICOM series as a :class:`Volume`.

    Parameters
    ----------
    path
        A DICOM file (single-frame, or enhanced multi-frame with functional groups) or a
        folder (searched recursively) holding one or more series.
    series
        SeriesInstanceUID, SeriesDescription or SeriesNumber (as text); required when the
        folder holds more than one image series.
    stack
        For a series of several stacks at different angles: which one (1-based, see
        :func:`plan_stacks`); the volume's metadata then carries ``stack`` and
        ``stack_count``.

    Returns
    -------
    Volume
        ``(z, y, x)`` array with rescaled values and its ``(z, y, x) -> RAS`` affine;
        ``modality`` from Modality; ``metadata`` with ``source``, ``series_uid``,
        ``series_description``, ``series_number``, ``study_uid``,
        ``frame_of_reference_uid``, ``sop_instance_uids`` and ``files`` (both in z order),
        ``sop_class_uid``, ``patient_id``, ``patient_name``, ``transfer_syntax``.

    Raises
    ------
    VolumeLoadError
        With the file, the problem and what to do: not DICOM, empty folder, non-image
        objects only, several series and no choice, missing slices, uneven spacing beyond
        5%, gantry tilt, mixed sizes or orientations, duplicate positions, truncated files.

    Warns
    -----
    VolumeLoadWarning
        Non-DICOM files skipped (label maps beside the series are not warned of), spacing
        uneven by 1-5%, or no patient geometry.
    """
    return plan_dicom(path, series, stack).read()


def plan_dicom(
    path: str | Path, series: str | int | None = None, stack: int | None = None
) -> SeriesPlan:
    """What :func:`load_dicom` does but decode the pixels: the series found, checked and
    ordered (its ``grid()`` gives shape, affine and slice UIDs). Same errors and warnings."""
    path = Path(path)
    # the case's labels beside its series are expected there: adding it listed them
    chosen = select_series(scan_dicom(path, label_maps_expected=True), path, series)
    return plan_series(chosen, path, stack)


def study_key(info: SeriesInfo, taken: set[str]) -> str:
    """SeriesDescription (or ``Series <number>``), with `` (<number>)`` appended when
    another series already uses the description."""
    number = "?" if info.series_number is None else str(info.series_number)
    key = info.description or f"Series {number}"
    if key in taken:
        key = f"{key} ({number})"
    suffix = 2
    base = key
    while key in taken:  # same description and number: fall back to a counter
        key = f"{base} #{suffix}"
        suffix += 1
    return key


def load_dicom_study(path: str | Path, *, skip_unreadable: bool = False) -> Study:
    """Load every image series under ``path`` (e.g. a lumbar MRI study).

    Parameters
    ----------
    path
        Study folder (searched recursively).
    skip_unreadable
        When True, a series that cannot be loaded (e.g. a 3-plane localizer) is skipped
        with a :class:`VolumeLoadWarning` instead of failing the whole study.

    Returns
    -------
    Study
        Volumes keyed by SeriesDescription (duplicates get the series number appended),
        in SeriesNumber order. A series of several stacks gives one volume per stack,
        keyed ``"<description> (stack k/n)"``. Non-image objects (SEG, RTSTRUCT, SR) are
        left out.
    """
    path = Path(path)
    found = scan_dicom(path, label_maps_expected=True)
    images = [s for s in found if s.is_image]
    if not images:
        raise _non_image_error(path, found)
    volumes: dict[str, Volume] = {}
    for info in images:
        try:
            stacks = [plan.read() for plan in plan_stacks(info, path)]
        except VolumeLoadError as exc:
            if not skip_unreadable:
                raise
            warnings.warn(f"skipped {info.summary()}: {exc}", VolumeLoadWarning, stacklevel=2)
            continue
        key = study_key(info, set(volumes))
        for volume in stacks:
            volumes[stack_key(key, volume.metadata)] = volume
    if not volumes:
        raise VolumeLoadError(
            path,
            "has no image series that could be loaded.",
            "See the warnings above for each series.",
        )
    first = next(iter(volumes.values())).metadata
    meta = {
        "source": str(path),
        "study_uid": first.get("study_uid", ""),
        "patient_id": first.get("patient_id", ""),
        "patient_name": first.get("patient_name", ""),
        "series_uids": {key: v.metadata["series_uid"] for key, v in volumes.items()},
    }
    return Study(volumes, meta)
