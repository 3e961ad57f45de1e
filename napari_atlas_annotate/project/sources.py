"""Turn paths a user gives (`atlas-annotate add`) into cases: NIfTI files, DICOM folders
(one case per series for organ projects, one case per study folder for spine projects) and
phantom ``manifest.json`` files (with their truth, for simulation and evaluation).

Case ids name the case, not the file format: a file or folder with a generic name
(``ct.nii.gz``, ``dicom/``) takes the name of the nearest enclosing folder that says which
case it is (AbdomenAtlas ``BDMAP_00000001/ct.nii.gz`` -> ``BDMAP_00000001``), and paths
given together that would share an id take enclosing folder names until they differ
(``site1/case01.nii.gz``, ``site2/case01.nii.gz`` -> ``site1_case01``, ``site2_case01``).

Before a case is added, :func:`check_case` makes sure the project can open it and that it
is the right kind of image for the project's task, and :class:`ReferencedImages` finds an
image that is already in another case.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import shutil
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..io.nifti import is_nifti_path
from .errors import ProjectError
from .records import ImageRef

if TYPE_CHECKING:
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
    """

    id: str
    images: list[ImageRef]
    truth: dict = field(default_factory=dict)
    source: str = ""
    series_info: list[SeriesInfo | None] = field(default_factory=list, repr=False)


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


def _name_chain(path: Path, stops: set[Path]) -> list[tuple[str, bool]]:
    """``(id-safe name, generic?)`` of ``path`` and its enclosing folders, nearest first.

    Symbolic links are not followed: a case is named after where the user sees it.
    """
    path = Path(os.path.abspath(path))
    chain = []
    for i, part in enumerate([path, *path.parents]):
        if part in stops or not part.name:
            break
        name = _item_name(part) if i == 0 else part.name
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


def case_names(paths: Sequence[str | Path]) -> list[str]:
    """Case ids for paths added together: one per path, different for different images.

    Each path is named after itself, or after its nearest enclosing folder when its own
    name is generic (:data:`GENERIC_NAMES`: ``ct.nii.gz``, ``dicom/``). Paths that would
    share an id take enclosing folder names, nearest last, until the ids differ. The same
    file given twice gets the same id.

    Examples
    --------
    >>> case_names(["atlas/BDMAP_00000001/ct.nii.gz", "atlas/BDMAP_00000002/ct.nii.gz"])
    ['BDMAP_00000001', 'BDMAP_00000002']
    >>> case_names(["site1/case01.nii.gz", "site2/case01.nii.gz", "site2/case02.nii.gz"])
    ['site1_case01', 'site2_case01', 'case02']
    """
    stops = _stop_folders()
    keys = [os.path.realpath(p) for p in paths]
    first: dict[str, Path] = {}
    for key, path in zip(keys, paths, strict=True):
        first.setdefault(key, Path(path))
    candidates = {key: _id_candidates(_name_chain(path, stops)) for key, path in first.items()}
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


def cases_from_manifest(path: Path, task: str) -> list[NewCase]:
    """Cases of a phantom manifest (``atlas-annotate phantoms``) matching the project task."""
    try:
        manifest = json.loads(path.read_text())
        entries = manifest["cases"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ProjectError(f"{path}: not a phantom manifest ({exc}).") from exc
    root = path.parent
    out = []
    for entry in entries:
        if entry.get("task") != task:
            continue
        images = [
            ImageRef(str(root / im["path"]), im.get("description", ""), im.get("series"))
            for im in entry["images"]
        ]
        truth = {k: str(root / entry[k]) for k in ("label", "grades", "points") if entry.get(k)}
        out.append(NewCase(_safe_id(entry["id"]), images, truth, source=str(path)))
    return out


def cases_from_path(path: Path, task: str, name: str | None = None) -> list[NewCase]:
    """The cases one path stands for; raises :class:`ProjectError` for unusable input.

    Parameters
    ----------
    path
        A NIfTI file, a DICOM file or folder, or a phantom ``manifest.json``.
    task
        The project's task (``"organs"`` or ``"spine"``).
    name
        Case id for an image path (a manifest names its own cases); by default from
        :func:`case_names`. A DICOM folder holding several series in an organs project
        gives one case per series, ``<name>_s<series number>``.
    """
    path = Path(path)
    if not path.exists():
        raise ProjectError(f"{path}: does not exist. Check the path.")
    if is_manifest_path(path):
        return cases_from_manifest(path, task)
    name = name or case_names([path])[0]
    if path.is_file() and is_nifti_path(path):
        if task == "spine":
            raise ProjectError(
                f"{path}: spine projects take DICOM study folders (Sagittal T1, Sagittal "
                "T2/STIR, Axial T2), not NIfTI files."
            )
        return [NewCase(name, [ImageRef(str(path), path.name)], source=str(path))]
    from ..io import VolumeLoadError, list_series

    try:
        series = [s for s in list_series(path) if not s.non_image]
    except VolumeLoadError as exc:
        raise ProjectError(str(exc)) from exc
    if not series:
        raise ProjectError(f"{path}: no image series found (only non-image DICOM objects).")
    if task == "spine":
        images = [ImageRef(str(path), s.description, s.series_uid) for s in series]
        return [NewCase(name, images, source=str(path), series_info=list(series))]
    if len(series) == 1:
        image = ImageRef(str(path), series[0].description)
        return [NewCase(name, [image], source=str(path), series_info=list(series))]
    return [
        NewCase(
            f"{name}_s{s.series_number if s.series_number is not None else i}",
            [ImageRef(str(path), s.description, s.series_uid)],
            source=str(path),
            series_info=[s],
        )
        for i, s in enumerate(series)
    ]


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


def check_case(case: NewCase, task: str, *, load: bool = True) -> None:
    """Refuse a new case the project could not open, before it is added.

    Checks that every image and truth file exists, that DICOM images have the modality of
    the project's task (:data:`TASK_MODALITY`) and, with ``load``, loads every image (each
    series of a spine study) as :meth:`Project.load_image` will: a truncated file, a DICOM
    series with missing slices, or anything else the loader refuses is reported now rather
    than at ``propose``. Loading takes about 1-2 s per CT.

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
        return
    from ..io import VolumeLoadError, load_volume

    for ref in case.images:
        try:
            volume = load_volume(ref.path, series=ref.series)
        except VolumeLoadError as exc:
            raise ProjectError(str(exc)) from exc
        where = ref.path + (f" (series {ref.description!r})" if ref.series else "")
        check_modality(where, volume.modality, task)
        del volume


# -- images already in the project ---------------------------------------------------------
def _series_of(path: Path, series: str | None) -> SeriesInfo | None:
    """The DICOM series a reference points at, from headers; None if it cannot be told."""
    from ..io import VolumeLoadError, VolumeLoadWarning
    from ..io.dicom import list_series, select_series

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VolumeLoadWarning)
            return select_series(list_series(path), path, series)
    except VolumeLoadError:
        return None


class ReferencedImages:
    """The images a project's cases reference, to find an image being added twice.

    Images are compared by resolved path and series choice. A DICOM series is also
    recognised under another path of the same files (its study folder with a series UID,
    its own folder, a parent folder holding only it), so adding a study folder after a
    manifest naming its series folders, or the other way round, is caught.

    Examples
    --------
    >>> known = ReferencedImages([("ct_000", ImageRef("/data/ct_000/ct.nii.gz"))])
    >>> known.owner(ImageRef("/data/ct_000/ct.nii.gz"))
    'ct_000'
    """

    def __init__(self, images: Iterable[tuple[str, ImageRef]] = ()) -> None:
        self._by_path: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
        self._sorted: list[str] = []
        for case_id, ref in images:
            self.add(case_id, ref)

    @classmethod
    def of_project(cls, project) -> ReferencedImages:
        """Every image of every case of ``project`` (a :class:`Project`)."""
        return cls(
            (case.id, ImageRef(str(project.resolve(ref.path)), ref.description, ref.series))
            for case in project.cases()
            for ref in case.images
        )

    def add(self, case_id: str, ref: ImageRef) -> None:
        """Record that case ``case_id`` references ``ref``."""
        key = str(Path(ref.path).resolve())
        if key not in self._by_path:
            bisect.insort(self._sorted, key)
        self._by_path[key].append((ref.series or None, case_id))

    def _near(self, path: Path) -> bool:
        """Whether an image is recorded at ``path``, above it or below it."""
        key = str(path)
        if key in self._by_path or any(str(p) in self._by_path for p in path.parents):
            return True
        prefix = key.rstrip(os.sep) + os.sep
        i = bisect.bisect_left(self._sorted, prefix)
        return i < len(self._sorted) and self._sorted[i].startswith(prefix)

    def owner(self, ref: ImageRef, info: SeriesInfo | None = None) -> str | None:
        """The case already referencing the image ``ref`` points at, or None.

        ``info`` is the scanned series of ``ref`` if known; otherwise DICOM headers are
        read only when an image is recorded at, above or below ``ref``'s path.
        """
        path = Path(ref.path).resolve()
        for series, case_id in self._by_path.get(str(path), []):
            if series == (ref.series or None):
                return case_id
        if is_nifti_path(path) or not self._near(path):
            return None
        info = info or _series_of(path, ref.series)
        if info is None or not info.files:
            return None
        folder = Path(os.path.commonpath([str(Path(f).resolve()) for f in info.files]))
        for place in (folder, *folder.parents):
            for series, case_id in self._by_path.get(str(place), []):
                if series is None or info.matches(series):
                    return case_id
        return None

    def owner_of(self, case: NewCase) -> tuple[str, str] | None:
        """``(case id, image path)`` of the first image of ``case`` already in a case."""
        infos = list(case.series_info) + [None] * (len(case.images) - len(case.series_info))
        for ref, info in zip(case.images, infos, strict=True):
            owner = self.owner(ref, info)
            if owner is not None:
                return owner, ref.path
        return None


# -- copies --------------------------------------------------------------------------------
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
        images.append(ImageRef(str(dests[str(src)]), ref.description, ref.series))
    return NewCase(case.id, images, case.truth, case.source, case.series_info)


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
