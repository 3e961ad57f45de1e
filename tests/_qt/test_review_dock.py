"""The lead's review dock in a real viewer (Qt, Xvfb): open a two-annotator case, pick a
source per class, finalize, check the stored final label; reopen. A spine case read by
three readers: its series, the readers' points, disputed cells first, navigation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from napari_atlas_annotate._napari.layers import (
    DISPLAY_FROM_RAS,
    data_to_world_matrix,
    display_axes,
)
from napari_atlas_annotate._qt.review import TABLE_MAX_MIN_WIDTH, ReviewDock
from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.grade_editing import point_to_index
from napari_atlas_annotate.grade_sheet import GradeSheet, LevelPoint
from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.project import Project
from napari_atlas_annotate.project.importing import read_grade_sheet
from napari_atlas_annotate.project.sources import cases_from_path
from napari_atlas_annotate.review.adjudication import current_final
from napari_atlas_annotate.spine_grades import GRADES, LEVELS

from .conftest import make_two_reader_project

pytestmark = pytest.mark.qt
LIVER, SPLEEN = 5, 8


@pytest.fixture
def two_reader_project(tmp_path):
    project, masks = make_two_reader_project(tmp_path, spleen_dispute=True)
    yield project, masks
    project.close()


def test_review_dock_pick_per_class_and_finalize(make_napari_viewer, two_reader_project):
    project, masks = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    viewer.window.add_dock_widget(dock, name="Review")
    assert dock.case_ids() == ["ct1", "ct0"], dock.last_error

    assert dock.load_case("ct0"), dock.last_error
    names = [layer.name for layer in viewer.layers]
    assert names == ["ct0 image", "alice", "bob", "consensus", "disagreement"]
    image_affine = data_to_world_matrix(viewer.layers["ct0 image"])
    expected_affine = DISPLAY_FROM_RAS @ masks["ct0"]["image"].affine
    for layer in viewer.layers:  # everything overlays the image exactly
        np.testing.assert_allclose(data_to_world_matrix(layer), image_affine)
    np.testing.assert_allclose(image_affine, expected_affine)
    alice, bob = masks["ct0"]["alice"], masks["ct0"]["bob"]
    # Disagreement map: exactly where the two differ (data is displayed as stored here).
    shown = viewer.layers["disagreement"].metadata["atlas_annotate"]["axes"]
    disagreement = np.asarray(viewer.layers["disagreement"].data).transpose(np.argsort(shown))
    np.testing.assert_array_equal(disagreement, (alice != bob).astype(np.uint8))

    assert dock.table.rowCount() == len(ABDOMEN_ATLAS_CLASSES)
    header = [dock.table.horizontalHeaderItem(c).text() for c in range(4)]
    assert header == ["class", "take", "disputed ml", "Dice alice|bob"]
    rows = dock.class_rows()  # the disputed class first, then the rest in class order
    assert rows[0] == "liver" and rows[1:] == [c for c in ABDOMEN_ATLAS_CLASSES if c != "liver"]
    assert float(dock.table.item(0, 3).text()) < 1.0  # liver's Dice alice|bob
    assert dock.table.item(1, 3).text() == "1.000"  # aorta identical
    voxel_ml = abs(np.linalg.det(masks["ct0"]["image"].affine[:3, :3])) / 1000
    liver_ml = np.count_nonzero((alice == LIVER) != (bob == LIVER)) * voxel_ml
    assert float(dock.table.item(0, 2).text()) == pytest.approx(liver_ml, abs=0.01)

    dock.choose("liver", "bob")
    dock.choose("spleen", "alice")
    version = dock.finalize()
    assert version is not None, dock.last_error
    stored = project.read_mask(version)
    np.testing.assert_array_equal(stored == LIVER, bob == LIVER)
    np.testing.assert_array_equal(stored[bob != LIVER], alice[bob != LIVER])  # the rest
    assert current_final(project, "ct0").id == version.id
    assert "FINAL" in dock.case_list.item(dock.case_ids().index("ct0")).text()
    dock.choose("liver", "bob")
    dock.choose("spleen", "alice")
    assert dock.finalize().id == version.id  # a second click stores nothing new
    assert "already final as decided" in dock.status.text()
    assert len(project.versions("ct0", kinds=("final",))) == 1

    dock.reason_edit.setText("liver border unclear")
    assert dock.reopen(), dock.last_error
    assert current_final(project, "ct0") is None
    assert [r["action"] for r in project.audit_trail("ct0")] == ["finalize", "reopen"]


def test_review_dock_reports_errors(make_napari_viewer, two_reader_project):
    project, _ = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="")
    assert dock.load_case("ct1")
    assert dock.finalize() is None and "lead's name" in dock.last_error
    dock.lead_edit.setText("lead")
    assert not dock.reopen() and "reason is required" in dock.last_error
    dock.reason_edit.setText("why not")
    assert not dock.reopen() and "not final" in dock.last_error
    assert not dock.load_case("missing") and "no case 'missing'" in dock.last_error
    assert [layer.name for layer in viewer.layers][0] == "ct1 image"  # previous case kept


def test_review_dock_opens_a_case_on_click(make_napari_viewer, two_reader_project):
    project, _ = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    item = dock.case_list.item(dock.case_ids().index("ct0"))
    dock.case_list.itemClicked.emit(item)  # a single click, as in the annotator dock
    assert dock.review is not None and dock.review.case_id == "ct0", dock.last_error
    assert "ct0 image" in [layer.name for layer in viewer.layers]


def _slice_axes(viewer, layer) -> tuple[int, int]:
    """The world axis napari slices along and the stored (z, y, x) axis it shows."""
    world_axis = viewer.dims.not_displayed[0]
    return world_axis, layer.metadata["atlas_annotate"]["axes"][world_axis]


def _shown_index(viewer, layer, world_axis: int) -> int:
    return round(float(layer.world_to_data(viewer.dims.point)[world_axis]))


def test_selecting_a_class_shows_the_slice_where_readers_differ_most(
    make_napari_viewer, two_reader_project
):
    project, masks = two_reader_project
    alice, bob = masks["ct0"]["alice"], masks["ct0"]["bob"].copy()
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    world_axis = 0  # napari's 2D view slices along the first world axis
    stored_axis = display_axes(masks["ct0"]["image"].affine)[world_axis]
    # bob also forgot the spleen on one slice, away from the middle of the image
    spleen_slices = np.nonzero(np.moveaxis(alice == SPLEEN, stored_axis, 0).any(axis=(1, 2)))[0]
    forgotten = int(spleen_slices[-1])
    view = np.moveaxis(bob, stored_axis, 0)
    view[forgotten][view[forgotten] == SPLEEN] = 0
    project.save_mask_version("ct0", bob, kind="corrected", annotator="bob")

    assert dock.load_case("ct0"), dock.last_error
    layer = viewer.layers["consensus"]
    assert _slice_axes(viewer, layer) == (world_axis, stored_axis)
    # opening shows the most disputed class (first row) where most of it is disputed
    first = dock.class_rows()[0]
    value = ABDOMEN_ATLAS_CLASSES.index(first) + 1
    per_slice = np.moveaxis((alice == value) != (bob == value), stored_axis, 0).sum(axis=(1, 2))
    assert _shown_index(viewer, layer, world_axis) == int(per_slice.argmax())
    assert first in dock.status.text() and "slice" in dock.status.text()

    dock.table.setCurrentCell(dock.class_rows().index("spleen"), 0)
    assert _shown_index(viewer, layer, world_axis) == forgotten
    voxels = int((np.moveaxis(alice, stored_axis, 0)[forgotten] == SPLEEN).sum())
    assert f"slice {forgotten + 1} of {alice.shape[stored_axis]}" in dock.status.text()
    assert f"({voxels} voxels)" in dock.status.text()

    dock.table.setCurrentCell(dock.class_rows().index("aorta"), 0)  # nothing disputed
    assert _shown_index(viewer, layer, world_axis) == forgotten  # stays where it was
    assert "aorta: the annotators agree on every voxel" in dock.status.text()


def test_a_class_on_a_tilted_ct_shows_the_slice_where_readers_differ(make_napari_viewer, tmp_path):
    """napari draws the slice chosen by the world position along the slice axis alone; on
    a CT tilted 30 degrees the world position of the disputed voxels themselves draws
    another slice, where the dispute is not."""
    from napari_atlas_annotate.io import save_nifti
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom
    from napari_atlas_annotate.project import ImageRef
    from napari_atlas_annotate.volume import Volume

    image, label, _ = make_ct_phantom(0, shape=(16, 40, 40))
    t = np.deg2rad(30.0)
    tilt = np.eye(4)
    tilt[1:3, 1:3] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    tilted = Volume(image.array, tilt @ np.asarray(image.affine, float), modality="CT")
    project = Project.create(tmp_path / "proj", task="organs", classes=list(ABDOMEN_ATLAS_CLASSES))
    project.add_case("ct0", [ImageRef(str(save_nifti(tilted, tmp_path / "ct0.nii.gz")))])
    alice = label.array.astype(np.uint8)
    bob = alice.copy()
    # bob left out the spleen on its lowest slice, far from the tilt's centre
    rows = np.nonzero((alice == SPLEEN).any(axis=2).any(axis=0))[0]
    forgotten = int(np.nonzero((alice == SPLEEN).any(axis=(1, 2)))[0][0])
    bob[forgotten][bob[forgotten] == SPLEEN] = 0
    project.save_mask_version("ct0", alice, kind="imported", annotator="alice")
    project.save_mask_version("ct0", bob, kind="imported", annotator="bob")
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    assert dock.load_case("ct0"), dock.last_error
    layer = viewer.layers["consensus"]
    assert display_axes(tilted.affine)[0] == 0 and len(rows)
    # where the disputed voxels are: napari would draw another slice at their own position
    at = [forgotten, *(float(np.mean(i)) for i in np.nonzero(alice[forgotten] == SPLEEN))]
    viewer.dims.set_point(0, float(layer.data_to_world(at)[0]))
    assert round(float(layer._data_slice.point[0])) != forgotten
    dock.go_to_class("spleen")
    assert round(float(layer._data_slice.point[0])) == forgotten  # the slice drawn
    assert f"slice {forgotten + 1} of 16" in dock.status.text()
    project.close()


def test_selected_row_is_readable_with_or_without_focus(make_napari_viewer, two_reader_project):
    from qtpy.QtGui import QPalette

    project, _ = two_reader_project
    dock = ReviewDock(make_napari_viewer(), project, lead="lead")
    assert dock.load_case("ct1"), dock.last_error
    palette = dock.table.palette()
    role, text = QPalette.ColorRole.Highlight, QPalette.ColorRole.HighlightedText
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        highlight = palette.color(group, role)
        assert highlight.saturation() > 150  # a colour, not a grey
        assert palette.color(group, text).lightness() - highlight.lightness() > 100
    base = palette.color(QPalette.ColorGroup.Inactive, QPalette.ColorRole.Base)
    assert palette.color(QPalette.ColorGroup.Inactive, role) != base
    assert dock.table.currentRow() == 0 and dock.table.minimumWidth() <= TABLE_MAX_MIN_WIDTH


def test_the_leads_edits_of_the_consensus_become_final(make_napari_viewer, two_reader_project):
    project, masks = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    assert dock.load_case("ct0"), dock.last_error
    layer = viewer.layers["consensus"]
    axes = layer.metadata["atlas_annotate"]["axes"]
    data = np.asarray(layer.data)
    stored = data.transpose(np.argsort(axes))
    # the lead paints liver on background next to it (in the layer's own axis order)
    painted = ndimage.binary_dilation(stored == LIVER, iterations=3) & (stored == 0)
    data[painted.transpose(axes)] = LIVER
    layer.refresh()
    version = dock.finalize()
    assert version is not None, dock.last_error
    final = project.read_mask(version)
    assert (final[painted] == LIVER).all()
    np.testing.assert_array_equal(final[~painted], stored[~painted])
    assert json.loads(version.note)["decisions"]["liver"] == "painted"

    # paint that the chosen source would drop is refused, naming the class; nothing stored
    dock.reason_edit.setText("redo")
    assert dock.reopen(), dock.last_error
    layer = viewer.layers["consensus"]
    np.asarray(layer.data)[painted.transpose(axes)] = SPLEEN
    dock.choose("spleen", "alice")
    n_versions = len(project.versions("ct0"))
    assert dock.finalize() is None
    assert "lost for spleen" in dock.last_error and "alice" in dock.last_error
    assert len(project.versions("ct0")) == n_versions


def test_a_final_case_opens_with_its_adjudication(make_napari_viewer, two_reader_project):
    project, masks = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    assert dock.load_case("ct1"), dock.last_error
    dock.all_choice.activated.emit(dock.all_choice.findText("alice"))  # alice's label...
    assert set(dock.decisions().values()) == {"alice"}
    assert dock.all_choice.itemText(0) == ""  # says nothing until used: rows may differ
    dock.choose("liver", "bob")  # ...but bob's liver
    version = dock.finalize()
    assert version is not None, dock.last_error
    alice, bob = masks["ct1"]["alice"], masks["ct1"]["bob"]
    stored = project.read_mask(version)
    np.testing.assert_array_equal(stored == LIVER, bob == LIVER)
    np.testing.assert_array_equal(stored[bob != LIVER], alice[bob != LIVER])
    dock.close_case()
    assert dock.load_case("ct1"), dock.last_error
    decided = dock.decisions()
    assert decided["liver"] == "bob" and decided["spleen"] == "alice"
    assert decided["aorta"] == "alice"
    final = viewer.layers[f"final v{version.id}"]
    axes = final.metadata["atlas_annotate"]["axes"]
    shown = np.asarray(final.data).transpose(np.argsort(axes))
    np.testing.assert_array_equal(shown, project.read_mask(version))
    assert f"Final version {version.id} by lead" in dock.status.text()
    assert f"Last decision: final v{version.id} by lead" in dock.status.text()
    assert "UTC: all: alice; liver: bob" in dock.status.text()


# -- spine cases --------------------------------------------------------------------------
CANAL_L23 = ("spinal_canal_stenosis", "l2_l3")
LEFT_SS_L45 = ("left_subarticular_stenosis", "l4_l5")
LEFT_NFN_L51 = ("left_neural_foraminal_narrowing", "l5_s1")
RIGHT_SS_L51 = ("right_subarticular_stenosis", "l5_s1")


def _key(cell) -> str:
    return f"{cell[0]}_{cell[1]}"


def _other(grade: str, steps: int = 1) -> str:
    return GRADES[(GRADES.index(grade) + steps) % 3]


@pytest.fixture
def spine_readers(tmp_path):
    """A phantom lumbar study (Axial T2 as three angled stacks) read by alice (the truth),
    bob and cy, who disagree on four known cells; nobody placed a point for the right
    subarticular zone at L5/S1."""
    manifest = write_phantoms(tmp_path / "phantoms", 0, 1, 9, "dicom", axial_stacks=LEVELS[2:])
    project = Project.create(tmp_path / "project", task="spine")
    [case] = cases_from_path(manifest, "spine")
    project.add_case(case.id, case.images, truth=case.truth, source=case.source)
    [entry] = json.loads(manifest.read_text())["cases"]
    root = manifest.parent
    alice = read_grade_sheet(root / entry["grades"], entry["study_id"], root / entry["points"])
    for sheet_cell in list(alice.points):
        if sheet_cell == RIGHT_SS_L51:
            del alice.points[sheet_cell]
    bob, cy = (GradeSheet.from_dict(alice.to_dict()) for _ in range(2))
    bob.set_grade(*CANAL_L23, _other(alice.grade(*CANAL_L23), 2))
    moved = bob.points[CANAL_L23]
    bob.points[CANAL_L23] = LevelPoint(moved.series, moved.instance, moved.x + 6, moved.y + 4)
    bob.set_grade(*LEFT_SS_L45, _other(alice.grade(*LEFT_SS_L45)))
    bob.set_grade(*RIGHT_SS_L51, _other(alice.grade(*RIGHT_SS_L51)))
    cy.set_grade(*LEFT_NFN_L51, _other(alice.grade(*LEFT_NFN_L51)))
    del cy.points[LEFT_NFN_L51]
    sheets = {"alice": alice, "bob": bob, "cy": cy}
    for who, sheet in sheets.items():
        project.save_grades_version(case.id, sheet, kind="imported", annotator=who)
    yield project, case.id, sheets
    project.close()


def point_index(point: LevelPoint, series) -> np.ndarray:
    """The point's index in the series' image layer data (slice of its instance, row y,
    column x; transposed like the image)."""
    return point_to_index(point, series.numbers)[list(series.axes)]


def _slice_shown(series) -> int:
    """The InstanceNumber of the slice napari shows of a series."""
    index = series.layer._data_slice.point[series.slice_world_axis()]
    return series.numbers[round(float(index))]


def _world(layer, data) -> np.ndarray:
    return np.asarray(layer.data_to_world(np.asarray(data, float)))


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")  # angled stacks
def test_review_dock_shows_a_spine_case_disputed_cells_first(make_napari_viewer, spine_readers):
    project, case_id, sheets = spine_readers
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    viewer.window.add_dock_widget(dock, name="Review")
    assert "4 disputed cell(s)" in dock.case_list.item(0).text()
    assert dock.ct_row.isHidden()  # lumbar MRI: no CT window list
    assert dock.load_case(case_id), dock.last_error

    # the four disputed cells first (Normal/Mild vs Severe first), marked; then the rest
    rows = dock.cell_rows()
    disputed = {_key(c) for c in (CANAL_L23, LEFT_SS_L45, LEFT_NFN_L51, RIGHT_SS_L51)}
    assert rows[0] == _key(CANAL_L23) and set(rows[:4]) == disputed and len(rows) == 25
    marked = [dock.table.item(r, 0).font().bold() for r in range(25)]
    assert marked == [True] * 4 + [False] * 21
    assert dock.table.item(0, 0).toolTip().startswith("disputed: readers are 2 grade(s) apart")
    header = [dock.table.horizontalHeaderItem(c).text() for c in range(6)]
    assert header == ["cell", "take", "alice", "bob", "cy", "consensus"]
    row = rows.index(_key(LEFT_NFN_L51))
    said = [dock.table.item(row, c) for c in (2, 3, 4)]
    grades = [sheets[who].grade(*LEFT_NFN_L51) for who in ("alice", "bob", "cy")]
    assert [GRADES.index(g) for g in grades] == [  # short names, full ones in the tooltip
        ["N/M", "Mod", "Sev"].index(item.text()) for item in said
    ]
    assert [item.toolTip().split("\n")[0] for item in said] == [
        f"{who}: {g}" for who, g in zip(("alice", "bob", "cy"), grades, strict=True)
    ]

    # every series shown, each axial stack its own image; one Points layer per reader
    images = {layer.name for layer in viewer.layers if layer._type_string == "image"}
    stacks = [f"Axial T2 (stack {k}/3)" for k in (1, 2, 3)]
    assert images == {f"{case_id} {s}" for s in ("Sagittal T1", "Sagittal T2/STIR", *stacks)}
    readers = {who: viewer.layers[f"{case_id} {who} points"] for who in ("alice", "bob", "cy")}
    consensus = viewer.layers[f"{case_id} consensus points"]
    colors = {tuple(np.round(layer.face_color[0], 3)) for layer in readers.values()}
    assert len(colors) == 3  # one colour per reader
    # who said what fits beside the canvas; the table scrolls rather than squeeze it
    assert dock.table.minimumWidth() <= TABLE_MAX_MIN_WIDTH
    full = dock.table.fontMetrics().horizontalAdvance("Normal/Mild")
    assert all(dock.table.columnWidth(c) < full for c in (2, 3, 4))  # short grade names

    # opening shows the first disputed cell: the canal at L2/L3 on the Sagittal T2/STIR,
    # on the slice of its point, with every reader's point there
    shown = [s for s in dock.series.values() if s.layer.visible]
    assert [s.description for s in shown] == ["Sagittal T2/STIR"]
    series = shown[0]
    for who, layer in readers.items():
        point = sheets[who].points[CANAL_L23]
        [row] = [r for r, k in enumerate(layer.features["cell"]) if k == _key(CANAL_L23)]
        expected = _world(series.layer, point_index(point, series))
        np.testing.assert_allclose(_world(layer, layer.data[row]), expected, atol=1e-6)
    assert _slice_shown(series) == sheets["alice"].points[CANAL_L23].instance
    assert len(consensus.data) == 5  # the canal's points are all on this series
    assert "bob" in dock.status.text() and "disputed" in dock.status.text()

    # selecting a subarticular row shows the axial stack holding its point, on its slice
    dock.table.setCurrentCell(rows.index(_key(LEFT_SS_L45)), 0)
    shown = [s for s in dock.series.values() if s.layer.visible]
    assert [s.description for s in shown] == ["Axial T2 (stack 2/3)"]
    point = sheets["alice"].points[LEFT_SS_L45]
    assert _slice_shown(shown[0]) == point.instance
    for layer in readers.values():  # the readers' points now lie on that stack
        assert _key(LEFT_SS_L45) in list(layer.features["cell"])
    # the consensus labels sit on the patient's side of their points (see the grade sheet)
    labels = dict(zip(consensus.features["cell"], consensus.features["label"], strict=True))
    assert labels[_key(LEFT_SS_L45)].endswith(" L4/L5 L-SS")

    # the foramen, which cy left without a point, is shown on the Sagittal T1
    dock.table.setCurrentCell(rows.index(_key(LEFT_NFN_L51)), 0)
    assert [s.description for s in dock.series.values() if s.layer.visible] == ["Sagittal T1"]
    assert _key(LEFT_NFN_L51) not in list(readers["cy"].features["cell"])
    assert _key(LEFT_NFN_L51) in list(readers["bob"].features["cell"])

    # a series turned on by hand in the layer list gets the readers' points
    dock.series["Sagittal T2/STIR"].layer.visible = True
    assert dock.shown_series is dock.series["Sagittal T2/STIR"]
    assert _key(CANAL_L23) in list(readers["bob"].features["cell"])

    # a cell nobody placed a point for shows the stack through its level
    dock.table.setCurrentCell(rows.index(_key(RIGHT_SS_L51)), 0)
    assert [s.description for s in dock.series.values() if s.layer.visible] == [stacks[2]]

    # the lead decides; the final sheet takes bob's grade and point for the canal
    dock.choose(_key(CANAL_L23), "bob")
    version = dock.finalize()
    assert version is not None, dock.last_error
    final = project.read_grades(version)
    assert final.grade(*CANAL_L23) == sheets["bob"].grade(*CANAL_L23)
    assert final.points[CANAL_L23] == sheets["bob"].points[CANAL_L23]
    layers = [layer.name for layer in viewer.layers]
    assert layers.count(f"{case_id} bob points") == 1  # reopened in place, not doubled
    dock.close_case()
    assert len(viewer.layers) == 0


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")  # angled stacks
def test_every_row_shows_the_slice_of_its_point(make_napari_viewer, spine_readers):
    """Selecting a row, in any order, shows the slice its (consensus) point is on. Moving
    the readers' points to the series after its slice was set changed the viewer's range
    and moved the slider: going from an axial stack to a sagittal cell showed the last
    sagittal slice, not the point's."""
    project, case_id, _ = spine_readers
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    assert dock.load_case(case_id), dock.last_error
    rows = dock.cell_rows()
    checked = []
    for row in [0, 5, 1, 12, 3, 20, 7, 15, 24, 2, 10, 4, 17]:
        dock.table.setCurrentCell(row, 0)
        cell = next(c for c in dock.cells if c.key == rows[row])
        point, series = cell.focus_point(), dock.shown_series
        if point is None or series is None or point.instance not in series.numbers:
            continue
        checked.append((rows[row], series.description, _slice_shown(series), point.instance))
    assert len(checked) >= 10
    assert [c[2] for c in checked] == [c[3] for c in checked], checked


def _pixel(table, row: int, column: int, dx: int = 0, dy: int = 0):
    """The colour the table shows at a cell's centre (offset by dx, dy pixels)."""
    rect = table.visualRect(table.model().index(row, column))
    image = table.viewport().grab().toImage()
    return image.pixelColor(rect.center().x() + dx, rect.center().y() + dy)


def _near(color, hex_color: str, tolerance: int = 12) -> bool:
    from qtpy.QtGui import QColor

    want = QColor(hex_color)
    return all(
        abs(a - b) <= tolerance for a, b in zip(color.getRgb()[:3], want.getRgb()[:3], strict=True)
    )


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")  # angled stacks
def test_the_selected_grade_row_keeps_its_grade_colours(make_napari_viewer, spine_readers):
    """The lead compares the readers' grades of the selected cell by their colours: the
    selection marks the row without painting over them."""
    from napari_atlas_annotate._qt.grade_sheet import GRADE_COLORS
    from napari_atlas_annotate._qt.review import SELECTION_COLOR

    project, case_id, sheets = spine_readers
    viewer = make_napari_viewer(show=True)
    dock = ReviewDock(viewer, project, lead="lead")
    viewer.window.add_dock_widget(dock, name="Review")  # napari's stylesheet applies
    assert dock.load_case(case_id), dock.last_error
    table = dock.table
    table.setCurrentCell(0, 0)  # the canal at L2/L3, graded apart by alice and bob
    assert dock.cell_rows()[0] == _key(CANAL_L23)
    for column, who in ((2, "alice"), (3, "bob")):
        grade = sheets[who].grade(*CANAL_L23)
        shown = _pixel(table, 0, column)
        assert _near(shown, GRADE_COLORS[grade]), (who, grade, shown.name())
        assert not _near(shown, SELECTION_COLOR)
    # ... and the row still looks selected: its cells are framed, another row's are not
    rect = table.visualRect(table.model().index(0, 2))
    edge = (0, rect.height() // 2 - 2)
    framed = _pixel(table, 0, 2, *edge)
    assert not _near(framed, GRADE_COLORS[sheets["alice"].grade(*CANAL_L23)], 40)
    table.setCurrentCell(1, 0)
    unframed = _pixel(table, 0, 2, *edge)
    assert _near(unframed, GRADE_COLORS[sheets["alice"].grade(*CANAL_L23)])


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")  # angled stacks
def test_a_final_spine_case_opens_with_the_leads_choices(make_napari_viewer, spine_readers):
    """Reopening a finalized study shows what the lead took per cell, so finalizing again
    (after changing one row) does not silently put every other row back to consensus."""
    project, case_id, sheets = spine_readers
    dock = ReviewDock(make_napari_viewer(), project, lead="lead")
    assert dock.load_case(case_id), dock.last_error
    dock.choose(_key(CANAL_L23), "bob")
    dock.choose(_key(LEFT_SS_L45), "Severe")
    first = dock.finalize()
    assert first is not None, dock.last_error
    decided = dock.decisions()  # finalize reopened the case in the dock
    assert decided[_key(CANAL_L23)] == "bob"
    assert decided[_key(LEFT_SS_L45)] == "Severe"
    dock.choose(_key(LEFT_NFN_L51), "cy")
    second = dock.finalize()
    final = project.read_grades(second)
    assert final.grade(*CANAL_L23) == sheets["bob"].grade(*CANAL_L23)
    assert final.grade(*LEFT_SS_L45) == "Severe"
    assert final.grade(*LEFT_NFN_L51) == sheets["cy"].grade(*LEFT_NFN_L51)


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")  # angled stacks
def test_choices_left_for_another_case_are_kept(make_napari_viewer, spine_readers):
    """The lead picks sources on one study, opens another to compare, comes back: the
    choices not yet finalized are still there (they were reset to consensus)."""
    project, case_id, sheets = spine_readers
    project.add_case("second", project.case(case_id).images)
    for who, sheet in sheets.items():
        project.save_grades_version("second", sheet, kind="imported", annotator=who)
    dock = ReviewDock(make_napari_viewer(), project, lead="lead")
    assert dock.load_case(case_id), dock.last_error
    dock.choose(_key(CANAL_L23), "bob")
    dock.choose(_key(LEFT_SS_L45), "Severe")
    assert dock.load_case("second"), dock.last_error
    assert set(dock.decisions().values()) == {"consensus"}  # another study: its own rows
    assert dock.load_case(case_id), dock.last_error
    decided = dock.decisions()
    assert decided[_key(CANAL_L23)] == "bob" and decided[_key(LEFT_SS_L45)] == "Severe"
    assert "2 choice(s) you made here before" in dock.status.text()
    version = dock.finalize()
    assert project.read_grades(version).grade(*LEFT_SS_L45) == "Severe"
    assert "choice(s) you made here before" not in dock.status.text()


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")  # angled stacks
def test_a_tied_consensus_says_it_is_a_tie(make_napari_viewer, spine_readers):
    """Two readers a grade apart: the 'consensus' is the milder grade by rule, not an
    agreement; the row says so, so the lead does not finalize it unseen."""
    project, case_id, sheets = spine_readers
    project.add_case("pair", project.case(case_id).images)
    for who in ("alice", "bob"):
        project.save_grades_version("pair", sheets[who], kind="imported", annotator=who)
    dock = ReviewDock(make_napari_viewer(), project, lead="lead")
    assert dock.load_case("pair"), dock.last_error
    row = dock.cell_rows().index(_key(CANAL_L23))
    consensus = dock.table.item(row, 4)
    assert consensus.text().endswith("?")
    assert "tie" in consensus.toolTip() and "milder" in consensus.toolTip()
    agreed = dock.cell_rows().index(_key(("spinal_canal_stenosis", "l1_l2")))
    assert not dock.table.item(agreed, 4).text().endswith("?")


def _paint_liver_next_to_liver(layer) -> np.ndarray:
    """Paint liver on background next to the consensus liver with the layer's own brush
    (a few strokes), as the lead would; returns the painted voxels in stored order."""
    axes = layer.metadata["atlas_annotate"]["axes"]
    before = np.asarray(layer.data).copy()
    stored = before.transpose(np.argsort(axes))
    edge = ndimage.binary_dilation(stored == LIVER, iterations=2) & (stored == 0)
    layer.brush_size = 2
    for z, y, x in np.argwhere(edge)[::7][:6]:
        layer.paint([[z, y, x][a] for a in axes], LIVER)
    painted = (np.asarray(layer.data) != before).transpose(np.argsort(axes))
    assert painted.any()
    return painted


def test_paint_left_for_another_case_is_kept(make_napari_viewer, two_reader_project):
    """The lead paints on the consensus of one case, opens another to compare, comes
    back: the paint is still there (it was rebuilt from the readers' vote), and becomes
    final."""
    project, masks = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    assert dock.load_case("ct0"), dock.last_error
    painted = _paint_liver_next_to_liver(viewer.layers["consensus"])
    assert dock.load_case("ct1"), dock.last_error
    assert "unfinalized edits" not in dock.status.text()
    np.testing.assert_array_equal(dock.edited_consensus(), dock.consensus)  # ct1: its own
    assert dock.load_case("ct0"), dock.last_error
    edited = dock.edited_consensus()
    assert (edited[painted] == LIVER).all()
    np.testing.assert_array_equal(edited[~painted], dock.consensus[~painted])
    assert "unfinalized edits" in dock.status.text()
    version = dock.finalize()
    assert version is not None, dock.last_error
    final = project.read_mask(version)
    assert (final[painted] == LIVER).all()
    assert json.loads(version.note)["decisions"]["liver"] == "painted"
    # finalized: nothing left to restore
    assert dock.load_case("ct1") and dock.load_case("ct0"), dock.last_error
    assert "unfinalized edits" not in dock.status.text()
    np.testing.assert_array_equal(dock.edited_consensus(), dock.consensus)


def test_paint_left_on_an_older_consensus(make_napari_viewer, two_reader_project):
    """A reader submits a new version while the lead's paint waits: paint away from the
    change comes back (saying the readers changed); paint where the consensus changed
    is not applied until the lead asks, and is not dropped meanwhile."""
    project, masks = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    assert dock.load_case("ct0"), dock.last_error
    painted = _paint_liver_next_to_liver(viewer.layers["consensus"])
    assert dock.load_case("ct1"), dock.last_error
    alice = masks["ct0"]["alice"].copy()
    far = np.zeros_like(alice, dtype=bool)
    far[-1, :2, :2] = True  # a corner, far from the liver
    assert not (far & painted).any()
    alice[far] = SPLEEN
    project.save_mask_version("ct0", alice, kind="imported", annotator="alice")
    assert dock.load_case("ct0"), dock.last_error
    assert (dock.edited_consensus()[painted] == LIVER).all()
    assert "readers' labels changed" in dock.status.text()
    assert "unfinalized edits" in dock.status.text()

    # now a reader relabels exactly where the lead painted
    assert dock.load_case("ct1"), dock.last_error
    for who in ("alice", "bob"):
        relabelled = masks["ct0"][who].copy()
        relabelled[painted] = SPLEEN
        project.save_mask_version("ct0", relabelled, kind="imported", annotator=who)
    assert dock.load_case("ct0"), dock.last_error
    np.testing.assert_array_equal(dock.edited_consensus(), dock.consensus)  # not applied
    assert "not applied" in dock.last_error and "readers' labels changed" in dock.last_error
    assert dock.apply_earlier_button.isEnabled()
    assert dock.load_case("ct1") and dock.load_case("ct0"), dock.last_error  # still held
    assert dock.apply_earlier_button.isEnabled()
    dock.apply_earlier_edits()
    assert (dock.edited_consensus()[painted] == LIVER).all()
    assert not dock.apply_earlier_button.isEnabled()
    version = dock.finalize()
    assert version is not None, dock.last_error
    assert (project.read_mask(version)[painted] == LIVER).all()


def test_the_review_dock_without_a_project_says_what_to_do_and_browses(
    make_napari_viewer, two_reader_project, monkeypatch
):
    from napari_atlas_annotate._qt import folder_field

    project, _ = two_reader_project
    dock = ReviewDock(make_napari_viewer())
    assert "atlas-annotate init" in dock.status.text()
    monkeypatch.setattr(
        folder_field.QFileDialog, "getExistingDirectory", lambda *a: str(project.folder)
    )
    dock.folder_field.browse_button.click()
    assert dock.folder_edit.text() == str(project.folder)
    dock.lead_edit.setText("lead")
    assert dock.open_project(dock.folder_edit.text())


def test_the_readers_notes_are_shown_with_their_case(make_napari_viewer, two_reader_project):
    project, masks = two_reader_project
    base = project.latest_version("ct1", annotator="bob")
    project.submit_mask("ct1", "bob", masks["ct1"]["bob"], base, note="spleen removed")
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    viewer.window.add_dock_widget(dock, name="Review")
    items = {dock.case_list.item(i).data(256): dock.case_list.item(i).text() for i in range(2)}
    assert "1 note(s)" in items["ct1"] and "note" not in items["ct0"]

    assert dock.load_case("ct1"), dock.last_error
    assert not dock.notes_label.isHidden()
    assert dock.notes_label.text() == "Readers' notes:\nbob: spleen removed"
    assert dock.load_case("ct0"), dock.last_error
    assert dock.notes_label.isHidden()


def test_keys_step_through_the_ranking(make_napari_viewer, two_reader_project, qtbot):
    from qtpy.QtCore import Qt

    project, _ = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    viewer.window.add_dock_widget(dock, name="Review")
    assert dock.case_ids() == ["ct1", "ct0"]
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    ctrl = Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(canvas, Qt.Key.Key_PageDown, ctrl)  # nothing open: the most disputed
    assert dock.review.case_id == "ct1"
    qtbot.keyClick(canvas, Qt.Key.Key_PageDown, ctrl)
    assert dock.review.case_id == "ct0" and dock.case_list.currentRow() == 1
    qtbot.keyClick(canvas, Qt.Key.Key_PageDown, ctrl)  # the end: stays, and says so
    assert dock.review.case_id == "ct0" and "last case" in dock.status.text()
    qtbot.keyClick(canvas, Qt.Key.Key_PageUp, ctrl)
    assert dock.review.case_id == "ct1"


def test_the_ct_window_the_lead_picks_stays_from_case_to_case(
    make_napari_viewer, two_reader_project
):
    from napari_atlas_annotate._napari.ct_windows import CT_WINDOWS

    project, _ = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    viewer.window.add_dock_widget(dock, name="Review")
    assert not dock.ct_row.isHidden()
    assert dock.load_case("ct1"), dock.last_error
    liver = next(w for w in CT_WINDOWS if w.name == "Liver")
    dock.display_combo.activated.emit(CT_WINDOWS.index(liver))
    assert tuple(viewer.layers["ct1 image"].contrast_limits) == liver.limits
    assert dock.load_case("ct0"), dock.last_error
    assert tuple(viewer.layers["ct0 image"].contrast_limits) == liver.limits
    assert dock.display_combo.currentText() == liver.label


def test_the_lead_paints_the_consensus_in_a_side_view(make_napari_viewer, two_reader_project):
    """With 3 views on, the lead's paint in the sagittal view lands in the consensus that
    Finalize stores; the side views follow the case opened and go when switched off."""
    pytest.importorskip("napari_orthogonal_views")
    from napari_orthogonal_views.ortho_view_manager import _get_manager

    project, masks = two_reader_project
    viewer = make_napari_viewer(show=True)
    dock = ReviewDock(viewer, project, lead="lead")
    viewer.window.add_dock_widget(dock, name="Review")
    assert dock.three_views.isEnabled() and not dock.ct_row.isHidden()
    dock.three_views.setChecked(True)
    assert dock.last_error is None
    assert dock.load_case("ct0"), dock.last_error

    manager = _get_manager(viewer)
    assert manager.is_shown()
    sagittal = manager.right_widget.vm_container.viewer_model
    consensus = viewer.layers["consensus"]
    [copy] = [layer for layer in sagittal.layers if layer.data is consensus.data]
    assert copy is not consensus
    stored_axes = np.argsort(consensus.metadata["atlas_annotate"]["axes"])
    vote = np.asarray(consensus.data).transpose(stored_axes).copy()
    copy.selected_label = SPLEEN
    copy.mode = "paint"
    copy.brush_size = 3
    liver = np.argwhere(np.asarray(consensus.data) == LIVER)[0]  # in the layer's axes
    with copy.block_history():
        copy.paint(tuple(liver), SPLEEN)
    painted = np.asarray(consensus.data).transpose(stored_axes) != vote
    assert painted.any()

    version = dock.finalize()
    assert version is not None, dock.last_error
    final = project.read_mask(version)
    assert (final[painted] == SPLEEN).all()
    np.testing.assert_array_equal(final[~painted], vote[~painted])

    assert dock.load_case("ct1"), dock.last_error
    names = {layer.name for layer in sagittal.layers}
    assert {"ct1 image", "consensus", "alice", "bob"} <= names and "ct0 image" not in names
    dock.three_views.setChecked(False)
    assert not manager.is_shown()


def test_a_spine_project_turns_the_side_views_off(make_napari_viewer, spine_readers, tmp_path):
    pytest.importorskip("napari_orthogonal_views")
    from napari_orthogonal_views.ortho_view_manager import _get_manager

    organs, _ = make_two_reader_project(tmp_path / "organs")
    viewer = make_napari_viewer(show=True)
    dock = ReviewDock(viewer, organs, lead="lead")
    dock.three_views.setChecked(True)
    assert _get_manager(viewer).is_shown()
    assert dock.open_project(spine_readers[0]), dock.last_error
    assert not dock.three_views.isChecked() and not _get_manager(viewer).is_shown()
    organs.close()


class _Gate:
    """Holds the review's comparisons of label maps in the worker thread: all of them until
    ``open`` is set, or one per ``let_one()``; ``reached`` counts the arrivals."""

    def __init__(self, monkeypatch):
        import threading
        import time

        from napari_atlas_annotate.review import cases

        self.open, self.reached = threading.Event(), threading.Event()
        self.arrived, self._passes = 0, threading.Semaphore(0)
        compare = cases.compare_masks

        def held(*args, **kwargs):
            self.arrived += 1
            self.reached.set()
            end = time.monotonic() + 30
            while not (self.open.is_set() or self._passes.acquire(timeout=0.01)):
                assert time.monotonic() < end, "the test never let it through"
            return compare(*args, **kwargs)

        monkeypatch.setattr(cases, "compare_masks", held)

    def let_one(self) -> None:
        self._passes.release()


@pytest.mark.parametrize("threads", [1, 2])
def test_big_cases_are_compared_in_the_background_and_the_dock_stays_usable(
    make_napari_viewer, two_reader_project, monkeypatch, qtbot, threads
):
    # As for a project of real-size CTs: every case counts as too big to compare on the
    # GUI thread (0.7 s of Dice a case, about 7 s of HD95).
    from napari_atlas_annotate.review.cases import review_case

    project, _ = two_reader_project
    monkeypatch.setattr(ReviewDock, "inline_rank_voxels", 0)
    monkeypatch.setattr(ReviewDock, "inline_hd95_voxels", 0)
    monkeypatch.setattr(ReviewDock, "rank_threads", threads)
    gate = _Gate(monkeypatch)
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")  # returns while the worker compares
    qtbot.waitUntil(gate.reached.is_set, timeout=10_000)
    assert dock.task.running and dock.case_ids() == []
    assert "comparing 2 more not compared yet in the background" in dock.status.text()
    gate.open.set()
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    assert dock.case_ids() == ["ct1", "ct0"], dock.last_error  # the inline ranking's order

    gate.open.clear()
    assert dock.load_case("ct0"), dock.last_error  # Dice now, HD95 in the background
    qtbot.waitUntil(gate.reached.is_set, timeout=10_000)
    header = [dock.table.horizontalHeaderItem(c).text() for c in range(dock.table.columnCount())]
    hd95 = header.index("HD95 alice|bob")
    assert dock.task.running and dock.table.item(0, hd95).text() == "…"
    assert not dock.task.isHidden()  # its progress row shows while it runs
    assert "HD95 is being computed in the background" in dock.status.text()
    assert float(dock.table.item(0, 3).text()) < 1.0  # liver's Dice is there already
    dock.choose("liver", "bob")  # the lead works meanwhile
    assert not (dock.edited_consensus() != dock.consensus).any()
    dock.consensus_layer.paint((0, 5, 5), SPLEEN, refresh=True)  # and paints
    painted = np.count_nonzero(dock.edited_consensus() != dock.consensus)
    assert painted > 0
    gate.open.set()
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    expected = review_case(project, "ct0", distances=True).masks.hd95
    for r, name in enumerate(dock.class_rows()):
        value = expected[name]["alice|bob"]
        assert dock.table.item(r, hd95).text() == ("-" if value is None else f"{value:.1f}")
    assert float(dock.table.item(0, hd95).text()) > 0
    assert "HD95 is in the table" in dock.status.text()
    assert dock.decisions()["liver"] == "bob"  # the lead's choice is still there
    assert np.count_nonzero(dock.edited_consensus() != dock.consensus) == painted  # kept
    version = dock.finalize()
    assert version is not None and np.array_equal(
        project.read_mask(version) == LIVER, two_reader_project[1]["ct0"]["bob"] == LIVER
    ), dock.last_error


def test_cancelling_the_background_comparison_lists_what_was_compared(
    make_napari_viewer, two_reader_project, monkeypatch, qtbot
):
    project, _ = two_reader_project
    monkeypatch.setattr(ReviewDock, "inline_rank_voxels", 0)
    monkeypatch.setattr(ReviewDock, "rank_threads", 1)  # one case at a time
    gate = _Gate(monkeypatch)
    dock = ReviewDock(make_napari_viewer(), project, lead="lead")
    qtbot.waitUntil(gate.reached.is_set, timeout=10_000)
    dock.task.cancel()  # during the first case: it is finished and kept, the second is not
    gate.open.set()
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    assert dock.case_ids() == ["ct0"]
    assert "1 more not compared yet (stopped)" in dock.status.text()
    assert f"atlas-annotate review {project.folder}" in dock.status.text()
    dock.refresh_cases()  # after a Finalize, say: not started again by itself
    assert not dock.task.running and dock.case_ids() == ["ct0"]
    assert dock.open_project(project.folder)  # opening the project again goes on
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    assert dock.case_ids() == ["ct1", "ct0"], dock.last_error


def test_the_next_case_is_read_while_the_lead_looks_at_this_one(
    make_napari_viewer, two_reader_project
):
    project, masks = two_reader_project
    dock = ReviewDock(make_napari_viewer(), project, lead="lead")
    assert dock.case_ids() == ["ct1", "ct0"]
    assert dock.load_case("ct1"), dock.last_error
    assert dock.read_ahead.pending() == "ct0" and dock._masks_ahead[0] == "ct0"
    read = dock._masks_ahead[2].result(timeout=30)
    assert dock.load_case("ct0"), dock.last_error
    assert dock.masks is read  # the label maps read ahead, not read again
    assert dock.read_ahead.pending() is None  # the last case: nothing after it
    np.testing.assert_array_equal(dock.masks["bob"], masks["ct0"]["bob"])

    assert dock.load_case("ct1"), dock.last_error
    read = dock._masks_ahead[2].result(timeout=30)
    newer = masks["ct0"]["bob"].copy()
    newer[newer == LIVER] = 0
    project.save_mask_version("ct0", newer, kind="corrected", annotator="bob")
    assert dock.load_case("ct0"), dock.last_error  # bob's new version, not the one read ahead
    assert dock.masks is not read
    np.testing.assert_array_equal(dock.masks["bob"], newer)


def test_finalize_takes_the_stored_readers_labels_even_after_a_stroke_on_a_readers_layer(
    make_napari_viewer, two_reader_project
):
    project, masks = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    assert dock.load_case("ct0"), dock.last_error
    shown = dock.masks
    dock.choose("liver", "bob")
    version = dock.finalize()  # the readers' maps in memory are the stored versions
    assert version is not None, dock.last_error
    assert dock.masks is shown  # shown again without reading the files
    bob = masks["ct0"]["bob"]
    np.testing.assert_array_equal(project.read_mask(version) == LIVER, bob == LIVER)

    viewer.layers["bob"].paint((0, 5, 5), LIVER, refresh=True)  # a stroke on bob's layer
    assert np.count_nonzero(dock.masks["bob"] != bob) > 0
    dock.lead_edit.setText("lead")
    dock.choose("liver", "bob")
    dock.choose("spleen", "alice")
    version = dock.finalize()
    assert version is not None, dock.last_error
    np.testing.assert_array_equal(project.read_mask(version) == LIVER, bob == LIVER)
    np.testing.assert_array_equal(dock.masks["bob"], bob)  # read again from its file


@pytest.mark.parametrize("in_background", [False, True])
def test_a_damaged_label_file_leaves_the_other_cases_listed(
    make_napari_viewer, two_reader_project, monkeypatch, qtbot, in_background
):
    project, _ = two_reader_project
    if in_background:
        monkeypatch.setattr(ReviewDock, "inline_rank_voxels", 0)
    bob = project.latest_version("ct1", annotator="bob")
    (project.folder / bob.path).write_bytes(b"\x1f\x8b damaged")
    dock = ReviewDock(make_napari_viewer(), project, lead="lead")
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    assert dock.case_ids() == ["ct0"]
    text = dock.last_error or ""
    assert "1 case(s) to review; 1 could not be compared (ct1)" in text
    assert str(bob.path) in text and "Restore it from a backup" in text
    assert dock.load_case("ct0"), dock.last_error  # the others are reviewed as usual
    assert dock.finalize() is not None, dock.last_error
    assert not dock.task.running  # not compared again and again


def test_the_open_cases_hd95_follows_the_ranking_in_the_background(
    make_napari_viewer, two_reader_project, monkeypatch, qtbot
):
    from napari_atlas_annotate.review.cases import review_case

    project, _ = two_reader_project
    review_case(project, "ct0", distances=False)  # ct0's Dice is kept: listed at once
    monkeypatch.setattr(ReviewDock, "inline_rank_voxels", 0)
    monkeypatch.setattr(ReviewDock, "inline_hd95_voxels", 0)
    monkeypatch.setattr(ReviewDock, "rank_threads", 1)
    gate = _Gate(monkeypatch)
    dock = ReviewDock(make_napari_viewer(), project, lead="lead")
    qtbot.waitUntil(lambda: gate.arrived == 1, timeout=10_000)  # ct1's Dice, held
    assert dock.case_ids() == ["ct0"] and dock.task.running
    assert dock.load_case("ct0"), dock.last_error  # its HD95 waits for the ranking
    header = [dock.table.horizontalHeaderItem(c).text() for c in range(dock.table.columnCount())]
    hd95 = header.index("HD95 alice|bob")
    assert dock.table.item(0, hd95).text() == "…"
    gate.let_one()  # the ranking ends; ct0's HD95 starts from its end
    qtbot.waitUntil(lambda: gate.arrived == 2, timeout=10_000)
    assert dock.case_ids() == ["ct1", "ct0"]
    assert dock.task.running and not dock.task.isHidden()  # the progress row still shows
    assert dock.review.case_id == "ct0" and dock.case_list.currentRow() == 1
    gate.let_one()
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    assert dock.table.item(0, hd95).text() != "…" and dock.task.isHidden()


def test_final_cases_can_be_hidden_and_the_keys_go_on_from_a_finalized_case(
    make_napari_viewer, two_reader_project
):
    from napari_atlas_annotate.project import ImageRef

    project, masks = two_reader_project
    # ct2: bob's liver grown twice, ranked between ct1 (no spleen) and ct0 (grown once)
    project.add_case("ct2", [ImageRef(project.case("ct0").images[0].path)])
    alice = masks["ct0"]["alice"]
    bob = alice.copy()
    bob[ndimage.binary_dilation(alice == LIVER, iterations=2) & (alice == 0)] = LIVER
    project.save_mask_version("ct2", alice, kind="imported", annotator="alice")
    project.save_mask_version("ct2", bob, kind="imported", annotator="bob")
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    assert dock.case_ids() == ["ct1", "ct2", "ct0"], dock.last_error
    assert dock.load_case("ct1") and dock.finalize() is not None
    assert dock.case_ids() == ["ct1", "ct2", "ct0"]  # shown as FINAL, not hidden by default
    dock.hide_final.setChecked(True)
    assert dock.case_ids() == ["ct2", "ct0"] and "1 final case(s) hidden" in dock.status.text()
    assert dock.review.case_id == "ct1"  # the finalized case stays open
    assert dock.step_case(+1) and dock.review.case_id == "ct2"  # the one ranked after it
    assert dock.load_case("ct0") and dock.finalize() is not None
    assert dock.case_ids() == ["ct2"]
    assert not dock.step_case(+1) and "no case of the list comes after ct0" in dock.status.text()
    assert dock.step_case(-1) and dock.review.case_id == "ct2"
    dock.hide_final.setChecked(False)
    assert dock.case_ids() == ["ct1", "ct2", "ct0"]
    assert sum("FINAL" in dock.case_list.item(i).text() for i in range(3)) == 2


def test_readers_against_the_finals_in_a_window_of_their_own(
    make_napari_viewer, two_reader_project, qtbot
):
    project, masks = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    assert dock.show_readers()
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    assert dock.readers_text.toPlainText().startswith("no final case yet")

    assert dock.load_case("ct0"), dock.last_error
    dock.choose("liver", "bob")  # bob's liver, the rest alice's
    assert dock.finalize() is not None, dock.last_error
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)  # the case's HD95
    assert dock.show_readers(), dock.last_error
    assert dock.task.running  # off the GUI thread; painting and the list stay usable
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    lines = dock.readers_text.toPlainText().splitlines()
    assert lines[0] == "readers against the lead's final labels (1 final case):"
    assert dock.status.text().startswith(lines[0])
    alice = next(line for line in lines if line.startswith("alice"))
    bob = next(line for line in lines if line.startswith("bob"))
    # bob differs from alice only in the liver, which the lead took from bob: the final is
    # bob's label, and alice's liver is what it changed
    alice_labels, bob_labels = masks["ct0"]["alice"], masks["ct0"]["bob"]
    voxel_ml = abs(np.linalg.det(masks["ct0"]["image"].affine[:3, :3])) / 1000
    changed = np.count_nonzero(alice_labels != bob_labels) * voxel_ml
    assert f"1 case: the final changed {changed:.1f} ml a case; lowest median Dice: liver" in alice
    assert bob.endswith("1 case: the final changed 0.0 ml a case")  # no weakest class
    assert dock.readers_window.isVisible()


def test_finalize_shows_the_final_it_composed_without_reading_it_back(
    make_napari_viewer, two_reader_project, monkeypatch
):
    project, masks = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    assert dock.load_case("ct0"), dock.last_error
    dock.choose("liver", "bob")
    read = []
    real = type(project).read_mask
    monkeypatch.setattr(
        type(project), "read_mask", lambda self, v: read.append(v.id) or real(self, v)
    )
    version = dock.finalize()
    assert version is not None, dock.last_error
    assert version.id not in read  # shown from the map just composed
    final = viewer.layers[f"final v{version.id}"]
    axes = final.metadata["atlas_annotate"]["axes"]
    shown = np.asarray(final.data).transpose(np.argsort(axes))
    np.testing.assert_array_equal(shown, real(project, version))  # what the file holds
    # the next open of the case reads the file, as any open does
    dock.close_case()
    assert dock.load_case("ct0"), dock.last_error
    assert version.id in read


def test_readers_vs_finals_asked_during_another_job_runs_after_it(
    make_napari_viewer, two_reader_project, qtbot
):
    import threading

    project, _ = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    assert dock.load_case("ct0") and dock.finalize() is not None, dock.last_error
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    release = threading.Event()
    folder = project.folder  # a job of the dock's own kind: it says when it ended
    dock.task.start(
        "another job",
        lambda progress, cancel: release.wait(20),
        on_result=lambda _: dock._job_ended(folder),
    )
    assert dock.show_readers()
    assert "after the job running now" in dock.status.text()
    assert dock.readers_window is None  # nothing compared yet
    release.set()
    qtbot.waitUntil(lambda: dock.readers_window is not None, timeout=30_000)
    qtbot.waitUntil(lambda: not dock.task.running, timeout=30_000)
    assert dock.readers_text.toPlainText().startswith(
        "readers against the lead's final labels (1 final case):"
    )


def test_finalize_refuses_a_readers_version_the_lead_has_not_seen(
    make_napari_viewer, two_reader_project
):
    # Alice submitted from her window while the lead had the case open; Finalize then
    # composed her new labels (no spleen) where the lead had taken her spleen as shown.
    project, masks = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    assert dock.load_case("ct0"), dock.last_error
    dock.choose("spleen", "alice")
    base = project.latest_version("ct0", kinds=("imported",), annotator="alice")
    erased = project.read_mask(base)
    erased[erased == SPLEEN] = 0
    with Project(project.folder) as her_window:
        newer = her_window.submit_mask("ct0", "alice", erased, base)
    assert dock.finalize() is None
    assert f"alice submitted version {newer.id}" in dock.last_error
    assert "nothing was finalized" in dock.last_error
    assert current_final(project, "ct0") is None
    assert dock.review.versions["alice"].id == newer.id  # shown now
    np.testing.assert_array_equal(np.asarray(dock.masks["alice"]), erased)
    assert dock.decisions()["spleen"] == "alice"  # the lead's choice is kept
    version = dock.finalize()  # seen now: finalized
    assert version is not None and not (project.read_mask(version) == SPLEEN).any()


def test_closing_the_review_dock_takes_its_case_out(make_napari_viewer, two_reader_project):
    project, _ = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    viewer.window.add_dock_widget(dock, name="Review")
    assert dock.load_case("ct0"), dock.last_error
    dock.choose("liver", "bob")
    viewer.window.remove_dock_widget(dock)  # napari's close button on the dock
    assert list(viewer.layers) == [] and dock.review is None
    viewer.window.add_dock_widget(dock, name="Review")  # back: the choice is kept
    assert dock.load_case("ct0"), dock.last_error
    assert dock.decisions()["liver"] == "bob"
