"""npe2 reader: NIfTI files, DICOM files and DICOM folders -> napari layers.

``get_reader`` answers fast and never raises: it returns ``None`` for paths this plugin
does not read (so napari tries other readers), and a reader function otherwise. The reader
function raises :class:`~napari_atlas_annotate.io.VolumeLoadError` for a file that is ours
but broken; napari wraps it in a ``ReaderPluginError`` whose message names the file, the
problem and the fix, and shows it without closing the viewer.

A NIfTI file holding a label map (non-negative integers, few distinct values) opens as a
Labels layer with the AbdomenAtlas class names and colours; a per-organ mask named after a
class (``segmentations/liver.nii.gz``) gets that class's name and colour. A DICOM folder
holding several series (a lumbar MRI study) opens each series as its own image layer,
named by SeriesDescription. A folder holding several studies (a folder of cases) is
refused with the study folders to open instead: layers share one world, so two patients
would be shown as one. One file of a series opens the series (its stack) from the files
beside it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..classes import ABDOMEN_ATLAS_CLASSES, CLASS_COLORS, class_names
from ..io.folder_walk import walk
from ..stacks import stack_key
from ..volume import Volume
from .layers import LayerDataTuple, grid_metadata, image_layer_data, labels_layer_data

PathOrPaths = str | Sequence[str]
ReaderFunction = Callable[[PathOrPaths], list[LayerDataTuple]]

_NIFTI = (".nii", ".nii.gz")
_LABEL_HINTS = ("label", "seg", "mask", "truth", "annotation", "gt")
#: Files inspected (by name, then by the DICM magic) before deciding a folder holds no DICOM.
_MAX_PROBE = 200
#: Studies named in the message refusing a folder of several (a dataset root holds hundreds).
_MAX_LISTED = 5


def _is_nifti(path: str) -> bool:
    return path.lower().endswith(_NIFTI)


def _has_dicm_magic(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _is_dicom_file(path: str) -> bool:
    return path.lower().endswith((".dcm", ".dicom")) or _has_dicm_magic(path)


def _folder_has_dicom(folder: str) -> bool:
    """True if any of the first files under ``folder`` is DICOM (by suffix or magic)."""
    seen = 0
    for root, dirs, files in walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            if _is_dicom_file(os.path.join(root, name)):
                return True
            seen += 1
            if seen >= _MAX_PROBE:
                return False
    return False


def _readable(path: str) -> bool:
    if os.path.isdir(path):
        return _folder_has_dicom(path)
    if _is_nifti(path):
        return True
    return os.path.isfile(path) and _is_dicom_file(path)


def get_reader(path: PathOrPaths) -> ReaderFunction | None:
    """npe2 ``napari_get_reader``: a reader function for ``path``, or ``None``.

    Parameters
    ----------
    path
        A file or folder, or a list of them (napari passes a list when stacking).
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(_readable(os.fspath(p)) for p in paths):
        return None
    return read_paths


def read_paths(path: PathOrPaths) -> list[LayerDataTuple]:
    """Read every path into layer data tuples (images first, then labels).

    Raises
    ------
    VolumeLoadError
        When a file is NIfTI or DICOM but cannot be read correctly.
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    # One file of a series opens the whole series: with every slice selected (napari hands
    # them over one call at a time, or all in one), a file whose series is already open in
    # the viewer or earlier in this call adds nothing.
    shown = _files_in_current_viewer()
    layers: list[LayerDataTuple] = []
    for p in map(os.fspath, paths):
        if os.path.isfile(p) and not _is_nifti(p) and os.path.realpath(p) in shown:
            continue
        read = read_path(p)
        shown.update(f for t in read for f in _source_files(t[1]))
        layers.extend(read)
    if not layers:
        return [(None,)]  # npe2's "read, nothing to add" (napari opens no layer)
    from .shown_slice import is_tilted, watch_for_tilted_layers

    if any(is_tilted(t[1]) for t in layers):
        # napari makes plain layers of these tuples: on a tilted series its brush and
        # status bar would work slices away from the voxel drawn under the mouse
        watch_for_tilted_layers(_current_viewer())
    # Labels over images whatever order the files were given in.
    return sorted(layers, key=lambda t: t[2] == "labels")


def _source_files(meta: dict) -> set[str]:
    grid = grid_metadata(meta) or {}
    files = grid.get("volume_metadata", {}).get("files", [])
    return {os.path.realpath(f) for f in files}


def _current_viewer():
    """napari's current viewer, or None (no viewer, as in a script)."""
    try:
        import napari
    except ImportError:
        return None
    return napari.current_viewer()


def _files_in_current_viewer() -> set[str]:
    """The DICOM files behind the layers of napari's current viewer."""
    viewer = _current_viewer()
    if viewer is None:
        return set()
    return {f for layer in viewer.layers for f in _source_files(layer.metadata)}


def read_path(path: str) -> list[LayerDataTuple]:
    """Layer data for one NIfTI file, DICOM file or DICOM folder."""
    from .. import io

    if _is_nifti(path):
        volume = io.load_nifti(path)
        if looks_like_labels(volume):
            return [_labels_from_file(volume, path)]
        return [image_layer_data(volume)]
    if os.path.isdir(path):
        refuse_several_studies(path)
        # Every image series of the folder (non-image objects such as SEG are left out),
        # each named by its SeriesDescription.
        return [image_layer_data(vol, name=key) for key, vol in io.load_study(path)]
    volume = series_of_file(path) or io.load_volume(path)
    name = volume.metadata.get("series_description") or None
    return [image_layer_data(volume, name and stack_key(name, volume.metadata))]


def series_of_file(path: str) -> Volume | None:
    """The series (the stack of it) that the DICOM file ``path`` is one image of.

    Opening one slice of a CT gives the whole CT, read from the files beside it (not from
    subfolders), as ITK-SNAP and Slicer do; a one-slice layer is not what a reader wants to
    look at or paint on. ``None`` when no other file beside it belongs to its series (a
    multi-frame file, a lone file): the file is then read on its own.
    """
    from ..io import VolumeLoadWarning
    from ..io.dicom import plan_stacks
    from ..io.dicom_scan import HeaderScan

    folder = os.path.dirname(os.path.abspath(path))
    with os.scandir(folder) as entries:
        siblings = sorted(e.path for e in entries if e.is_file() and not e.name.startswith("."))
    if len(siblings) < 2:
        return None
    target = os.path.realpath(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VolumeLoadWarning)  # other files are not ours to judge
        found = HeaderScan(keep_headers=True).read(siblings).take_series()
    for info in found:
        files = {os.path.realpath(f) for f in info.files}
        if not info.is_image or target not in files:
            continue
        if len(files) < 2:
            return None
        for plan in plan_stacks(info, folder, warn=False):
            volume = plan.read()
            if target in {os.path.realpath(f) for f in volume.metadata.get("files", [])}:
                return volume
    return None


def refuse_several_studies(folder: str) -> None:
    """Raise when ``folder`` holds image series of more than one study.

    A folder of cases (one CT per patient) would otherwise open as layers overlaid in one
    world, two patients shown as one. A header-only scan (no pixels) finds the studies, so
    a dataset root is refused before anything large is read.

    Raises
    ------
    VolumeLoadError
        Naming each study's folder and patient, and saying to open one of them.
    """
    from ..io import VolumeLoadError, VolumeLoadWarning
    from ..io.dicom_scan import list_series

    with warnings.catch_warnings():
        # The load that follows gives the same warnings (skipped files) once.
        warnings.simplefilter("ignore", VolumeLoadWarning)
        found = list_series(folder, headers=False)
    studies: dict[str, list[str]] = {}
    for info in found:
        if info.is_image:
            studies.setdefault(info.study_uid, []).extend(os.fspath(f) for f in info.files)
    if len(studies) < 2:
        return
    places = sorted(
        (os.path.relpath(os.path.commonpath([os.path.dirname(f) for f in files]), folder), files)
        for files in studies.values()
    )
    lines = [
        f"{where}/ (patient {_patient_id(files[0])}, {len(files)} files)"
        for where, files in places[:_MAX_LISTED]
    ]
    if len(studies) > _MAX_LISTED:
        lines.append(f"and {len(studies) - _MAX_LISTED} more")
    raise VolumeLoadError(
        folder,
        f"holds {len(studies)} studies: " + "; ".join(lines) + ".",
        "Open one study folder at a time (File > Open Folder...), so that no two patients "
        "share one view.",
    )


def _patient_id(path: str) -> str:
    import pydicom

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
    except Exception:  # noqa: BLE001 - only a label for the message
        return "?"
    return str(header.get("PatientID", "") or "?")


def _stem(path: str) -> str:
    base = Path(path).name
    for suffix in _NIFTI:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def looks_like_labels(volume: Volume) -> bool:
    """Whether a NIfTI volume is a label map rather than an image.

    Label maps are non-negative integers with few distinct values (at most 64, or at
    most 255 when the file name says label/seg/mask/truth). CT in Hounsfield units has
    negative values and MR has hundreds of grey levels, so neither is mistaken for labels.
    """
    array = volume.array
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        return False
    if array.size == 0 or int(array.min()) < 0:
        return False
    hinted = any(h in _stem(str(volume.metadata.get("source", ""))).lower() for h in _LABEL_HINTS)
    top = int(array.max())
    if top > 65535:
        return False
    counts = np.bincount(array.ravel().astype(np.int64, copy=False), minlength=1)
    return int(np.count_nonzero(counts)) <= (255 if hinted else 64)


def _labels_from_file(volume: Volume, path: str) -> LayerDataTuple:
    """A Labels layer on the file's own grid (an image opened alongside overlays it)."""
    stem = _stem(path)
    top = int(volume.array.max())
    if stem in CLASS_COLORS and top <= 1:
        names: list[str] = [stem]  # AbdomenAtlas per-organ mask: segmentations/<class>.nii.gz
    else:
        names = class_names(max(top, len(ABDOMEN_ATLAS_CLASSES)))
    return labels_layer_data(volume.array, volume, names, name=stem)
