"""Grade-sheet editing: every change logged, replay reproduces the submitted sheet exactly,
a reopened session restores unsubmitted work, and level points map to voxels and back."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.grade_editing import (
    GRADE_TOOL,
    POINT_TOOL,
    GradeSession,
    index_to_point,
    instance_numbers,
    point_to_index,
    replay_grades,
    restore_grade_sheet,
    working_sheet,
)
from napari_atlas_annotate.grade_sheet import GradeSheet, LevelPoint
from napari_atlas_annotate.io import load_volume
from napari_atlas_annotate.io.dicom_writer import write_dicom_series
from napari_atlas_annotate.project import ImageRef, Project, ProjectError
from napari_atlas_annotate.spine_grades import CONDITIONS, GRADES, LEVELS
from napari_atlas_annotate.volume import Volume

CASE = "study1"


def _proposal(rng: np.random.Generator) -> GradeSheet:
    sheet = GradeSheet()
    for i, (c, lv) in enumerate(GradeSheet.cells()):
        probs = rng.dirichlet(np.ones(3)).tolist()
        sheet.set_grade(c, lv, GRADES[int(np.argmax(probs))])
        sheet.probabilities[(c, lv)] = probs
        sheet.points[(c, lv)] = LevelPoint("Sagittal T2/STIR", 1 + i % 15, 10.5 + i, 20.25 + i)
    return sheet


@pytest.fixture
def project(tmp_path) -> Project:
    project = Project.create(tmp_path / "p", task="spine")
    # images are referenced, never read by the editing core
    project.add_case(CASE, [ImageRef(str(tmp_path / "study"), "Sagittal T2/STIR")])
    yield project
    project.close()


def _random_edits(session: GradeSession, rng: np.random.Generator, n: int) -> None:
    cells = GradeSheet.cells()
    for _ in range(n):
        c, lv = cells[int(rng.integers(len(cells)))]
        action = rng.integers(4)
        if action == 0:
            session.cycle_grade(c, lv)
        elif action == 1:
            session.set_grade(c, lv, GRADES[int(rng.integers(3))])
        elif action == 2:
            series = ("Sagittal T1", "Sagittal T2/STIR", "Axial T2")[int(rng.integers(3))]
            point = LevelPoint(series, int(rng.integers(1, 16)), *rng.uniform(0, 128, 2))
            session.set_point(c, lv, point)
        else:
            session.set_point(c, lv, None)


def test_every_change_is_logged_with_old_and_new(project):
    project.save_grades_version(CASE, _proposal(np.random.default_rng(0)), kind="proposal")
    session = GradeSession.open(project, CASE, "ann")
    cell = ("spinal_canal_stenosis", "l4_l5")
    before = session.sheet.grade(*cell)
    new = session.cycle_grade(*cell)
    assert new == GRADES[(GRADES.index(before) + 1) % 3]
    assert session.set_grade(*cell, new) is None  # unchanged: nothing logged
    old_point = session.sheet.points[cell]
    moved = LevelPoint(old_point.series, old_point.instance, old_point.x + 3.5, old_point.y - 1)
    session.set_point(*cell, moved)

    events = project.events(CASE, "ann")
    assert [e.tool for e in events] == [GRADE_TOOL, POINT_TOOL]
    assert events[0].detail == {"condition": cell[0], "level": cell[1], "old": before, "new": new}
    assert events[1].detail["old_point"]["x"] == old_point.x
    assert events[1].detail["new_point"] == {
        "series": moved.series,
        "instance": moved.instance,
        "x": moved.x,
        "y": moved.y,
    }
    assert all(e.base_version_id == session.base.id for e in events)


def test_replay_of_logged_events_reproduces_submitted_sheet(project):
    rng = np.random.default_rng(1)
    proposal = project.save_grades_version(CASE, _proposal(rng), kind="proposal")
    session = GradeSession.open(project, CASE, "ann")
    assert session.base.id == proposal.id
    _random_edits(session, rng, 60)
    version = session.submit()

    submitted = project.read_grades(version)
    events = project.events(
        CASE, "ann", base_version_id=proposal.id, up_to_id=version.last_event_id
    )
    assert len(events) > 30
    replayed = replay_grades(working_sheet(project.read_grades(proposal)), events)
    assert replayed == submitted
    assert replayed.to_json() == submitted.to_json()
    assert version.kind == "corrected" and version.parent_id == proposal.id
    assert [a["action"] for a in project.audit_trail(CASE)] == ["submit"]
    assert submitted.probabilities == {}  # the model's probabilities stay on the proposal

    # a second round on top of the corrected version replays the same way
    session2 = GradeSession.open(project, CASE, "ann")
    assert session2.base.id == version.id and session2.sheet == submitted
    _random_edits(session2, rng, 25)
    version2 = session2.submit()
    events2 = project.events(CASE, "ann", base_version_id=version.id)
    assert replay_grades(submitted, events2) == project.read_grades(version2)


def test_reopen_restores_unsubmitted_edits(project):
    rng = np.random.default_rng(2)
    project.save_grades_version(CASE, _proposal(rng), kind="proposal")
    session = GradeSession.open(project, CASE, "ann")
    _random_edits(session, rng, 20)
    expected = session.sheet
    # the process dies here; a new session on a fresh connection restores the work
    project2 = Project(project.folder)
    try:
        base, sheet, pending = restore_grade_sheet(project2, CASE, "ann")
        assert sheet == expected
        assert len(pending) == len(session.pending)
        assert project2.case_state(CASE, "ann") == "in_progress"
        # another annotator's sheet is untouched by these edits
        _, other, other_pending = restore_grade_sheet(project2, CASE, "other")
        assert other_pending == [] and other == working_sheet(project2.read_grades(base))
    finally:
        project2.close()


def test_start_without_any_version_and_submit(project):
    session = GradeSession.open(project, CASE, "ann")
    assert session.base is None and session.proposal is None and session.sheet.grades == {}
    for c in CONDITIONS:
        for lv in LEVELS:
            session.cycle_grade(c, lv)
    assert session.sheet.is_complete()
    version = session.submit()
    assert version.parent_id is None
    assert project.read_grades(version).grades == {cell: GRADES[0] for cell in GradeSheet.cells()}
    assert project.case_state(CASE, "ann") == "submitted"


def test_edits_begun_on_a_blank_sheet_survive_a_later_import_or_proposal(project):
    # a reader grades before any proposal exists; then a background proposal and an
    # import (add --labels) store versions: reopening must still show the reader's work
    session = GradeSession.open(project, CASE, "ann")
    session.set_grade(CONDITIONS[0], LEVELS[0], GRADES[2])
    session.set_point(CONDITIONS[0], LEVELS[0], LevelPoint("Sagittal T2/STIR", 3, 40.0, 50.0))
    expected = session.sheet
    rng = np.random.default_rng(5)
    project.save_grades_version(CASE, _proposal(rng), kind="proposal", model_version="m")
    project.save_grades_version(CASE, _proposal(rng), kind="imported", annotator="rsna")
    base, sheet, pending = restore_grade_sheet(project, CASE, "ann")
    assert base is None
    assert sheet == expected and len(pending) == 2
    # a reader who has not edited starts from the newest version, as before
    other_base, _, other_pending = restore_grade_sheet(project, CASE, "other")
    assert other_base is not None and other_base.kind == "imported" and other_pending == []


def test_bad_input_is_refused_with_a_clear_message(project, tmp_path):
    session = GradeSession.open(project, CASE, "ann")
    with pytest.raises(ValueError, match="grade must be one of"):
        session.set_grade("spinal_canal_stenosis", "l1_l2", "Mildish")
    with pytest.raises(ValueError, match="unknown condition"):
        session.cycle_grade("scoliosis", "l1_l2")
    assert project.events(CASE, "ann") == []
    organs = Project.create(tmp_path / "organs", task="organs")
    organs.add_case("ct1", [ImageRef(str(tmp_path / "ct.nii.gz"))])
    with pytest.raises(ProjectError, match="spine projects"):
        GradeSession.open(organs, "ct1", "ann")
    with pytest.raises(ProjectError, match="no case"):
        GradeSession.open(project, "missing", "ann")
    organs.close()


def test_points_follow_instance_numbers_not_file_order(tmp_path):
    """A DICOM series whose InstanceNumbers run against slice position: a point's
    instance must land on the slice carrying that InstanceNumber."""
    array = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)
    affine = np.array([[0, 0, -0.8, 10], [0, -0.9, 0, 20], [3.0, 0, 0, -30], [0, 0, 0, 1.0]])
    files = write_dicom_series(Volume(array, affine, "MR"), tmp_path / "s", uid_seed="x")
    for k, path in enumerate(files):  # renumber: slice k gets InstanceNumber 10 - 2k
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = 10 - 2 * k
        ds.save_as(path)
    volume = load_volume(tmp_path / "s")
    numbers = instance_numbers(volume)
    assert numbers == [10, 8, 6, 4, 2]
    point = LevelPoint("Sagittal T1", 6, 3.25, 4.5)
    index = point_to_index(point, numbers)
    assert index.tolist() == [2.0, 4.5, 3.25]
    assert volume.array[2, 4, 3] == array[2, 4, 3]
    assert index_to_point("Sagittal T1", index + [0.3, 0, 0], numbers) == point
    with pytest.raises(ValueError, match="instance 7"):
        point_to_index(LevelPoint("Sagittal T1", 7, 0, 0), numbers)
    # no DICOM headers (e.g. NIfTI): slices are numbered 1..nz in z order
    assert instance_numbers(Volume(array, affine)) == [1, 2, 3, 4, 5]


def test_instance_numbers_come_from_the_loaded_series_without_reading_its_files_again(tmp_path):
    """The DICOM reader keeps each slice's InstanceNumber in z order; the grade sheet read
    every header of every series again on each case it opened (and, with the files gone
    or unreadable, numbered the slices 1..n instead)."""
    gone = [str(tmp_path / f"missing{k}.dcm") for k in range(3)]
    volume = Volume(
        np.zeros((3, 4, 4), np.int16),
        np.eye(4),
        "MR",
        {"files": gone, "instance_numbers": [12, 11, 10]},
    )
    assert instance_numbers(volume) == [12, 11, 10]
    # numbers the reader could not make whole (missing, repeated) are not trusted
    volume.metadata["instance_numbers"] = [1, None, 3]
    assert instance_numbers(volume) == [1, 2, 3]
    volume.metadata["instance_numbers"] = [4, 4, 5]
    assert instance_numbers(volume) == [1, 2, 3]


def test_submitting_an_unchanged_sheet_again_stores_nothing(project):
    """Submit twice without a change in between: one version, not two identical ones
    (as for masks); accepting a proposal unchanged is still stored."""
    project.save_grades_version(CASE, _proposal(np.random.default_rng(5)), kind="proposal")
    session = GradeSession.open(project, CASE, "ann")
    first = session.submit()  # the proposal accepted as it is: stored
    assert first.kind == "corrected"
    again = session.submit()
    assert again.id == first.id
    reopened = GradeSession.open(project, CASE, "ann")
    assert reopened.submit().id == first.id
    assert len(project.versions(CASE, annotator="ann")) == 1


def test_a_second_window_of_the_same_reader_is_not_overwritten(project):
    """Two windows under one name: submitting the one that has not seen the other's
    changes would fold them into a version without them (lost); it is refused, naming
    what came from elsewhere, and nothing is stored."""
    project.save_grades_version(CASE, _proposal(np.random.default_rng(6)), kind="proposal")
    here = GradeSession.open(project, CASE, "ann")
    there = GradeSession.open(Project(project.folder), CASE, "ann")
    cell = (CONDITIONS[0], LEVELS[2])
    there.set_grade(*cell, GRADES[2] if here.sheet.grade(*cell) != GRADES[2] else GRADES[0])
    here.set_grade(CONDITIONS[1], LEVELS[0], GRADES[1])
    with pytest.raises(ProjectError, match="1 edit.*another window"):
        here.submit()
    assert project.versions(CASE, annotator="ann") == []
    # reopened, the sheet has the work of both, and submits
    both = GradeSession.open(project, CASE, "ann")
    assert both.sheet.grade(*cell) == there.sheet.grade(*cell)
    assert both.sheet.grade(CONDITIONS[1], LEVELS[0]) == GRADES[1]
    version = both.submit()
    # the other window, which has not seen that version, is refused too
    with pytest.raises(ProjectError, match=f"version {version.id} was submitted"):
        there.submit()
