"""``export --format rsna-submission``: the grader's proposals as Kaggle's submission.csv.

Proposals are stored the way ``atlas-annotate propose`` stores them (a ``proposal`` grades
version naming the grader, its probabilities in the sheet); one test runs the packaged
starter grader itself so the format is checked on what ``propose`` really writes.
"""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.export import ExportError, export_project
from napari_atlas_annotate.export.rsna_submission import (
    MODELS_CSV,
    SUBMISSION_COLUMNS,
    SUBMISSION_CSV,
)
from napari_atlas_annotate.grade_sheet import GradeSheet
from napari_atlas_annotate.models.rsna_metric import rsna_score
from napari_atlas_annotate.project import Project
from napari_atlas_annotate.spine_grades import CONDITIONS, LEVELS, read_grades_csv

#: Kaggle's sample_submission.csv order of one study's rows (row_id sorted).
KAGGLE_SUFFIXES = [
    f"{c}_{lv}"
    for c in (
        "left_neural_foraminal_narrowing",
        "left_subarticular_stenosis",
        "right_neural_foraminal_narrowing",
        "right_subarticular_stenosis",
        "spinal_canal_stenosis",
    )
    for lv in ("l1_l2", "l2_l3", "l3_l4", "l4_l5", "l5_s1")
]


def _proposal(seed: int) -> GradeSheet:
    """A grader-like proposal: 25 cells, three probabilities each (rows sum to 1)."""
    rng = np.random.default_rng(seed)
    sheet = GradeSheet()
    for c in CONDITIONS:
        for lv in LEVELS:
            p = rng.dirichlet([2.0, 1.0, 0.5])
            sheet.probabilities[(c, lv)] = [float(v) for v in p]
            sheet.set_grade(c, lv, ("Normal/Mild", "Moderate", "Severe")[int(np.argmax(p))])
    return sheet


@pytest.fixture
def proposed_spine(spine_project, tmp_path):
    """A copy of the export tests' spine project (study0 final, study1 without grades)
    where study0 has two proposals (grader-r1, then grader-r2: the latest is exported) and
    study1 none. Returns (project folder, {case id: the latest proposal}, grades sheets)."""
    source, sheets = spine_project
    folder = tmp_path / "proj"
    shutil.copytree(source, folder)
    with Project(folder) as project:
        project.save_grades_version("study0", _proposal(1), kind="proposal", model_version="r1")
        project.save_grades_version("study0", _proposal(2), kind="proposal", model_version="r2")
    return folder, {"study0": _proposal(2)}, sheets


def _read_rows(root) -> list[dict]:
    with open(root / SUBMISSION_CSV, newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == SUBMISSION_COLUMNS
        return list(reader)


def _predictions(rows: list[dict]) -> dict[int, dict[str, list[float]]]:
    """``{study_id: {<condition>_<level>: [p, p, p]}}`` from submission rows."""
    out: dict[int, dict[str, list[float]]] = {}
    for row in rows:
        sid, column = row["row_id"].split("_", 1)
        out.setdefault(int(sid), {})[column] = [
            float(row["normal_mild"]),
            float(row["moderate"]),
            float(row["severe"]),
        ]
    return out


def test_rows_spelling_order_and_stored_probabilities(proposed_spine, tmp_path, no_identifiers):
    folder, proposals, _ = proposed_spine
    with Project(folder) as project:
        project.save_grades_version("study1", _proposal(3), kind="proposal", model_version="r2")
        result = export_project(project, "rsna-submission", tmp_path / "sub")
        rsna = export_project(project, "rsna", tmp_path / "rsna", status="final")
    proposals["study1"] = _proposal(3)
    assert result.cases == ["study0", "study1"] and result.skipped == []
    rows = _read_rows(result.root)
    assert len(rows) == 50
    header = (result.root / SUBMISSION_CSV).read_text().splitlines()[0]
    assert header == "row_id,normal_mild,moderate,severe"
    sids = sorted(result.study_ids.values())
    assert [r["row_id"] for r in rows] == [f"{s}_{x}" for s in sids for x in KAGGLE_SUFFIXES]
    # the study_id is the one the rsna export writes for the same case
    assert result.study_ids["study0"] == rsna.study_ids["study0"]
    written = _predictions(rows)
    for case_id, sheet in proposals.items():
        got = written[result.study_ids[case_id]]
        assert len(got) == 25
        for (c, lv), p in sheet.probabilities.items():
            assert got[f"{c}_{lv}"] == p  # exactly as stored, not renormalised
    with open(result.root / MODELS_CSV, newline="") as fh:
        models = {int(r["study_id"]): r["model_version"] for r in csv.DictReader(fh)}
    assert models == {result.study_ids["study0"]: "r2", result.study_ids["study1"]: "r2"}
    no_identifiers(result.root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj", "rsna", "sub"]  # no staging


def test_score_of_the_written_csv_equals_the_score_in_memory(proposed_spine, tmp_path):
    folder, proposals, sheets = proposed_spine
    with Project(folder) as project:
        final = project.save_grades_version(
            "study1", sheets["study1"], kind="final", annotator="lead"
        )
        project.record_audit("study1", "lead", "finalize", version=final.id)
        project.save_grades_version("study1", _proposal(4), kind="proposal", model_version="r2")
        sub = export_project(project, "rsna-submission", tmp_path / "sub")
        rsna = export_project(project, "rsna", tmp_path / "rsna", status="final")
    proposals["study1"] = _proposal(4)
    assert sub.study_ids == rsna.study_ids and len(sub.study_ids) == 2
    from_files = rsna_score(
        read_grades_csv(rsna.root / "train.csv"), _predictions(_read_rows(sub.root))
    )
    in_memory = rsna_score(
        {sub.study_ids[c]: sheets[c] for c in sheets},
        {sub.study_ids[c]: proposals[c] for c in proposals},
    )
    assert np.isfinite(from_files["score"])
    # the same numbers up to summation order (train.csv lists studies by study_id)
    assert from_files == pytest.approx(in_memory, rel=1e-12)
    # not a tautology: the other proposal of study0 scores differently
    other = rsna_score(
        {sub.study_ids[c]: sheets[c] for c in sheets},
        {sub.study_ids["study0"]: _proposal(1), sub.study_ids["study1"]: proposals["study1"]},
    )
    assert other["score"] != from_files["score"]


def test_study_without_proposal_is_listed_not_written(proposed_spine, tmp_path, capsys):
    folder, _, _ = proposed_spine
    with Project(folder) as project:
        # a proposal without probabilities (grades only) is no prediction either
        project.save_grades_version("study1", GradeSheet(), kind="proposal", model_version="r0")
    code = main(
        ["export", str(folder), "--format", "rsna-submission", "--out", str(tmp_path / "s")]
    )
    out = capsys.readouterr().out
    assert code == 0
    rows = _read_rows(tmp_path / "s")
    assert len(rows) == 25 and len({r["row_id"].split("_")[0] for r in rows}) == 1
    assert "skipped study1: its latest proposal" in out
    assert "no usable probabilities for 25 of 25 cells" in out
    assert f"atlas-annotate propose {folder} --cases study1" in out
    # a submission is the grader's proposals by design: not called uncorrected labels
    assert "nobody has corrected" not in out
    with Project(folder) as project:
        result = export_project(project, "rsna-submission", tmp_path / "s", overwrite=True)
    reason = (
        "its latest proposal (version 4 by r0) has no usable probabilities for 25 of 25 "
        "cells (left_neural_foraminal_narrowing_l1_l2, left_neural_foraminal_narrowing_l2_l3, "
        "left_neural_foraminal_narrowing_l3_l4, ...)"
    )
    assert [(s.case_id, s.reason) for s in result.skipped] == [("study1", reason)]


def test_case_with_no_proposal_at_all_is_skipped_with_the_propose_command(spine_project, tmp_path):
    folder = tmp_path / "proj"
    shutil.copytree(spine_project[0], folder)
    with Project(folder) as project:
        with pytest.raises(ExportError, match=r"no case .* has a grader proposal.*propose"):
            export_project(project, "rsna-submission", tmp_path / "none")
        assert not (tmp_path / "none").exists()
        project.save_grades_version("study1", _proposal(5), kind="proposal", model_version="r1")
        result = export_project(project, "rsna-submission", tmp_path / "sub")
    assert result.cases == ["study1"]
    assert [(s.case_id, s.reason) for s in result.skipped] == [("study0", "no grader proposal")]
    assert "atlas-annotate propose" in result.summary()
    assert len(_read_rows(result.root)) == 25


def test_organ_project_is_refused(organ_project, tmp_path, capsys):
    folder, _ = organ_project
    with Project(folder) as project:
        with pytest.raises(ExportError, match="is for spine projects.*organs project"):
            export_project(project, "rsna-submission", tmp_path / "x")
    code = main(
        ["export", str(folder), "--format", "rsna-submission", "--out", str(tmp_path / "x")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_keep_identifiers_writes_the_rsna_study_id(id_named_spine, tmp_path, no_identifiers):
    """Cases added from RSNA-style studies are named by their study_id: kept with
    --keep-identifiers, pseudonymised (as the rsna export does) without."""
    folder, entries = id_named_spine
    case_ids = [str(e["study_id"]) for e in entries]
    with Project(folder) as project:
        for i, case_id in enumerate(case_ids):
            project.save_grades_version(case_id, _proposal(i), kind="proposal", model_version="r1")
        kept = export_project(project, "rsna-submission", tmp_path / "kept", keep_identifiers=True)
        pseudo = export_project(project, "rsna-submission", tmp_path / "pseudo")
        rsna = export_project(project, "rsna", tmp_path / "rsna", status="corrected")
    assert kept.study_ids == {c: int(c) for c in case_ids}
    assert {r["row_id"].split("_")[0] for r in _read_rows(kept.root)} == set(case_ids)
    assert pseudo.study_ids[case_ids[0]] == rsna.study_ids[case_ids[0]]
    text = (pseudo.root / SUBMISSION_CSV).read_text() + (pseudo.root / MODELS_CSV).read_text()
    assert not any(c in text for c in case_ids)
    no_identifiers(pseudo.root)


def test_proposals_of_the_starter_grader(id_named_spine, tmp_path, torch_one_thread):
    """What ``propose`` stores is what the submission carries, 25 rows summing to 1."""
    from napari_atlas_annotate.models.spine_proposals import propose_spine_cases

    folder, entries = id_named_spine
    with Project(folder) as project:
        made = propose_spine_cases(project, device="cpu", every=True)
        result = export_project(project, "rsna-submission", tmp_path / "sub", keep_identifiers=True)
        stored = {p.case_id: project.read_grades(project.version(p.version_id)) for p in made}
    rows = _predictions(_read_rows(result.root))
    with open(result.root / MODELS_CSV, newline="") as fh:
        models = {r["study_id"]: r["model_version"] for r in csv.DictReader(fh)}
    assert set(models) == set(stored) and set(models.values()) == {made[0].model_version}
    for case_id, sheet in stored.items():
        got = rows[int(case_id)]
        assert len(got) == 25
        for (c, lv), p in sheet.probabilities.items():
            assert got[f"{c}_{lv}"] == p
            assert sum(p) == pytest.approx(1.0, abs=1e-5)
