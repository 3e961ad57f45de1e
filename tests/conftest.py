"""Fixtures shared across test folders (each folder's conftest.py holds its own)."""

from pathlib import Path

import pytest


@pytest.fixture
def torch_one_thread():
    """Run a test's torch work on one thread (CI has 2 cores shared by everything)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
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
