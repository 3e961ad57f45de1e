"""MONAI datalist: ``images/<case>.nii.gz``, ``labels/<case>.nii.gz`` and ``datalist.json``
``{"training": [{"image", "label"}], "validation": [...]}`` with paths relative to the
datalist's folder (what ``monai.data.load_decathlon_datalist(path, base_dir=folder)``
expects).

The split is deterministic and stable: cases are ranked by a hash of their id and the first
``round(n * validation_fraction)`` (at least one when there are two or more cases) go to
validation, so re-exporting the same cases gives the same split.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..io.atomic import write_text
from ..volume import Volume
from .nifti_writer import write_nifti


def split_cases(case_ids: list[str], validation_fraction: float = 0.2) -> tuple[list, list]:
    """(training, validation) case ids, each in the given order."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), not {validation_fraction}")
    n_val = round(len(case_ids) * validation_fraction)
    if validation_fraction > 0 and len(case_ids) >= 2:
        n_val = max(1, n_val)
    ranked = sorted(case_ids, key=lambda c: hashlib.sha256(f"split:{c}".encode()).hexdigest())
    validation = set(ranked[:n_val])
    return [c for c in case_ids if c not in validation], [c for c in case_ids if c in validation]


def case_entry(case_id: str) -> dict[str, str]:
    return {"image": f"images/{case_id}.nii.gz", "label": f"labels/{case_id}.nii.gz"}


def write_case(image: Volume, labels: np.ndarray, case_id: str, root: Path) -> list[Path]:
    entry = case_entry(case_id)
    dtype = np.uint8 if int(labels.max(initial=0)) < 256 else np.uint16
    return [
        write_nifti(image.array, image.affine, root / entry["image"]),
        write_nifti(
            labels.astype(dtype, copy=False), image.affine, root / entry["label"], mask=True
        ),
    ]


def write_datalist(
    root: Path, case_ids: list[str], classes: list[str], validation_fraction: float = 0.2
) -> Path:
    training, validation = split_cases(case_ids, validation_fraction)
    content = {
        "description": "exported by napari-atlas-annotate; paths relative to this file",
        "labels": {"0": "background", **{str(i): c for i, c in enumerate(classes, start=1)}},
        "training": [case_entry(c) for c in training],
        "validation": [case_entry(c) for c in validation],
    }
    return write_text(root / "datalist.json", json.dumps(content, indent=2) + "\n")
