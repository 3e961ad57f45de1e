"""Find the DICOM series under a path by reading headers only (no pixel data).

A folder is searched recursively; files are grouped by SeriesInstanceUID. Files that are
not DICOM are skipped with one :class:`~.errors.VolumeLoadWarning` when the folder holds
DICOM too, and make a :class:`~.errors.VolumeLoadError` when it holds nothing else.

A scan keeps each file's header (:attr:`SeriesInfo.headers`), or, with ``headers=False``,
only the few values that group files into series (:class:`FileBrief`, :class:`SeriesBrief`)
and, for non-image objects, what they reference (:class:`References`): a dataset folder
of thousands of series is then described in memory that grows by a few hundred bytes per
file (its paths held as text, :class:`SeriesFiles`), and each series' headers are read
again when it is loaded (:func:`with_headers`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, overload

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from .errors import VolumeLoadError, VolumeLoadWarning
from .folder_walk import files_under

#: Modalities whose objects are never images to annotate, with how to call them.
_NON_IMAGE_MODALITIES = {
    "SEG": "a DICOM Segmentation",
    "RTSTRUCT": "a DICOM RT Structure Set",
    "SR": "a DICOM Structured Report",
    "RTPLAN": "a DICOM RT Plan",
    "RTDOSE": "a DICOM RT Dose grid",
    "RTRECORD": "a DICOM RT treatment record",
    "PR": "a DICOM Presentation State",
    "KO": "a DICOM Key Object Selection",
    "REG": "a DICOM Registration",
    "DOC": "an encapsulated document",
}

#: Words in a SOP class name that mark a non-image object, for files lacking Modality.
_NON_IMAGE_SOP_WORDS = {
    "Segmentation": "a DICOM Segmentation",
    "SR Storage": "a DICOM Structured Report",
    "Structure Set": "a DICOM RT Structure Set",
    "Presentation State": "a DICOM Presentation State",
    "Encapsulated": "an encapsulated document",
    "Raw Data": "a DICOM Raw Data object",
    "Waveform": "a DICOM waveform",
    "Key Object": "a DICOM Key Object Selection",
    "Directory": "a DICOMDIR index",
}


class NotDicomWarning(VolumeLoadWarning):
    """Files under ``folder`` that are not DICOM were skipped (``files``, sorted).

    A caller that knows what such files are for (a label map beside its series, say) can
    take them out and warn of the rest again (``NotDicomWarning(folder, rest)``).
    """

    def __init__(self, folder: str | Path, files: Sequence[Path]) -> None:
        self.folder, self.files = Path(folder), sorted(files)
        names = name_list([_rel(f, self.folder) for f in self.files])
        super().__init__(
            f"{self.folder}: skipped {len(self.files)} file(s) that are not DICOM: {names}."
        )


def name_list(names: list[str], limit: int = 5) -> str:
    """``"a, b, c and 4 more"``: a short list of file names for an error message."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class FileBrief(NamedTuple):
    """One file of a scan: what grouping it into its series needs of its header.

    Attributes
    ----------
    path
        The file (text where the scan keeps no headers).
    sop_uid
        SOPInstanceUID (``""`` if absent).
    kind
        :func:`non_image_kind` of the file: None for an image.
    n_frames
        Number of 2D images in the file.
    header
        The file's header where the scan keeps headers, else what a non-image object
        references (:class:`References`; None for an image).
    """

    path: str | Path
    sop_uid: str
    kind: str | None
    n_frames: int
    header: Dataset | References | None


class SeriesBrief(NamedTuple):
    """What :class:`SeriesInfo` takes from the header of a series' first file.

    Attributes
    ----------
    description, series_number, modality, sop_class_uid, rows, columns, study_uid
        As :class:`SeriesInfo` names them.
    """

    description: str
    series_number: int | None
    modality: str
    sop_class_uid: str
    rows: int | None
    columns: int | None
    study_uid: str

    @classmethod
    def of(cls, ds: Dataset) -> SeriesBrief:
        """The brief of header ``ds`` (repeated values shared between series)."""
        return cls(
            sys.intern(_text(ds, "SeriesDescription").strip()),
            _series_number(ds),
            sys.intern(_text(ds, "Modality")),
            sys.intern(_text(ds, "SOPClassUID")),
            _size(ds, "Rows"),
            _size(ds, "Columns"),
            sys.intern(_text(ds, "StudyInstanceUID")),
        )


def _text(ds: Dataset, keyword: str) -> str:
    """A header value as text, ``""`` when absent or unreadable (the loader says why)."""
    try:
        return str(ds.get(keyword, "") or "")
    except Exception:  # a damaged value: pydicom raises many types
        return ""


def _size(ds: Dataset, keyword: str) -> int | None:
    """Rows or Columns, None when absent or unreadable."""
    try:
        return int(ds.get(keyword)) if keyword in ds else None
    except Exception:
        return None


class References(NamedTuple):
    """What a non-image object (a DICOM SEG) says it was made from: what pairs it with
    its image series.

    Attributes
    ----------
    series
        SeriesInstanceUIDs of its ReferencedSeriesSequence.
    instances
        ReferencedSOPInstanceUIDs of its SourceImageSequence items: top level, in the
        functional groups and under DerivationImageSequence, each once.
    """

    series: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()

    @classmethod
    def of(cls, ds: Dataset) -> References:
        """The references of header ``ds``; as many as can be read of a damaged one."""
        series: dict[str, None] = {}
        instances: dict[str, None] = {}
        try:
            for item in ds.get("ReferencedSeriesSequence", []) or []:
                if "SeriesInstanceUID" in item:
                    series[str(item.SeriesInstanceUID)] = None
            groups = [ds]
            for name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
                groups += list(ds.get(name, []) or [])
            for group in groups:
                items = list(group.get("SourceImageSequence", []) or [])
                for derivation in group.get("DerivationImageSequence", []) or []:
                    items += list(derivation.get("SourceImageSequence", []) or [])
                for item in items:
                    if "ReferencedSOPInstanceUID" in item:
                        instances[str(item.ReferencedSOPInstanceUID)] = None
        except Exception:  # a damaged sequence: pydicom raises many types
            pass
        return cls(tuple(series), tuple(instances))


def non_image_kind(ds: Dataset) -> str | None:
    """What a non-image object is (``"a DICOM Segmentation"``), or None for an image."""
    modality = str(ds.get("Modality", "")).upper()
    if modality in _NON_IMAGE_MODALITIES:
        return _NON_IMAGE_MODALITIES[modality]
    sop_name = getattr(ds.get("SOPClassUID"), "name", "") or ""
    for word, kind in _NON_IMAGE_SOP_WORDS.items():
        if word in sop_name:
            return kind
    if "Rows" not in ds or "Columns" not in ds:
        return f"a DICOM object without pixel data ({sop_name or 'unknown SOP class'})"
    return None


class SeriesFiles(Sequence[Path]):
    """The files of a series scanned without headers, read as a list of paths, held as
    text: the folder holding them once and each file's path under it. A :class:`Path` is
    made only for a file asked for; :meth:`strings` gives the paths as text.

    Parameters
    ----------
    paths
        The files, as text (``str(path)``), in the series' order.
    like
        Another series' files: where its file at the same place has the same name (series
        exported as ``1-001.dcm``, ``1-002.dcm``, ...), the two share that name's text.
        Names are not interned: a dataset whose file names are all different (SOP UIDs)
        would hold a table entry per file for nothing.
    """

    __slots__ = ("_prefix", "_names")

    def __init__(self, paths: Sequence[str], like: SeriesFiles | None = None) -> None:
        folders = {os.path.dirname(p) for p in paths}
        folder = folders.pop() if len(folders) == 1 else os.path.commonpath(folders or [""])
        prefix = folder if not folder or folder.endswith(os.sep) else folder + os.sep
        if not all(p.startswith(prefix) for p in paths):  # not normalised alike
            prefix = ""
        self._prefix = prefix
        names = [p[len(prefix) :] for p in paths]
        for i, other in enumerate(like._names[: len(names)] if like is not None else ()):
            if other == names[i]:
                names[i] = other
        self._names = tuple(names)

    def strings(self) -> list[str]:
        """The files' paths as text, as ``str(path)`` gives them."""
        return [self._prefix + name for name in self._names]

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> Path: ...
    @overload
    def __getitem__(self, index: slice) -> list[Path]: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return [Path(self._prefix + name) for name in self._names[index]]
        return Path(self._prefix + self._names[index])

    def __iter__(self) -> Iterator[Path]:
        return (Path(self._prefix + name) for name in self._names)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SeriesFiles):
            return self.strings() == other.strings()
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared as the list of paths it reads as

    def __repr__(self) -> str:
        return repr(list(self))


def file_strings(files: Sequence[str | Path]) -> list[str]:
    """The paths of a series' files (:attr:`SeriesInfo.files`) as text, without making a
    :class:`Path` of each where the scan held them as text (:class:`SeriesFiles`)."""
    if isinstance(files, SeriesFiles):
        return files.strings()
    return [os.fspath(f) for f in files]


@dataclass
class SeriesInfo:
    """One DICOM series found on disk, described from its headers.

    Attributes
    ----------
    series_uid, description, series_number, modality
        SeriesInstanceUID, SeriesDescription, SeriesNumber (None if absent), Modality.
    sop_class_uid
        SOP class of the series' first file.
    files
        The series' files, sorted by path (not by position: see :mod:`.dicom_geometry`): a
        list of paths, or where the scan kept no headers a :class:`SeriesFiles` reading as
        one (:func:`with_headers` makes it a list).
    n_frames
        Number of 2D images: one per single-frame file, NumberOfFrames per multi-frame.
    rows, columns
        Image size of the first file (None for objects without pixels).
    non_image
        None for an image series, else what it is (``"a DICOM Segmentation"``).
    headers
        The header datasets (read without pixel data), one per file; none where the scan
        kept no headers (``headers_read`` False).
    study_uid
        StudyInstanceUID of the first file (``""`` if absent).
    instance_uids
        Each file's SOPInstanceUID (``""`` if absent).
    headers_read
        Whether :attr:`headers` are the files' whole headers (see :func:`with_headers`).
    references
        Where the scan kept no headers, each file's :class:`References` for a non-image
        series (empty for an image series, and where headers are kept).
    """

    series_uid: str
    description: str
    series_number: int | None
    modality: str
    sop_class_uid: str
    files: list[Path] | SeriesFiles
    n_frames: int
    rows: int | None
    columns: int | None
    non_image: str | None = None
    headers: list[Dataset] = field(default_factory=list, repr=False, compare=False)
    study_uid: str = ""
    instance_uids: list[str] = field(default_factory=list, repr=False, compare=False)
    headers_read: bool = field(default=True, compare=False)
    references: list[References] = field(default_factory=list, repr=False, compare=False)

    @property
    def n_files(self) -> int:
        """Number of files in the series."""
        return len(self.files)

    @property
    def is_image(self) -> bool:
        """True for an image series (CT, MR, ...), False for SEG, RTSTRUCT, SR and such."""
        return self.non_image is None

    def matches(self, selector: str) -> bool:
        """True when ``selector`` is this series' UID, description or number."""
        selector = str(selector).strip()
        return selector in (self.series_uid, self.description) or (
            self.series_number is not None and selector == str(self.series_number)
        )

    def summary(self) -> str:
        """One line for messages: number, description, modality, images and UID."""
        number = "-" if self.series_number is None else str(self.series_number)
        what = f"{self.n_frames} images" if self.is_image else self.non_image
        desc = self.description or "(no description)"
        return f"series {number} {desc!r} [{self.modality or '?'}, {what}] uid={self.series_uid}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (no headers)."""
        return {
            "series_uid": self.series_uid,
            "description": self.description,
            "series_number": self.series_number,
            "modality": self.modality,
            "sop_class_uid": self.sop_class_uid,
            "n_files": self.n_files,
            "n_frames": self.n_frames,
            "rows": self.rows,
            "columns": self.columns,
            "is_image": self.is_image,
            "kind": "image" if self.is_image else self.non_image,
        }


#: Files a scan passes over without reading or warning: the tables datasets ship beside
#: their images (RSNA's train.csv, train_series_descriptions.csv, ...).
TABLE_SUFFIXES: tuple[str, ...] = (".csv",)
#: Label maps datasets keep beside a series (AbdomenAtlas' combined_labels.nii.gz and
#: segmentations/, Slicer's .seg.nrrd): skipped as not DICOM; loading the series' image
#: does not warn of them (:func:`scan_dicom` ``label_maps_expected``), adding it lists them.
LABEL_MAP_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz", ".seg.nrrd")


def _read_header(path: str | Path) -> Dataset | None:
    """The header of a DICOM file, or None when the file is not DICOM.

    Files without the 128-byte preamble (old ACR-NEMA style exports) are retried with
    ``force=True`` and accepted only if they carry a SOP class or series UID.
    """
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        pass
    except Exception:  # corrupt header: pydicom raises many types
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:
        return None
    if "SOPClassUID" in ds or "SeriesInstanceUID" in ds:
        return ds
    return None


def candidate_files(path: Path) -> list[Path]:
    """The files a scan of ``path`` looks at: ``path`` itself, or every file under the
    folder (subfolders and linked folders included, :func:`.folder_walk.walk`) whose name
    does not start with a dot, in path order."""
    return [Path(p) for p in _candidate_strings(path)]


def _candidate_strings(path: Path) -> list[str]:
    """:func:`candidate_files` as text (``str(path)``), in the same order, without holding
    a :class:`Path` per file."""
    if path.is_file():
        return [str(path)]
    found = [f for f in files_under(path) if not os.path.basename(f).startswith(".")]
    found.sort(key=_path_order)
    return found


def _path_order(path: str | Path) -> str:
    """Sort key putting paths in :class:`Path` order (folder by folder: ``ct/b`` before
    ``ct-1/a``), which plain text order is not (``-`` sorts before ``/``)."""
    return os.path.normcase(os.fspath(path)).replace(os.sep, "\0")


def _rel(file: Path, root: Path) -> str:
    return file.name if root.is_file() else str(file.relative_to(root))


def _n_frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _series_number(ds: Dataset) -> int | None:
    try:
        value = ds.get("SeriesNumber")
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _build_series(
    uid: str,
    members: list[FileBrief],
    first: SeriesBrief,
    keep_headers: bool = True,
    like: SeriesFiles | None = None,
    warn: bool = True,
) -> SeriesInfo:
    # The same instance copied twice (e.g. two exports into one folder) is one image.
    seen: set[str] = set()
    kept: list[FileBrief] = []
    copies: list[str] = []
    for member in members:
        sop = member.sop_uid or os.fspath(member.path)
        if sop in seen:
            copies.append(os.path.basename(member.path))
            continue
        seen.add(sop)
        kept.append(member)
    del seen
    if copies and warn:
        warnings.warn(
            f"{Path(kept[0].path).parent}: skipped {len(copies)} file(s) repeating an image "
            f"already read (same SOPInstanceUID): {name_list(copies)}.",
            VolumeLoadWarning,
            stacklevel=4,
        )
    kinds = Counter(member.kind for member in kept)
    # An image series with one header-truncated file stays an image series (and fails
    # later naming that file); only an all-non-image series is a non-image series.
    non_image = None if kinds.get(None) else kinds.most_common(1)[0][0]
    held = [member.header for member in kept]
    headers = held if keep_headers else []
    # what a non-image object refers to, to pair it with its images
    references = [] if keep_headers or non_image is None else [r or References() for r in held]
    return SeriesInfo(
        series_uid=uid,
        description=first.description,
        series_number=first.series_number,
        modality=first.modality,
        sop_class_uid=first.sop_class_uid,
        files=[Path(m.path) for m in kept]
        if keep_headers
        else SeriesFiles([m.path for m in kept], like),
        n_frames=sum(member.n_frames for member in kept),
        rows=first.rows,
        columns=first.columns,
        non_image=non_image,
        headers=headers,
        study_uid=first.study_uid,
        instance_uids=[member.sop_uid for member in kept],
        headers_read=keep_headers,
        references=references,
    )


def with_headers(info: SeriesInfo) -> SeriesInfo:
    """``info`` with the whole header of each of its files: itself where the scan kept
    them, else a copy with them read again (no pixel data).

    Raises
    ------
    VolumeLoadError
        Naming a file that cannot be read as it was when scanned (changed or gone since).
    """
    if info.headers_read:
        return info
    headers = []
    files = list(info.files)
    for file, sop in zip(files, info.instance_uids, strict=True):
        ds = _read_header(file)
        if ds is None or str(ds.get("SOPInstanceUID", "")) != sop:
            raise VolumeLoadError(
                file,
                "is not the DICOM file it was when its folder was scanned (changed, "
                "replaced or gone since).",
                "Leave the files as they are while they are added, and add the folder again.",
            )
        headers.append(ds)
    return dataclasses.replace(info, files=files, headers=headers, headers_read=True)


@dataclass
class HeaderScan:
    """The headers of some DICOM files under ``path``, read once (:func:`read_headers`).

    A folder can be read part by part (its subfolders one at a time, headers released in
    between) and the parts' findings added up (:meth:`add`): :meth:`report` then warns or
    refuses exactly as :func:`scan_dicom` does for the whole folder at once.

    Attributes
    ----------
    groups
        ``{SeriesInstanceUID: [FileBrief, ...]}`` of the files read since the last
        :meth:`take_series` (where headers are not kept, instead of the header a non-image
        object's :class:`References`, None for an image).
    firsts
        ``{SeriesInstanceUID: SeriesBrief}``: what each series of :attr:`groups` takes
        from its first file.
    skipped, damaged
        Files that are not DICOM, and DICOM files without a SeriesInstanceUID.
    n_files
        How many files were looked at.
    first_files
        The first three of them (in path order), for the message of a folder without any
        DICOM file.
    found_dicom
        Whether any file was DICOM with a series (a series was taken or is held).
    keep_headers
        Whether the series keep their files' headers (:attr:`SeriesInfo.headers`), or
        only their briefs (:attr:`SeriesInfo.headers_read` False).
    """

    groups: dict[str, list[FileBrief]] = field(default_factory=dict)
    firsts: dict[str, SeriesBrief] = field(default_factory=dict)
    skipped: list[Path] = field(default_factory=list)
    damaged: list[Path] = field(default_factory=list)
    n_files: int = 0
    first_files: list[Path] = field(default_factory=list)
    found_dicom: bool = False
    keep_headers: bool = True

    def read(self, files: Sequence[str | Path]) -> HeaderScan:
        """Read the header of each of ``files`` (sorted; paths or text) and group them by
        series. Nothing is warned of or refused here (:meth:`report` and :meth:`series`
        do), so the reading can be done in another thread (:mod:`.prefetch`)."""
        self.n_files += len(files)
        self.first_files = sorted([*self.first_files, *map(Path, files[:3])])[:3]
        for file in files:
            if str(file).lower().endswith(TABLE_SUFFIXES):
                continue  # a dataset's tables (RSNA's CSVs): not images, nothing to warn of
            ds = _read_header(file)
            if ds is None:
                self.skipped.append(Path(file))
                continue
            if str(ds.get("SOPClassUID", "")) == "1.2.840.10008.1.3.10":
                continue  # DICOMDIR: an index of the other files, not an object of its own
            if "SeriesInstanceUID" not in ds:
                # Every stored object has one; pydicom returns what it read of a cut file.
                self.damaged.append(Path(file))
                continue
            kind = non_image_kind(ds)
            if self.keep_headers:
                header = ds
            else:
                header = None if kind is None else References.of(ds)
            uid = str(ds.SeriesInstanceUID)
            if uid not in self.groups:
                self.groups[uid], self.firsts[uid] = [], SeriesBrief.of(ds)
            sop = str(ds.get("SOPInstanceUID", ""))
            self.groups[uid].append(FileBrief(file, sop, kind, _n_frames(ds), header))
            self.found_dicom = True
        return self

    def series(self, *, warn: bool = True) -> list[SeriesInfo]:
        """The series read since the last :meth:`take_series`, ordered by series number,
        then description and UID. Files repeating an image are left out, with a
        :class:`VolumeLoadWarning` unless ``warn`` is False (a read ahead, which leaves
        the warning to :func:`scan_dicom` when the series is opened)."""
        series: list[SeriesInfo] = []
        like = None  # the last image series' files, whose names the next may share
        for uid, members in self.groups.items():
            info = _build_series(uid, members, self.firsts[uid], self.keep_headers, like, warn)
            if info.is_image and isinstance(info.files, SeriesFiles):
                like = info.files
            series.append(info)
        return sorted(series, key=series_order)

    def take_series(self) -> list[SeriesInfo]:
        """:meth:`series`, whose headers are no longer held here."""
        series = self.series()
        self.groups, self.firsts = {}, {}
        return series

    def has_images(self) -> bool:
        """Whether a file read since the last :meth:`take_series` is an image."""
        return any(member.kind is None for m in self.groups.values() for member in m)

    def add(self, other: HeaderScan) -> None:
        """Add ``other``'s findings (another part of the same folder) to these."""
        for uid, members in other.groups.items():
            group = self.groups.setdefault(uid, [])
            group.extend(members)
            group.sort(key=lambda member: _path_order(member.path))  # as one scan reads them
            if group[0] is members[0]:  # the series' first file is other's
                self.firsts[uid] = other.firsts[uid]
        self.skipped += other.skipped
        self.damaged += other.damaged
        self.n_files += other.n_files
        self.first_files = sorted([*self.first_files, *other.first_files])[:3]
        self.found_dicom = self.found_dicom or other.found_dicom

    def report(self, path: Path, quiet: tuple[str, ...] = ()) -> None:
        """Warn of the files skipped under ``path`` (but those whose names end in one of
        ``quiet``), or raise :class:`VolumeLoadError` when it holds no DICOM series at all
        (as :func:`scan_dicom`)."""
        skipped, damaged = sorted(self.skipped), sorted(self.damaged)
        if not self.n_files:
            raise VolumeLoadError(
                path,
                "is an empty folder (no files found, subfolders included).",
                "Point at the folder that holds the images (DICOM files, or .nii/.nii.gz files).",
            )
        if damaged:
            problem = (
                f"{len(damaged)} DICOM file(s) with an incomplete header (no "
                "SeriesInstanceUID; probably truncated): "
                f"{name_list([_rel(f, path) for f in damaged])}"
            )
            if not self.found_dicom:
                raise VolumeLoadError(
                    path,
                    f"holds {problem}.",
                    "Copy the files again from their source or re-export the series.",
                )
            warnings.warn(f"{path}: skipped {problem}.", VolumeLoadWarning, stacklevel=3)
        if not self.found_dicom:
            if path.is_file():
                raise VolumeLoadError(
                    path,
                    "is not a DICOM file (no DICM preamble and no readable DICOM header).",
                    "Give a DICOM file, a folder of DICOM files, or a .nii/.nii.gz file.",
                )
            raise VolumeLoadError(
                path,
                f"holds no DICOM files ({self.n_files} file(s) looked at, e.g. "
                f"{name_list([f.name for f in self.first_files], 3)}).",
                "Point at the folder that holds the DICOM series.",
            )
        skipped = [f for f in skipped if not str(f).lower().endswith(quiet)] if quiet else skipped
        if skipped:
            warnings.warn(NotDicomWarning(path, skipped), stacklevel=3)


def series_order(info: SeriesInfo) -> tuple:
    """Sort key of the series of a scan: by series number (none last), description, UID."""
    return (info.series_number is None, info.series_number or 0, info.description, info.series_uid)


def scan_dicom(
    path: str | Path,
    *,
    headers: bool = True,
    label_maps_expected: bool = False,
    read: HeaderScan | None = None,
) -> list[SeriesInfo]:
    """Every DICOM series under ``path`` (a file or a folder, searched recursively).

    Parameters
    ----------
    path
        A DICOM file or a folder.
    headers
        Keep each file's header (:attr:`SeriesInfo.headers`). Without, only what groups
        the files into series is kept, and a non-image object's :class:`References`:
        :func:`with_headers` reads a series' headers again when it is needed.
    label_maps_expected
        Do not warn of label maps (:data:`LABEL_MAP_SUFFIXES`) among the files skipped as
        not DICOM: a case's labels beside its series, when its image is loaded.
    read
        The headers of :func:`candidate_files` of ``path`` already read (a read ahead in
        another thread, :mod:`.prefetch`: :meth:`HeaderScan.read` warns of nothing): only
        reported and grouped here, with the same warnings and errors as a scan; taken
        (its series are no longer held by it).

    Returns
    -------
    list of SeriesInfo
        Image and non-image series, ordered by series number, then description and UID.

    Raises
    ------
    VolumeLoadError
        When ``path`` does not exist, is an empty folder, is a file that is not DICOM, or
        is a folder without any DICOM file.
    """
    path = Path(path)
    if not path.exists():
        raise VolumeLoadError(path, "does not exist.", "Check the path and try again.")
    if read is None:
        files = candidate_files(path) if headers else _candidate_strings(path)
        scan = HeaderScan(keep_headers=headers).read(files)
        del files
    else:
        scan = read
    scan.report(path, quiet=LABEL_MAP_SUFFIXES if label_maps_expected else ())
    return scan.take_series()


def list_series(path: str | Path, *, headers: bool = True) -> list[SeriesInfo]:
    """The DICOM series under ``path``: a fast header-only scan (see :func:`scan_dicom`).

    Examples
    --------
    >>> for s in list_series("study/"):  # doctest: +SKIP
    ...     print(s.summary())
    series 2 'Sagittal T1' [MR, 17 images] uid=1.2.826...
    """
    return scan_dicom(path, headers=headers)
