"""Training cases prepared once and kept on disk, memory-mapped while a round trains.

Each round trains on every labelled case, and preparing one (read the image, DICOM
included, resample it and its labels to the model grid, find the corrected voxels in the
edit log) takes about 0.7 s for a 512x512x300 CT and holds 19 MB for the whole round
(``bench/train_cases.py``): a thousand labelled CTs would cost 12 minutes of every round
and more memory than a 24 GB machine has. Prepared cases are therefore stored under
``PROJECT/cache/training/<key>/`` as ``.npy`` files and opened with ``mmap_mode='r'``: the
operating system pages in the parts the patch sampler reads.

The key covers everything the prepared arrays depend on: the image files (path, size and
modification time of each file; a DICOM series is its folder's files), the label version
(its id, which fixes its content and the edit events behind its corrected voxels) and the
model grid (spacing, intensity window), plus :data:`CACHE_FORMAT`. A changed input is a new
key; entries no round asked for are removed after each round (:meth:`CaseCache.prune`). The
cache is never a source of truth: deleting the folder only costs the time to rebuild it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..io.atomic import staging_folder
from ..io.folder_walk import file_stamps, files_under
from ..models.bundle import ModelBundle
from ..project import LabelVersion, Project
from .organs import TrainingCase

#: Bump when what is stored, or how it is computed, changes: old entries are then unused.
CACHE_FORMAT = 1

#: The cache's folder in a project.
CACHE_FOLDER = Path("cache") / "training"

#: A staging folder older than this is left from a crash and removed by :meth:`prune`.
STALE_STAGING_SECONDS = 3600

_ARRAYS = ("image", "labels", "corrected")


def _files_state(path: Path) -> list:
    """``[name, size, mtime_ns]`` of a file, or of each file under a folder (DICOM)."""
    return file_stamps([path] if path.is_file() else sorted(map(Path, files_under(path))))


def case_key(project: Project, version: LabelVersion, bundle: ModelBundle) -> str:
    """The cache key of ``version``'s case prepared for ``bundle``'s grid (see module docs)."""
    case = project.case(version.case_id)
    images = [
        {"series": ref.series, "files": _files_state(project.resolve(ref.path))}
        for ref in case.images[:1]  # training reads the case's first image
    ]
    text = json.dumps(
        {
            "format": CACHE_FORMAT,
            "case": version.case_id,
            "images": images,
            "version": version.id,
            "sha256": version.sha256,
            "spacing": [float(s) for s in bundle.spacing],
            "window": [float(w) for w in bundle.window],
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class CaseCache:
    """Prepared training cases of one project (see module docs).

    Parameters
    ----------
    project
        The project; the cache lives in its folder. A case not in the cache is prepared
        by :func:`~.dataset.prepare_version`.
    """

    def __init__(self, project: Project) -> None:
        self.folder = project.folder / CACHE_FOLDER
        self.project = project
        self.used: set[str] = set()
        self.hits = 0
        self.misses = 0

    def get(self, version: LabelVersion, bundle: ModelBundle) -> TrainingCase:
        """The prepared case of ``version``, memory-mapped from the cache (prepared and
        stored first if it is not there yet)."""
        key = case_key(self.project, version, bundle)
        self.used.add(key)
        entry = self.folder / key
        case = self._read(entry, version.case_id)
        if case is not None:
            self.hits += 1
            return case
        self.misses += 1
        from .dataset import prepare_version

        self._write(entry, prepare_version(self.project, bundle, version.case_id, version))
        case = self._read(entry, version.case_id)
        assert case is not None, f"{entry} was just written"
        return case

    def _read(self, entry: Path, case_id: str) -> TrainingCase | None:
        if not (entry / "image.npy").exists():
            return None
        try:
            arrays = {
                name: np.load(entry / f"{name}.npy", mmap_mode="r")
                for name in _ARRAYS
                if (entry / f"{name}.npy").exists()
            }
        except (OSError, ValueError):  # a damaged entry: prepared again
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return TrainingCase(
            case_id, arrays["image"], arrays["labels"], arrays.get("corrected", None)
        )

    def _write(self, entry: Path, case: TrainingCase) -> None:
        """Store ``case`` under ``entry``, atomically: a staging folder renamed into place."""
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = staging_folder(self.folder, f".{entry.name}-")
        try:
            for name in _ARRAYS:
                array = getattr(case, name)
                if array is not None:
                    np.save(staging / f"{name}.npy", np.ascontiguousarray(array))
            try:
                os.rename(staging, entry)
            except OSError:  # another process stored it meanwhile: theirs is the same
                if not (entry / "image.npy").exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def prune(self) -> int:
        """Remove the entries :meth:`get` was not asked for (superseded label versions,
        changed images, another model grid); returns how many were removed."""
        if not self.folder.is_dir():
            return 0
        removed = 0
        for entry in self.folder.iterdir():
            if not entry.is_dir() or entry.name in self.used:
                continue
            if entry.name.startswith("."):  # staging: another writer's, or a crash's
                if time.time() - entry.stat().st_mtime < STALE_STAGING_SECONDS:
                    continue
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        return removed
