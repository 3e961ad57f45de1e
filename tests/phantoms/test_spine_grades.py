"""RSNA naming constants and the three CSV readers/writers."""

from __future__ import annotations

import pytest

from napari_atlas_annotate.spine_grades import (
    CONDITIONS,
    GRADE_COLUMNS,
    LEVELS,
    TRAIN_CSV_COLUMNS,
    LevelPoint,
    column_name,
    normalize_grade,
    parse_column,
    read_coordinates_csv,
    read_grades_csv,
    read_series_descriptions_csv,
    to_condition,
    to_level,
    write_coordinates_csv,
    write_grades_csv,
    write_series_descriptions_csv,
)


def test_columns_follow_rsna_order():
    assert len(GRADE_COLUMNS) == 25
    assert GRADE_COLUMNS[0] == "spinal_canal_stenosis_l1_l2"
    assert GRADE_COLUMNS[5] == "left_neural_foraminal_narrowing_l1_l2"
    assert GRADE_COLUMNS[-1] == "right_subarticular_stenosis_l5_s1"
    assert TRAIN_CSV_COLUMNS[0] == "study_id"
    for col in GRADE_COLUMNS:
        assert column_name(*parse_column(col)) == col
    with pytest.raises(ValueError):
        parse_column("spinal_canal_stenosis_l6_s2")


def test_display_names_both_ways():
    assert to_condition("Left Neural Foraminal Narrowing") == "left_neural_foraminal_narrowing"
    assert to_condition("spinal_canal_stenosis") == "spinal_canal_stenosis"
    assert to_level("L5/S1") == "l5_s1" and to_level("l2_l3") == "l2_l3"
    assert normalize_grade("SEVERE") == "Severe" and normalize_grade("normal_mild") == "Normal/Mild"
    assert normalize_grade("nan") is None
    with pytest.raises(ValueError):
        normalize_grade("bad")
    with pytest.raises(ValueError):
        to_level("L6/S1")


def test_grades_round_trip_and_missing_cells(tmp_path):
    grades = {7: {c: "Moderate" for c in GRADE_COLUMNS}, 3: {GRADE_COLUMNS[0]: "Severe"}}
    path = write_grades_csv(tmp_path / "train.csv", grades)
    back = read_grades_csv(path)
    assert list(back) == [3, 7]
    assert back[7] == grades[7]
    assert back[3][GRADE_COLUMNS[0]] == "Severe" and back[3][GRADE_COLUMNS[1]] is None
    # a file with a missing column and empty cells reads as None, not a guess
    (tmp_path / "partial.csv").write_text(
        "study_id,spinal_canal_stenosis_l1_l2,spinal_canal_stenosis_l2_l3\n12,,Severe\n"
    )
    part = read_grades_csv(tmp_path / "partial.csv")
    assert part[12]["spinal_canal_stenosis_l1_l2"] is None
    assert part[12]["spinal_canal_stenosis_l2_l3"] == "Severe"
    assert part[12]["right_subarticular_stenosis_l5_s1"] is None


def test_coordinates_and_series_round_trip(tmp_path):
    pts = [LevelPoint(1, 22, 8, c, lv, 10.5, 20.25) for c in CONDITIONS for lv in LEVELS]
    path = write_coordinates_csv(tmp_path / "coords.csv", pts)
    text = path.read_text().splitlines()
    assert text[0] == "study_id,series_id,instance_number,condition,level,x,y"
    assert ",Spinal Canal Stenosis,L1/L2," in text[1]
    assert read_coordinates_csv(path) == pts
    rows = [(1, 22, "Sagittal T1"), (1, 23, "Axial T2")]
    assert (
        read_series_descriptions_csv(write_series_descriptions_csv(tmp_path / "s.csv", rows))
        == rows
    )


def test_a_bad_row_names_its_file_line_and_column(tmp_path):
    grades = tmp_path / "train.csv"
    grades.write_text(
        "study_id,spinal_canal_stenosis_l1_l2,spinal_canal_stenosis_l2_l3\n"
        "1,Normal/Mild,Severe\n"
        "2,Moderate,Bad\n"
    )
    with pytest.raises(ValueError) as err:
        read_grades_csv(grades)
    assert str(err.value).startswith(
        f"{grades}, line 3: column spinal_canal_stenosis_l2_l3: unknown grade 'Bad'"
    )
    points = tmp_path / "train_label_coordinates.csv"
    points.write_text(
        "study_id,series_id,instance_number,condition,level,x,y\n"
        "1,10,3,Spinal Canal Stenosis,L1/L2,100.0,120.0\n"
        "1,10,3,Spinal Canal Stenosis,L9/L10,100.0,120.0\n"
    )
    with pytest.raises(ValueError, match=f"{points}, line 3: .*L9/L10.*Fix that row"):
        read_coordinates_csv(points)


def _grades_file(tmp_path, *rows: str):
    path = tmp_path / "train.csv"
    path.write_text(",".join(TRAIN_CSV_COLUMNS) + "\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_a_train_csv_row_off_by_a_field_or_given_twice_is_refused(tmp_path):
    # a missing comma shifted 14 of a study's grades by a column, a row cut short left 16
    # cells blank, and a second row of a study silently replaced the first
    full = ",".join(["1", *["Normal/Mild"] * 25])
    missing = ",".join(["2", *["Moderate"] * 24])
    with pytest.raises(ValueError, match=r"line 3: 25 fields where the header has 26"):
        read_grades_csv(_grades_file(tmp_path, full, missing))
    with pytest.raises(ValueError, match=r"line 2: 11 fields"):
        read_grades_csv(_grades_file(tmp_path, ",".join(["2", *["Severe"] * 10])))
    again = ",".join(["1", *["Severe"] * 25])
    with pytest.raises(ValueError, match="line 3: study_id 1 is already on line 2"):
        read_grades_csv(_grades_file(tmp_path, full, again))
    blank = ",".join(["3", *[""] * 25])  # empty cells: Kaggle's ungraded cells, read as None
    assert read_grades_csv(_grades_file(tmp_path, full, blank))[3] == dict.fromkeys(GRADE_COLUMNS)


@pytest.mark.parametrize(
    ("x", "instance", "said"),
    [
        ("abc", "3", "could not convert string to float: 'abc'"),
        ("nan", "3", "x is 'nan', not a number of pixels"),
        ("10", "8.5", "instance_number '8.5' is not a whole number"),
    ],
)
def test_a_point_that_is_not_a_place_is_refused_by_line(tmp_path, x, instance, said):
    # a non-numeric x dropped the point silently; NaN was stored and exported as "nan";
    # instance 8.5 was read as 8
    points = tmp_path / "coords.csv"
    points.write_text(
        "study_id,series_id,instance_number,condition,level,x,y\n"
        "1,10,3,Spinal Canal Stenosis,L1/L2,100.0,120.0\n"
        f"1,10,{instance},Spinal Canal Stenosis,L2/L3,{x},120.0\n"
    )
    with pytest.raises(ValueError, match=f"line 3: {said}"):
        read_coordinates_csv(points)


def test_a_cell_given_two_points_or_a_series_two_names_is_refused(tmp_path):
    points = tmp_path / "coords.csv"
    points.write_text(
        "study_id,series_id,instance_number,condition,level,x,y\n"
        "1,10,3,Spinal Canal Stenosis,L1/L2,70.1,29.4\n"
        "1,10,3,Spinal Canal Stenosis,L2/L3,,\n"  # no point: skipped
        "1,10,4,Spinal Canal Stenosis,L1/L2,10,10\n"
    )
    with pytest.raises(ValueError, match="line 4: study 1 spinal_canal_stenosis l1_l2 .*line 2"):
        read_coordinates_csv(points)
    series = tmp_path / "series.csv"
    series.write_text(
        "study_id,series_id,series_description\n"
        "1,22,Sagittal T1\n1,23,Axial T2\n1,22,Sagittal T1\n"  # the same again: read once
    )
    assert read_series_descriptions_csv(series) == [(1, 22, "Sagittal T1"), (1, 23, "Axial T2")]
    series.write_text(series.read_text() + "1,22,Axial T2\n")
    with pytest.raises(ValueError, match="line 5: series 22 of study 1 is 'Axial T2' here"):
        read_series_descriptions_csv(series)
