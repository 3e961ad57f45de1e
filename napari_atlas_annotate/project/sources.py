"""Turn paths a user gives (`atlas-annotate add`) into cases: NIfTI files, DICOM folders
(one case per series for organ projects, one case per study for spine projects) and
phantom ``manifest.json`` files (with their truth, for simulation and evaluation).

Case ids name the case, not the file format: a file or folder with a generic name
(``ct.nii.gz``, ``dicom/``) takes the name of the nearest enclosing folder that says which
case it is (AbdomenAtlas ``BDMAP_00000001/ct.nii.gz`` -> ``BDMAP_00000001``), and paths
given together that would share an id take enclosing folder names until they differ
(``site1/case01.nii.gz``, ``site2/case01.nii.gz`` -> ``site1_case01``, ``site2_case01``).
A folder holding several cases (series folders, study folders) names each after the
folder holding its files, by the same rules (``data/`` -> ``ct_000``, ``ct_001``, ...).
Labels found with an image are kept for ``add --labels``: beside NIfTI images as datasets
lay them out (:mod:`.nifti_folders`), and a DICOM SEG with the series it references
(:mod:`.dicom_segs`).

An RSNA dataset folder is read study folder by study folder (:class:`_StudyStream`),
each study's headers released before the next is read, so that ``add`` holds one study at a
time whatever the dataset's size. An organs folder is scanned as a whole (a DICOM SEG pairs
with a series in another folder, a series may be spread over folders) keeping only what
groups its files into series (:class:`~..io.dicom_scan.FileBrief`, a SEG's references), and
each case's headers are read again as the case is given out (:func:`_with_headers`): a
few hundred bytes per file are held, not the headers of every study.

Before a case is added, :func:`check_case` makes sure the project can open it and that it
is the right kind of image for the project's task. :mod:`.image_identity` finds an image
that is already in another case, by its path or by what it is, whatever its path or format.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..io.folder_walk import files_under, walk
from ..io.nifti import is_nifti_path
from .dicom_segs import is_segmentation, pair_segmentations
from .errors import ProjectError
from .image_identity import ImageFingerprint
from .nifti_folders import NiftiFolder, scan_nifti_folder
from .records import ImageRef
from .rsna_folders import MissingSeries, RsnaFolder, find_rsna_folder

if TYPE_CHECKING:
    import numpy as np

    from ..io.dicom import SeriesPlan
    from ..io.dicom_scan import SeriesInfo

#: File and folder names that say what an image is rather than whose it is (compared
#: without case). A case is named after the nearest enclosing folder with another name.
GENERIC_NAMES = frozenset(
    {
        "ct",
        "mr",
        "mri",
        "pet",
        "image",
        "images",
        "img",
        "imaging",
        "scan",
        "scans",
        "volume",
        "vol",
        "series",
        "study",
        "dicom",
        "dicoms",
        "dcm",
        "nifti",
        "nii",
        "data",
        "raw",
        "input",
        "original",
        "tmp",
        "temp",
    }
)

#: The image modality (DICOM Modality) each project task annotates.
TASK_MODALITY = {"organs": "CT", "spine": "MR"}

#: A spine folder of at most this many files is scanned keeping every file's header (about
#: 540 MB at 27 KB a file), not read again for each study (:func:`_units_of`).
KEEP_SPINE_HEADERS_FILES: int = 20_000

#: File suffixes left out of a case id (compared without case).
_ID_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".dicom", ".ima")
_MAX_ID = 120


@dataclass
class NewCase:
    """A case about to be added.

    Attributes
    ----------
    id, images, truth, source
        What :meth:`Project.add_case` stores.
    series_info
        For images found by scanning DICOM headers: the scanned series, one per image
        (empty for manifests and NIfTI). Used for the modality check and to recognise an
        image already in the project under another path; never stored.
    labels
        Labels found with the image, for ``add --labels``; never stored: beside a NIfTI
        image in a dataset folder, a label file or a folder of per-class masks
        (:mod:`.nifti_folders`); with a DICOM series, the DICOM SEG that references it
        (:mod:`.dicom_segs`); with a study of an RSNA dataset folder, its ``train.csv``
        (:mod:`.rsna_folders`).
    label_points
        The coordinates CSV going with ``labels`` (RSNA ``train_label_coordinates.csv``).
    plans
        Where worked out already (:func:`with_stacks`): each DICOM image's slices in order
        and its grid, from the scanned headers (:func:`~..io.dicom.plan_series`), one per
        image or None; checking and fingerprinting the case use them instead of ordering
        the slices again. Never stored.
    """

    id: str
    images: list[ImageRef]
    truth: dict = field(default_factory=dict)
    source: str = ""
    series_info: list[SeriesInfo | None] = field(default_factory=list, repr=False)
    labels: Path | None = None
    label_points: Path | None = None
    plans: list[SeriesPlan | None] = field(default_factory=list, repr=False)
    series_csv: Path | None = None
    unnamed: list[Path] = field(default_factory=list)


def _safe_id(text: str) -> str:
    text = re.sub(r"\.nii(\.gz)?$", "", text)
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return text[:_MAX_ID] or "case"


# -- case ids ------------------------------------------------------------------------------
def _item_name(path: Path) -> str:
    """A file's name without its image suffix; a folder's name."""
    lower = path.name.lower()
    for suffix in _ID_SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return path.name[: -len(suffix)]
    return path.name


def _stop_folders() -> set[Path]:
    """Folders whose names never name a case: the home folder, its parents, the root."""
    try:
        home = Path(os.path.abspath(Path.home()))
    except RuntimeError:  # no home folder known
        return {Path(os.path.abspath(os.sep))}
    return {home, *home.parents}


def _name_chain(path: Path, stops: set[Path], own: str | None = None) -> list[tuple[str, bool]]:
    """``(id-safe name, generic?)`` of ``path`` (named ``own`` if given) and its enclosing
    folders, nearest first.

    Symbolic links are not followed: a case is named after where the user sees it.
    """
    path = Path(os.path.abspath(path))
    chain = []
    for i, part in enumerate([path, *path.parents]):
        if part in stops or not part.name:
            break
        name = (own or _item_name(part)) if i == 0 else part.name
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
        if safe:
            chain.append((safe, safe.lower() in GENERIC_NAMES))
    return chain


def _join(names_nearest_first: list[str]) -> str:
    text = "_".join(reversed(names_nearest_first))
    return text[-_MAX_ID:].lstrip("._-") or "case"


def _id_candidates(chain: list[tuple[str, bool]]) -> list[str]:
    """Ids for one path, best first: its own name or the nearest telling folder name, then
    more and more enclosing telling names, then with the generic names kept."""
    telling = [i for i, (_, generic) in enumerate(chain) if not generic]
    out = [_join([chain[i][0] for i in telling[:k]]) for k in range(1, len(telling) + 1)]
    start = telling[0] + 1 if telling else 1
    out += [_join([name for name, _ in chain[:depth]]) for depth in range(start, len(chain) + 1)]
    return list(dict.fromkeys(out)) or ["case"]


def case_names(
    paths: Sequence[str | Path], own_names: Sequence[str | None] | None = None
) -> list[str]:
    """Case ids for paths added together: one per path, different for different images.

    Each path is named after itself (or its entry in ``own_names``, when not ``None``:
    nnU-Net's ``<case>_0000.nii.gz`` is ``<case>``), or after its nearest enclosing folder
    when its own name is generic (:data:`GENERIC_NAMES`: ``ct.nii.gz``, ``dicom/``). Paths
    that would share an id take enclosing folder names, nearest last, until the ids differ.
    The same file given twice gets the same id.

    Examples
    --------
    >>> case_names(["atlas/BDMAP_00000001/ct.nii.gz", "atlas/BDMAP_00000002/ct.nii.gz"])
    ['BDMAP_00000001', 'BDMAP_00000002']
    >>> case_names(["site1/case01.nii.gz", "site2/case01.nii.gz", "site2/case02.nii.gz"])
    ['site1_case01', 'site2_case01', 'case02']
    """
    stops = _stop_folders()
    keys = [os.path.realpath(p) for p in paths]
    own_names = list(own_names) if own_names is not None else [None] * len(keys)
    first: dict[str, tuple[Path, str | None]] = {}
    for key, path, own in zip(keys, paths, own_names, strict=True):
        first.setdefault(key, (Path(path), own))
    candidates = {
        key: _id_candidates(_name_chain(path, stops, own)) for key, (path, own) in first.items()
    }
    level = dict.fromkeys(first, 0)
    moved = True
    while moved:
        groups: dict[str, list[str]] = defaultdict(list)
        for key in first:
            groups[candidates[key][level[key]]].append(key)
        moved = False
        for members in groups.values():
            if len(members) < 2:
                continue
            for key in members:
                if level[key] + 1 < len(candidates[key]):
                    level[key] += 1
                    moved = True
    names: dict[str, str] = {}
    taken: set[str] = set()
    for key in first:  # names still shared once every folder name is used: number them
        name, n = candidates[key][level[key]], 2
        while name in taken:
            name, n = f"{candidates[key][level[key]]}_{n}", n + 1
        taken.add(name)
        names[key] = name
    return [names[key] for key in keys]


# -- paths -> cases ------------------------------------------------------------------------
def is_manifest_path(path: str | Path) -> bool:
    """True for a ``.json`` file: a phantom manifest (``atlas-annotate phantoms``)."""
    path = Path(path)
    return path.is_file() and path.name.lower().endswith(".json")


def read_manifest(path: Path, task: str) -> tuple[list[NewCase], Counter[str]]:
    """Cases of a phantom manifest (``atlas-annotate phantoms``) matching the project task,
    and how many cases of each other task it holds (left out)."""
    try:
        manifest = json.loads(Path(path).read_text())
        entries = manifest["cases"]
        tasks = Counter(str(entry.get("task")) for entry in entries)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ProjectError(f"{path}: not a phantom manifest ({exc}).") from exc
    root = Path(path).parent
    out = []
    for entry in entries:
        if entry.get("task") != task:
            continue
        images = [
            ImageRef(
                str(root / im["path"]), im.get("description", ""), im.get("series"), im.get("stack")
            )
            for im in entry["images"]
        ]
        truth = {k: str(root / entry[k]) for k in ("label", "grades", "points") if entry.get(k)}
        out.append(NewCase(_safe_id(entry["id"]), images, truth, source=str(path)))
    del tasks[task]
    return out, tasks


def cases_from_manifest(path: Path, task: str) -> list[NewCase]:
    """Cases of a phantom manifest (``atlas-annotate phantoms``) matching the project task."""
    return read_manifest(path, task)[0]


@dataclass
class _Unit:
    """Images found under a path that make one case: a NIfTI file, one DICOM series
    (organs) or the series of one study (spine).

    ``place`` is the file or folder holding them, which names the case and which its
    images point at; ``by_uid`` says whether the images must name their series because
    ``place`` holds other series too. A NIfTI file in a dataset folder may carry the
    case's ``name`` (nnU-Net channel suffix dropped); ``labels`` are those found beside
    it, or the DICOM SEG of the (organs) series.
    """

    place: Path
    series: list[SeriesInfo]
    by_uid: bool = False
    name: str | None = None
    labels: Path | None = None


def _study_uid(info: SeriesInfo) -> str:
    return info.study_uid


def _place(series: list[SeriesInfo]) -> Path:
    """The file or the innermost folder holding every file of ``series``."""
    from ..io.dicom_scan import file_strings

    files = [os.path.abspath(f) for s in series for f in file_strings(s.files)]
    return Path(os.path.commonpath(files))


def _holders(series: list[SeriesInfo]) -> dict[str, set[int]]:
    """``{folder: ids of the series with a file under it}`` for each folder holding a file
    of ``series`` and each folder between it and the folder holding them all: which series
    a place (:func:`_place`) holds, looked up instead of searched for (a dataset folder
    holds thousands of series). A file, the place of a one-file series, holds that series
    only: files are not listed."""
    from ..io.dicom_scan import file_strings

    folders = [
        (id(info), folder)
        for info in series
        for folder in {os.path.dirname(os.path.abspath(f)) for f in file_strings(info.files)}
    ]
    top = os.path.commonpath([f for _, f in folders]) if folders else ""
    out: dict[str, set[int]] = defaultdict(set)
    for key, path in folders:
        while True:
            out[path].add(key)
            parent = os.path.dirname(path)
            if len(path) <= len(top) or parent == path:
                break
            path = parent
    return out


def _nifti_units(folder: Path, scan: NiftiFolder) -> tuple[list[_Unit], list[tuple[str, str]]]:
    """The cases of a folder of NIfTI images (``scan``), and ``(file, why)`` for the NIfTI
    files that are no case's image or labels."""
    left_out = [(str(path), why) for path, why in scan.left_out]
    units = [_Unit(image.path, [], name=image.name, labels=image.labels) for image in scan.images]
    others = [Path(f) for f in files_under(folder) if not is_nifti_path(f)]
    dicom = next((f for f in others if not f.name.startswith(".") and _is_dicom_file(f)), None)
    if dicom is not None:
        left_out.append(
            (
                str(folder),
                f"DICOM files (e.g. {dicom}) in a folder of NIfTI files were not looked at; "
                "add their series folders on their own.",
            )
        )
    return units, left_out


def _is_dicom_file(path: Path) -> bool:
    """True for a file with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _units_of(
    path: Path, task: str, *, label_maps: bool = False
) -> tuple[list[_Unit], list[tuple[str, str]], list[Path]]:
    """What becomes a case under an image path, ``(path, why)`` for files under it that
    were left out, and, with ``label_maps``, the label maps beside an organs project's
    DICOM series (left out too, and not warned of as skipped: :func:`_label_map_cases`
    says whose they are); :class:`ProjectError` when nothing can.

    A path holding one case is that case's place. A path holding several (a folder of
    series folders, a folder of study folders, a folder of NIfTI files) gives each its own
    place: the folder holding its files, or the NIfTI file.
    """
    if not path.exists():
        raise ProjectError(f"{path}: does not exist. Check the path.")
    # a folder of NIfTI images; NIfTI labels beside DICOM series (phantoms) leave it DICOM
    scan = scan_nifti_folder(path) if path.is_dir() else None
    if scan is not None and not (scan.images or scan.left_out):
        scan = None  # no NIfTI file at all
    nifti = is_nifti_path(path) if path.is_file() else bool(scan and scan.images)
    if nifti and task == "spine":
        raise ProjectError(
            f"{path}: spine projects take DICOM study folders (Sagittal T1, Sagittal "
            "T2/STIR, Axial T2), not NIfTI files."
        )
    if nifti and scan is None:
        return [_Unit(path, [])], [], []
    if nifti:
        return (*_nifti_units(path, scan), [])
    from ..io import VolumeLoadError
    from ..io.dicom_scan import LABEL_MAP_SUFFIXES, NotDicomWarning, list_series

    try:
        # Beyond a small spine folder, the scan keeps what groups the files into series,
        # not their headers (about 27 KB a file: gigabytes for a hospital's lumbar export):
        # each case's are read again as it is given out (_ready). That costs a small MR
        # study about a third more time, so a folder small enough keeps them; for a CT
        # the pixels dwarf the headers, and an organs scan never keeps them.
        keep = task == "spine" and not _holds_more_files(path, KEEP_SPINE_HEADERS_FILES)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scanned = list_series(path, headers=keep)
    except VolumeLoadError as exc:
        raise _no_dicom(path, scan, exc) from exc
    found: list[Path] = []
    for warning in caught:  # an organs project imports label maps: say how, not "skipped"
        message = warning.message
        if label_maps and task != "spine" and isinstance(message, NotDicomWarning):
            found = [f for f in message.files if str(f).lower().endswith(LABEL_MAP_SUFFIXES)]
            rest = [f for f in message.files if f not in found]
            message = NotDicomWarning(message.folder, rest) if rest else None
        if message is not None:
            warnings.warn(message, stacklevel=2)
    return (*_dicom_units(path, scanned, task), found)


def _label_map_cases(
    path: Path, label_maps: list[Path], units: list[_Unit], ids: list[str]
) -> list[tuple[str, str | None]]:
    """``(label map, case id)`` for label maps found beside the DICOM series under
    ``path``: the case whose image lies in the label map's folder or the nearest folder
    above it holding any (None when that folder holds several). An AbdomenAtlas
    ``segmentations/`` folder of per-class masks is named once, as the folder: a 0/1
    mask imported on its own would be read as a label map of class 1."""
    top = Path(os.path.abspath(path))
    holds: dict[Path, set[str]] = defaultdict(set)  # folder -> the cases whose image is in it
    for unit, case_id in zip(units, ids, strict=True):
        place = Path(os.path.abspath(unit.place))
        for folder in (place, *place.parents):
            holds[folder].add(case_id)
            if folder == top:
                break
    out = []
    for label_map in dict.fromkeys(
        f.parent if f.parent.name == "segmentations" and is_nifti_path(f) else f for f in label_maps
    ):
        owner = None
        folder = Path(os.path.abspath(label_map)).parent
        while folder == top or top in folder.parents:
            if folder in holds:
                owner = next(iter(holds[folder])) if len(holds[folder]) == 1 else None
                break
            folder = folder.parent
        out.append((str(label_map), owner))
    return out


def _holds_more_files(path: Path, limit: int) -> bool:
    """Whether more than ``limit`` files lie under ``path`` (counting stops there)."""
    if path.is_file():
        return limit < 1
    count = 0
    for _, _, files in walk(path):
        count += len(files)
        if count > limit:
            return True
    return False


def _no_dicom(path: Path, scan: NiftiFolder | None, exc: Exception) -> ProjectError:
    """The error for a folder without DICOM images (``exc``: what the scan said)."""
    if scan is not None:  # NIfTI labels only
        return ProjectError(
            f"{path}: no images here, only {len(scan.left_out)} NIfTI label file(s) (e.g. "
            f"{scan.left_out[0][0]}). Give the folder holding the images: labels beside "
            "them are found, and imported with --labels NAME."
        )
    return ProjectError(str(exc))


def _only_segmentations(path: Path, first: Path) -> ProjectError:
    return ProjectError(
        f"{path}: no image series here, only DICOM SEG object(s) (e.g. {first}). Give the "
        "folder holding the image series they were drawn on together with them: a SEG "
        "beside its series is found, and imported with --labels NAME."
    )


def _no_image_series(path: Path) -> ProjectError:
    return ProjectError(f"{path}: no image series found (only non-image DICOM objects).")


def _groups(series: list[SeriesInfo], task: str) -> list[list[SeriesInfo]]:
    """The image series of each case: one study (series sharing a StudyInstanceUID) for
    spine, one series for organs."""
    if task != "spine":
        return [[info] for info in series]
    studies: dict[str, list[SeriesInfo]] = {}
    for info in series:
        studies.setdefault(_study_uid(info), []).append(info)
    return list(studies.values())


def _dicom_units(
    path: Path, scanned: list[SeriesInfo], task: str
) -> tuple[list[_Unit], list[tuple[str, str]]]:
    """The cases of the DICOM series ``scanned`` under ``path``, in folder order, and
    ``(file, why)`` for the DICOM SEG files left out."""
    series = [s for s in scanned if not s.non_image]
    segmentations = [s for s in scanned if is_segmentation(s)]
    if not series and segmentations:
        raise _only_segmentations(path, segmentations[0].files[0])
    if not series:
        raise _no_image_series(path)
    paired = _pair_segmentations(series, segmentations, task)
    groups = _groups(series, task)
    if len(groups) == 1:
        labels = paired.labels.get(groups[0][0].series_uid) if task != "spine" else None
        return [_Unit(path, groups[0], by_uid=task == "spine", labels=labels)], paired.left_out
    units = []
    holders = _holders(series)
    for group in groups:
        place = _place(group)
        others = bool(holders.get(str(place), set()) - {id(s) for s in group})  # others there
        labels = paired.labels.get(group[0].series_uid) if task != "spine" else None
        units.append(_Unit(place, group, by_uid=task == "spine" or others, labels=labels))
    return sorted(units, key=lambda unit: str(unit.place)), paired.left_out  # folder order


def _pair_segmentations(images: list[SeriesInfo], segmentations: list[SeriesInfo], task: str):
    """:func:`.dicom_segs.pair_segmentations` of scanned series, also where the scan kept
    no headers (:attr:`SeriesInfo.headers_read`): each SEG file then stands in with a header
    naming the series it references, those of its ReferencedSeriesSequence and those of
    the scanned slices its SourceImageSequence names (:attr:`SeriesInfo.references`), as
    the pairing reads them from whole headers."""
    from pydicom.dataset import Dataset

    if all(info.headers_read for info in images + segmentations):
        return pair_segmentations(images, segmentations, task)
    # the series of each slice a SEG names (one table: a dataset names millions)
    series_of_slice: dict[str, str | None] = {
        uid: None for seg in segmentations for ref in seg.references for uid in ref.instances
    }
    for info in images:
        for uid in info.instance_uids:
            if uid in series_of_slice:
                series_of_slice[uid] = info.series_uid

    def stand_in(series: list[str]) -> Dataset:
        header = Dataset()
        header.ReferencedSeriesSequence = []
        for uid in dict.fromkeys(series):  # each once: a SEG names each slice
            item = Dataset()
            item.SeriesInstanceUID = uid
            header.ReferencedSeriesSequence.append(item)
        return header

    views = []
    for seg in segmentations:
        headers = [
            stand_in(
                list(ref.series)
                + [s for s in map(series_of_slice.__getitem__, ref.instances) if s is not None]
            )
            for ref in seg.references
        ]
        views.append(dataclasses.replace(seg, headers=headers))
    return pair_segmentations(images, views, task)


def _with_headers(case: NewCase) -> NewCase:
    """``case`` with the whole headers of its scanned series, read again where the scan
    kept none (:func:`~..io.dicom_scan.with_headers`). A file changed since it was scanned
    is left for :func:`check_case` to report, as loading it does."""
    from ..io import VolumeLoadError
    from ..io.dicom_scan import with_headers

    infos = []
    for info in case.series_info:
        try:
            infos.append(None if info is None else with_headers(info))
        except VolumeLoadError:
            infos.append(info)
    return dataclasses.replace(case, series_info=infos)


def _ready(case: NewCase, task: str) -> NewCase:
    """A scanned case as it is handed out: its series' headers read again and, for a spine
    study, each series of several stacks at different angles split (:func:`with_stacks`)."""
    case = _with_headers(case)
    return with_stacks(case) if task == "spine" else case


def _unit_ids(batch: Sequence[tuple[Path, list[_Unit]]], given: dict[int, str]) -> list[list[str]]:
    """Case ids of the units of paths added together (``given``: ids fixed by the user, by
    position in ``batch``): :func:`case_names` of the units' places; units of one path
    sharing a place (several series in one folder) add ``_s<series number>``, studies
    ``_<n>``."""
    every = [unit for _, units in batch for unit in units]
    names = iter(case_names([unit.place for unit in every], [unit.name for unit in every]))
    out = []
    for k, (_, units) in enumerate(batch):
        ids = [next(names) for _ in units]
        if k in given:
            ids = [given[k]] * len(units)
        shared = Counter(ids)
        for j, unit in enumerate(units):
            if shared[ids[j]] > 1 and len(unit.series) == 1:
                number = unit.series[0].series_number
                ids[j] = f"{ids[j]}_s{number if number is not None else j + 1}"
            elif shared[ids[j]] > 1:  # studies (spine)
                ids[j] = f"{ids[j]}_{j + 1}"
        taken: set[str] = set()
        for j, name in enumerate(ids):  # series numbers repeated in one folder
            n = 2
            while ids[j] in taken:
                ids[j], n = f"{name}_{n}", n + 1
            taken.add(ids[j])
        out.append(ids)
    return out


def _unit_case(path: Path, unit: _Unit, case_id: str) -> NewCase:
    if not unit.series:  # a NIfTI file, given or found in a folder
        image = ImageRef(str(unit.place), unit.place.name)
        return NewCase(case_id, [image], source=str(path), labels=unit.labels)
    images = [
        ImageRef(str(unit.place), s.description, s.series_uid if unit.by_uid else None)
        for s in unit.series
    ]
    return NewCase(
        case_id, images, source=str(path), series_info=list(unit.series), labels=unit.labels
    )


#: The plane a lumbar series description names (RSNA's three, as Kaggle spells them).
_DESCRIBED_PLANES = {"sagittal": "sagittal", "axial": "axial", "coronal": "coronal"}


def _check_plane(csv: Path, key: tuple[int, int], description: str, info: SeriesInfo) -> None:
    """Warn when the series CSV names a series by a plane its images are not in (a
    Sagittal T1 described as "Axial T2", two rows swapped): the grader and the grade
    sheet take each series for what its name says. One header is read."""
    import numpy as np
    import pydicom

    from ..io import VolumeLoadWarning
    from ..io.dicom_scan import file_strings

    said = next((p for w, p in _DESCRIBED_PLANES.items() if w in description.lower()), None)
    files = file_strings(info.files)
    if said is None or not files:
        return
    try:
        header = pydicom.dcmread(files[0], stop_before_pixels=True)
        cosines = np.asarray(header.ImageOrientationPatient, float)
    except (OSError, AttributeError, ValueError, TypeError, pydicom.errors.InvalidDicomError):
        return  # no orientation to go by: the load says what is wrong with the file
    normal = np.abs(np.cross(cosines[:3], cosines[3:]))
    plane = ("sagittal", "coronal", "axial")[int(np.argmax(normal))]  # normal along x, y, z
    if plane != said:
        warnings.warn(
            f"{csv}: series {key[1]} of study {key[0]} is described as {description!r}, but "
            f"its images are {plane} (ImageOrientationPatient of {files[0]}); the grader and "
            "the grade sheet take a series for what its name says. Check that row (two rows "
            "swapped?), then run the add again: it renames the series.",
            VolumeLoadWarning,
            stacklevel=3,
        )


class _RsnaNames:
    """Names the studies of an RSNA dataset folder one by one (:meth:`name`), noting
    which of the series CSV's series were found (:attr:`found`)."""

    def __init__(self, rsna: RsnaFolder) -> None:
        self.rsna = rsna
        self.graded = rsna.graded_studies()
        self.found: set[tuple[int, int]] = set()

    def name(self, case: NewCase) -> NewCase:
        """``case`` with each series named as the series CSV says and, for a study the
        grades CSV grades, the dataset's grades and coordinates as its labels.

        A series the CSV has no row for keeps the name its headers give (none, in
        Kaggle's files) and is listed in :attr:`NewCase.unnamed`."""
        rsna = self.rsna
        images, study, unnamed = [], None, []
        for ref, info in zip(case.images, case.series_info, strict=False):
            place = _place([info]) if info is not None else None
            key = rsna.series_of(place) if place is not None else None
            name = rsna.description(*key) if key else None
            images.append(dataclasses.replace(ref, description=name) if name else ref)
            if name and info is not None:
                _check_plane(rsna.series_csv, key, name, info)
            if key:
                self.found.add(key)
                study = study or key[0]
                if name is None:
                    unnamed.append(place)
        images += case.images[len(images) :]
        labels, points = case.labels, case.label_points
        if study is not None and study in self.graded:
            labels, points = rsna.grades, rsna.points
        csv = rsna.series_csv if study is not None else None
        return dataclasses.replace(
            case,
            images=images,
            labels=labels,
            label_points=points,
            series_csv=csv,
            unnamed=unnamed,
        )


def _named_by_rsna(
    path: Path, cases: list[NewCase], rename_single: bool = True
) -> tuple[list[NewCase], list[MissingSeries]]:
    """Studies of an RSNA dataset folder named by :class:`_RsnaNames`, and the CSV's
    rows for the studies under ``path`` whose series is not on disk. The one study of a
    folder holding one is named by its study_id unless ``rename_single`` is False (the
    user named it)."""
    try:
        rsna = find_rsna_folder(path)
    except ValueError as exc:
        raise ProjectError(str(exc)) from None
    if rsna is None:
        return cases, []
    names = _RsnaNames(rsna)
    out = [names.name(case) for case in cases]
    if len(out) == 1 and rename_single and out[0].series_info:
        place = _place(out[0].series_info[:1])  # <split>_images/<study_id>/<series_id>
        study = _kaggle_study_id(place, rsna) if place is not None else None
        if study is not None:
            out[0] = dataclasses.replace(out[0], id=study)
    return out, rsna.missing_series(path, names.found)


@dataclass
class SeriesRenames:
    """How a case already in the project takes the series names its RSNA series CSV
    gives now (:func:`series_renames`).

    Attributes
    ----------
    descriptions
        ``{index of a stored image: its new description}``.
    points
        ``{old name: new name}`` for the points naming a renamed series: by its old
        description (for an unnamed image, ``series <index + 1>``, the name the grade sheet
        and the grader give points on it) or by its folder name (RSNA's ``series_id``). A
        name another image keeps is left out (it still names that image).
    series
        ``(series folder, old description, new description, images)`` per renamed series
        (an Axial T2 of several stacks is several images).
    """

    descriptions: dict[int, str] = field(default_factory=dict)
    points: dict[str, str] = field(default_factory=dict)
    series: list[tuple[Path, str, str, int]] = field(default_factory=list)


def series_renames(case: NewCase, stored: Sequence[ImageRef], resolve) -> SeriesRenames:
    """The series names of ``stored`` (the images of the case with ``case``'s id already
    in the project) that ``case``'s RSNA series CSV (:attr:`NewCase.series_csv`) gives
    otherwise. Only names the CSV gives are taken: a series it has no row for keeps its
    name. A stored image is the CSV's series by SeriesInstanceUID (``series``), else by
    its path being the series' folder; ``resolve`` turns a stored path into a path.
    Renames are applied together: two series whose names the CSV swaps swap their
    points too.
    """
    out = SeriesRenames()
    if case.series_csv is None:
        return out
    unnamed = {Path(p) for p in case.unnamed}
    named: dict[tuple[str, str], tuple[Path, str]] = {}
    for ref, info in zip(case.images, case.series_info, strict=False):
        if info is None or not ref.description:
            continue
        folder = _place([info])
        if folder not in unnamed:
            named[("uid", info.series_uid)] = (folder, ref.description)
            named[("path", str(folder))] = (folder, ref.description)
    renamed: dict[Path, list] = {}
    old_names: dict[str, set[str]] = defaultdict(set)
    kept = set()
    for i, ref in enumerate(stored):
        key = ("uid", ref.series) if ref.series else ("path", os.path.abspath(resolve(ref.path)))
        folder, new = named.get(key, (None, ref.description))
        own = ref.description or f"series {i + 1}"  # the grade sheet's name for an unnamed
        if folder is None or new == ref.description:
            kept.add(own)
            continue
        out.descriptions[i] = new
        old_names[own].add(new)
        old_names[folder.name].add(new)
        entry = renamed.setdefault(folder, [folder, ref.description, new, 0])
        entry[3] += 1
    out.points = {
        old: next(iter(new)) for old, new in old_names.items() if len(new) == 1 and old not in kept
    }
    out.series = [tuple(entry) for entry in renamed.values()]
    return out


def with_stacks(case: NewCase) -> NewCase:
    """``case`` with each DICOM series that holds several stacks at different angles (a
    lumbar axial T2 angled through each disc) split into one image per stack, and the
    plan of each DICOM image (:attr:`NewCase.plans`) kept."""
    from ..io import VolumeLoadError
    from ..io.dicom import list_series, plan_stacks, select_series

    infos = list(case.series_info) + [None] * (len(case.images) - len(case.series_info))
    images, kept, plans = [], [], []
    for ref, info in zip(case.images, infos, strict=True):
        planned: list = [None]
        if ref.stack is None and not is_nifti_path(ref.path):
            try:
                scanned = info or select_series(list_series(ref.path), ref.path, ref.series)
                info = scanned  # the old behaviour: kept when the series is split
                planned = plan_stacks(scanned, ref.path, warn=False)
            except (VolumeLoadError, OSError):
                planned = [None]  # checking the case says what is wrong with it
        stacks = [ref.stack] if len(planned) == 1 else range(1, len(planned) + 1)
        for stack, plan in zip(stacks, planned, strict=True):
            images.append(dataclasses.replace(ref, stack=stack))
            kept.append(info)
            plans.append(plan)
    if len(images) == len(case.images):
        return dataclasses.replace(case, plans=plans)
    return dataclasses.replace(case, images=images, series_info=kept, plans=plans)


def with_plans(case: NewCase) -> NewCase:
    """``case`` with the plan of each scanned DICOM image (:attr:`NewCase.plans`) worked
    out once from its scanned headers (:func:`~..io.dicom.plan_series`), so that
    fingerprinting it, checking it and importing its DICOM SEG (its grid and slice UIDs)
    order its slices once and read no header again. A case planned already is returned as
    it is; an image that cannot be planned is left None, for :func:`check_case` to report.
    """
    if case.plans or not any(info is not None for info in case.series_info):
        return case
    from ..io import VolumeLoadError
    from ..io.dicom import plan_series

    infos = list(case.series_info) + [None] * (len(case.images) - len(case.series_info))
    plans = []
    for ref, info in zip(case.images, infos, strict=True):
        try:
            plans.append(None if info is None else plan_series(info, ref.path, ref.stack))
        except VolumeLoadError:
            plans.append(None)
    return dataclasses.replace(case, plans=plans)


def cases_from_path(path: Path, task: str, name: str | None = None) -> list[NewCase]:
    """The cases one path stands for; raises :class:`ProjectError` for unusable input.

    Parameters
    ----------
    path
        A NIfTI file, a DICOM file or folder, or a phantom ``manifest.json``.
    task
        The project's task (``"organs"`` or ``"spine"``). A DICOM folder gives one case
        per image series in an organs project and one case per study (series sharing a
        StudyInstanceUID) in a spine project.
    name
        Case id for an image path holding one case (a manifest names its own cases); by
        default from :func:`case_names`. A folder holding several cases names each after
        the folder holding its files, by the same rules (``data/ct/ct_000/dicom`` ->
        ``ct_000``); cases whose files share a folder add ``_s<series number>``.
    """
    path = Path(path)
    if is_manifest_path(path):
        cases = cases_from_manifest(path, task)
    else:
        units, _, _ = _units_of(path, task)
        [ids] = _unit_ids([(path, units)], {0: name} if name else {})
        cases = [_unit_case(path, unit, case_id) for unit, case_id in zip(units, ids, strict=True)]
        if task == "spine":
            cases, _ = _named_by_rsna(path, cases)
    return [_ready(case, task) for case in cases]


@dataclass
class FoundCases:
    """What the paths given to ``atlas-annotate add`` hold (see :func:`find_cases`).

    Attributes
    ----------
    cases
        The cases, in the order of the paths (an iterator, with ``find_cases(lazy=True)``).
    refused
        ``(path, reason)`` for each path that gives no case.
    ignored
        ``(manifest path, {other task: number of cases})`` for manifests holding cases
        of another task than the project's, left out.
    left_out
        ``(file, why)`` for files in the given folders that are no case's image or labels
        (label files without an image, further nnU-Net channels).
    label_maps
        ``(file, case id or None)`` for the label maps (NIfTI, ``.seg.nrrd``) found beside
        an organs project's DICOM series, which ``add`` does not pair with them (only a
        DICOM SEG): ``atlas-annotate import`` brings each into its case.
    missing
        Rows of an RSNA series CSV naming a series of a given study that is not on disk.
    """

    cases: list[NewCase] | Iterator[NewCase] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    label_maps: list[tuple[str, str | None]] = field(default_factory=list)
    missing: list[MissingSeries] = field(default_factory=list)


def find_cases(
    paths: Sequence[str | Path], task: str, case_id: str | None = None, *, lazy: bool = False
) -> FoundCases:
    """The cases of paths added together, named together (see :func:`case_names`).

    Parameters
    ----------
    paths
        NIfTI files, DICOM files or folders, phantom manifests.
    task
        The project's task.
    case_id
        Id of the case an image path holds (``--id``; meant for a single path). A path
        holding several cases gives ``<case_id>_s<series number>`` (studies:
        ``<case_id>_<n>``).
    lazy
        Give :attr:`FoundCases.cases` as an iterator, to be used once: the other fields
        are complete once it is used up. An RSNA dataset folder given on its own is then
        read study by study (:class:`_StudyStream`), each study's headers released
        once the next is asked for, and the headers of an organs case's series are read
        when it is asked for, so that memory does not grow with the number of studies;
        the cases are the same either way.
    """
    found = FoundCases()
    cases = _cases(paths, task, case_id, found)
    found.cases = cases if lazy else list(cases)  # type: ignore[assignment]
    return found


def _cases(
    paths: Sequence[str | Path], task: str, case_id: str | None, found: FoundCases
) -> Iterator[NewCase]:
    if len(paths) == 1 and case_id is None and task == "spine":
        stream = _StudyStream.of(Path(paths[0]))
        if stream is not None:
            try:
                yield from stream.cases(found)
            except ProjectError as exc:
                found.refused.append((str(paths[0]), str(exc)))
            return
    per_path: list[list[NewCase]] = [[] for _ in paths]
    batch: list[tuple[int, Path, list[_Unit], list[Path]]] = []
    for k, given in enumerate(paths):
        path = Path(given)
        try:
            if is_manifest_path(path):
                per_path[k], others = read_manifest(path, task)
            else:
                units, left_out, label_maps = _units_of(path, task, label_maps=True)
                batch.append((k, path, units, label_maps))
                found.left_out += left_out
                continue
        except ProjectError as exc:
            found.refused.append((str(given), str(exc)))
            continue
        if not per_path[k]:
            held = ", ".join(f"{n} {other}" for other, n in sorted(others.items()))
            why = f": it holds {held} case(s)" if held else ""
            found.refused.append((str(given), f"no {task} cases in this manifest{why}."))
        elif others:
            found.ignored.append((str(given), dict(sorted(others.items()))))
    given_ids = {j: case_id for j in range(len(batch))} if case_id else {}
    ids = _unit_ids([(path, units) for _, path, units, _ in batch], given_ids)
    for (k, path, units, label_maps), unit_ids in zip(batch, ids, strict=True):
        found.label_maps += _label_map_cases(path, label_maps, units, unit_ids)
        per_path[k] = [_unit_case(path, u, i) for u, i in zip(units, unit_ids, strict=True)]
        if task == "spine":
            try:
                per_path[k], missing = _named_by_rsna(path, per_path[k], not case_id)
                found.missing += [m for m in missing if m not in found.missing]
            except ProjectError as exc:
                found.refused.append((str(path), str(exc)))
                per_path[k] = []
    for cases in per_path:
        while cases:  # each case's headers are read as it is given out
            yield _ready(cases.pop(0), task)


# -- an RSNA dataset folder, study by study --------------------------------------------------
def _kaggle_study_id(folder: Path, rsna: RsnaFolder) -> str | None:
    """The study_id of ``folder`` when it is a study folder of ``rsna`` in Kaggle's layout
    (``<split>_images/<study_id>``) or a series folder in one, else None: a folder holding
    that one study is added as a case named by it, as the dataset's CSVs know the study by
    it."""
    for study in (folder, folder.parent):
        if study.parent == rsna.images and study.name.isdigit():
            return study.name
    return None


@dataclass
class _StudyStream:
    """An RSNA dataset folder (its root or images folder, given on its own to a spine
    project) read study folder by study folder, each study's headers released before
    the next is read: what :func:`find_cases` finds in it is what a scan of the whole
    folder gives (:func:`_units_of`), with memory that does not grow with the number of
    studies.

    What a whole scan decides from every header at once is decided here as follows.

    * Which files make a study: its folder's (Kaggle's layout: one study per folder).
    * Case ids: the id :func:`case_names` gives a study depends on the other studies'
      places only where their names clash. A study's id is taken as soon as it is read
      when no file or folder outside its study folder (nor the folders above) has a
      name that could make any other case's id the same (:attr:`owners`); otherwise the
      studies left are read together and named as a whole scan names them.
    * The one case of a folder holding a single study is named after the folder given:
      the first study waits until a second is found.
    * Warnings and errors about the files read are given once, for the whole folder.

    A study whose series lie in two study folders, against Kaggle's layout, cannot be
    seen as one before the first folder's case is given out: it gives a case per folder
    (their images are not the same, so both are added), where a whole scan gave one case
    named after the images folder.
    """

    path: Path
    task: str
    rsna: RsnaFolder
    nifti: NiftiFolder | None
    studies: list[Path]
    others: list[Path]
    #: ``{id-safe name: index of the one study folder holding things so named, or -1}``
    owners: dict[str, int]
    #: ``(sort key, first file, files left out)`` of each DICOM SEG series read
    segmentations: list[tuple[tuple, Path, list[tuple[str, str]]]] = field(default_factory=list)
    #: the cases given out, by place only (their headers released)
    stubs: list[_Unit] = field(default_factory=list)

    @classmethod
    def of(cls, path: Path) -> _StudyStream | None:
        """How to read ``path`` study by study; None where it is no RSNA dataset folder
        (root or images folder) or its study folders cannot be told apart by name."""
        if not path.is_dir():
            return None
        try:
            rsna = find_rsna_folder(path)
        except ValueError:
            return None  # the whole scan refuses it, naming the CSV
        parts = rsna.study_folders(path) if rsna is not None else None
        if parts is None:
            return None
        nifti = scan_nifti_folder(path)
        if nifti.images:
            return None  # refused as a whole: spine takes DICOM
        studies, others = parts
        places = [os.path.abspath(study) for study in studies]
        for a, b in zip(places, places[1:], strict=False):
            if b.startswith(a) and b[len(a)] < os.sep:  # "1" and "1.5": in another order
                return None
        owners = _name_owners(path, studies)
        if owners is None:
            return None
        nifti = nifti if nifti.left_out else None
        return cls(path, "spine", rsna, nifti, studies, others, owners)

    def cases(self, found: FoundCases) -> Iterator[NewCase]:
        """The cases, study by study; fills ``found``'s other fields once done."""
        from ..io import VolumeLoadError
        from ..io.dicom_scan import HeaderScan, candidate_files

        names = _RsnaNames(self.rsna)
        total = HeaderScan()  # what was read, without the headers
        pending: list[tuple[_Unit, str]] = []  # cases waiting for a second one
        n_units = 0
        rest = HeaderScan()  # what is read as a whole
        for other in self.others:  # the root's CSVs and other folders
            rest.read(candidate_files(other))
        if rest.has_images():  # images outside the study folders: all read as a whole
            for study in self.studies:
                rest.read(candidate_files(study))
            studies = []
        else:
            self._taken(total, rest)
            rest, studies = None, self.studies
        for k, study in enumerate(studies):
            scan = HeaderScan().read(candidate_files(study))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                series = scan.series()
            units = self._units(series)
            ids = [_first_id(unit.place) for unit in units]
            if not self._own_ids(units, ids, k):  # the studies left are read together
                rest = scan
                for later in self.studies[k + 1 :]:
                    rest.read(candidate_files(later))
                break
            for warning in caught:
                warnings.warn(warning.message, stacklevel=2)
            scan.groups = {}
            self._taken(total, scan, series)
            del scan, series, caught
            n_units += len(units)
            pending += zip(units, ids, strict=True)
            del units
            while n_units > 1 and pending:
                unit, case_id = pending.pop(0)
                yield self._case(unit, case_id, names)
                del unit
        if rest is not None:  # read as a whole, as a whole scan would
            series = rest.take_series()
            self._taken(total, rest, series)
            units = self._units(series)
            del series
            before = self.stubs + [unit for unit, _ in pending]
            ids = _unit_ids([(self.path, before + units)], {})[0][len(before) :]
            n_units += len(units)
            pending += zip(units, ids, strict=True)
            del units
        try:
            total.report(self.path)
        except VolumeLoadError as exc:
            raise _no_dicom(self.path, self.nifti, exc) from exc
        if not n_units:
            if self.segmentations:
                raise _only_segmentations(self.path, min(self.segmentations)[1])
            raise _no_image_series(self.path)
        if n_units == 1:  # the folder's one case: named after it, or by its study_id
            [(unit, _)] = pending
            study = _kaggle_study_id(unit.place, self.rsna)
            unit = _Unit(self.path, unit.series, by_uid=True)
            pending = [(unit, study or _unit_ids([(self.path, [unit])], {})[0][0])]
        while pending:
            unit, case_id = pending.pop(0)
            yield self._case(unit, case_id, names)
            del unit
        self.segmentations.sort(key=lambda seg: seg[0])
        found.left_out += [entry for *_, entries in self.segmentations for entry in entries]
        found.missing += self.rsna.missing_series(self.path, names.found)

    def _units(self, series: list[SeriesInfo]) -> list[_Unit]:
        """The studies of ``series`` (one study folder's, or all those left), each at
        the folder holding its files, in folder order."""
        images = [s for s in series if not s.non_image]
        units = [_Unit(_place(group), group, by_uid=True) for group in _groups(images, "spine")]
        return sorted(units, key=lambda unit: str(unit.place))

    def _own_ids(self, units: list[_Unit], ids: list[str], k: int) -> bool:
        """Whether the ids of study folder ``k``'s cases are theirs whatever the other
        study folders hold: each a name only things in folder ``k`` bear."""
        return (
            len({unit.place for unit in units}) == len(units)
            and len(set(ids)) == len(ids)
            and all(_owned(case_id, k, self.owners) for case_id in ids)
        )

    def _taken(self, total, scan, series: list[SeriesInfo] | None = None) -> None:
        """Note what ``scan`` read (its headers are dropped) and its DICOM SEG files."""
        from ..io.dicom_scan import series_order

        series = scan.take_series() if series is None else series
        total.add(scan)
        for info in series:
            if is_segmentation(info):
                left_out = pair_segmentations([], [info], self.task).left_out
                self.segmentations.append(
                    ((series_order(info), info.files[0]), info.files[0], left_out)
                )

    def _case(self, unit: _Unit, case_id: str, names: _RsnaNames) -> NewCase:
        self.stubs.append(_Unit(unit.place, []))
        return with_stacks(names.name(_unit_case(self.path, unit, case_id)))


def _first_id(place: Path) -> str:
    """The id :func:`case_names` gives ``place`` unless another place's name clashes."""
    return _id_candidates(_name_chain(place, _stop_folders()))[0]


def _safe_names(name: str) -> set[str]:
    """The id-safe forms of a file or folder's name (own name, or name without suffix)."""
    names = {name, _item_name(Path(name))}
    return {re.sub(r"[^A-Za-z0-9._-]+", "_", n).strip("._-") for n in names} - {""}


def _name_owners(path: Path, studies: list[Path]) -> dict[str, int] | None:
    """``{id-safe name: index of the study folder holding everything so named}``, -1 for
    a name found in several study folders or above them (``path`` and its parents, the
    images folder): :func:`_owned`. None when a name is longer than a case id (a case id
    cut to length could then be any name's end)."""
    owners: dict[str, int] = {}

    def note(name: str, k: int) -> bool:
        for safe in _safe_names(name):
            if len(safe) > _MAX_ID:
                return False
            owners[safe] = k if owners.get(safe, k) == k else -1
        return True

    stops = _stop_folders()
    above = {Path(os.path.abspath(study)).parent for study in studies}
    for folder in above | {Path(os.path.abspath(path))}:
        for part in [folder, *folder.parents]:
            if part in stops or not part.name:
                break
            note(part.name, -1)
    for k, study in enumerate(studies):
        if not note(study.name, k):
            return None
        for _, folders, files in walk(study):
            if not all(note(name, k) for name in folders + files):
                return None
    return owners


def _owned(case_id: str, k: int, owners: dict[str, int]) -> bool:
    """Whether no case outside study folder ``k`` can be named ``case_id``: a case id
    is a name, or names joined by '_' ending with one, so every name ``case_id`` could
    end with is borne by things in folder ``k`` only, or by nothing."""
    ends = [case_id] + [case_id[i + 1 :] for i, c in enumerate(case_id) if c == "_"]
    return all(owners.get(end, k) == k for end in ends)


# -- checks --------------------------------------------------------------------------------
def check_modality(where: str, modality: str, task: str) -> None:
    """Refuse an image whose DICOM modality the project's task does not annotate.

    ``modality`` ``""`` (NIfTI, or DICOM without Modality) is accepted: nothing says it
    is wrong.
    """
    expected = TASK_MODALITY[task]
    modality = (modality or "").upper()
    if not modality or modality == expected:
        return
    right = [t for t, m in TASK_MODALITY.items() if m == modality]
    if right:
        article = "an" if right[0][0] in "aeiou" else "a"
        fix = (
            f"Add it to {article} {right[0]} project instead "
            f"('atlas-annotate init PROJECT --task {right[0]}')."
        )
    else:
        kinds = ", ".join(f"{t} projects take {m}" for t, m in TASK_MODALITY.items())
        fix = f"No project kind takes {modality} images ({kinds})."
    raise ProjectError(
        f"{where} has modality {modality}, but {task} projects take {expected}. {fix}"
    )


def _series_where(path: str, info: SeriesInfo) -> str:
    number = "" if info.series_number is None else f" {info.series_number}"
    return f"{path}: series{number} {info.description or '(no description)'!r}"


def _check_voxels_are_numbers(where: str, array: np.ndarray, task: str) -> None:
    """Refuse an image none of whose voxels is a number; say when some are not, and how
    they will be read."""
    from ..io import VolumeLoadWarning
    from ..models.intensity import AIR_HU, count_non_finite

    bad = count_non_finite(array)
    if not bad:
        return
    if bad == array.size:
        raise ProjectError(
            f"{where}: none of its {array.size:,} voxels is a number (all NaN or infinite): "
            "the file holds no image. Convert the image again from its DICOM series."
        )
    read_as = f"air ({AIR_HU:g} HU)" if task != "spine" else "background"
    warnings.warn(
        f"{where}: {bad:,} of {array.size:,} voxels ({bad / array.size:.1%}) are not numbers "
        f"(NaN or infinite), as some converters write outside the scanner's field of view; "
        f"the helper models read them as {read_as}. If they lie inside the body, convert "
        "the image again from its DICOM series.",
        VolumeLoadWarning,
        stacklevel=3,
    )


def _check_hounsfield_units(where: str, array: np.ndarray) -> None:
    """Say when a CT has no air (:func:`~..models.intensity.hounsfield_doubt`)."""
    from ..io import VolumeLoadWarning
    from ..models.intensity import hounsfield_doubt

    doubt = hounsfield_doubt(array)
    if doubt:
        warnings.warn(f"{where}: {doubt}", VolumeLoadWarning, stacklevel=3)


def check_case(case: NewCase, task: str, *, load: bool = True) -> list[ImageFingerprint]:
    """Refuse a new case the project could not open, before it is added.

    Checks that every image and truth file exists, that DICOM images have the modality of
    the project's task (:data:`TASK_MODALITY`) and, with ``load``, loads every image (each
    series of a spine study) as :meth:`Project.load_image` will: a truncated file, a DICOM
    series with missing slices, or anything else the loader refuses is reported now rather
    than at ``propose``. Loading takes about 1-2 s per CT. A scanned DICOM image is read
    from its scanned headers (:attr:`NewCase.series_info`, :attr:`NewCase.plans`): its
    folder is not scanned again.

    Returns
    -------
    list of ImageFingerprint
        With ``load``, the fingerprint of each loaded image (to find it in another case:
        :class:`ProjectImages`); empty without.

    Raises
    ------
    ProjectError
        Naming the file and what is wrong with it.
    """
    manifest = case.source if is_manifest_path(case.source) else ""
    for ref in case.images:
        if not Path(ref.path).exists():
            named_by = f" (named by {manifest})" if manifest else ""
            raise ProjectError(
                f"image {ref.path}{named_by} does not exist. Put it back or fix the path."
            )
    for kind, value in case.truth.items():
        if not Path(value).exists():
            named_by = f", named by {manifest}" if manifest else ""
            raise ProjectError(
                f"truth file {value} ({kind}{named_by}) does not exist. Put it back or fix "
                "the path."
            )
    for ref, info in zip(case.images, case.series_info, strict=False):
        if info is not None:
            check_modality(_series_where(ref.path, info), info.modality, task)
    if not load:
        return []
    from ..io import VolumeLoadError, load_volume
    from ..io.dicom import plan_series

    infos = list(case.series_info) + [None] * (len(case.images) - len(case.series_info))
    plans = list(case.plans) + [None] * (len(case.images) - len(case.plans))
    prints = []
    for ref, info, plan in zip(case.images, infos, plans, strict=True):
        try:
            if plan is None and info is not None:  # scanned: its headers are not read again
                plan = plan_series(info, ref.path, ref.stack)
            volume = plan.read() if plan else load_volume(ref.path, ref.series, ref.stack)
        except VolumeLoadError as exc:
            raise ProjectError(str(exc)) from exc
        where = ref.path + (f" (series {ref.description!r})" if ref.series else "")
        check_modality(where, volume.modality, task)
        _check_voxels_are_numbers(where, volume.array, task)
        if task != "spine":
            _check_hounsfield_units(where, volume.array)
        prints.append(ImageFingerprint.of_volume(volume))
        del volume
    return prints


def copied_case(case: NewCase, project_folder: Path) -> NewCase:
    """``case`` with its images pointing where :func:`copy_into_project` puts them:
    ``project_folder/images/<case>/<n>_<name>``, one copy per source path (the series of a
    spine study share their folder's copy)."""
    dest_root = Path(project_folder) / "images" / case.id
    dests: dict[str, Path] = {}
    images = []
    for ref in case.images:
        src = Path(ref.path)
        if str(src) not in dests:
            dests[str(src)] = dest_root / f"{len(dests)}_{src.name}"
        images.append(dataclasses.replace(ref, path=str(dests[str(src)])))
    return NewCase(case.id, images, case.truth, case.source, case.series_info, case.labels)


def copy_into_project(case: NewCase, project_folder: Path) -> NewCase:
    """Copy a case's images under ``project_folder/images/<case>/`` and point at the copies."""
    copied = copied_case(case, project_folder)
    for ref, dest_ref in zip(case.images, copied.images, strict=True):
        src, dest = Path(ref.path), Path(dest_ref.path)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dest)
            else:
                shutil.copy2(src, dest)
    return copied
