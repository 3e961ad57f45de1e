"""The annotator dock in a real napari viewer (Xvfb): a scripted correction session and
bad input that must leave the viewer up and the saved data untouched."""

from __future__ import annotations

import hashlib
import shutil
import sys
import types

import numpy as np
import pytest
from qtpy.QtWidgets import QPushButton, QWidget

from napari_atlas_annotate.corrections import (
    fill_between_slices,
    keep_largest_component,
    remove_small_islands,
)
from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import Project, replay
from napari_atlas_annotate.volume import Volume

pytestmark = pytest.mark.qt

annotator = pytest.importorskip("napari_atlas_annotate._qt.annotator")


def _press(viewer, qtbot, key: str) -> None:
    from qtpy.QtCore import Qt

    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, getattr(Qt.Key, f"Key_{key}"))


def _stroke(layer, *coords) -> None:
    """What a mouse drag does: one undo step, one paint event at the end."""
    with layer.block_history():
        for coord in coords:
            layer.paint(coord, layer.selected_label)


def _files(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "labels" in p.parts
    }


def test_scripted_session_submits_what_the_viewer_shows(make_napari_viewer, organ_project, qtbot):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    proposal = organ_project.proposals["ct000"]
    assert dock.case_id == "ct000" and dock.last_error is None  # most uncertain first
    layer = dock.labels_layer
    np.testing.assert_array_equal(layer.data, proposal)
    assert layer.colormap.color_dict[5] is not None  # fixed class colours
    image = np.asarray(dock.image_layer.data)

    # Class keys: 1 picks the aorta, 5 the liver.
    _press(viewer, qtbot, "1")
    assert layer.selected_label == 1
    _press(viewer, qtbot, "5")
    assert layer.selected_label == 5
    dock.select_class(1)
    dock.brush_spin.setValue(3)
    assert layer.brush_size == 3

    # The proposal missed the aorta: outline it on slices 2 and 8, fill in between.
    _stroke(layer, (2, 24, 20))
    _stroke(layer, (8, 24, 20))
    before = np.array(layer.data)
    assert dock.fill_between_slices() > 0
    np.testing.assert_array_equal(layer.data, fill_between_slices(before, 1, axis=0))

    # Fill: relabel the stomach on slice 6 as pancreas; erase a dab.
    z, y, x = 6, *np.argwhere(proposal[6] == 9)[0]
    layer.mode = "fill"
    layer.fill((z, y, x), 6)
    assert layer.data[z, y, x] == 6
    layer.mode = "erase"
    layer.paint((z, y, x), 0)
    assert layer.data[z, y, x] == 0

    # Paint only inside a window: the liver class, brushed over mixed tissue.
    layer.mode = "paint"
    dock.select_class(5)
    dock.window_check.setChecked(True)
    dock.window_lo.setValue(0)
    dock.window_hi.setValue(150)
    before = np.array(layer.data)
    _stroke(layer, (4, 22, 22), (4, 22, 26))
    qtbot.waitUntil(lambda: dock.hook.events[-1].tool == "threshold_paint", timeout=3000)
    changed = before != layer.data
    assert changed.any()
    assert ((image[changed] >= 0) & (image[changed] <= 150)).all()
    assert (layer.data[changed] == 5).all()
    dock.window_check.setChecked(False)
    layer.undo()  # the stroke and its trim are one step
    np.testing.assert_array_equal(layer.data, before)
    layer.redo()
    assert (layer.data[changed] == 5).all()

    # Island clean-up: a stray single-voxel liver dab, then keep the largest liver piece.
    dock.brush_spin.setValue(1)
    _stroke(layer, (10, 38, 2))
    dock.island_spin.setValue(5)
    before = np.array(layer.data)
    assert dock.remove_small_islands() > 0
    np.testing.assert_array_equal(layer.data, remove_small_islands(before, 5, 5))
    before = np.array(layer.data)
    dock.keep_largest_component()
    np.testing.assert_array_equal(layer.data, keep_largest_component(before, 5))

    # Reset to proposal, and change our mind.
    worked = np.array(layer.data)
    dock.reset_to_proposal()
    np.testing.assert_array_equal(layer.data, proposal)
    layer.undo()
    np.testing.assert_array_equal(layer.data, worked)
    layer.undo()
    layer.redo()
    np.testing.assert_array_equal(layer.data, worked)

    shown = np.array(layer.data)
    version = dock.submit()
    assert dock.last_error is None and version.kind == "corrected"
    project = Project(organ_project.folder)
    stored = project.read_mask(version)
    np.testing.assert_array_equal(stored, shown)
    events = project.events("ct000", "alice", base_version_id=organ_project.proposal_ids["ct000"])
    np.testing.assert_array_equal(replay(proposal, events), stored)
    tools = {e.tool for e in events}
    expected = {"paint", "fill", "erase", "interpolate", "threshold_paint", "remove_islands"}
    assert expected | {"keep_largest", "reset", "undo", "redo"} <= tools
    assert all(e.active_seconds <= 60 for e in events)
    # Submit moved on to the next case; the list shows the state.
    assert dock.case_id == "ct001"
    assert project.case_state("ct000", "alice") == "submitted"
    assert any("ct000  [submitted]" in dock.case_list.item(i).text() for i in range(2))
    # Previous goes back and shows the submitted label.
    dock.step_case(-1)
    assert dock.case_id == "ct000"
    np.testing.assert_array_equal(dock.labels_layer.data, stored)


def test_reopen_restores_unsubmitted_work(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "bob")
    dock.select_class(2)
    _stroke(dock.labels_layer, (3, 30, 30))
    painted = np.array(dock.labels_layer.data)
    dock.close_case()
    again = annotator.AnnotatorDock(viewer, organ_project.folder, "bob")
    assert again.case_id == "ct000"
    np.testing.assert_array_equal(again.labels_layer.data, painted)
    assert "1 unsubmitted edits restored" in again.status.text()


def test_not_a_project_is_reported(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    dock = annotator.make_annotator_dock(viewer)
    assert "atlas-annotate init" in dock.status.text()  # how to get a project
    assert not dock.open_project(tmp_path / "nowhere", "alice")
    assert "nowhere" in dock.last_error
    (tmp_path / "plain").mkdir()
    assert not dock.open_project(tmp_path / "plain", "alice")
    assert "not an annotation project" in dock.last_error
    assert len(viewer.layers) == 0 and dock.project is None
    assert not list((tmp_path / "plain").iterdir())
    # the name left empty: said plainly (it was "annotator name '' is not valid")
    assert not dock.open_project(tmp_path / "plain", "  ")
    assert dock.last_error.endswith("type your name in Annotator first.")


def test_moved_image_is_reported_and_nothing_changes(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    before = _files(organ_project.folder)
    image = organ_project.images["ct001"]
    shutil.move(image, image.with_suffix(".moved"))
    assert not dock.load_case("ct001")
    assert "ct001" in dock.last_error and "missing" in dock.last_error
    assert dock.case_id == "ct000" and dock.labels_layer in viewer.layers  # still working
    dock.step_case(+1)
    assert dock.case_id == "ct000"
    assert _files(organ_project.folder) == before
    assert Project(organ_project.folder).events("ct001") == []


def test_label_shape_mismatch_is_reported_and_nothing_changes(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    before = _files(organ_project.folder)
    n_layers = len(viewer.layers)
    # Someone replaced the CT of ct001 with a differently sized one.
    save_nifti(Volume(np.zeros((5, 20, 20), np.int16), np.eye(4)), organ_project.images["ct001"])
    assert not dock.load_case("ct001")
    assert "ct001" in dock.last_error and "shape" in dock.last_error
    assert len(viewer.layers) == n_layers and dock.case_id == "ct000"
    assert _files(organ_project.folder) == before
    project = Project(organ_project.folder)
    assert len(project.versions("ct001")) == 1 and project.events("ct001") == []


def test_submit_without_case_is_reported(make_napari_viewer):
    viewer = make_napari_viewer()
    dock = annotator.make_annotator_dock(viewer)
    assert dock.submit() is None and "open a case" in dock.last_error
    assert dock.fill_between_slices() is None


def _spine_project(tmp_path) -> Project:
    from napari_atlas_annotate.project import ImageRef

    path = tmp_path / "t2.nii.gz"
    save_nifti(Volume(np.arange(4 * 16 * 16, dtype=np.int16).reshape(4, 16, 16), np.eye(4)), path)
    project = Project.create(tmp_path / "spine", task="spine")
    project.add_case("study1", [ImageRef(str(path), "Sagittal T2/STIR")])
    return project


class _StubGradeSheet(QWidget):
    """Stands in for the grade sheet widget (owned and tested elsewhere): records calls."""

    def __init__(self, viewer, project, annotator):
        super().__init__()
        self.project, self.annotator, self.calls = project, annotator, []
        self.submit_button = QPushButton("Submit grades", self)

    def load_case(self, case_id):
        self.calls.append(("load_case", case_id))
        self.case_id = case_id
        return True

    def submit(self):
        self.calls.append(("submit", self.case_id))
        return types.SimpleNamespace(id=7, content="grades")

    def close_case(self):
        self.calls.append(("close_case", getattr(self, "case_id", None)))
        self.case_id = None


@pytest.fixture
def stub_grade_sheet(monkeypatch):
    """The dock's grade sheet module replaced by :class:`_StubGradeSheet`."""
    stub = types.ModuleType("napari_atlas_annotate._qt.grade_sheet")
    stub.GradeSheetWidget = _StubGradeSheet
    monkeypatch.setitem(sys.modules, "napari_atlas_annotate._qt.grade_sheet", stub)


@pytest.mark.usefixtures("stub_grade_sheet")
def test_spine_project_embeds_the_grade_sheet(make_napari_viewer, tmp_path):
    project = _spine_project(tmp_path)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, project.folder, "alice")
    assert dock.case_id == "study1", dock.last_error
    assert isinstance(dock.grade_sheet, _StubGradeSheet) and dock.grade_sheet.annotator == "alice"
    assert dock.labels_layer is None and not dock.organ_box.isVisibleTo(dock)
    assert dock.grade_box.isVisibleTo(dock)
    # one submit button: the dock's "Submit and next case", not the sheet's own beside it
    assert not dock.grade_sheet.submit_button.isVisibleTo(dock)
    assert dock.submit_button.isVisibleTo(dock)
    assert not dock.note_field.isVisibleTo(dock)  # the grade sheet has its own note line
    # The dock's line tells where the user is (it said 'Open a project to start.').
    assert "study1" in dock.status.text() and "Open a project" not in dock.status.text()
    assert dock.submit().id == 7
    assert dock.grade_sheet.calls == [("load_case", "study1"), ("submit", "study1")]
    # the sheet unchanged since this reader's version 7: the dock's line says nothing was
    # stored (it said 'submitted as version 7', as if a new version had been made)
    dock.step_case(-1)
    dock.grade_sheet.session = types.SimpleNamespace(base=types.SimpleNamespace(id=7))
    assert dock.submit().id == 7
    assert "no changes since your version 7; nothing stored" in dock.status.text()


@pytest.mark.usefixtures("stub_grade_sheet")
def test_the_grade_sheet_follows_the_project_and_annotator_opened(
    make_napari_viewer, tmp_path, organ_project
):
    # The sheet is made once per dock: opening the project again as bob (or another
    # project) with Change... kept storing grades under alice, into the first project.
    project = _spine_project(tmp_path)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, project.folder, "alice")
    sheet = dock.grade_sheet
    assert dock.open_project(project.folder, "bob")
    assert dock.grade_sheet is sheet and sheet.annotator == "bob"
    assert sheet.calls[-2:] == [("close_case", "study1"), ("load_case", "study1")]
    other = Project.create(tmp_path / "spine2", task="spine")
    other.add_case("study9", project.case("study1").images)
    assert dock.open_project(other.folder, "carol")
    assert sheet.project.folder == other.folder and sheet.annotator == "carol"
    assert sheet.case_id == "study9"
    assert dock.open_project(organ_project.folder, "carol")  # organs: no sheet left showing
    assert sheet.calls[-1] == ("close_case", "study9") and sheet.case_id is None
    assert not dock.grade_box.isVisibleTo(dock) and dock.labels_layer in viewer.layers


def test_spine_project_without_grade_sheet_says_so(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "napari_atlas_annotate._qt.grade_sheet", None)
    project = _spine_project(tmp_path)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, project.folder, "alice")
    assert dock.case_id == "study1" and dock.image_layer in viewer.layers
    assert dock.grade_box.isVisibleTo(dock) and dock.grade_sheet is None
    assert dock.submit() is None and "grade sheet" in dock.last_error


def test_broken_first_case_is_skipped_on_open(make_napari_viewer, organ_project):
    image = organ_project.images["ct000"]  # the queue's first case
    image.write_bytes(image.read_bytes()[:2000])  # a truncated copy
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    assert dock.case_id == "ct001" and dock.labels_layer in viewer.layers
    assert "ct000" in dock.status.text() and "Opened ct001" in dock.status.text()


def test_submit_names_the_case_actually_shown(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    organ_project.images["ct001"].unlink()  # the next case's image went away meanwhile
    _stroke(dock.labels_layer, (3, 30, 30))
    version = dock.submit()
    assert version is not None
    # ct000 is still what the viewer shows: the message must not claim ct001 is open.
    assert dock.case_id == "ct000" and dock.labels_layer.name == "ct000 labels"
    text = dock.status.text()
    assert f"submitted as version {version.id}" in text
    assert "ct001" in text and "missing" in text and "Now ct001" not in text


def test_second_window_as_the_same_annotator_cannot_overwrite_the_first(
    make_napari_viewer, organ_project
):
    first = annotator.add_annotator_dock(make_napari_viewer(), organ_project.folder, "alice")
    second_viewer = make_napari_viewer()
    second = annotator.add_annotator_dock(second_viewer, organ_project.folder, "alice")
    assert first.case_id == second.case_id == "ct000"
    first.select_class(2)
    _stroke(first.labels_layer, (3, 30, 30))
    second.select_class(1)
    _stroke(second.labels_layer, (6, 20, 20))
    # Each window's label lacks the other's stroke: neither may be stored over the other.
    for dock in (first, second):
        assert dock.submit() is None
        assert "another window" in dock.last_error and "nothing was stored" in dock.last_error
    project = Project(organ_project.folder)
    assert project.latest_version("ct000", annotator="alice", kinds=("corrected",)) is None
    # Close the other window, reopen the case: both strokes are there, and submit works.
    second.close_case()
    second_viewer.close()
    # Double-click on the open case in the list reloads it from the project.
    item = first.case_list.item(first.case_ids().index("ct000"))
    first.case_list.itemActivated.emit(item)
    shown = np.array(first.labels_layer.data)
    assert shown[3, 30, 30] == 2 and shown[6, 20, 20] == 1
    version = first.submit()
    assert version is not None
    np.testing.assert_array_equal(Project(organ_project.folder).read_mask(version), shown)


def test_resubmitting_an_unchanged_case_stores_no_duplicate(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    _stroke(dock.labels_layer, (3, 30, 30))
    first = dock.submit()
    assert dock.case_id == "ct001"
    dock.step_case(-1)  # back to ct000, look, change nothing, submit again
    again = dock.submit()
    assert again is not None and again.id == first.id
    assert "no changes since your version" in dock.status.text()
    project = Project(organ_project.folder)
    assert len(project.versions("ct000", kinds=("corrected",))) == 1
    # An untouched proposal is still stored: accepting it as is is a decision.
    accepted = dock.submit()
    assert (
        accepted.kind == "corrected" and accepted.parent_id == organ_project.proposal_ids["ct001"]
    )


def test_next_at_the_end_of_the_queue_says_so(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    dock.step_case(+1)
    assert dock.case_id == "ct001"
    dock.step_case(+1)
    assert dock.case_id == "ct001" and "last case" in dock.status.text()


def test_a_tool_with_nothing_to_do_says_why_and_logs_nothing(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    layer = dock.labels_layer
    project = Project(organ_project.folder)

    def unchanged(action) -> str:
        before, undo = np.array(layer.data), len(layer._undo_history)
        logged = len(project.events("ct000", "alice"))
        assert action() == 0 and dock.last_error is None
        np.testing.assert_array_equal(layer.data, before)
        assert len(layer._undo_history) == undo  # no empty undo step
        assert len(project.events("ct000", "alice")) == logged  # no empty edit
        assert "nothing changed" in dock.status.text() and "0 voxels" not in dock.status.text()
        return dock.status.text()

    assert "already match proposal" in unchanged(dock.reset_to_proposal)
    dock.select_class(1)  # the proposal has no aorta
    assert "there is no aorta" in unchanged(dock.keep_largest_component)
    dock.brush_spin.setValue(3)
    _stroke(layer, (2, 24, 20))  # one aorta dab on slice 2
    dock.hook.flush()
    assert "drawn on slice 2 only" in unchanged(dock.fill_between_slices)
    assert unchanged(dock.keep_largest_component) == (
        "Keep largest component: nothing changed; the aorta is already one piece."
    )
    dock.island_spin.setValue(2)
    assert "one piece of" in unchanged(dock.remove_small_islands)
    # a tool that does change something still says how much, and Ctrl-Z undoes it
    _stroke(layer, (8, 24, 20))
    assert dock.fill_between_slices() > 0 and "voxels changed" in dock.status.text()


def test_case_list_follows_the_project_on_each_refresh(make_napari_viewer, organ_project):
    # the list is updated in place when the queue keeps its order and rebuilt when it does
    # not; either way it shows what the project says, with the open case current
    from qtpy.QtCore import Qt

    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    project = Project(organ_project.folder)

    def shown():
        items = [dock.case_list.item(i) for i in range(dock.case_list.count())]
        return [(item.text(), item.data(Qt.ItemDataRole.UserRole)) for item in items]

    def expected():
        rows = []
        for case in project.queue():
            unc = "" if case.uncertainty is None else f"  u={case.uncertainty:.2f}"
            rows.append((f"{case.id}  [{project.case_state(case.id, 'alice')}]{unc}", case.id))
        return rows

    assert shown() == expected() and [text for text, _ in shown()][1] == "ct001  [new]"
    final = organ_project.proposals["ct001"]
    project.save_mask_version("ct001", final, kind="final", annotator="lead")  # elsewhere
    dock.refresh_cases()
    assert shown() == expected() and shown()[1][0] == "ct001  [final]"
    project.set_uncertainty("ct001", 0.95)  # a new proposal run reorders the queue
    dock.refresh_cases()
    assert dock.case_ids() == ["ct001", "ct000"] and shown() == expected()
    assert dock.case_list.currentItem().data(Qt.ItemDataRole.UserRole) == dock.case_id == "ct000"
    project.close()


def test_the_class_being_painted_stays_picked_on_the_next_case(make_napari_viewer, organ_project):
    # a radiologist correcting the liver case after case must not find the brush back on
    # the aorta after each Submit (and paint the wrong class without noticing)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    dock.select_class(5)
    assert dock.submit() is not None and dock.case_id == "ct001"
    assert dock.labels_layer.selected_label == 5
    assert dock.class_list.currentRow() == 4  # the list shows the liver picked
    dock.select_class(3)
    dock.step_case(-1)
    assert dock.case_id == "ct000" and dock.labels_layer.selected_label == 3


def test_every_class_of_the_list_is_in_view_on_a_laptop_screen(
    make_napari_viewer, organ_project, qtbot
):
    # on a 1500x950 window the class list showed 6 of the 9 classes and scrolled: a
    # radiologist could not see which key paints the spleen or the stomach
    viewer = make_napari_viewer(show=True)
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    viewer.window._qt_window.resize(1500, 950)
    qtbot.wait(50)
    names = dock.class_list
    assert names.count() == 9
    last = names.visualItemRect(names.item(names.count() - 1))
    assert names.visualItemRect(names.item(0)).top() >= 0
    assert last.bottom() <= names.viewport().height()


def test_the_slice_slider_names_the_patient_axis(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    assert dock.case_id == "ct000"
    # world axes are S, P, L (what _napari/layers.py places the layers in), not -3 -2 -1
    assert tuple(viewer.dims.axis_labels) == ("S", "P", "L")


def test_closing_a_case_removes_its_layers_in_one_canvas_cleanup(make_napari_viewer, organ_project):
    """The case's image, labels and extra layers go in one batch (napari runs a full
    garbage collection per canvas cleanup: at CT sizes a quarter of a second per layer);
    opening the first case removes nothing and starts no batch."""
    viewer = make_napari_viewer()
    batches = []
    viewer.layers.events.end_batch.connect(lambda event: batches.append(len(viewer.layers)))
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    assert batches == [] and len(viewer.layers) == 2
    dock._extra_layers.append(viewer.add_image(np.zeros((2, 4, 4)), name="extra"))
    dock.close_case()
    assert batches == [0] and dock.case_id is None


def test_the_next_case_reuses_the_layers_with_its_own_undo_and_log(
    make_napari_viewer, organ_project, qtbot
):
    """Next shows the next case in the same two layers (no layer removed or added: at CT
    sizes that cost half a second a case), with nothing of the last case left in them:
    names, grid, labels, undo stack, log."""
    from napari_atlas_annotate._napari.layers import volume_from_layer

    viewer = make_napari_viewer()
    batches = []
    viewer.layers.events.end_batch.connect(lambda event: batches.append(len(viewer.layers)))
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    image, labels = dock.image_layer, dock.labels_layer
    dock.select_class(2)
    _stroke(labels, (3, 30, 30))
    dock._extra_layers.append(viewer.add_image(np.zeros((2, 4, 4)), name="extra"))
    viewer.dims.set_current_step(0, 2)
    dock.step_case(+1)
    assert dock.case_id == "ct001" and batches == [2]  # only the extra layer went
    # it opens as a case does: the middle slice (not where the last patient was left)
    assert viewer.dims.current_step[0] == (viewer.dims.nsteps[0] - 1) // 2 != 2
    assert dock.image_layer is image and dock.labels_layer is labels
    assert [layer.name for layer in viewer.layers] == ["ct001 image", "ct001 labels"]
    proposal = organ_project.proposals["ct001"]
    np.testing.assert_array_equal(labels.data, proposal)
    truth = Project(organ_project.folder).load_image("ct001")
    assert volume_from_layer(labels).same_grid(truth) and volume_from_layer(image).same_grid(truth)
    np.testing.assert_array_equal(image.data, truth.array)
    labels.undo()  # the stroke on ct000 is not undone on ct001
    np.testing.assert_array_equal(labels.data, proposal)
    _stroke(labels, (5, 10, 10))
    dock.window_check.setChecked(True)  # the window trim works on the reused layer too
    _stroke(labels, (4, 22, 22), (4, 22, 26))
    qtbot.waitUntil(lambda: dock.hook.events[-1].tool == "threshold_paint", timeout=3000)
    dock.window_check.setChecked(False)
    project = Project(organ_project.folder)
    assert [e.tool for e in project.events("ct001", "alice")] == [
        "paint",
        "paint",
        "threshold_paint",
    ]
    assert [e.tool for e in project.events("ct000", "alice")] == ["paint"]
    shown = np.array(labels.data)
    version = dock.submit()
    assert version is not None and dock.case_id == "ct000"  # in progress: opened next
    np.testing.assert_array_equal(project.read_mask(version), shown)
    assert labels.name == "ct000 labels" and labels.data[3, 30, 30] == 2  # its stroke


def _dicom_series(folder, seed: int, number: int, description: str) -> None:
    from napari_atlas_annotate.io.dicom_writer import write_dicom_series
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom

    image, _, _ = make_ct_phantom(seed, shape=(8, 24, 24))
    write_dicom_series(
        image,
        folder,
        modality="CT",
        series_description=description,
        series_number=number,
        uid_seed=f"dock-test-{seed}",
        file_prefix=f"S{number}_",
    )


def _count_scans(monkeypatch) -> list:
    from napari_atlas_annotate.io import dicom

    scans, scan = [], dicom.scan_dicom

    def counted(path, *args, **kwargs):
        scans.append(str(path))
        return scan(path, *args, **kwargs)

    monkeypatch.setattr(dicom, "scan_dicom", counted)
    return scans


def test_a_dicom_case_is_read_with_one_scan_of_its_folder_and_submitted_without_another(
    make_napari_viewer, tmp_path, monkeypatch
):
    # an organ case with no proposal yet: the empty label takes the image's grid without
    # reading the 300 files of the series a second time
    from napari_atlas_annotate.project import ImageRef

    folder = tmp_path / "dicom"
    _dicom_series(folder, 0, 1, "CT abdomen")
    project = Project.create(tmp_path / "project", task="organs")
    project.add_case("ct", [ImageRef(str(folder), "CT abdomen")])
    scans = _count_scans(monkeypatch)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, Project(project.folder), "alice")
    assert dock.case_id == "ct" and dock.last_error is None
    assert scans == [str(folder)]
    shown = np.asarray(dock.labels_layer.data)
    assert shown.shape == (8, 24, 24) and not shown.any()
    # Submit stores the label on the image's grid without reading the image again
    dock.select_class(5)
    _stroke(dock.labels_layer, (4, 12, 12))
    version = dock.submit()
    assert version is not None and dock.last_error is None
    assert scans == [str(folder)]
    stored = Project(project.folder).read_mask(version)
    np.testing.assert_array_equal(stored, np.asarray(dock.labels_layer.data))
    assert stored[4, 12, 12] == 5


def test_spine_series_without_the_grade_sheet_are_read_from_one_scan(
    make_napari_viewer, tmp_path, monkeypatch
):
    from napari_atlas_annotate.project import ImageRef

    monkeypatch.setitem(sys.modules, "napari_atlas_annotate._qt.grade_sheet", None)
    folder = tmp_path / "study"
    _dicom_series(folder, 1, 1, "Sagittal T1")
    _dicom_series(folder, 2, 2, "Sagittal T2/STIR")
    project = Project.create(tmp_path / "spine", task="spine")
    refs = [ImageRef(str(folder), d, series=d) for d in ("Sagittal T2/STIR", "Sagittal T1")]
    project.add_case("study1", refs)
    scans = _count_scans(monkeypatch)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, Project(project.folder), "alice")
    assert dock.case_id == "study1" and len(viewer.layers) == 2
    assert scans == [str(folder)]


def _count_reads(monkeypatch) -> list[str]:
    """Case ids whose image the dock reads when it opens them (not read ahead)."""
    reads: list[str] = []
    real = annotator.CaseImages.load

    def load(self, index):
        reads.append(self.case_id)
        return real(self, index)

    monkeypatch.setattr(annotator.CaseImages, "load", load)
    return reads


def test_submit_and_next_shows_the_case_read_ahead(make_napari_viewer, organ_project, monkeypatch):
    from napari_atlas_annotate.io import load_volume

    reads = _count_reads(monkeypatch)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    assert dock.case_id == "ct000" and reads == ["ct000"]
    assert dock.next_case_to_open() == "ct001" and dock.read_ahead.pending() == "ct001"
    dock.submit()
    assert dock.case_id == "ct001" and dock.last_error is None
    assert reads == ["ct000"]  # ct001 came from the read ahead
    fresh = load_volume(organ_project.images["ct001"])
    np.testing.assert_array_equal(np.asarray(dock.volume.array), fresh.array)
    np.testing.assert_array_equal(dock.volume.affine, fresh.affine)
    np.testing.assert_array_equal(dock.labels_layer.data, organ_project.proposals["ct001"])
    with Project(organ_project.folder) as project:  # the label's grid is the image's
        shape, affine = project.grid("ct001")
    assert shape == fresh.shape and np.array_equal(affine, fresh.affine)


def test_a_dicom_case_read_ahead_warns_when_it_is_opened_not_before(
    make_napari_viewer, tmp_path, monkeypatch
):
    import warnings

    from napari_atlas_annotate.io.dicom_scan import NotDicomWarning
    from napari_atlas_annotate.project import ImageRef

    project = Project.create(tmp_path / "project", task="organs")
    for seed, case in enumerate(("ct_a", "ct_b")):
        _dicom_series(tmp_path / case, seed, 1, "CT abdomen")
        project.add_case(case, [ImageRef(str(tmp_path / case), "CT abdomen")])
    (tmp_path / "ct_b" / "notes.txt").write_text("not an image")
    project.set_uncertainty("ct_a", 0.9)
    project.close()
    reads = _count_reads(monkeypatch)
    viewer = make_napari_viewer()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        dock = annotator.add_annotator_dock(viewer, Project(project.folder), "alice")
        assert dock.case_id == "ct_a" and dock.read_ahead.pending() == "ct_b"
        dock.read_ahead._read.done.wait(20)  # ct_b read in the background: no warning yet
        assert not [w for w in seen if issubclass(w.category, NotDicomWarning)]
        dock.submit()
        assert dock.case_id == "ct_b" and reads == ["ct_a"]  # ct_b from the read ahead
        skipped = [str(w.message) for w in seen if issubclass(w.category, NotDicomWarning)]
    assert len(skipped) == 1 and "notes.txt" in skipped[0]
    from napari_atlas_annotate.io import load_volume

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotDicomWarning)
        fresh = load_volume(tmp_path / "ct_b")
    np.testing.assert_array_equal(np.asarray(dock.volume.array), fresh.array)
    np.testing.assert_array_equal(dock.volume.affine, fresh.affine)


def test_a_case_whose_image_changed_after_the_read_ahead_is_read_again(
    make_napari_viewer, organ_project, monkeypatch
):
    import time

    from napari_atlas_annotate.io import load_volume

    reads = _count_reads(monkeypatch)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    assert dock.read_ahead.pending() == "ct001"
    dock.read_ahead._read.done.wait(10)
    path = organ_project.images["ct001"]
    before = load_volume(path)
    time.sleep(0.01)
    save_nifti(Volume(before.array + 7, before.affine, "CT", {}), path)  # replaced meanwhile
    dock.step_case(+1)
    assert dock.case_id == "ct001" and reads == ["ct000", "ct001"]
    np.testing.assert_array_equal(dock.volume.array, before.array + 7)


def test_painting_goes_on_while_the_next_case_is_read(
    make_napari_viewer, organ_project, monkeypatch
):
    # the read ahead runs in a thread: strokes on the open case are shown and logged while
    # it is under way, and Submit then shows the next case all the same
    import threading

    from napari_atlas_annotate.io import prefetch

    reading, release = threading.Event(), threading.Event()
    real = prefetch.load_nifti

    def slow(path):
        reading.set()
        release.wait(30)
        return real(path)

    monkeypatch.setattr(prefetch, "load_nifti", slow)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    try:
        assert reading.wait(10) and dock.read_ahead.pending() == "ct001"
        dock.select_class(5)
        _stroke(dock.labels_layer, (6, 20, 20), (6, 21, 21))
        assert dock.labels_layer.data[6, 20, 20] == 5
        assert any(e.tool == "paint" for e in dock.hook.events)
    finally:
        threading.Timer(0.2, release.set).start()
    version = dock.submit()
    assert version is not None and dock.case_id == "ct001" and dock.last_error is None
    with Project(organ_project.folder) as project:
        assert project.read_mask(version)[6, 20, 20] == 5


def test_a_short_window_scrolls_the_dock_instead_of_growing_off_screen(
    make_napari_viewer, organ_project, qtbot
):
    # the dock's contents set the main window's least height (966 px with the lumbar grade
    # sheet), so on a laptop screen the window grew past the screen and Submit was off it
    viewer = make_napari_viewer(show=True)
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    window = viewer.window._qt_window
    window.resize(1500, 700)
    qtbot.wait(50)
    assert window.height() <= 720
    bar = dock.scroll_area.verticalScrollBar()
    assert bar.isVisible()
    dock.scroll_area.ensureWidgetVisible(dock.submit_button)
    qtbot.wait(20)
    assert not dock.submit_button.visibleRegion().isEmpty()
    window.resize(1500, 1100)  # room for everything: no scroll bar, nothing cut off
    qtbot.wait(50)
    assert not bar.isVisible()
    assert not dock.status.visibleRegion().isEmpty()
    assert dock.width() >= dock.scroll_area.widget().minimumSizeHint().width()


def test_a_case_the_lead_reopened_says_who_and_why_and_a_final_one_what_it_took(
    make_napari_viewer, organ_project
):
    from napari_atlas_annotate.review.adjudication import finalize, reopen

    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    case = dock.case_id
    assert dock.lead_message.isHidden()
    dock.submit()
    with organ_project.open() as project:
        finalize(project, case, "dr_wu", {})
        reopen(project, case, "dr_wu", "spleen tip missed")
    assert dock.load_case(case)
    assert not dock.lead_message.isHidden()
    text = dock.lead_message.text()
    assert text.startswith(f"{case}: reopened v") and "by dr_wu" in text
    assert text.endswith("spleen tip missed")
    assert dock.final_button.isHidden()  # reopened: no final to show
    dock.step_case(+1)  # another case: not its message
    assert dock.case_id != case and dock.lead_message.isHidden()

    with organ_project.open() as project:
        version = finalize(project, case, "dr_wu", {"all": "alice", "liver": "consensus"})
    assert dock.load_case(case)
    # final again: the reader sees what the final took from whom
    assert not dock.lead_message.isHidden()
    text = dock.lead_message.text()
    assert text.startswith(f"{case}: final v{version.id} by dr_wu")
    assert "spleen: alice" in text and "liver" not in text  # the consensus goes unsaid

    # the reader can lay the final over their own labels, and still paints their own
    assert not dock.final_button.isHidden()
    own = dock.labels_layer
    dock.final_button.setChecked(True)
    final_layer = viewer.layers[f"final v{version.id} by dr_wu"]
    axes = final_layer.metadata["atlas_annotate"]["axes"]
    with organ_project.open() as project:
        stored = project.read_mask(version)
    np.testing.assert_array_equal(np.asarray(final_layer.data).transpose(np.argsort(axes)), stored)
    assert not final_layer.editable and viewer.layers.selection.active is own
    dock.final_button.setChecked(False)
    assert final_layer not in viewer.layers
    dock.final_button.setChecked(True)
    dock.step_case(+1)  # another case: its final layer goes, the button with it
    assert not any(layer.name.startswith("final v") for layer in viewer.layers)
    assert dock.final_button.isHidden() and not dock.final_button.isChecked()


def test_keys_submit_and_step_through_the_queue(
    make_napari_viewer, organ_project, qtbot, monkeypatch
):
    from qtpy.QtCore import Qt

    monkeypatch.setattr(annotator, "SUBMIT_GUARD_S", 0.2)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    first = dock.case_id
    ctrl = Qt.KeyboardModifier.ControlModifier

    qtbot.keyClick(canvas, Qt.Key.Key_PageDown, ctrl)
    assert dock.case_id != first
    qtbot.keyClick(canvas, Qt.Key.Key_PageUp, ctrl)
    assert dock.case_id == first
    with organ_project.open() as project:
        assert project.latest_version(first, kinds=("corrected",)) is None
    qtbot.keyClick(canvas, Qt.Key.Key_Return, ctrl)  # the case has only just opened
    assert dock.case_id == first and "not taken" in dock.status.text()
    qtbot.wait(300)
    qtbot.keyClick(canvas, Qt.Key.Key_Return, ctrl)
    assert dock.case_id != first  # submitted, and the next case opened
    with organ_project.open() as project:
        assert project.latest_version(first, kinds=("corrected",), annotator="alice")


def test_a_double_click_on_submit_submits_one_case(
    make_napari_viewer, organ_project, qtbot, monkeypatch
):
    # The second click of a double click landed on the case the first one opened and
    # stored it, with no edit and no time on task, as the reader's corrected version.
    from qtpy.QtCore import Qt

    monkeypatch.setattr(annotator, "SUBMIT_GUARD_S", 0.3)
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    first = dock.case_id
    qtbot.wait(400)
    qtbot.mouseClick(dock.submit_button, Qt.MouseButton.LeftButton)
    second = dock.case_id
    assert second != first
    qtbot.mouseClick(dock.submit_button, Qt.MouseButton.LeftButton)
    qtbot.wait(100)
    qtbot.mouseClick(dock.submit_button, Qt.MouseButton.LeftButton)  # each extends the wait
    assert dock.case_id == second and "not taken" in dock.status.text()
    with organ_project.open() as project:
        assert project.latest_version(first, kinds=("corrected",), annotator="alice")
        assert project.latest_version(second, kinds=("corrected",), annotator="alice") is None
    qtbot.wait(400)
    qtbot.mouseClick(dock.submit_button, Qt.MouseButton.LeftButton)  # a deliberate submit
    with organ_project.open() as project:
        assert project.latest_version(second, kinds=("corrected",), annotator="alice")


def test_g_grows_the_class_from_the_voxel_under_the_mouse(make_napari_viewer, organ_project, qtbot):
    from napari_atlas_annotate.corrections.region_grow import grow_from_voxel

    from .conftest import _phantom

    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    layer = dock.labels_layer
    assert dock.case_id == "ct000" and "tilted" not in dock.status.text()  # aligned grid
    image, truth = _phantom(seed=0)
    missed = (truth == 5) & (organ_project.proposals["ct000"] == 0)  # the anterior third
    seed = tuple(int(i) for i in np.argwhere(missed)[0])

    def point_at(voxel) -> None:
        world = layer.data_to_world(voxel)
        viewer.dims.set_point(0, world[0])
        viewer.cursor.position = tuple(world)

    # over another organ's voxel: nothing changes, and the status line says why
    dock.select_class(5)
    point_at(tuple(np.argwhere(organ_project.proposals["ct000"] == 9)[0]))
    before = np.array(layer.data)
    _press(viewer, qtbot, "G")
    np.testing.assert_array_equal(layer.data, before)
    assert "stomach" in dock.status.text() and dock.last_error is None

    point_at(seed)
    dock.grow_tolerance.setValue(45)
    dock.grow_radius.setValue(40)
    _press(viewer, qtbot, "G")
    expected = grow_from_voxel(before, image.array, seed, 5, image.spacing, 45, 40).apply(before)
    np.testing.assert_array_equal(layer.data, expected)  # the voxel pointed at, in mm
    grown = expected != before
    assert grown[seed] and (before[grown] == 0).all() and (layer.data[grown] == 5).all()
    assert f"{int(grown.sum()):,} voxels added to the liver" in dock.status.text()
    layer.undo()  # one Ctrl-Z step
    np.testing.assert_array_equal(layer.data, before)
    layer.redo()
    np.testing.assert_array_equal(layer.data, expected)

    dock.hook.flush()
    events = Project(organ_project.folder).events("ct000", "alice")
    assert [e.tool for e in events][-3:] == ["grow", "undo", "redo"]
    np.testing.assert_array_equal(replay(organ_project.proposals["ct000"], events), layer.data)

    # Shift+G over the grown part takes back what looks like the voxel pointed at
    grown_state = np.array(layer.data)
    _press(viewer, qtbot, "G")  # again on the same voxel: nothing left to add
    np.testing.assert_array_equal(layer.data, grown_state)
    assert "nothing changed" in dock.status.text()
    from qtpy.QtCore import Qt

    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key.Key_G, Qt.ShiftModifier)
    taken = grow_from_voxel(
        grown_state, image.array, seed, 5, image.spacing, 45, 40, erase=True
    ).apply(grown_state)
    np.testing.assert_array_equal(layer.data, taken)
    assert taken[seed] == 0 and (grown_state[taken != grown_state] == 5).all()
    assert "voxels taken back from the liver" in dock.status.text()
    dock.hook.flush()
    events = Project(organ_project.folder).events("ct000", "alice")
    assert events[-1].tool == "take_back"

    viewer.dims.ndisplay = 3
    assert dock.grow_at_cursor() is None and "2D view" in dock.last_error


def test_closing_the_dock_takes_its_case_out_and_a_new_dock_restores_it(
    make_napari_viewer, organ_project
):
    # the layers stayed, still logged; a dock opened again added "ct000 image [1]" beside
    # them, and one stroke on the old layer made Submit blame "another window"
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    case = dock.case_id
    _stroke(dock.labels_layer, (3, 30, 30))
    edited = np.array(dock.labels_layer.data)
    viewer.window.remove_dock_widget(dock)  # napari's close button on the dock
    assert list(viewer.layers) == [] and dock.case_id is None
    again = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    assert again.case_id == case
    assert [layer.name for layer in viewer.layers] == [f"{case} image", f"{case} labels"]
    np.testing.assert_array_equal(np.asarray(again.labels_layer.data), edited)  # restored
    assert again.submit() is not None, again.last_error
