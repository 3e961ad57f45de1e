"""cell_opinions: each cell's readers, grades, points and consensus; disputed cells first."""

from __future__ import annotations

import pytest

from napari_atlas_annotate.grade_sheet import GradeSheet, LevelPoint
from napari_atlas_annotate.project import ProjectError
from napari_atlas_annotate.review.adjudication import finalize
from napari_atlas_annotate.review.cases import load_opinions
from napari_atlas_annotate.review.grade_cells import cell_opinions
from napari_atlas_annotate.review.readers import annotator_versions
from napari_atlas_annotate.spine_grades import GRADES, SERIES_FOR_CONDITION

CANAL = ("spinal_canal_stenosis", "l4_l5")
LEFT_FORAMEN = ("left_neural_foraminal_narrowing", "l5_s1")
RIGHT_RECESS = ("right_subarticular_stenosis", "l2_l3")


def _sheets(grades: dict, points: dict | None = None) -> dict[str, GradeSheet]:
    """``{reader: GradeSheet}`` from ``{cell: {reader: grade}}`` and ``{(cell, reader): x}``."""
    readers = sorted({who for said in grades.values() for who in said})
    sheets = {who: GradeSheet() for who in readers}
    for cell, said in grades.items():
        for who, grade in said.items():
            sheets[who].set_grade(*cell, grade)
    for (cell, who), x in (points or {}).items():
        sheets[who].set_point(*cell, LevelPoint(SERIES_FOR_CONDITION[cell[0]], 5, x, 30.0))
    return sheets


def test_disputed_cells_come_first_widest_disagreement_first():
    sheets = _sheets(
        {
            CANAL: {"amy": GRADES[0], "bob": GRADES[1]},  # one grade apart
            LEFT_FORAMEN: {"amy": GRADES[0], "bob": GRADES[2]},  # two apart
            RIGHT_RECESS: {"amy": GRADES[2], "bob": GRADES[2]},  # agreed
        }
    )
    cells = cell_opinions(sheets)
    assert len(cells) == 25
    assert [(c.condition, c.level) for c in cells[:2]] == [LEFT_FORAMEN, CANAL]
    assert [c.disputed for c in cells[:3]] == [True, True, False]
    assert [c.spread for c in cells[:2]] == [2, 1]
    # the rest keep sheet order (condition, then level)
    rest = [(c.condition, c.level) for c in cells[2:]]
    assert rest == [cell for cell in GradeSheet.cells() if cell not in (CANAL, LEFT_FORAMEN)]
    foramen = cells[0]
    assert foramen.grades == {"amy": GRADES[0], "bob": GRADES[2]}
    assert foramen.key == "left_neural_foraminal_narrowing_l5_s1"
    assert foramen.series == "Sagittal T1" and foramen.title.endswith("L5/S1")


def test_a_reader_who_left_a_cell_ungraded_takes_no_side():
    sheets = _sheets({CANAL: {"amy": GRADES[1], "bob": None, "cy": GRADES[1]}})
    [canal] = [c for c in cell_opinions(sheets) if (c.condition, c.level) == CANAL]
    assert not canal.disputed and canal.ungraded == ["bob"]
    assert canal.consensus_grade == GRADES[1]


def test_points_and_the_consensus_point_per_cell():
    """Each reader's point is kept by name; the consensus point is what finalize stores
    for a cell left on the consensus: a point of a reader who gave the consensus grade."""
    sheets = _sheets(
        {CANAL: {"amy": GRADES[0], "bob": GRADES[1], "cy": GRADES[1]}},
        {(CANAL, "amy"): 10.0, (CANAL, "cy"): 30.0},
    )
    [canal] = [c for c in cell_opinions(sheets) if (c.condition, c.level) == CANAL]
    assert canal.disputed
    assert {who: p.x for who, p in canal.points.items()} == {"amy": 10.0, "cy": 30.0}
    assert canal.consensus_grade == GRADES[1]
    assert canal.consensus_point.x == 30.0  # cy's: bob said Moderate too but placed none
    assert canal.focus_point() is canal.consensus_point
    text = canal.summary()
    assert "disputed" in text and "bob Moderate (no point)" in text
    assert "cy Moderate (Sagittal T2/STIR #5)" in text and "consensus Moderate" in text
    assert "cy Moderate (T2 sag #5)" in canal.summary(lambda point: "T2 sag")  # a shown name
    # a cell with no point anywhere has nothing to focus on
    [recess] = [c for c in cell_opinions(sheets) if (c.condition, c.level) == RIGHT_RECESS]
    assert recess.points == {} and recess.focus_point() is None


def test_consensus_matches_what_finalize_stores(spine_project):
    project, _ = spine_project
    sheets = load_opinions(project, annotator_versions(project, "mr01"))
    cells = cell_opinions(sheets, "mr01")
    final = project.read_grades(finalize(project, "mr01", "lead", {}))
    for cell in cells:
        assert final.grades.get((cell.condition, cell.level)) == cell.consensus_grade
    assert [c.disputed for c in cells] == [True] * 8 + [False] * 17  # bob changed 8 cells
    spreads = [c.spread for c in cells[:8]]
    assert spreads == sorted(spreads, reverse=True) and min(spreads) >= 1


def test_reader_named_like_a_grade_is_refused():
    sheets = _sheets({CANAL: {"Severe": GRADES[0], "bob": GRADES[1]}})
    with pytest.raises(ProjectError, match="look like grades"):
        cell_opinions(sheets, "mr9")
