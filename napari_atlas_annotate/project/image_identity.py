"""Is an image being added already in the project, under another path or in another format?

:class:`ReferencedImages` finds it by path (a DICOM series also under its study folder or a
parent folder holding only it); :class:`ProjectImages` by what it is
(:class:`ImageFingerprint`: its DICOM SeriesInstanceUID, or a hash of its voxels on its
grid), so a copied data folder or a NIfTI conversion of a DICOM series is recognised.
Fingerprints are kept in ``PROJECT/image_fingerprints.json`` (a cache: rebuilt from the
images when missing or damaged).
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import json
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io.atomic import write_text
from ..io.nifti import is_nifti_path
from .errors import ProjectError
from .records import Case, ImageRef

if TYPE_CHECKING:
    from ..io.dicom import SeriesPlan
    from ..io.dicom_scan import SeriesInfo
    from ..volume import Volume
    from .sources import NewCase
    from .store import Project


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
            (case.id, dataclasses.replace(ref, path=str(project.resolve(ref.path))))
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


# -- the same image under any path ---------------------------------------------------------
#: The file in a project folder keeping the fingerprints of its cases' images.
FINGERPRINTS_NAME = "image_fingerprints.json"
#: Affines whose entries differ by less than this (mm) are the same grid.
GRID_TOLERANCE_MM = 1e-3


@dataclass(frozen=True)
class ImageFingerprint:
    """What tells an image apart whatever its path, format or copy.

    Attributes
    ----------
    series_uid
        DICOM SeriesInstanceUID; None for NIfTI.
    shape, affine
        The grid as the loader returns it: ``(z, y, x)`` shape and the 16 entries of its
        ``(z, y, x) -> RAS`` affine, row by row.
    voxels
        sha256 of the voxel values as little-endian float32 (``-0.0`` as ``0.0``), slice
        by slice; None until the image is loaded. The same scan as DICOM and as NIfTI, or
        copied anywhere, has the same grid and voxels.
    """

    series_uid: str | None = None
    shape: tuple[int, ...] | None = None
    affine: tuple[float, ...] | None = None
    voxels: str | None = None

    @classmethod
    def of_volume(cls, volume: Volume) -> ImageFingerprint:
        """The full fingerprint of a loaded image."""
        digest = hashlib.sha256()
        for plane in volume.array:
            digest.update((np.asarray(plane, dtype="<f4") + np.float32(0.0)).tobytes())
        return cls(
            str(volume.metadata.get("series_uid") or "") or None,
            tuple(volume.shape),
            tuple(float(v) for v in np.asarray(volume.affine).ravel()),
            digest.hexdigest(),
        )

    def same_grid(self, other: ImageFingerprint) -> bool:
        """Same shape and affine (within :data:`GRID_TOLERANCE_MM`)."""
        if self.shape is None or self.affine is None or other.affine is None:
            return False
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, rtol=0.0, atol=GRID_TOLERANCE_MM)
        )

    def to_json(self) -> dict:
        return {
            "series_uid": self.series_uid,
            "shape": list(self.shape) if self.shape else None,
            "affine": list(self.affine) if self.affine else None,
            "voxels_sha256": self.voxels,
        }

    @classmethod
    def from_json(cls, data: dict) -> ImageFingerprint:
        shape, affine = data.get("shape"), data.get("affine")
        return cls(
            data.get("series_uid") or None,
            tuple(int(v) for v in shape) if shape else None,
            tuple(float(v) for v in affine) if affine and len(affine) == 16 else None,
            data.get("voxels_sha256") or None,
        )


#: Known grids are looked up by shape and by their origin's cell, cells this many mm wide
#: (more than twice :data:`GRID_TOLERANCE_MM`, so a grid's match lies in a neighbouring cell).
_CELL_MM = 1.0


def _grid_keys(p: ImageFingerprint, spread: float = 0.0) -> list[tuple]:
    """Where :class:`ProjectImages` files the grid of ``p`` (``spread`` 0), or where to
    look for grids within ``spread`` mm of it: the shape and the cells of the origin
    (the affine's translation) within ``spread``. None for a grid not told."""
    if p.shape is None or p.affine is None:
        return []
    origin = (p.affine[3], p.affine[7], p.affine[11])
    if not all(math.isfinite(v) for v in origin):
        return [(p.shape, None)]
    cells = [
        sorted({math.floor((v - spread) / _CELL_MM), math.floor((v + spread) / _CELL_MM)})
        for v in origin
    ]
    return [(p.shape, cell) for cell in itertools.product(*cells)]


def _nifti_fingerprint(path: Path) -> ImageFingerprint:
    """Grid of a NIfTI file from its header, as :func:`~..io.nifti.load_nifti` gives it."""
    import nibabel as nib

    from ..volume import zyx_affine_from_nifti

    try:
        img = nib.load(str(path))
        shape = tuple(int(n) for n in img.shape)
        affine = zyx_affine_from_nifti(img.affine)
    except Exception:  # nibabel raises several types for damaged files
        return ImageFingerprint()
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        return ImageFingerprint()
    return ImageFingerprint(None, shape[::-1], tuple(float(v) for v in affine.ravel()))


def header_fingerprints(
    refs: Sequence[ImageRef],
    infos: Sequence[SeriesInfo | None] = (),
    plans: Sequence[SeriesPlan | None] = (),
) -> list[ImageFingerprint]:
    """Fingerprints of images from their headers only (series UID and grid, no voxels).

    ``infos`` are the scanned series of ``refs`` where known, ``plans`` their planned
    grids where known (:attr:`.sources.NewCase.plans`); other DICOM paths are scanned
    once each. What cannot be told (a missing file, a series that does not load) is left
    None.
    """
    from ..io import VolumeLoadError
    from ..io.dicom import plan_series

    infos = list(infos) + [None] * (len(refs) - len(infos))
    plans = list(plans) + [None] * (len(refs) - len(plans))
    out = []
    for ref, info, plan in zip(refs, infos, plans, strict=True):
        path = Path(ref.path)
        if plan is not None:
            grid = plan.grid()
            affine = tuple(float(v) for v in grid.affine.ravel())
            out.append(ImageFingerprint(plan.info.series_uid, grid.shape, affine))
            continue
        if is_nifti_path(path):
            out.append(_nifti_fingerprint(path) if path.is_file() else ImageFingerprint())
            continue
        info = info or _series_of(path, ref.series)
        if info is None:
            out.append(ImageFingerprint())
            continue
        try:  # warns as loading the image will (the command line shows each warning once)
            grid = plan_series(info, path, ref.stack).grid()
        except VolumeLoadError:
            out.append(ImageFingerprint(info.series_uid))
            continue
        affine = tuple(float(v) for v in grid.affine.ravel())
        out.append(ImageFingerprint(info.series_uid, grid.shape, affine))
    return out


@dataclass(frozen=True)
class Duplicate:
    """A new image already in a case under another path (:meth:`ProjectImages.duplicate_of`).

    Attributes
    ----------
    case_id
        The case holding it.
    index
        Which image of the new case it is.
    same
        What is the same, for messages: ``"DICOM SeriesInstanceUID ..."`` or ``"voxels
        and grid"``.
    """

    case_id: str
    index: int
    same: str


class ProjectImages:
    """The fingerprints (:class:`ImageFingerprint`) of a project's images, to recognise
    an image being added again under any path: a copy of the data folder, a NIfTI
    conversion of a DICOM series.

    They are kept in ``<project>/image_fingerprints.json`` (:data:`FINGERPRINTS_NAME`), a
    cache: ``add`` records what it computed while checking each new case. A case with no
    record (added before fingerprints were kept, or by other means than ``add``) is
    fingerprinted from its headers the first time it is needed (series UID and grid, no
    pixels), and its voxels are hashed only when a new image has the same grid. Call
    :meth:`save` to keep what was learnt; a lost or damaged file is simply rebuilt.
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self.path = Path(project.folder) / FINGERPRINTS_NAME
        self._records = self._read()
        self._changed: set[str] = set()
        self._known: dict[str, tuple[Case, list[ImageFingerprint]]] | None = None
        self._uids: dict[str, str] = {}  # series UID -> the first case holding it
        self._order: dict[str, int] = {}  # case id -> its place in _known
        # (shape, origin cell) -> the (case id, image index) of the known grids there
        self._grids: dict[tuple, dict[tuple[str, int], None]] = defaultdict(dict)

    def _read(self) -> dict:
        try:
            cases = json.loads(self.path.read_text())["cases"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        return cases if isinstance(cases, dict) else {}

    def _recorded(self, case: Case) -> list[ImageFingerprint] | None:
        """The case's recorded fingerprints, if they are of its current images."""
        entries = self._records.get(case.id)
        if not isinstance(entries, list) or len(entries) != len(case.images):
            return None
        try:
            if any(
                (e["path"], e["series"], e.get("stack")) != (ref.path, ref.series, ref.stack)
                for e, ref in zip(entries, case.images, strict=True)
            ):
                return None
            return [ImageFingerprint.from_json(e) for e in entries]
        except (KeyError, TypeError, ValueError):
            return None

    def _remember(self, case: Case, prints: Sequence[ImageFingerprint]) -> None:
        if self._known is not None:
            self._known[case.id] = (case, list(prints))
            self._order.setdefault(case.id, len(self._order))
            for j, p in enumerate(prints):
                if p.series_uid:
                    self._uids.setdefault(p.series_uid, case.id)
                for key in _grid_keys(p):
                    self._grids[key][(case.id, j)] = None

    def _keep(self, case: Case, prints: Sequence[ImageFingerprint]) -> None:
        self._remember(case, prints)
        if any(p.shape is None for p in prints):
            return  # not told yet (missing or unreadable image): try again next time
        self._records[case.id] = [
            {**ref.to_json(), **p.to_json()} for ref, p in zip(case.images, prints, strict=True)
        ]
        self._changed.add(case.id)

    def _known_cases(self) -> dict[str, tuple[Case, list[ImageFingerprint]]]:
        if self._known is None:
            self._known = {}
            for case in self.project.cases():
                prints = self._recorded(case)
                if prints is None:
                    refs = [
                        dataclasses.replace(r, path=str(self.project.resolve(r.path)))
                        for r in case.images
                    ]
                    prints = header_fingerprints(refs)
                    self._keep(case, prints)
                self._remember(case, prints)
        return self._known

    def _with_voxels(self, case_id: str, index: int) -> ImageFingerprint:
        """The fingerprint of a case's image, its voxels hashed now if they were not."""
        case, prints = self._known_cases()[case_id]
        if prints[index].voxels is None:
            try:
                volume = self.project.load_image(case_id, index)
            except ProjectError:
                return prints[index]  # gone or unreadable: nothing to compare with
            prints = list(prints)
            prints[index] = ImageFingerprint.of_volume(volume)
            self._keep(case, prints)
        return prints[index]

    def duplicate_of(self, prints: Sequence[ImageFingerprint]) -> Duplicate | None:
        """The first of a new case's images (``prints``) already in a case, or None.

        A DICOM series UID already in a case is the same series. An image with voxels
        (loaded) is the same as one on the same grid with the same voxels.
        """
        self._known_cases()  # fills the series UIDs and grids looked up below
        for index, new in enumerate(prints):
            if new.series_uid in self._uids:
                uid = new.series_uid
                return Duplicate(self._uids[uid], index, f"DICOM SeriesInstanceUID {uid}")
            if new.voxels is None:
                continue
            for case_id, j in self._on_same_grid(new):
                if self._with_voxels(case_id, j).voxels == new.voxels:
                    return Duplicate(case_id, index, "voxels and grid")
        return None

    def _on_same_grid(self, new: ImageFingerprint) -> list[tuple[str, int]]:
        """``(case id, image index)`` of the known images on ``new``'s grid, in case order:
        looked up by shape and origin, not compared with every image of the project."""
        known = self._known_cases()
        found = set()
        for key in _grid_keys(new, GRID_TOLERANCE_MM):
            for case_id, j in self._grids.get(key, ()):
                olds = known[case_id][1]
                if j < len(olds) and new.same_grid(olds[j]):
                    found.add((case_id, j))
        return sorted(found, key=lambda item: (self._order[item[0]], item[1]))

    def record(self, case: Case, prints: Sequence[ImageFingerprint]) -> None:
        """Keep the fingerprints of a case just added (its images as the project stores
        them)."""
        self._keep(case, prints)

    def save(self) -> None:
        """Write what was learnt (merged with the file as it is now: another ``add`` may
        have written it meanwhile)."""
        if not self._changed:
            return
        records = self._read()
        for cid in self._changed:
            records[cid] = _merged(self._records[cid], records.get(cid))
        lines = [f"{json.dumps(cid)}: {json.dumps(records[cid])}" for cid in sorted(records)]
        write_text(self.path, '{"version": 1, "cases": {\n' + ",\n".join(lines) + "\n}}\n")
        self._changed.clear()


def _merged(ours: list[dict], theirs) -> list[dict]:
    """Our record of a case, with voxel hashes another writer has and we do not."""
    if not isinstance(theirs, list) or len(theirs) != len(ours):
        return ours
    out = []
    for mine, other in zip(ours, theirs, strict=True):
        same_image = isinstance(other, dict) and all(
            other.get(k) == mine[k] for k in ("path", "series", "series_uid", "shape")
        )
        known = same_image and mine["voxels_sha256"] is None and other.get("voxels_sha256")
        out.append(other if known else mine)
    return out


# -- copies --------------------------------------------------------------------------------
