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
