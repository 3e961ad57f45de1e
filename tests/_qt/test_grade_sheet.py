"""The grade sheet dock in a real napari viewer (Qt, under Xvfb): a phantom lumbar study
(``write_phantoms``) added to a spine project like ``atlas-annotate add`` does, a model
proposal with probabilities and points; then clicks, keys, a point drag, submit and a
restore after a crash."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import (
    mouse_move_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)
from qtpy.QtCore import Qt

from napari_atlas_annotate._napari.layers import DISPLAY_FROM_RAS
from napari_atlas_annotate._qt.grade_sheet import GradeSheetWidget
from napari_atlas_annotate.grade_editing import (
    GRADE_TOOL,
    POINT_TOOL,
    replay_grades,
    working_sheet,
)
from napari_atlas_annotate.grade_sheet import GradeSheet
from napari_atlas_annotate.io import load_volume
from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.project.importing import read_grade_sheet
from napari_atlas_annotate.project.sources import cases_from_path
from napari_atlas_annotate.spine_grades import CONDITIONS, GRADES, LEVELS

pytestmark = [
    pytest.mark.qt,
    pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning"),
]

ANNOTATOR = "dr_lee"


@dataclass
class SpineProject:
    folder: Path
    case_id: str
    series_folders: dict[str, Path]
    proposal: GradeSheet
    proposal_id: int


def _proposal(manifest: Path, entry: dict) -> GradeSheet:
    """A helper model's proposal: the study's RSNA CSVs read like 'atlas-annotate import'
    does (points name their series by RSNA series_id), plus probabilities leaning on the
    true grade, so the proposal is right most of the time."""
    root = manifest.parent
    sheet = read_grade_sheet(root / entry["grades"], entry["study_id"], root / entry["points"])
    rng = np.random.default_rng(entry["study_id"] % 2**32)
    for cell in GradeSheet.cells():
        logits = rng.normal(0, 1, 3)
        logits[GRADES.index(sheet.grades[cell])] += 2.0
        probs = np.exp(logits) / np.exp(logits).sum()
        sheet.grades[cell] = GRADES[int(np.argmax(probs))]
        sheet.probabilities[cell] = [round(float(p), 4) for p in probs]
    return sheet


@pytest.fixture
def spine_project(tmp_path) -> SpineProject:
    manifest = write_phantoms(tmp_path / "phantoms", 0, 1, 7, "dicom")
    project = Project.create(tmp_path / "project", task="spine")
    [case] = cases_from_path(manifest, "spine")  # what 'atlas-annotate add' does
    project.add_case(case.id, case.images, truth=case.truth, source=case.source)
    [entry] = json.loads(manifest.read_text())["cases"]
    proposal = _proposal(manifest, entry)
    version = project.save_grades_version(
        case.id, proposal, kind="proposal", model_version="grader-test"
    )
    project.close()
    folders = {im.description: Path(im.path) for im in case.images}
    return SpineProject(tmp_path / "project", case.id, folders, proposal, version.id)


def _other_grade(grade: str | None) -> str:
    return GRADES[0] if grade is None else GRADES[(GRADES.index(grade) + 1) % 3]


def _grade_key(grade: str) -> Qt.Key:
    return Qt.Key(Qt.Key.Key_1.value + GRADES.index(grade))


def _cell_center(widget: GradeSheetWidget, row: int, col: int):
    item = widget.table.item(row, col)
    return widget.table.visualItemRect(item).center()


def _drag(viewer, layer, start_world, end_world) -> None:
    """Press on a point, move, release: what a mouse drag in select mode sends."""
    displayed = list(viewer.dims.displayed)
    common = {"dims_displayed": displayed, "view_direction": None, "modifiers": []}
    mouse_press_callbacks(
        layer, read_only_mouse_event(type="mouse_press", position=start_world, **common)
    )
    middle = (np.asarray(start_world) + np.asarray(end_world)) / 2
    for position in (middle, end_world):
        mouse_move_callbacks(
            layer,
            read_only_mouse_event(type="mouse_move", is_dragging=True, position=position, **common),
        )
    mouse_release_callbacks(
        layer, read_only_mouse_event(type="mouse_release", position=end_world, **common)
    )


def test_grade_sheet_edit_submit_and_restore(make_napari_viewer, qtbot, spine_project):
    viewer = make_napari_viewer()
    widget = GradeSheetWidget(viewer, spine_project.folder, ANNOTATOR)
    viewer.window.add_dock_widget(widget, area="right")
    case_id = spine_project.case_id
    assert widget.load_case(case_id), widget.last_error

    # the study's three series; Sagittal T2/STIR shown first and active
    images = [layer for layer in viewer.layers if layer._type_string == "image"]
    assert len(images) == 3
    shown = [layer for layer in images if layer.visible]
    assert [layer.name for layer in shown] == [f"{case_id} Sagittal T2/STIR"]
    assert viewer.layers.selection.active is shown[0]

    # each point sits on its series' voxel (instance - 1, y, x), in patient mm
    volumes = {d: load_volume(path) for d, path in spine_project.series_folders.items()}
    assert len(spine_project.proposal.points) == 25
    for (condition, level), point in spine_project.proposal.points.items():
        series = widget._series_of(point)
        assert point.series == str(volumes[series.description].metadata["series_number"])
        row = series.cells().index((condition, level))
        ras = volumes[series.description].index_to_world(
            np.array([point.instance - 1, point.y, point.x])
        )
        expected = (DISPLAY_FROM_RAS @ np.append(ras, 1.0))[:3]
        world = series.points.data_to_world(series.points.data[row])
        np.testing.assert_allclose(world, expected, atol=1e-6)

    # the sheet shows grades and the proposal's probabilities
    item = widget.table.item(0, 3)
    probs = spine_project.proposal.probabilities[(CONDITIONS[0], LEVELS[3])]
    assert f"({probs[0]:.2f}/{probs[1]:.2f}/{probs[2]:.2f})" in item.text()
    assert item.text().startswith(spine_project.proposal.grade(CONDITIONS[0], LEVELS[3]))

    # a click selects a cell, a second click cycles its grade
    cell = (CONDITIONS[0], LEVELS[3])
    before = widget.session.sheet.grade(*cell)
    for _ in range(2):
        qtbot.mouseClick(
            widget.table.viewport(), Qt.MouseButton.LeftButton, pos=_cell_center(widget, 0, 3)
        )
    after_click = GRADES[(GRADES.index(before) + 1) % 3]
    assert widget.session.sheet.grade(*cell) == after_click
    assert widget.table.item(0, 3).text().startswith(after_click)

    # keys 1/2/3 set a grade on the current cell, arrows move (each change logged)
    widget.table.setFocus()
    sheet = widget.session.sheet
    expected = {cell: _other_grade(after_click)}
    qtbot.keyClick(widget.table, _grade_key(expected[cell]))
    qtbot.keyClick(widget.table, Qt.Key.Key_Down)
    below = (CONDITIONS[1], LEVELS[3])
    expected[below] = _other_grade(sheet.grade(*below))
    qtbot.keyClick(widget.table, _grade_key(expected[below]))
    qtbot.keyClick(widget.table, Qt.Key.Key_Right)
    right = (CONDITIONS[1], LEVELS[4])
    expected[right] = _other_grade(sheet.grade(*right))
    qtbot.keyClick(widget.table, _grade_key(expected[right]))
    assert {c: sheet.grade(*c) for c in expected} == expected
    assert widget.table.currentRow() == 1 and widget.table.currentColumn() == 4

    # selecting the canal L2/L3 cell shows its point; dragging it moves its LevelPoint
    widget.table.setCurrentCell(0, 1)
    canal = (CONDITIONS[0], LEVELS[1])
    old_point = sheet.points[canal]
    series = widget._series_of(old_point)
    assert series.layer.visible and series.points.visible
    layer = series.points
    assert layer.mode == "select"
    row = series.cells().index(canal)
    start = np.asarray(layer.data_to_world(layer.data[row]))
    end = start + np.array([6.0, 4.0, 0.0])  # 6 mm up (S), 4 mm posterior (P)
    n_before = len(widget.session.pending)
    _drag(viewer, layer, start, end)
    new_point = widget.session.sheet.points[canal]
    assert len(widget.session.pending) == n_before + 1  # one drag, one logged event
    assert new_point.instance == old_point.instance and new_point != old_point
    assert new_point.series == old_point.series  # the sheet keeps naming series its way
    moved_ras = volumes[series.description].index_to_world(
        np.array([new_point.instance - 1, new_point.y, new_point.x])
    )
    np.testing.assert_allclose((DISPLAY_FROM_RAS @ np.append(moved_ras, 1))[:3], end, atol=1e-6)

    # submit stores exactly what replaying the logged events onto the base gives
    version = widget.submit()
    project = widget.project
    stored = project.read_grades(version)
    assert stored == widget.session.sheet
    assert version.kind == "corrected" and version.parent_id == spine_project.proposal_id
    events = project.events(case_id, ANNOTATOR)
    assert [e.tool for e in events].count(POINT_TOOL) == 1
    assert [e.tool for e in events].count(GRADE_TOOL) == 4  # one click, three keys
    assert version.last_event_id == events[-1].id
    base = working_sheet(spine_project.proposal)
    assert replay_grades(base, events) == stored
    assert project.audit_trail(case_id)[-1]["action"] == "submit"

    # unsubmitted edits survive a crash: a fresh widget on a fresh connection restores them
    for _ in range(2):  # select, then cycle
        qtbot.mouseClick(
            widget.table.viewport(), Qt.MouseButton.LeftButton, pos=_cell_center(widget, 4, 0)
        )
    expected = GradeSheet.from_json(widget.session.sheet.to_json())
    widget.close_case()
    restored = GradeSheetWidget(viewer, Project(spine_project.folder), ANNOTATOR)
    assert restored.load_case(case_id), restored.last_error
    assert restored.session.sheet == expected
    assert restored.session.base.id == version.id
    assert "1 unsubmitted edit(s) restored" in restored.status.text()


def test_grade_sheet_reports_problems_and_stays_up(make_napari_viewer, spine_project, tmp_path):
    viewer = make_napari_viewer()

    # an organ project is refused with a message
    organs = Project.create(tmp_path / "organs", task="organs")
    organs.add_case("ct1", [ImageRef(str(tmp_path / "ct.nii.gz"))])
    widget = GradeSheetWidget(viewer, organs, ANNOTATOR)
    assert not widget.load_case("ct1")
    assert "spine projects" in widget.status.text() and len(viewer.layers) == 0
    with pytest.raises(Exception, match="open a case first"):
        widget.submit()

    # a deleted series: the others are shown, the sheet still works, the gap is named
    shutil.rmtree(spine_project.series_folders["Axial T2"])
    widget = GradeSheetWidget(viewer, spine_project.folder, ANNOTATOR)
    assert not widget.load_case("no-such-case")
    assert "no case" in widget.last_error
    assert widget.load_case(spine_project.case_id)
    assert sorted(widget.series) == ["Sagittal T1", "Sagittal T2/STIR"]
    assert "Axial T2" in widget.status.text()
    assert "not shown" in widget.status.text()
    widget._cell_clicked(3, 0)
    assert widget.submit().kind == "corrected"


def _unlabelled_study(make_napari_viewer, spine_project):
    """The phantom study added again as a case without any proposal, open in a sheet."""
    project = Project(spine_project.folder)
    case = project.case(spine_project.case_id)
    project.add_case("unlabelled", case.images)
    viewer = make_napari_viewer()
    widget = GradeSheetWidget(viewer, project, ANNOTATOR)
    assert widget.load_case("unlabelled"), widget.last_error
    return viewer, project, widget


def test_points_placed_and_removed_in_the_viewer(make_napari_viewer, spine_project):
    """A case with no proposal yet: empty Points layers; a point added in the viewer
    becomes the selected cell's point, deleting it removes it, and both are logged."""
    viewer, project, widget = _unlabelled_study(make_napari_viewer, spine_project)
    assert widget.session.base is None and widget.session.sheet.points == {}
    canal_l45 = (CONDITIONS[0], LEVELS[3])
    widget.table.setCurrentCell(0, 3)  # canal is read on the mid-sagittal T2
    series = widget.series["Sagittal T2/STIR"]
    layer = series.points
    assert layer.visible and len(layer.data) == 0

    zyx = np.array([7.0, 60.5, 70.25])  # slice 8 (InstanceNumber 8), row 60.5, column 70.25
    target = zyx[list(series.axes)]  # the layer holds the image's transposed index
    layer.add(target)
    point = widget.session.sheet.points[canal_l45]
    assert (point.series, point.instance, point.x, point.y) == ("Sagittal T2/STIR", 8, 70.25, 60.5)
    assert list(layer.features["condition"]) == [CONDITIONS[0]]

    # a second point for a cell that has one is refused, and the sheet is unchanged
    layer.add(target + [0, 5, 5])
    assert len(layer.data) == 1 and "Select a cell without a point" in widget.status.text()

    layer.selected_data = {0}
    layer.remove_selected()
    assert canal_l45 not in widget.session.sheet.points
    events = project.events("unlabelled", ANNOTATOR)
    assert [e.tool for e in events] == [POINT_TOOL, POINT_TOOL]
    assert events[0].detail["old_point"] is None and events[1].detail["new_point"] is None
    project.close()


def test_a_series_of_angled_stacks_shows_each_stack_with_its_points(make_napari_viewer, tmp_path):
    """An Axial T2 acquired as three angled blocks: one image layer per block, each
    subarticular point on the block holding its slice, and a point placed on a block
    names the series with that block's InstanceNumber (what RSNA's CSV needs)."""
    manifest = write_phantoms(tmp_path / "phantoms", 0, 1, 9, "dicom", axial_stacks=LEVELS[2:])
    project = Project.create(tmp_path / "project", task="spine")
    [case] = cases_from_path(manifest, "spine")
    project.add_case(case.id, case.images, truth=case.truth, source=case.source)
    [entry] = json.loads(manifest.read_text())["cases"]
    project.save_grades_version(
        case.id, _proposal(manifest, entry), kind="proposal", model_version="grader-test"
    )
    viewer = make_napari_viewer()
    widget = GradeSheetWidget(viewer, project, ANNOTATOR)
    assert widget.load_case(case.id), widget.last_error
    stacks = [f"Axial T2 (stack {k}/3)" for k in (1, 2, 3)]
    assert [name for name in widget.series if name.startswith("Axial")] == stacks
    images = [layer.name for layer in viewer.layers if layer._type_string == "image"]
    assert all(any(name.endswith(s) for name in images) for s in stacks)
    for k, level in enumerate(LEVELS[2:]):
        shown = widget.series[stacks[k]]
        assert shown.numbers == list(range(1 + 6 * k, 7 + 6 * k))
        assert ("left_subarticular_stenosis", level) in shown.cells()
    # the upper levels have no block of their own: their points (slices of block 1) stay there
    assert ("left_subarticular_stenosis", LEVELS[0]) in widget.series[stacks[0]].cells()

    project.add_case("unlabelled", case.images)  # the same study, no points yet
    assert widget.load_case("unlabelled"), widget.last_error
    cell = ("right_subarticular_stenosis", LEVELS[4])
    widget.table.setCurrentCell(CONDITIONS.index(cell[0]), LEVELS.index(cell[1]))
    block = widget.series[stacks[2]]
    block.points.add(np.array([3.0, 40.0, 50.0])[list(block.axes)])
    point = widget.session.sheet.points[cell]
    assert (point.series, point.instance) == ("Axial T2", 13 + 3)
    project.close()


def _tilted_axial(path: Path, degrees: float) -> Path:
    """An axial T2 block tilted ``degrees`` about the left-right axis (as lumbar blocks are
    angled through L5/S1), 8 slices of 4 mm, 1 mm pixels; each slice filled with its index."""
    from napari_atlas_annotate.io import save_nifti
    from napari_atlas_annotate.volume import Volume

    t = np.deg2rad(degrees)
    affine = np.eye(4)
    # voxel (z, y, x) -> RAS: x along R->L (-R), y anterior->posterior (-A) tilted, z up
    affine[:3, 0] = 4.0 * np.array([0.0, np.sin(t), np.cos(t)])
    affine[:3, 1] = np.array([0.0, -np.cos(t), np.sin(t)])
    affine[:3, 2] = np.array([-1.0, 0.0, 0.0])
    affine[:3, 3] = [40.0, 40.0, -10.0]
    data = np.broadcast_to(np.arange(8, dtype=np.int16)[:, None, None] * 100, (8, 80, 80))
    return save_nifti(Volume(np.array(data), affine, "MR", {}), path)


def test_a_point_far_from_the_middle_of_a_tilted_block_is_shown_on_its_own_slice(
    make_napari_viewer, tmp_path
):
    """napari slices a block tilted against the world axes at the dims point: selecting a
    cell must put the whole dims point on its point, not only the slice axis, or a point
    far from the block's middle is shown on another slice (and hidden)."""
    from napari_atlas_annotate.grade_sheet import LevelPoint

    image = _tilted_axial(tmp_path / "axial.nii.gz", 25.0)
    project = Project.create(tmp_path / "project", task="spine")
    project.add_case("s1", [ImageRef(str(image), "Axial T2")])
    sheet = GradeSheet()
    cells = {
        ("left_subarticular_stenosis", "l4_l5"): LevelPoint("Axial T2", 2, 70.0, 75.0),
        ("right_subarticular_stenosis", "l4_l5"): LevelPoint("Axial T2", 7, 10.0, 5.0),
    }
    for cell, point in cells.items():
        sheet.set_point(*cell, point)
    project.save_grades_version("s1", sheet, kind="proposal", model_version="grader-test")
    viewer = make_napari_viewer()
    widget = GradeSheetWidget(viewer, project, ANNOTATOR)
    assert widget.load_case("s1"), widget.last_error
    series = widget.series["Axial T2"]
    for cell, point in cells.items():
        widget.table.setCurrentCell(CONDITIONS.index(cell[0]), LEVELS.index(cell[1]))
        shown = series.layer._data_slice.point[0]  # the data slice napari shows
        assert round(float(shown)) == point.instance - 1, cell
        assert series.cells().index(cell) in list(series.points._view_indices), cell
    project.close()


def test_a_point_clicked_on_a_tilted_block_lands_on_the_slice_drawn(make_napari_viewer, tmp_path):
    """napari's Points add mode puts a click at the full inverse transform of the mouse's
    point, which on a block angled 25 degrees is slices off the one drawn far from the
    dims point: the sheet's point must be on the slice and pixel the reader clicked."""
    from napari_atlas_annotate.grade_sheet import LevelPoint

    image = _tilted_axial(tmp_path / "axial.nii.gz", 25.0)
    project = Project.create(tmp_path / "project", task="spine")
    project.add_case("s1", [ImageRef(str(image), "Axial T2")])
    sheet = GradeSheet()
    placed = ("left_subarticular_stenosis", "l4_l5")
    sheet.set_point(*placed, LevelPoint("Axial T2", 4, 40.0, 40.0))
    project.save_grades_version("s1", sheet, kind="proposal", model_version="grader-test")
    viewer = make_napari_viewer()
    widget = GradeSheetWidget(viewer, project, ANNOTATOR)
    assert widget.load_case("s1"), widget.last_error
    series = widget.series["Axial T2"]
    cell = ("right_subarticular_stenosis", "l4_l5")
    widget.table.setCurrentCell(CONDITIONS.index(placed[0]), LEVELS.index(placed[1]))
    widget.table.setCurrentCell(CONDITIONS.index(cell[0]), LEVELS.index(cell[1]))
    layer = series.points
    assert layer.visible
    viewer.layers.selection.active = layer
    layer.mode = "add"
    shown = int(round(float(series.layer._data_slice.point[0])))
    # where napari draws pixel (row 76, column 12) of the slice shown, far from the middle
    plane = series.layer._data_to_world.set_slice([1, 2])((76, 12))
    world = (viewer.dims.point[0], *plane)
    assert round(float(series.layer._data_to_world.inverse(world)[0])) != shown  # full inverse
    common = {"dims_displayed": [1, 2], "view_direction": None, "modifiers": []}
    mouse_press_callbacks(
        layer, read_only_mouse_event(type="mouse_press", position=world, **common)
    )
    mouse_release_callbacks(
        layer, read_only_mouse_event(type="mouse_release", position=world, **common)
    )
    point = widget.session.sheet.points[cell]
    assert (point.instance, round(point.x), round(point.y)) == (shown + 1, 12, 76)
    project.close()


def test_a_cell_without_a_point_shows_the_stack_through_its_level(make_napari_viewer, tmp_path):
    """Selecting a subarticular cell that has no point yet shows the Axial T2 block
    through that level (found from the sheet's points at the level on the sagittal
    series), so the reader can place the point there, not the first series of the study."""
    manifest = write_phantoms(tmp_path / "phantoms", 0, 1, 9, "dicom", axial_stacks=LEVELS[2:])
    project = Project.create(tmp_path / "project", task="spine")
    [case] = cases_from_path(manifest, "spine")
    project.add_case(case.id, case.images, truth=case.truth, source=case.source)
    [entry] = json.loads(manifest.read_text())["cases"]
    sheet = _proposal(manifest, entry)
    for cell in list(sheet.points):
        if "subarticular" in cell[0]:
            del sheet.points[cell]
    project.save_grades_version(case.id, sheet, kind="proposal", model_version="grader-test")
    viewer = make_napari_viewer()
    widget = GradeSheetWidget(viewer, project, ANNOTATOR)
    assert widget.load_case(case.id), widget.last_error
    for k, level in enumerate(LEVELS[2:], start=1):
        cell = ("right_subarticular_stenosis", level)
        widget.table.setCurrentCell(CONDITIONS.index(cell[0]), LEVELS.index(cell[1]))
        shown = [name for name, s in widget.series.items() if s.layer.visible]
        assert shown == [f"Axial T2 (stack {k}/3)"], level
        block = widget.series[shown[0]].layer
        assert 0 <= round(float(block._data_slice.point[0])) < block.data.shape[0]
    project.close()


def test_subarticular_labels_sit_on_their_own_side_of_an_axial_slice(
    make_napari_viewer, spine_project
):
    """On an axial slice the left and right subarticular points of a level lie side by
    side: each label is drawn on its own side (patient's right on the screen's left),
    so neither runs into the other; on a sagittal slice labels sit right of the point."""
    viewer = make_napari_viewer()
    widget = GradeSheetWidget(viewer, spine_project.folder, ANNOTATOR)
    assert widget.load_case(spine_project.case_id), widget.last_error
    cells = {side: (f"{side}_subarticular_stenosis", LEVELS[3]) for side in ("left", "right")}
    series = widget._series_of(spine_project.proposal.points[cells["left"]])
    assert series is widget._series_of(spine_project.proposal.points[cells["right"]])
    layer = series.points
    rows = {side: series.cells().index(cell) for side, cell in cells.items()}
    assert layer.text.anchor == "center"  # a label is centred on its point, padded aside
    labels = {side: layer.features["label"][row] for side, row in rows.items()}
    assert labels["right"].startswith("L4/L5 R-SS ") and labels["right"].strip() == "L4/L5 R-SS"
    assert labels["left"].endswith(" L4/L5 L-SS") and labels["left"].strip() == "L4/L5 L-SS"
    # the screen's horizontal is world axis L here: the right point is left of the left one
    widget.go_to(*cells["left"])
    horizontal = list(viewer.dims.order)[-1]
    assert series.layer.visible and viewer.dims.axis_labels[horizontal] == "L"
    x = {side: layer.data_to_world(layer.data[row])[horizontal] for side, row in rows.items()}
    assert x["right"] < x["left"]
    # sagittal: foraminal points of both sides lie on different slices, labels to the right
    foramen = ("right_neural_foraminal_narrowing", LEVELS[3])
    sagittal = widget._series_of(spine_project.proposal.points[foramen])
    label = sagittal.points.features["label"][sagittal.cells().index(foramen)]
    assert label.endswith(" L4/L5 R-NFN")


def test_the_next_case_is_shown_in_the_last_ones_layers(make_napari_viewer, spine_project):
    """Moving on to a study with the same series shows it in the same image and Points
    layers (removing and adding six layers was most of the time a study took to open),
    with none of the last study's points left; a study with other series replaces every
    layer of the last one, all in one batch (napari cleans its canvas, a full garbage
    collection, once per batch, not per layer)."""
    project = Project(spine_project.folder)
    case = project.case(spine_project.case_id)
    project.add_case("second", case.images)  # no proposal: no points
    project.add_case("third", case.images[:2])
    viewer = make_napari_viewer()
    widget = GradeSheetWidget(viewer, project, ANNOTATOR)
    batches = []
    viewer.layers.events.end_batch.connect(lambda event: batches.append(len(viewer.layers)))
    assert widget.load_case(case.id), widget.last_error
    first = list(viewer.layers)
    assert batches == [] and len(first) == 6  # three series, each with its points
    widget.table.setCurrentCell(0, 1)  # a point selected on the first study
    assert widget.load_case("second"), widget.last_error
    assert batches == [] and list(viewer.layers) == first  # the same layers
    assert all(layer.name.startswith("second ") for layer in viewer.layers)
    for series in widget.series.values():
        assert len(series.points.data) == 0 and series.points.selected_data == set()
        # the display window as a new layer of the study has it (the study's own range)
        assert list(series.layer.contrast_limits_range) == list(series.layer.contrast_limits)
    assert widget.session.sheet.points == {}
    # a point placed on the second study is its own, logged once
    widget.table.setCurrentCell(0, 3)
    series = widget.series["Sagittal T2/STIR"]
    series.points.add(np.array([7.0, 60.5, 70.25])[list(series.axes)])
    assert list(widget.session.sheet.points) == [(CONDITIONS[0], LEVELS[3])]
    assert [e.tool for e in project.events("second", ANNOTATOR)] == [POINT_TOOL]
    assert project.events(case.id, ANNOTATOR) == []

    assert widget.load_case("third"), widget.last_error  # two series: new layers
    assert batches == [0]  # the last case's six layers went in one batch
    assert not any(layer in viewer.layers for layer in first)
    assert len(viewer.layers) == 4
    assert all(layer.name.startswith("third ") for layer in viewer.layers)


def test_the_sheet_fits_without_rows_hidden_under_the_legend(
    make_napari_viewer, qtbot, spine_project
):
    """In the annotator dock of a 1500x1020 window (the demo's), the dock is squeezed to
    its smallest and the sheet's fifth row (right subarticular) stayed under the legend
    and the progress text: wrapped labels counted a line short."""
    from napari_atlas_annotate._qt.annotator import add_annotator_dock

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1500, 1020)
    dock = add_annotator_dock(viewer, spine_project.folder, ANNOTATOR)
    widget = dock.grade_sheet
    assert widget is not None and widget.case_id == spine_project.case_id, dock.last_error
    qtbot.wait(100)
    table = widget.table.geometry()
    for below in (widget.progress, widget.status):  # its submit button is the dock's
        assert below.geometry().top() > table.bottom(), below
    last = widget.table.visualItemRect(widget.table.item(4, 0))
    assert last.bottom() <= widget.table.viewport().height()  # the whole last row shows


def test_a_click_to_look_at_a_cell_does_not_change_its_grade(
    make_napari_viewer, qtbot, spine_project
):
    """A reader clicks the L4/L5 canal cell to see its point: the sheet jumps there and the
    grade stays; a click on the cell already selected cycles it (one logged change)."""
    viewer = make_napari_viewer()
    widget = GradeSheetWidget(viewer, spine_project.folder, ANNOTATOR)
    assert widget.load_case(spine_project.case_id), widget.last_error
    sheet = widget.session.sheet
    cell = (CONDITIONS[0], LEVELS[3])
    before = sheet.grade(*cell)

    def click() -> None:
        qtbot.mouseClick(
            widget.table.viewport(), Qt.MouseButton.LeftButton, pos=_cell_center(widget, 0, 3)
        )

    click()
    assert (widget.table.currentRow(), widget.table.currentColumn()) == (0, 3)
    assert sheet.grade(*cell) == before and widget.session.pending == []
    point = sheet.points[cell]
    assert widget._series_of(point).layer.visible  # shown on its series
    click()
    assert sheet.grade(*cell) == GRADES[(GRADES.index(before) + 1) % 3]
    assert len(widget.session.pending) == 1
    # a cell reached with the arrow keys is selected: one click cycles it
    widget.table.setFocus()
    qtbot.keyClick(widget.table, Qt.Key.Key_Down)
    below = (CONDITIONS[1], LEVELS[3])
    grade_below = sheet.grade(*below)
    qtbot.mouseClick(
        widget.table.viewport(), Qt.MouseButton.LeftButton, pos=_cell_center(widget, 1, 3)
    )
    assert sheet.grade(*below) == GRADES[(GRADES.index(grade_below) + 1) % 3]


def test_a_cell_without_a_point_is_ready_for_its_point(make_napari_viewer, spine_project):
    """Selecting a cell without a point shows where it is read with that series' Points
    layer active (napari's add-points key then works at once) and says how to place it."""
    viewer, project, widget = _unlabelled_study(make_napari_viewer, spine_project)
    widget.table.setCurrentCell(0, 3)  # the canal at L4/L5: read on the Sagittal T2/STIR
    series = widget.series["Sagittal T2/STIR"]
    assert series.layer.visible
    assert viewer.layers.selection.active is series.points
    assert "no point yet" in widget.status.text()
    project.close()
