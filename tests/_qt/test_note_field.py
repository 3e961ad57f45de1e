"""A reader's note for the lead: typed in the dock, stored with the submitted version,
back when the case is opened again, and a changed note alone is a new submission."""

from __future__ import annotations

import pytest

from napari_atlas_annotate.project import Project

from .test_grade_sheet import spine_project  # noqa: F401 - the fixture

annotator = pytest.importorskip("napari_atlas_annotate._qt.annotator")
grade_sheet = pytest.importorskip("napari_atlas_annotate._qt.grade_sheet")


def test_the_note_is_stored_with_the_submitted_labels_and_comes_back(
    make_napari_viewer, organ_project
):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    case = dock.case_id
    assert dock.note_field.text() == ""  # a proposal's note is the model's, not shown
    dock.note_field.setText("  left kidney removed (nephrectomy)  ")
    version = dock.submit()
    assert version.note == "left kidney removed (nephrectomy)"
    assert dock.case_id != case and dock.note_field.text() == ""  # the next case: no note

    assert dock.load_case(case)
    assert dock.note_field.text() == "left kidney removed (nephrectomy)"
    with Project(organ_project.folder) as project:
        stored = project.latest_version(case, kinds=("corrected",), annotator="alice")
        assert stored.id == version.id and stored.note == version.note


def test_a_changed_note_alone_is_a_new_submission_an_unchanged_one_is_not(
    make_napari_viewer, organ_project
):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    case = dock.case_id
    first = dock.submit()
    assert dock.load_case(case)
    assert dock.submit().id == first.id  # nothing changed: nothing stored

    assert dock.load_case(case)
    dock.note_field.setText("pancreas tail unclear")
    second = dock.submit()
    assert second.id != first.id and second.note == "pancreas tail unclear"
    with Project(organ_project.folder) as project:
        import numpy as np

        np.testing.assert_array_equal(project.read_mask(second), project.read_mask(first))

    assert dock.load_case(case)
    dock.note_field.clear()  # taking the note back is a change too
    third = dock.submit()
    assert third.id != second.id and third.note is None


def test_the_grade_sheet_stores_its_note(make_napari_viewer, spine_project):  # noqa: F811
    viewer = make_napari_viewer()
    widget = grade_sheet.GradeSheetWidget(viewer, spine_project.folder, "alice")
    assert not widget.note_field.isEnabled()
    assert widget.load_case(spine_project.case_id)
    assert widget.note_field.isEnabled() and widget.note_field.text() == ""
    widget.note_field.setText("L5/S1 foramina hard to see: motion")
    version = widget.submit()
    assert version.note == "L5/S1 foramina hard to see: motion"
    assert widget.submit().id == version.id  # the same sheet and note: nothing stored

    widget.close_case()
    assert widget.load_case(spine_project.case_id)
    assert widget.note_field.text() == "L5/S1 foramina hard to see: motion"


def test_a_note_typed_and_not_submitted_is_kept_when_moving_between_cases(
    make_napari_viewer, organ_project
):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    first = dock.case_id
    dock.note_field.setText("liver dome cut off")
    dock.step_case(+1)  # to look at another case first
    assert dock.case_id != first and dock.note_field.text() == ""
    dock.step_case(-1)
    assert dock.case_id == first and dock.note_field.text() == "liver dome cut off"
    assert dock.submit().note == "liver dome cut off"
    assert dock.load_case(first)
    assert dock.note_field.text() == "liver dome cut off"


def test_the_grade_sheet_keeps_an_unsent_note_too(make_napari_viewer, spine_project):  # noqa: F811
    viewer = make_napari_viewer()
    widget = grade_sheet.GradeSheetWidget(viewer, spine_project.folder, "alice")
    assert widget.load_case(spine_project.case_id)
    widget.note_field.setText("motion at L5/S1")
    widget.close_case()
    assert widget.note_field.text() == ""
    assert widget.load_case(spine_project.case_id)
    assert widget.note_field.text() == "motion at L5/S1"


def test_a_note_typed_and_not_submitted_survives_a_crash(make_napari_viewer, organ_project, qtbot):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    case = dock.case_id
    qtbot.keyClicks(dock.note_field, "spleen tip outside the field")
    with Project(organ_project.folder) as project:  # what a crash now would leave

        def kept() -> bool:
            return project.note_draft(case, "alice") == "spleen tip outside the field"

        qtbot.waitUntil(kept, timeout=3000)  # written half a second after the last key
        assert project.note_draft(case, "bob") is None

    # a new window (after the crash) shows the note on the case, and submits it
    other = annotator.add_annotator_dock(make_napari_viewer(), organ_project.folder, "alice")
    assert other.load_case(case)
    assert other.note_field.text() == "spleen tip outside the field"
    assert other.submit().note == "spleen tip outside the field"
    with Project(organ_project.folder) as project:
        assert project.note_draft(case, "alice") is None  # submitted: no draft left


def test_a_note_typed_back_to_the_submitted_one_leaves_no_draft(
    make_napari_viewer, organ_project, qtbot
):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    case = dock.case_id
    dock.note_field.setText("pancreas tail unclear")
    dock.submit()
    assert dock.load_case(case)
    qtbot.keyClicks(dock.note_field, "!")
    dock.note_field.editingFinished.emit()  # the focus left the field: kept at once
    with Project(organ_project.folder) as project:
        assert project.note_draft(case, "alice") == "pancreas tail unclear!"
    qtbot.keyClick(dock.note_field, "\b")
    dock.step_case(+1)  # moving on writes what is typed: the stored note again
    with Project(organ_project.folder) as project:
        assert project.note_draft(case, "alice") is None


def test_the_grade_sheet_keeps_an_unsent_note_across_windows(
    make_napari_viewer,
    spine_project,  # noqa: F811
    qtbot,
):
    widget = grade_sheet.GradeSheetWidget(make_napari_viewer(), spine_project.folder, "alice")
    assert widget.load_case(spine_project.case_id)
    qtbot.keyClicks(widget.note_field, "motion at L5/S1")
    widget.note_field.editingFinished.emit()
    again = grade_sheet.GradeSheetWidget(make_napari_viewer(), spine_project.folder, "alice")
    assert again.load_case(spine_project.case_id)
    assert again.note_field.text() == "motion at L5/S1"


def test_a_note_being_typed_is_kept_while_the_reader_types_on(
    make_napari_viewer, organ_project, qtbot
):
    """A reader typing a long note without a half-second pause (about 5 keys a second) has
    the note kept as they go, not only once they stop: a crash mid-sentence loses the last
    half second of it, not all of it."""
    from napari_atlas_annotate._qt.note_field import DRAFT_DELAY_MS

    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    case = dock.case_id
    text = "left kidney removed, see op note"
    keys_before_crash = 3 * DRAFT_DELAY_MS // 200 + 1  # three delays of typing on
    for key in text[:keys_before_crash]:
        qtbot.keyClicks(dock.note_field, key)
        qtbot.wait(200)
    with Project(organ_project.folder) as project:  # what a crash now would leave
        kept = project.note_draft(case, "alice")
    assert kept is not None and text.startswith(kept)
    assert len(kept) >= keys_before_crash - DRAFT_DELAY_MS // 200 - 1
