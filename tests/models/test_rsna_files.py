"""Kaggle-format RSNA 2024 files read for the metric (:mod:`.models.rsna_files`).

Files are written here with the csv module and row_ids spelled out by hand, so a wrong
reading of Kaggle's layout (row_id split, column names, blank cells) shows as a wrong score.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from napari_atlas_annotate.models.grader_comparison import compare_graders
from napari_atlas_annotate.models.rsna_files import (
    RsnaFileError,
    match,
    read_solution,
    read_submission,
    score_files,
)
from napari_atlas_annotate.models.rsna_metric import prior_baseline_predictions, rsna_score
from napari_atlas_annotate.spine_grades import CONDITIONS, GRADES, LEVELS

TERMS = ("spinal", "foraminal", "subarticular", "any_severe_spinal")
HEADER = ["study_id", *(f"{c}_{lv}" for c in CONDITIONS for lv in LEVELS)]


def make_truth(n_studies=6, blank=0.1, seed=0) -> dict[int, dict[tuple[str, str], str | None]]:
    """``{study_id: {(condition, level): grade or None}}``, some cells blank."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n_studies):
        out[4000000 + 17 * i] = {
            (c, lv): None if rng.random() < blank else GRADES[rng.choice(3, p=[0.6, 0.25, 0.15])]
            for c in CONDITIONS
            for lv in LEVELS
        }
    return out


def write_solution(path, truth) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for sid, cells in truth.items():
            w.writerow([sid, *(cells[(c, lv)] or "" for c in CONDITIONS for lv in LEVELS)])


def write_submission(path, predictions) -> None:
    """``predictions``: ``{study_id: {(condition, level): [p, p, p]}}``."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "normal_mild", "moderate", "severe"])
        for sid, cells in predictions.items():
            for (c, lv), p in cells.items():
                w.writerow([f"{sid}_{c}_{lv}", *(repr(float(v)) for v in p)])


def random_predictions(truth, seed=1) -> dict:
    rng = np.random.default_rng(seed)
    return {
        sid: {cell: (rng.random(3) * 2).tolist() for cell in cells} for sid, cells in truth.items()
    }


def known(truth) -> dict:
    """The truth without its blank cells (what the metric scores)."""
    return {sid: {k: g for k, g in cells.items() if g} for sid, cells in truth.items()}


def test_perfect_submission_scores_zero(tmp_path):
    truth = make_truth()
    perfect = {
        sid: {cell: np.eye(3)[GRADES.index(g or "Moderate")].tolist() for cell, g in cells.items()}
        for sid, cells in truth.items()
    }
    write_solution(tmp_path / "train.csv", truth)
    write_submission(tmp_path / "sub.csv", perfect)
    report = score_files(tmp_path / "train.csv", [tmp_path / "sub.csv"])
    sub = report["submissions"][0]
    assert sub["score"] == pytest.approx(0.0, abs=1e-12)
    assert all(sub[t] == pytest.approx(0.0, abs=1e-12) for t in TERMS)
    # a wrong one-hot row is not ~0: the file is really read
    sid = next(iter(perfect))
    cell = next(c for c, g in truth[sid].items() if g)
    perfect[sid][cell] = np.roll(perfect[sid][cell], 1).tolist()
    write_submission(tmp_path / "sub.csv", perfect)
    wrong = score_files(tmp_path / "train.csv", [tmp_path / "sub.csv"])["submissions"][0]
    assert wrong["score"] > 0.05


def test_prior_baseline_scores_as_in_memory(tmp_path):
    truth = make_truth(n_studies=9, seed=3)
    prior = prior_baseline_predictions(known(truth))
    write_solution(tmp_path / "train.csv", truth)
    write_submission(tmp_path / "prior.csv", prior)
    in_memory = rsna_score(known(truth), prior)
    report = score_files(tmp_path / "train.csv", [tmp_path / "prior.csv"])
    sub = report["submissions"][0]
    for key in ("score", *TERMS):
        assert sub[key] == pytest.approx(in_memory[key], abs=1e-12, rel=0)
    assert 0.3 < sub["score"] < 2.0  # a real, non-degenerate score


def test_random_probabilities_are_scored_as_written(tmp_path):
    """Unnormalised rows with exact zeros: the metric normalises and clips, not the reader."""
    truth = make_truth(seed=5)
    pred = random_predictions(truth, seed=6)
    pred[next(iter(pred))][("spinal_canal_stenosis", "l1_l2")] = [0.0, 0.0, 3.0]
    write_solution(tmp_path / "train.csv", truth)
    write_submission(tmp_path / "sub.csv", pred)
    got = score_files(tmp_path / "train.csv", [tmp_path / "sub.csv"])["submissions"][0]
    want = rsna_score(known(truth), pred)
    assert got["score"] == pytest.approx(want["score"], rel=1e-12)
    assert read_submission(tmp_path / "sub.csv").probabilities[str(next(iter(pred)))][
        ("spinal_canal_stenosis", "l1_l2")
    ] == [0.0, 0.0, 3.0]


def test_blank_solution_cells_are_not_scored_and_counted(tmp_path):
    truth = make_truth(blank=0.3, seed=7)
    n_blank = sum(g is None for cells in truth.values() for g in cells.values())
    assert n_blank > 10
    write_solution(tmp_path / "train.csv", truth)
    sol = read_solution(tmp_path / "train.csv")
    assert sol.blank_cells == n_blank
    assert sol.graded_cells == 25 * len(truth) - n_blank
    # a submission without rows for the blank cells is complete
    pred = random_predictions(known(truth), seed=8)
    write_submission(tmp_path / "sub.csv", pred)
    report = score_files(tmp_path / "train.csv", [tmp_path / "sub.csv"])
    assert report["solution"]["blank_cells"] == n_blank
    assert report["submissions"][0]["rows_scored"] == sol.graded_cells
    assert report["submissions"][0]["rows_missing"] == 0
    # rows for blank cells, however wrong, do not change the score
    full = {sid: dict(cells) for sid, cells in pred.items()}
    for sid, cells in truth.items():
        for cell, g in cells.items():
            if g is None:
                full[sid][cell] = [1.0, 0.0, 0.0] if cell[0][0] == "s" else [0.0, 0.0, 1.0]
    write_submission(tmp_path / "full.csv", full)
    again = score_files(tmp_path / "train.csv", [tmp_path / "full.csv"])["submissions"][0]
    assert again["score"] == report["submissions"][0]["score"]


def test_missing_rows_refused_unless_allowed(tmp_path):
    truth = make_truth(blank=0.0, seed=9)
    pred = random_predictions(truth, seed=10)
    sids = list(pred)
    dropped = [(sids[1], ("left_subarticular_stenosis", "l2_l3"))] + [
        (sids[2], (c, "l5_s1")) for c in CONDITIONS
    ]
    for sid, cell in dropped:
        del pred[sid][cell]
    write_solution(tmp_path / "train.csv", truth)
    write_submission(tmp_path / "sub.csv", pred)
    with pytest.raises(RsnaFileError) as err:
        score_files(tmp_path / "train.csv", [tmp_path / "sub.csv"])
    msg = str(err.value)
    assert str(tmp_path / "sub.csv") in msg and "6 graded cell(s)" in msg
    assert f"{sids[1]}_left_subarticular_stenosis_l2_l3" in msg and "--allow-missing" in msg
    assert "\n" not in msg
    report = score_files(tmp_path / "train.csv", [tmp_path / "sub.csv"], allow_missing=True)
    sub = report["submissions"][0]
    assert sub["rows_missing"] == 6 and sub["rows_scored"] == 25 * len(truth) - 6
    scored = {
        sid: {c: g for c, g in cells.items() if c in pred[sid]} for sid, cells in truth.items()
    }
    assert sub["score"] == pytest.approx(rsna_score(scored, pred)["score"], rel=1e-12)


def test_studies_not_in_the_solution_are_ignored_and_counted(tmp_path):
    truth = make_truth(seed=11)
    pred = random_predictions(known(truth), seed=12)
    extra = {99: {(c, lv): [0.2, 0.3, 0.5] for c in CONDITIONS for lv in LEVELS}}
    extra[98] = {("spinal_canal_stenosis", "l1_l2"): [1.0, 0.0, 0.0]}
    write_solution(tmp_path / "train.csv", truth)
    write_submission(tmp_path / "sub.csv", {**pred, **extra})
    sub = score_files(tmp_path / "train.csv", [tmp_path / "sub.csv"])["submissions"][0]
    assert (sub["studies_ignored"], sub["rows_ignored"]) == (2, 26)
    assert sub["studies_scored"] == len(truth)
    assert sub["score"] == pytest.approx(rsna_score(known(truth), pred)["score"], rel=1e-12)


def test_two_submissions_are_compared_as_compare_graders_does(tmp_path):
    truth = make_truth(n_studies=12, seed=13)
    old = random_predictions(known(truth), seed=14)
    rng = np.random.default_rng(15)
    new = {
        sid: {
            cell: (0.3 * rng.random(3) + 2 * np.eye(3)[GRADES.index(g)]).tolist()
            for cell, g in cells.items()
        }
        for sid, cells in known(truth).items()
    }
    write_solution(tmp_path / "train.csv", truth)
    write_submission(tmp_path / "old.csv", old)
    write_submission(tmp_path / "new.csv", new)
    report = score_files(
        tmp_path / "train.csv", [tmp_path / "old.csv", tmp_path / "new.csv", tmp_path / "old.csv"]
    )
    first, second = report["comparisons"]
    want = compare_graders(
        {str(s): c for s, c in known(truth).items()},
        {str(s): c for s, c in old.items()},
        {str(s): c for s, c in new.items()},
    )
    assert first["win_share"] == want.win_share == 1.0 and first["clearly_better"]
    assert first["score"] == pytest.approx(want.new["score"], rel=1e-12)
    assert first["baseline_score"] == pytest.approx(want.old["score"], rel=1e-12)
    assert first["studies"] == 12 and first["resamples"] == 200
    # the first against itself never scores lower
    assert second["win_share"] == 0.0 and not second["clearly_better"]


def test_match_keeps_only_graded_cells_with_rows(tmp_path):
    truth = make_truth(n_studies=2, blank=0.0, seed=16)
    write_solution(tmp_path / "train.csv", truth)
    sid = next(iter(truth))
    write_submission(tmp_path / "sub.csv", {sid: {("spinal_canal_stenosis", "l4_l5"): [1, 1, 1]}})
    m = match(read_solution(tmp_path / "train.csv"), read_submission(tmp_path / "sub.csv"), True)
    assert m.rows == 1 and m.studies == 1 and len(m.missing) == 49
    assert m.predictions == {str(sid): {("spinal_canal_stenosis", "l4_l5"): [1.0, 1.0, 1.0]}}


@pytest.mark.parametrize(
    ("which", "text", "pattern"),
    [
        ("solution", "", r"the file is empty"),
        ("submission", "", r"the file is empty"),
        ("solution", "study_id,spinal_canal_stenosis_l1_l2\n1,Severe\n", r"no column .*24 of"),
        ("submission", "row_id,normal_mild,moderate,sev\n", r"no column severe"),
        ("solution", "row_id,normal_mild,moderate,severe\n", r"looks like a submission"),
        ("submission", "{row}\n{row}\n", r"line 3: row_id .* is already on line 2"),
        ("submission", "1_spinal_canal_stenosis_l1_l2,0.5,abc,0.1\n", r"line 2: moderate .*not a"),
        ("submission", "1_spinal_canal_stenosis_l1_l2,0.5,nan,0.1\n", r"line 2: .*not a number"),
        ("submission", "1_spinal_canal_stenosis_l1_l2,0.5,-0.1,0.1\n", r"line 2: .*negative"),
        ("submission", "1_spinal_canal_stenosis_l1_l2,0,0.0,0\n", r"line 2: .*all three .* 0"),
        ("submission", "1_spinal_l1_l2,0.5,0.2,0.1\n", r"line 2: row_id '1_spinal_l1_l2' is not"),
        ("submission", "1_spinal_canal_stenosis_l1_l2,0.5,0.2\n", r"line 2: 3 fields"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, which, text, pattern):
    good_row = "1_spinal_canal_stenosis_l1_l2,0.5,0.2,0.3"
    path = tmp_path / f"{which}.csv"
    header = ",".join(HEADER) if which == "solution" else "row_id,normal_mild,moderate,severe"
    if text and not text.startswith(("study_id", "row_id")):
        text = header + "\n" + text.format(row=good_row)
    path.write_text(text)
    reader = read_solution if which == "solution" else read_submission
    with pytest.raises(RsnaFileError, match=pattern) as err:
        reader(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_bad_solution_cells(tmp_path):
    path = tmp_path / "train.csv"
    row = ["Normal/Mild"] * 25
    row[7] = "Mod"
    path.write_text(",".join(HEADER) + "\n" + "1," + ",".join(["Severe"] * 25) + "\n")
    path.write_text(path.read_text() + "2," + ",".join(row) + "\n")
    with pytest.raises(RsnaFileError, match=rf"line 3: column {HEADER[8]}: unknown grade 'Mod'"):
        read_solution(path)
    path.write_text(",".join(HEADER) + "\n" + "1," + ",".join(["Severe"] * 25) + "\n" * 2)
    path.write_text(path.read_text() + "1," + ",".join(["Severe"] * 25) + "\n")
    with pytest.raises(RsnaFileError, match="line 4: study_id 1 is already on line 2"):
        read_solution(path)
    path.write_text(",".join(HEADER) + "\n" + "1," + "," * 24 + "\n")
    with pytest.raises(RsnaFileError, match="all 25 grade cells .* blank"):
        read_solution(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(RsnaFileError, match="no such file"):
        read_solution(tmp_path / "nope.csv")
    with pytest.raises(RsnaFileError, match="is a folder"):
        read_submission(tmp_path)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(RsnaFileError, match="not UTF-8"):
        read_submission(tmp_path / "bin.csv")
    huge = "x" * 200_000  # beyond the csv module's field size limit
    (tmp_path / "big.csv").write_text(f"row_id,normal_mild,moderate,severe\n{huge},1,2,3\n")
    with pytest.raises(RsnaFileError, match=r"big.csv, line 2: cannot be read as CSV"):
        read_submission(tmp_path / "big.csv")


def test_kaggle_spelling_with_bom_and_extra_columns(tmp_path):
    """Excel's byte-order mark, blanks around names and an extra column are accepted."""
    truth = make_truth(n_studies=2, seed=17)
    write_solution(tmp_path / "train.csv", truth)
    sid = next(iter(truth))
    rows = [f"{sid}_{c}_{lv}, 0.7, 0.2, 0.1, x" for c in CONDITIONS for lv in LEVELS]
    text = "\ufeffrow_id, normal_mild ,moderate,severe,note\n" + "\n".join(rows) + "\n"
    (tmp_path / "sub.csv").write_text(text, encoding="utf-8")
    sub = read_submission(tmp_path / "sub.csv")
    assert sub.rows == 25 and sub.probabilities[str(sid)][("spinal_canal_stenosis", "l1_l2")] == [
        0.7,
        0.2,
        0.1,
    ]
    report = score_files(tmp_path / "train.csv", [tmp_path / "sub.csv"], allow_missing=True)
    assert math.isfinite(report["submissions"][0]["score"])
