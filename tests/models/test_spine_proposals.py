"""Spine proposals: the active grader grades each case's study; proposals are stored as
grades versions naming the grader, with the case's uncertainty for the queue."""

import math
from pathlib import Path

import numpy as np
import pytest

from napari_atlas_annotate.grade_sheet import GradeSheet, LevelPoint
from napari_atlas_annotate.models import registry
from napari_atlas_annotate.models.inference import InferenceCancelled
from napari_atlas_annotate.models.spine_proposals import (
    load_active_grader,
    load_spine_study,
    propose_spine_cases,
    sheet_uncertainty,
)
from napari_atlas_annotate.project import ImageRef, Project, ProjectError
from napari_atlas_annotate.spine_grades import GRADES

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def manifest(spine_phantoms):
    return spine_phantoms(11)


@pytest.fixture
def spine_project(spine_project_from, manifest):
    return spine_project_from(manifest)


def test_propose_stores_grade_proposals_and_uncertainty(spine_project):
    seen = []
    results = propose_spine_cases(
        spine_project, device="cpu", progress=lambda d, t, m: seen.append((d, t))
    )
    ids = [c.id for c in spine_project.cases()]
    assert [r.case_id for r in results] == ids and seen[-1] == (3, 3)
    record = registry.active_record(spine_project)
    assert record.version == "spine-starter" and record.round == 0
    assert (spine_project.folder / record.path / "models" / "model.pt").is_file()
    for r in results:
        version = spine_project.version(r.version_id)
        assert (version.kind, version.content) == ("proposal", "grades")
        assert version.model_version == r.model_version == "spine-starter"
        sheet = spine_project.read_grades(version)
        assert len(sheet.probabilities) == 25 and len(sheet.grades) == 25
        for cell, p in sheet.probabilities.items():
            assert sum(p) == pytest.approx(1.0) and min(p) >= 0
            assert sheet.grades[cell] == GRADES[int(np.argmax(p))]
        names = {ref.description for ref in spine_project.case(r.case_id).images}
        study = load_spine_study(spine_project, r.case_id)
        assert sheet.points and {p.series for p in sheet.points.values()} <= names
        for point in sheet.points.values():
            assert 1 <= point.instance <= study.series[point.series].shape[0]
        assert r.uncertainty == pytest.approx(sheet_uncertainty(sheet))
        assert 0 < r.uncertainty < 1 and r.uncertainty_path is None
        assert spine_project.case(r.case_id).uncertainty == pytest.approx(r.uncertainty)
    queue = [c.uncertainty for c in spine_project.queue()]
    assert queue == sorted(queue, reverse=True)


def test_only_cases_without_a_current_proposal_unless_asked(spine_project):
    first = propose_spine_cases(spine_project, device="cpu")
    assert propose_spine_cases(spine_project, device="cpu") == []
    again = propose_spine_cases(spine_project, device="cpu", every=True)
    assert [r.case_id for r in again] == [r.case_id for r in first]
    one = propose_spine_cases(spine_project, [first[0].case_id], device="cpu")
    assert [r.case_id for r in one] == [first[0].case_id]
    # The same grader on the same study gives the same sheet.
    a, b = (spine_project.version(r.version_id) for r in (first[0], one[0]))
    assert a.sha256 == b.sha256


def test_uncertainty_is_normalised_entropy():
    sure, unsure = GradeSheet(), GradeSheet()
    sure.probabilities[("spinal_canal_stenosis", "l1_l2")] = [1.0, 0.0, 0.0]
    unsure.probabilities[("spinal_canal_stenosis", "l1_l2")] = [1 / 3] * 3
    assert sheet_uncertainty(sure) == 0.0
    assert sheet_uncertainty(unsure) == pytest.approx(1.0)
    assert math.isnan(sheet_uncertainty(GradeSheet()))


def test_series_aliases_name_points_both_ways(tmp_path, spine_project):
    case = spine_project.cases()[0]
    short = {"Sagittal T1": "sag t1", "Sagittal T2/STIR": "sag t2", "Axial T2": "ax t2"}
    images = [ImageRef(ref.path, short[ref.description], ref.series) for ref in case.images]
    spine_project.add_case("renamed", images)
    (result,) = propose_spine_cases(spine_project, ["renamed"], device="cpu")
    sheet = spine_project.read_grades(spine_project.version(result.version_id))
    assert {p.series for p in sheet.points.values()} <= set(short.values())
    study = load_spine_study(spine_project, "renamed")
    # RSNA files name a point's series by its series number (the phantom's series_id).
    number = str(study.series["sag t2"].metadata["series_number"])
    truth = GradeSheet()
    truth.set_point("spinal_canal_stenosis", "l3_l4", LevelPoint(number, 7, 60.0, 64.0))
    canonical = study.to_canonical(truth).points[("spinal_canal_stenosis", "l3_l4")]
    assert canonical == LevelPoint("Sagittal T2/STIR", 7, 60.0, 64.0)


def test_bad_input_is_refused_before_work(tmp_path, spine_project):
    with pytest.raises(ProjectError, match="nope"):
        propose_spine_cases(spine_project, [spine_project.cases()[0].id, "nope"], device="cpu")
    axial = [ref for ref in spine_project.cases()[0].images if ref.description == "Axial T2"]
    spine_project.add_case("axial-only", axial)
    with pytest.raises(ProjectError, match="axial-only.*Sagittal T2/STIR"):
        propose_spine_cases(spine_project, ["axial-only"], device="cpu")
    assert spine_project.versions("axial-only") == []
    with Project.create(tmp_path / "organs", task="organs") as organs:
        with pytest.raises(ProjectError, match="spine projects"):
            load_active_grader(organs)


def test_cancel_stores_nothing(spine_project):
    with pytest.raises(InferenceCancelled):
        propose_spine_cases(spine_project, device="cpu", cancel=lambda: True)
    assert spine_project.versions(content="grades") == []


def test_axial_stacks_become_images_and_the_grader_reads_each_level_on_its_stack(
    tmp_path, spine_project_from
):
    """A lumbar study whose Axial T2 is one series of three angled blocks (L3/L4..L5/S1):
    added as one image per block, and each subarticular point proposed on the block
    through its level, within a few mm of where the reader would click."""
    from napari_atlas_annotate.models.grader import SeriesCache
    from napari_atlas_annotate.models.grader_geometry import point_to_world
    from napari_atlas_annotate.phantoms import write_phantoms
    from napari_atlas_annotate.project.importing import read_grade_sheet
    from napari_atlas_annotate.spine_grades import LEVELS

    manifest = write_phantoms(tmp_path / "ph", 0, 1, 5, axial_stacks=LEVELS[2:])
    project = spine_project_from(manifest)
    [case] = project.cases()
    axial = [ref.stack for ref in case.images if ref.description == "Axial T2"]
    assert axial == [1, 2, 3]
    assert [r.stack for r in Project(project.folder).case(case.id).images] == [
        ref.stack for ref in case.images
    ]  # stored with the case

    [result] = propose_spine_cases(project, device="cpu")
    sheet = project.read_grades(project.version(result.version_id))
    study = load_spine_study(project, case.id)
    cache = SeriesCache(study.series)
    rsna = read_grade_sheet(Path(case.truth["grades"]), int(case.id), Path(case.truth["points"]))
    truth = study.to_canonical(rsna)  # RSNA points name the series by series_id
    for level in LEVELS:
        for side in ("left", "right"):
            cell = (f"{side}_subarticular_stenosis", level)
            point, want = sheet.points[cell], truth.points[cell]
            assert point.series == "Axial T2"  # the series, not a stack
            on = cache.volume_of(point)
            if level in LEVELS[2:]:  # the block through this level holds the point
                assert on.metadata["stack"] == LEVELS[2:].index(level) + 1
                assert on is cache.volume_of(want)
                wanted = point_to_world(on, want)
                distance = np.linalg.norm(point_to_world(on, point) - wanted)
                assert distance < 8.0, (cell, distance)
            else:  # no block there: the nearest one, the upper
                assert on.metadata["stack"] == 1
