"""``atlas-annotate score-rsna``: Kaggle-format submissions scored against a train.csv.

End to end on a real spine project (phantom studies graded, ``propose``, both RSNA exports,
then ``score-rsna`` on the two files), and on small hand-written files for the counts, the
comparison of two submissions and each bad input's one-line error.
"""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.models.rsna_metric import rsna_score
from napari_atlas_annotate.project import Project
from napari_atlas_annotate.spine_grades import CONDITIONS, GRADES, LEVELS

TERMS = ("spinal", "foraminal", "subarticular", "any_severe_spinal")
COLUMNS = [f"{c}_{lv}" for c in CONDITIONS for lv in LEVELS]
SUB_HEADER = "row_id,normal_mild,moderate,severe"


def _run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["score-rsna", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- end to end ------------------------------------------------------------------------------


@pytest.fixture
def exported(tmp_path, spine_phantoms, submit_spine_truths, torch_one_thread):
    """A spine project of 3 phantom studies graded (``corrected``), proposed by the starter
    grader with ``propose``, exported as train.csv and submission.csv by the CLI. Returns
    (train.csv, submission.csv, {case: truth sheet}, {case: proposal sheet})."""
    manifest = spine_phantoms(0)
    folder = tmp_path / "proj"
    assert main(["init", str(folder), "--task", "spine"]) == 0
    assert main(["add", str(folder), str(manifest)]) == 0
    with Project(folder) as project:
        truths = submit_spine_truths(project, manifest)
    assert main(["propose", str(folder), "--device", "cpu", "--threads", "1"]) == 0
    for fmt in ("rsna", "rsna-submission"):
        argv = ["export", str(folder), "--format", fmt, "--out", str(tmp_path / fmt)]
        assert main([*argv, "--status", "corrected"]) == 0
    with Project(folder) as project:
        proposals = {
            cid: project.read_grades(
                project.latest_version(cid, kinds=("proposal",), content="grades")
            )
            for cid in truths
        }
    return (
        tmp_path / "rsna" / "train.csv",
        tmp_path / "rsna-submission" / "submission.csv",
        truths,
        proposals,
    )


def test_exported_files_score_as_the_proposals_in_memory(exported, capsys):
    train, submission, truths, proposals = exported
    in_memory = rsna_score(truths, proposals)
    graded = sum(1 for sheet in truths.values() for g in sheet.grades.values() if g)
    assert len(truths) == 3 and np.isfinite(in_memory["score"]) and in_memory["score"] > 0

    code, out, err = _run(capsys, train, submission, "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    sub = report["submissions"][0]
    for key in ("score", *TERMS):
        assert sub[key] == pytest.approx(in_memory[key], rel=1e-12), key
    assert (sub["studies_scored"], sub["rows_scored"]) == (3, graded)
    assert report["solution"]["graded_cells"] == graded
    assert report["solution"]["blank_cells"] == 75 - graded
    assert report["comparisons"] == []

    code, out, _ = _run(capsys, train, submission)
    assert code == 0
    assert f"score {in_memory['score']:.4f}" in out
    assert f"spinal {in_memory['spinal']:.4f}" in out
    assert f"scored {graded} rows of 3 studies" in out


# -- hand-written files ----------------------------------------------------------------------


def _truth(n=8, seed=0, blank=0.1) -> dict:
    rng = np.random.default_rng(seed)
    return {
        1000 + i: [
            "" if rng.random() < blank else GRADES[rng.choice(3, p=[0.6, 0.25, 0.15])]
            for _ in COLUMNS
        ]
        for i in range(n)
    }


def _write_train(path, truth) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["study_id", *COLUMNS])
        for sid, grades in truth.items():
            w.writerow([sid, *grades])


def _write_sub(path, truth, sharp: float, seed: int, skip=()) -> dict:
    """Probabilities leaning ``sharp`` towards the true grade; returns them as the metric
    takes them (``{study: {column: [p, p, p]}}``)."""
    rng = np.random.default_rng(seed)
    pred = {}
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(SUB_HEADER.split(","))
        for sid, grades in truth.items():
            for col, g in zip(COLUMNS, grades, strict=True):
                p = rng.random(3) + (sharp * np.eye(3)[GRADES.index(g)] if g else 0)
                if (sid, col) in skip:
                    continue
                pred.setdefault(sid, {})[col] = p.tolist()
                w.writerow([f"{sid}_{col}", *(repr(float(v)) for v in p)])
    return pred


def _known(truth) -> dict:
    return {sid: dict(zip(COLUMNS, grades, strict=True)) for sid, grades in truth.items()}


def test_two_submissions_are_compared(tmp_path, capsys):
    truth = _truth()
    _write_train(tmp_path / "train.csv", truth)
    old = _write_sub(tmp_path / "round2.csv", truth, sharp=0.5, seed=1)
    new = _write_sub(tmp_path / "round3.csv", truth, sharp=4.0, seed=2)
    code, out, err = _run(capsys, tmp_path / "train.csv", tmp_path / "round2.csv",
                          tmp_path / "round3.csv", "--resamples", "50")  # fmt: skip
    assert code == 0
    assert "comparing" in err and "50 bootstrap resamples of 8 studies" in err
    old_score = rsna_score(_known(truth), old)["score"]
    new_score = rsna_score(_known(truth), new)["score"]
    assert new_score < old_score
    line = next(x for x in out.splitlines() if " vs " in x)
    assert line.startswith(f"{tmp_path / 'round3.csv'} vs {tmp_path / 'round2.csv'}")
    assert f"{new_score:.4f} vs {old_score:.4f}" in line
    assert "lower in 100.0 % of 50 bootstrap resamples of the 8 studies" in line
    assert "clearly better" in line and "not clearly" not in line

    code, out, _ = _run(capsys, tmp_path / "train.csv", tmp_path / "round3.csv",
                        tmp_path / "round2.csv", "--json")  # fmt: skip
    report = json.loads(out)
    assert code == 0 and len(report["submissions"]) == 2
    (cmp,) = report["comparisons"]
    assert cmp["path"] == str(tmp_path / "round2.csv")
    assert cmp["baseline"] == str(tmp_path / "round3.csv")
    assert cmp["score"] == pytest.approx(old_score, rel=1e-12)
    assert cmp["baseline_score"] == pytest.approx(new_score, rel=1e-12)
    assert cmp["win_share"] == 0.0 and cmp["clearly_better"] is False
    assert cmp["resamples"] == 200 and cmp["studies"] == 8


def test_missing_rows_refused_then_scored_with_allow_missing(tmp_path, capsys):
    truth = _truth(blank=0.0)
    _write_train(tmp_path / "train.csv", truth)
    skip = {(1003, c) for c in COLUMNS[:4]}
    _write_sub(tmp_path / "sub.csv", truth, sharp=1.0, seed=3, skip=skip)
    code, out, err = _run(capsys, tmp_path / "train.csv", tmp_path / "sub.csv")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "4 graded cell(s)" in err and "1003_spinal_canal_stenosis_l1_l2" in err
    assert "--allow-missing" in err
    code, out, err = _run(capsys, tmp_path / "train.csv", tmp_path / "sub.csv", "--allow-missing")
    assert code == 0
    assert "scored 196 rows of 8 studies; 4 graded cells without a row left out" in out


def test_blank_cells_and_foreign_studies_are_counted(tmp_path, capsys):
    truth = _truth(blank=0.2, seed=4)
    blanks = sum(g == "" for grades in truth.values() for g in grades)
    _write_train(tmp_path / "train.csv", truth)
    _write_sub(tmp_path / "sub.csv", {**truth, 7: ["Moderate"] * 25}, sharp=1.0, seed=5)
    code, out, _ = _run(capsys, tmp_path / "train.csv", tmp_path / "sub.csv")
    assert code == 0
    assert f"8 studies, {200 - blanks} graded cells, {blanks} blank (not scored)" in out
    assert "25 rows of 1 study not in the solution ignored" in out


#: (file that is bad, its text after the header or whole when it starts with a header,
#: what the error must say). ``{ok}`` is a good submission row.
BAD = [
    ("train", "", "the file is empty"),
    ("sub", "", "the file is empty"),
    ("train", "study_id,spinal_canal_stenosis_l1_l2\n1000,Severe\n", "no column "),
    ("sub", "row_id,normal_mild,moderate,p_severe\n{ok}\n", "no column severe"),
    ("sub", "{ok}\n{ok}\n", "line 3: row_id 1000_spinal_canal_stenosis_l1_l2 is already on"),
    ("sub", "1000_spinal_canal_stenosis_l1_l2,0.1,one,0.2\n", "line 2: moderate .* not a number"),
    ("sub", "1000_spinal_canal_stenosis_l1_l2,0.1,0.5,-2\n", "line 2: severe .* negative"),
    ("sub", "{ok}\n1000_spinal_canal_stenosis_l2_l3,0,0,0\n", "line 3: .* all three .* 0"),
    ("train", "1000" + ",Severe" * 24 + ",Sever\n", "line 2: column .*unknown grade 'Sever'"),
    ("train", "1000" + ",Severe" * 25 + "\n1000" + ",Severe" * 25 + "\n", "line 3: study_id 1000"),
]


@pytest.mark.parametrize(("bad", "text", "pattern"), BAD)
def test_bad_input_gives_one_line_naming_the_file(tmp_path, capsys, bad, text, pattern):
    train, sub = tmp_path / "train.csv", tmp_path / "sub.csv"
    _write_train(train, {1000: ["Moderate"] * 25})
    sub.write_text(SUB_HEADER + "\n" + "1000_spinal_canal_stenosis_l1_l2,0.2,0.5,0.3\n")
    path = train if bad == "train" else sub
    header = ",".join(["study_id", *COLUMNS]) if bad == "train" else SUB_HEADER
    ok = "1000_spinal_canal_stenosis_l1_l2,0.2,0.5,0.3"
    if text and not text.startswith(("study_id", "row_id")):
        text = header + "\n" + text
    path.write_text(text.format(ok=ok))
    code, out, err = _run(capsys, train, sub, "--allow-missing")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"atlas-annotate score-rsna: error: {path}")
    assert re.search(pattern, err), err


def test_unreadable_files_and_swapped_arguments(tmp_path, capsys):
    _write_train(tmp_path / "train.csv", {1000: ["Moderate"] * 25})
    (tmp_path / "sub.csv").write_text(SUB_HEADER + "\n1000_spinal_canal_stenosis_l1_l2,1,1,1\n")
    for argv, what in [
        ((tmp_path / "nope.csv", tmp_path / "sub.csv"), "nope.csv: no such file"),
        ((tmp_path / "train.csv", tmp_path), f"{tmp_path}: is a folder"),
        ((tmp_path / "sub.csv", tmp_path / "train.csv"), "looks like a submission"),
    ]:
        code, out, err = _run(capsys, *argv, "--allow-missing")
        assert code == 1 and out == "" and err.count("\n") == 1, err
        assert what in err
    (tmp_path / "other.csv").write_text(SUB_HEADER + "\n5_spinal_canal_stenosis_l1_l2,1,1,1\n")
    code, _, err = _run(capsys, tmp_path / "train.csv", tmp_path / "other.csv")
    assert code == 1 and "none of its 1 study_ids is a graded study there" in err
