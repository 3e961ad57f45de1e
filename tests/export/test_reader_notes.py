"""``export --with-notes``: the readers' notes of the exported cases as ``notes.csv``."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.export import ExportError, export_project
from napari_atlas_annotate.export.reader_notes import NOTES_NAME
from napari_atlas_annotate.project import Project


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def noted_project(organ_project, tmp_path):
    """The export tests' organ project, copied, with readers' notes on case0 and case2 (a
    comma, quotes and a line break in one) and a note on a case that is not exported."""
    folder = tmp_path / "proj"
    shutil.copytree(organ_project[0], folder)
    labels = organ_project[1]
    with Project(folder) as project:
        first = project.submit_mask(
            "case0", "bob", labels["case0"][1], base=None, note="pancreas tail unclear"
        )
        project.submit_mask(
            "case0", "bob", labels["case0"][1], base=first, note='motion, "see slice 4"\nok'
        )
        project.submit_mask("case2", "carol", labels["case2"][1], base=None, note="no gallbladder")
        project.submit_mask("case3", "bob", labels["case2"][1], base=None, note="not final yet")
    return folder


def test_notes_of_the_exported_cases_are_written_in_order(noted_project, tmp_path):
    with Project(noted_project) as project:
        result = export_project(project, "abdomenatlas", tmp_path / "out", with_notes=True)
    rows = _rows(result.root / NOTES_NAME)
    assert [(r["case"], r["annotator"], r["note"], r["latest"]) for r in rows] == [
        ("case0", "bob", "pancreas tail unclear", "no"),
        ("case0", "bob", 'motion, "see slice 4"\nok', "yes"),
        ("case2", "carol", "no gallbladder", "yes"),
    ]  # case3 is not exported (no final version); case0's first note was resubmitted
    assert all(r["submitted_utc"].endswith("+00:00") for r in rows)
    with Project(noted_project) as project:
        ids = [v.id for v in project.versions("case0", kinds=("corrected",)) if v.note]
    assert [int(r["version"]) for r in rows[:2]] == ids
    manifest = json.loads(result.manifest.read_text())
    assert NOTES_NAME in json.dumps(manifest)  # its digest is in the provenance


def test_without_the_option_no_notes_are_written(noted_project, tmp_path):
    with Project(noted_project) as project:
        result = export_project(project, "abdomenatlas", tmp_path / "out")
    assert not (result.root / NOTES_NAME).exists()


def test_a_note_holding_a_patient_identifier_stops_the_export(noted_project, tmp_path):
    """The source DICOM's PatientID typed into a note: the export names the reader and the
    case, and writes nothing."""
    from .conftest import PATIENT_ID

    with Project(noted_project) as project:
        labels = project.read_mask(project.latest_version("case0", kinds=("corrected",)))
        project.submit_mask("case0", "dan", labels, base=None, note=f"prior: {PATIENT_ID}")
        out = tmp_path / "out"
        with pytest.raises(ExportError, match="dan's note on case case0 .*patient identifier"):
            export_project(project, "abdomenatlas", out, with_notes=True)
        assert not out.exists()
        kept = export_project(project, "abdomenatlas", out, with_notes=True, keep_identifiers=True)
    assert any(PATIENT_ID in r["note"] for r in _rows(kept.root / NOTES_NAME))


def test_cli_with_notes(noted_project, tmp_path, capsys):
    out = tmp_path / "nn"
    code = main(
        [
            "export",
            str(noted_project),
            "--format",
            "nnunet",
            "--out",
            str(out),
            "--with-notes",
            "--status",
            "corrected",
        ]
    )
    assert code == 0, capsys.readouterr().err
    [dataset] = list(out.iterdir())
    rows = _rows(dataset / NOTES_NAME)
    assert {r["case"] for r in rows} == {"case0", "case2", "case3"}


def test_spine_notes_are_keyed_by_the_exported_study_id(spine_project, tmp_path):
    folder = tmp_path / "spine"
    shutil.copytree(spine_project[0], folder)
    with Project(folder) as project:
        sheet = spine_project[1]["study1"]
        project.save_grades_version(
            "study1", sheet, kind="corrected", annotator="erin", note="L4/L5 hard to see"
        )
        result = export_project(
            project, "rsna", tmp_path / "out", status="corrected", with_notes=True
        )
    [row] = _rows(result.root / NOTES_NAME)
    assert int(row["study_id"]) == result.study_ids["study1"]
    assert row["annotator"] == "erin" and row["note"] == "L4/L5 hard to see"
