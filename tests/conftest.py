"""Fixtures shared across test folders (each folder's conftest.py holds its own)."""

from pathlib import Path

import pytest

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES


@pytest.fixture
def torch_one_thread():
    """Run a test's torch work on one thread (CI has 2 cores shared by everything)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def campaign_on_one_thread(settings, out) -> dict:
    """``run_campaign(settings, out)`` with torch on one thread (module-scoped campaign
    fixtures cannot use :func:`torch_one_thread`, a function-scoped fixture)."""
    import torch

    from napari_atlas_annotate.campaign import run_campaign

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_campaign(settings, out)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def spine_phantoms(tmp_path_factory):
    """``spine_phantoms(seed)``: manifest of 3 lumbar DICOM phantom studies, made once per seed."""
    from napari_atlas_annotate.phantoms import write_phantoms

    made = {}

    def make(seed: int) -> Path:
        if seed not in made:
            folder = tmp_path_factory.mktemp(f"spine_phantoms_{seed}")
            made[seed] = Path(write_phantoms(folder, 0, 3, seed, "dicom"))
        return made[seed]

    return make


def _read_spine_truths(manifest: Path) -> dict:
    import json

    from napari_atlas_annotate.spine_grades import read_coordinates_csv, read_grades_csv
    from napari_atlas_annotate.training.grader import truth_sheet

    root = Path(manifest).parent
    out = {}
    for entry in json.loads(Path(manifest).read_text())["cases"]:
        grades = read_grades_csv(root / entry["grades"])[entry["study_id"]]
        points = read_coordinates_csv(root / entry["points"])
        series_ids = {im["description"]: im["series_id"] for im in entry["images"]}
        out[entry["id"]] = truth_sheet(grades, points, series_ids)
    return out


@pytest.fixture(scope="session")
def spine_truths():
    """``spine_truths(manifest)``: ``{case id: truth GradeSheet}`` from a phantom manifest's
    RSNA files (points mapped to series by description)."""
    return _read_spine_truths


@pytest.fixture(scope="session")
def submit_spine_truths():
    """``submit_spine_truths(project, manifest)``: store every study's truth sheet as a
    ``corrected`` grades version by annotator ``sim``; returns the truths."""

    def submit(project, manifest: Path) -> dict:
        truths = _read_spine_truths(manifest)
        for cid, sheet in truths.items():
            project.save_grades_version(cid, sheet, kind="corrected", annotator="sim")
        return truths

    return submit


@pytest.fixture
def spine_project_from(tmp_path):
    """``spine_project_from(manifest)``: a fresh spine project holding the manifest's studies
    (added as ``atlas-annotate add`` would), closed after the test."""
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.project.sources import cases_from_path

    opened = []

    def make(manifest: Path) -> Project:
        project = Project.create(tmp_path / f"spine{len(opened)}", task="spine")
        for case in cases_from_path(Path(manifest), "spine"):
            project.add_case(case.id, case.images, truth=case.truth, source=case.source)
        opened.append(project)
        return project

    yield make
    for project in opened:
        project.close()


# -- organ-model fixtures (tests/models, tests/training) -----------------------------------
TINY_ARCH = {"name": "UNet", "kwargs": {"channels": [4, 8], "strides": [2], "num_res_units": 0}}


def make_tiny_bundle(folder, version="tiny-0", seed=0, classes=ABDOMEN_ATLAS_CLASSES):
    """A tiny untrained organ model bundle (fast to build, load and run)."""
    import torch

    from napari_atlas_annotate.models.bundle import build_network, save_bundle
    from napari_atlas_annotate.models.organ_model import organ_metadata

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
