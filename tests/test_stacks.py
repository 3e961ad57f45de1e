"""A case's images read with the stacks of a series taken from one scan of its files:
the same volumes as loading each stack on its own, and the same errors."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_atlas_annotate.io import dicom
from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.project import ProjectError
from napari_atlas_annotate.spine_grades import LEVELS
from napari_atlas_annotate.stacks import CaseImages

# the phantoms' spine folder holds their truth CSVs beside the study
pytestmark = pytest.mark.filterwarnings("ignore:.*skipped .* not DICOM:UserWarning")


@pytest.fixture(params=["manifest", "rsna folder"])
def stacked_case(request, tmp_path):
    """A spine project with one study whose Axial T2 is three angled stacks, added from
    the phantoms' manifest (an image per series folder) or as an RSNA dataset folder (an
    image per series of the study folder)."""
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.project.sources import cases_from_path

    manifest = write_phantoms(tmp_path / "ph", 0, 1, 5, axial_stacks=LEVELS[2:])
    source = manifest if request.param == "manifest" else manifest.parent / "spine"
    project = Project.create(tmp_path / "project", task="spine")
    request.addfinalizer(project.close)
    for found in cases_from_path(source, "spine"):
        project.add_case(found.id, found.images, truth=found.truth, source=found.source)
    [case] = project.cases()
    assert [r.stack for r in case.images if r.stack is not None] == [1, 2, 3]
    return project, case


def _counting_scans(monkeypatch) -> list[Path]:
    scanned = []
    scan = dicom.scan_dicom

    def counted(path, **kw):
        scanned.append(Path(path))
        return scan(path, **kw)

    monkeypatch.setattr(dicom, "scan_dicom", counted)
    return scanned


def test_each_stack_is_the_volume_load_image_gives_from_one_scan(stacked_case, monkeypatch):
    project, case = stacked_case
    scanned = _counting_scans(monkeypatch)
    images = CaseImages(project, case.id)
    ours = [images.load(i) for i in range(len(case.images))]
    # one scan per folder: the series of a study folder and the stacks of a series share it
    assert len(scanned) == len({r.path for r in case.images})
    scanned.clear()
    for i, volume in enumerate(ours):
        alone = project.load_image(case.id, i)
        np.testing.assert_array_equal(volume.array, alone.array)
        np.testing.assert_array_equal(volume.affine, alone.affine)
        assert volume.modality == alone.modality
        assert repr(volume.metadata) == repr(alone.metadata)
    assert len(scanned) == len(case.images) == 5  # one by one: a scan per image


def test_a_missing_series_gives_the_error_load_image_gives(stacked_case):
    project, case = stacked_case
    axial = next(i for i, r in enumerate(case.images) if r.stack == 2)
    shutil.rmtree(project.resolve(case.images[axial].path))
    with pytest.raises(ProjectError) as alone:
        project.load_image(case.id, axial)
    with pytest.raises(ProjectError) as ours:
        CaseImages(project, case.id).load(axial)
    assert str(ours.value) == str(alone.value)
    assert "is missing" in str(ours.value)


def test_the_case_grid_is_its_first_image_and_known_once_read(stacked_case, monkeypatch):
    project, case = stacked_case
    later = project.load_image(case.id, len(case.images) - 1)
    first = CaseImages(project, case.id).load(0)
    assert later.shape != first.shape  # an axial stack is not the sagittal series' grid
    scanned = _counting_scans(monkeypatch)
    shape, affine = project.grid(case.id)  # known from CaseImages: nothing read again
    assert scanned == []
    assert tuple(shape) == first.shape
    np.testing.assert_array_equal(affine, first.affine)
