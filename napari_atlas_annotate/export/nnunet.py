"""nnU-Net v2 raw dataset: ``DatasetNNN_Name/imagesTr/<case>_0000.nii.gz``,
``labelsTr/<case>.nii.gz`` and ``dataset.json`` (channel_names, labels, numTraining,
file_ending). Labels are the project's class ids on the image grid.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .. import __version__
from ..io.atomic import write_text
from ..volume import Volume
from .errors import ExportError
from .nifti_writer import write_nifti

FILE_ENDING = ".nii.gz"


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``DatasetNNN_Name``; the id must be 1..999 and the name letters/digits/_/-."""
    if not 1 <= int(dataset_id) <= 999:
        raise ExportError(f"nnU-Net dataset id must be 1..999, not {dataset_id}")
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")
    if not clean:
        raise ExportError(f"dataset name {name!r} has no letters or digits; pass --dataset-name")
    return f"Dataset{int(dataset_id):03d}_{clean}"


def same_id_datasets(out_dir: Path, folder_name: str) -> list[Path]:
    """Other ``DatasetNNN_*`` folders in ``out_dir`` with the id of ``folder_name``: nnU-Net
    refuses to run when two datasets share an id ("More than one dataset name found")."""
    prefix = folder_name.split("_", 1)[0] + "_"
    if not Path(out_dir).is_dir():
        return []
    return sorted(
        p
        for p in Path(out_dir).iterdir()
        if p.is_dir() and p.name.startswith(prefix) and p.name != folder_name
    )


def free_dataset_id(out_dir: Path, start: int) -> int | None:
    """The first dataset id from ``start`` (wrapping round 1..999) no folder in ``out_dir``
    uses, or ``None``."""
    used = set()
    if Path(out_dir).is_dir():
        for p in Path(out_dir).iterdir():
            match = re.fullmatch(r"Dataset(\d{3})_.+", p.name)
            if match:
                used.add(int(match.group(1)))
    for offset in range(999):
        candidate = (int(start) - 1 + offset) % 999 + 1
        if candidate not in used:
            return candidate
    return None


def refuse_id_clash(out_dir: Path, folder_name: str) -> None:
    """Raise :class:`ExportError` when another dataset in ``out_dir`` has the id of
    ``folder_name`` (replacing ``folder_name`` itself is the ``--overwrite`` rule's job)."""
    clash = same_id_datasets(out_dir, folder_name)
    if not clash:
        return
    dataset_id = int(folder_name[len("Dataset") : len("Dataset") + 3])
    other = clash[0].name
    free = free_dataset_id(out_dir, dataset_id)
    another = f"another --dataset-id (e.g. {free})" if free else "another --dataset-id"
    raise ExportError(
        f"{out_dir} already holds {other} with nnU-Net dataset id {dataset_id}; nnU-Net "
        f"refuses two datasets with one id, so {folder_name} is not written beside it. "
        f"Pass {another}, or --dataset-name {other.split('_', 1)[1]} --overwrite to "
        f"replace {other}."
    )


def write_case(image: Volume, labels: np.ndarray, case_id: str, root: Path) -> list[Path]:
    """Write ``imagesTr/<case>_0000.nii.gz`` and ``labelsTr/<case>.nii.gz``."""
    dtype = np.uint8 if int(labels.max(initial=0)) < 256 else np.uint16
    return [
        write_nifti(image.array, image.affine, root / "imagesTr" / f"{case_id}_0000{FILE_ENDING}"),
        write_nifti(
            np.asarray(labels).astype(dtype, copy=False),
            image.affine,
            root / "labelsTr" / f"{case_id}{FILE_ENDING}",
            mask=True,
        ),
    ]


def dataset_json(classes: list[str], num_training: int, name: str, channel: str = "CT") -> dict:
    """The dataset.json content nnU-Net v2 reads."""
    return {
        "channel_names": {"0": channel},
        "labels": {"background": 0, **{c: i for i, c in enumerate(classes, start=1)}},
        "numTraining": int(num_training),
        "file_ending": FILE_ENDING,
        "name": name,
        "description": f"exported by napari-atlas-annotate {__version__}",
    }


def write_dataset_json(
    root: Path, classes: list[str], num_training: int, name: str, channel: str = "CT"
) -> Path:
    content = dataset_json(classes, num_training, name, channel)
    return write_text(root / "dataset.json", json.dumps(content, indent=2) + "\n")
