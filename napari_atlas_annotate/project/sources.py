"""Turn paths a user gives (`atlas-annotate add`) into cases: NIfTI files, DICOM folders
(one case per series for organ projects, one case per study folder for spine projects) and
phantom ``manifest.json`` files (with their truth, for simulation and evaluation)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..io.nifti import is_nifti_path
from .errors import ProjectError
from .records import ImageRef


@dataclass
class NewCase:
    id: str
    images: list[ImageRef]
    truth: dict = field(default_factory=dict)
    source: str = ""


def _safe_id(text: str) -> str:
    text = re.sub(r"\.nii(\.gz)?$", "", text)
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return text[:120] or "case"


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


def cases_from_path(path: Path, task: str) -> list[NewCase]:
    """The cases one path stands for; raises :class:`ProjectError` for unusable input."""
    path = Path(path)
    if not path.exists():
        raise ProjectError(f"{path}: does not exist. Check the path.")
    if path.is_file() and path.name.endswith(".json"):
        return cases_from_manifest(path, task)
    if path.is_file() and is_nifti_path(path):
        if task == "spine":
            raise ProjectError(
                f"{path}: spine projects take DICOM study folders (Sagittal T1, Sagittal "
                "T2/STIR, Axial T2), not NIfTI files."
            )
        return [NewCase(_safe_id(path.name), [ImageRef(str(path), path.name)], source=str(path))]
    from ..io import VolumeLoadError, list_series

    try:
        series = [s for s in list_series(path) if not s.non_image]
    except VolumeLoadError as exc:
        raise ProjectError(str(exc)) from exc
    if not series:
        raise ProjectError(f"{path}: no image series found (only non-image DICOM objects).")
    name = _safe_id(path.stem if path.is_file() else path.name)
    if task == "spine":
        images = [ImageRef(str(path), s.description, s.series_uid) for s in series]
        return [NewCase(name, images, source=str(path))]
    if len(series) == 1:
        return [NewCase(name, [ImageRef(str(path), series[0].description)], source=str(path))]
    return [
        NewCase(
            f"{name}_s{s.series_number if s.series_number is not None else i}",
            [ImageRef(str(path), s.description, s.series_uid)],
            source=str(path),
        )
        for i, s in enumerate(series)
    ]


def copy_into_project(case: NewCase, project_folder: Path) -> NewCase:
    """Copy a case's images under ``project_folder/images/<case>/`` and point at the copies."""
    dest_root = project_folder / "images" / case.id
    images = []
    for i, ref in enumerate(case.images):
        src = Path(ref.path)
        dest = dest_root / f"{i}_{src.name}"
        if not dest.exists():
            dest_root.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dest)
            else:
                shutil.copy2(src, dest)
        images.append(ImageRef(str(dest), ref.description, ref.series))
    return NewCase(case.id, images, case.truth, case.source)
