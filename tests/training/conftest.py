"""Shared fixtures for model tests: a tiny untrained organ model and small phantoms."""

from __future__ import annotations

import pytest
import torch

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.models.bundle import build_network, save_bundle
from napari_atlas_annotate.models.organ_model import organ_metadata

TINY_ARCH = {"name": "UNet", "kwargs": {"channels": [4, 8], "strides": [2], "num_res_units": 0}}


def make_tiny_bundle(folder, version="tiny-0", seed=0, classes=ABDOMEN_ATLAS_CLASSES):
    torch.manual_seed(seed)
    meta = organ_metadata(
        version,
        list(classes),
        architecture=TINY_ARCH,
        spacing=(6.0, 6.0, 6.0),
        roi_size=(16, 16, 16),
    )
    network = build_network(meta["architecture"], len(classes))
    return save_bundle(folder, network, meta)


@pytest.fixture
def one_thread():
    """Organ-model tests run torch on one thread (CI machines have two cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_bundle(tmp_path):
    return make_tiny_bundle(tmp_path / "tiny-0")


@pytest.fixture(scope="session")
def small_phantom():
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom

    image, label, _ = make_ct_phantom(3, shape=(24, 48, 48), site=0)
    return image, label


@pytest.fixture
def organ_project(tmp_path, monkeypatch, small_phantom):
    """A project with three small phantom cases; the packaged starter is a tiny model."""
    from napari_atlas_annotate.io.nifti import save_labels, save_nifti
    from napari_atlas_annotate.models import registry
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom
    from napari_atlas_annotate.project import ImageRef, Project

    starter = make_tiny_bundle(tmp_path / "starter" / "organs", version="organs-starter")
    monkeypatch.setitem(registry.STARTERS, "organs", starter)
    project = Project.create(tmp_path / "project", task="organs")
    truths = {}
    for i in range(3):
        image, label, _ = make_ct_phantom(20 + i, shape=(24, 48, 48), site=1)
        folder = tmp_path / "data" / f"c{i}"
        save_nifti(image, folder / "ct.nii.gz")
        save_labels(label.array, image, folder / "label.nii.gz")
        project.add_case(f"c{i}", [ImageRef(str(folder / "ct.nii.gz"), "CT")])
        truths[f"c{i}"] = label.array
    project.truths = truths  # test convenience only
    yield project
    project.close()
