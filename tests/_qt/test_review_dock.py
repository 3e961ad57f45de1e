"""The lead's review dock in a real viewer (Qt, Xvfb): open a two-annotator case, pick a
source per class, finalize, check the stored final label; reopen. A spine case read by
three readers: its series, the readers' points, disputed cells first, navigation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from napari_atlas_annotate._napari.layers import DISPLAY_FROM_RAS
from napari_atlas_annotate._qt.review import ReviewDock
from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.grade_editing import point_to_index
from napari_atlas_annotate.grade_sheet import GradeSheet, LevelPoint
from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.phantoms.ct import make_ct_phantom
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.project.importing import read_grade_sheet
from napari_atlas_annotate.project.sources import cases_from_path
from napari_atlas_annotate.review.adjudication import current_final
from napari_atlas_annotate.spine_grades import GRADES, LEVELS

pytestmark = pytest.mark.qt
LIVER, SPLEEN = 5, 8


@pytest.fixture
def two_reader_project(tmp_path):
    project = Project.create(tmp_path / "proj", task="organs", classes=list(ABDOMEN_ATLAS_CLASSES))
    masks = {}
    for seed in range(2):
        image, label, _ = make_ct_phantom(seed, shape=(16, 40, 40))
        case_id = f"ct{seed}"
        project.add_case(case_id, [ImageRef(str(save_nifti(image, tmp_path / f"{case_id}.nii")))])
        alice = label.array.astype(np.uint8)
        bob = alice.copy()
        bob[ndimage.binary_dilation(alice == LIVER) & (alice == 0)] = LIVER  # bigger liver
        if seed == 1:
            bob[alice == SPLEEN] = 0  # and no spleen: the most disputed case
        project.save_mask_version(case_id, alice, kind="imported", annotator="alice")
        project.save_mask_version(case_id, bob, kind="imported", annotator="bob")
        masks[case_id] = {"alice": alice, "bob": bob, "image": image}
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
    image_affine = viewer.layers["ct0 image"].affine.affine_matrix
    expected_affine = DISPLAY_FROM_RAS @ masks["ct0"]["image"].affine
    for layer in viewer.layers:  # everything overlays the image exactly
        np.testing.assert_allclose(layer.affine.affine_matrix, image_affine)
    np.testing.assert_allclose(image_affine, expected_affine)
    alice, bob = masks["ct0"]["alice"], masks["ct0"]["bob"]
    # Disagreement map: exactly where the two differ (data is displayed as stored here).
    shown = viewer.layers["disagreement"].metadata["atlas_annotate"]["axes"]
    disagreement = np.asarray(viewer.layers["disagreement"].data).transpose(np.argsort(shown))
    np.testing.assert_array_equal(disagreement, (alice != bob).astype(np.uint8))

    assert dock.table.rowCount() == len(ABDOMEN_ATLAS_CLASSES)
    liver_row = ABDOMEN_ATLAS_CLASSES.index("liver")
    assert float(dock.table.item(liver_row, 1).text()) < 1.0  # Dice alice|bob
    assert dock.table.item(0, 1).text() == "1.000"  # aorta identical

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
    assert dock.load_case(case_id), dock.last_error

    # the four disputed cells first (Normal/Mild vs Severe first), marked; then the rest
    rows = dock.cell_rows()
    disputed = {_key(c) for c in (CANAL_L23, LEFT_SS_L45, LEFT_NFN_L51, RIGHT_SS_L51)}
    assert rows[0] == _key(CANAL_L23) and set(rows[:4]) == disputed and len(rows) == 25
    marks = [dock.table.item(r, 1).text() for r in range(25)]
    assert marks == ["disputed"] * 4 + [""] * 21
    header = [dock.table.horizontalHeaderItem(c).text() for c in range(6)]
    assert header == ["cell", "disputed", "alice", "bob", "cy", "consensus"]
    row = rows.index(_key(LEFT_NFN_L51))
    said = [dock.table.item(row, c).text() for c in (2, 3, 4)]
    assert said == [sheets[who].grade(*LEFT_NFN_L51) for who in ("alice", "bob", "cy")]

    # every series shown, each axial stack its own image; one Points layer per reader
    images = {layer.name for layer in viewer.layers if layer._type_string == "image"}
    stacks = [f"Axial T2 (stack {k}/3)" for k in (1, 2, 3)]
    assert images == {f"{case_id} {s}" for s in ("Sagittal T1", "Sagittal T2/STIR", *stacks)}
    readers = {who: viewer.layers[f"{case_id} {who} points"] for who in ("alice", "bob", "cy")}
    consensus = viewer.layers[f"{case_id} consensus points"]
    colors = {tuple(np.round(layer.face_color[0], 3)) for layer in readers.values()}
    assert len(colors) == 3  # one colour per reader

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
