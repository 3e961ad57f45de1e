"""Small organ projects on disk for the dock and recorder tests: two phantom CT cases,
each with a damaged proposal (so there is something to correct), or read by two readers
(for the lead's review dock)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.volume import Volume

SHAPE = (12, 40, 40)


def _phantom(seed: int) -> tuple[Volume, np.ndarray]:
    try:
        from napari_atlas_annotate.phantoms import make_ct_phantom
    except ImportError:
        from napari_atlas_annotate.phantoms.ct import make_ct_phantom
    image, label, _ = make_ct_phantom(seed, shape=SHAPE)
    return image, np.asarray(label.array, np.uint8)


@dataclass
class OrganProject:
    folder: Path
    case_ids: list[str]
    images: dict[str, Path]
    proposals: dict[str, np.ndarray]
    proposal_ids: dict[str, int]

    def open(self) -> Project:
        return Project(self.folder)


def make_organ_project(root: Path, n_cases: int = 2) -> OrganProject:
    project = Project.create(root / "project", task="organs")
    images, proposals, ids = {}, {}, {}
    for i in range(n_cases):
        case_id = f"ct{i:03d}"
        image, truth = _phantom(seed=i)
        path = root / "images" / f"{case_id}.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_nifti(image, path)
        project.add_case(case_id, [ImageRef(str(path), "CT")])
        proposal = truth.copy()
        proposal[:, : SHAPE[1] // 3] = 0  # the helper model missed the anterior third
        proposal[proposal == 1] = 0  # ... and the aorta
        ids[case_id] = project.save_mask_version(
            case_id, proposal, kind="proposal", model_version="test-model"
        ).id
        images[case_id], proposals[case_id] = path, proposal
    project.set_uncertainty("ct000", 0.9)
    project.close()
    return OrganProject(root / "project", sorted(images), images, proposals, ids)


def make_two_reader_project(root: Path, spleen_dispute: bool = False) -> tuple[Project, dict]:
    """Two phantom CT cases ``ct0``/``ct1`` (AbdomenAtlas classes) read by alice (the
    truth) and bob (a liver grown by a voxel; with ``spleen_dispute``, no spleen in
    ``ct1``: the most disputed case). Returns the open project and each case's
    ``{"alice", "bob", "image"}``."""
    from scipy import ndimage

    from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom

    liver, spleen = 5, 8
    project = Project.create(root / "proj", task="organs", classes=list(ABDOMEN_ATLAS_CLASSES))
    masks = {}
    for seed in range(2):
        image, label, _ = make_ct_phantom(seed, shape=(16, 40, 40))
        case_id = f"ct{seed}"
        project.add_case(case_id, [ImageRef(str(save_nifti(image, root / f"{case_id}.nii")))])
        alice = label.array.astype(np.uint8)
        bob = alice.copy()
        bob[ndimage.binary_dilation(alice == liver) & (alice == 0)] = liver
        if spleen_dispute and seed == 1:
            bob[alice == spleen] = 0
        project.save_mask_version(case_id, alice, kind="imported", annotator="alice")
        project.save_mask_version(case_id, bob, kind="imported", annotator="bob")
        masks[case_id] = {"alice": alice, "bob": bob, "image": image}
    return project, masks


@pytest.fixture
def organ_project(tmp_path) -> OrganProject:
    return make_organ_project(tmp_path)
