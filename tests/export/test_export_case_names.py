"""Projects whose case ids are the source PatientIDs (the README's walkthrough: phantoms
written as DICOM, added from their manifest) export without --keep-identifiers: such case
ids are written as stable pseudonyms, the map back is in the audit trail and the summary.
Also: imported labels export with --status corrected, and an export with nothing to export
creates nothing."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.export import ExportError, export_project, select_versions
from napari_atlas_annotate.export.pseudonymise import find_identifiers, study_pseudonym
from napari_atlas_annotate.io import load_nifti
from napari_atlas_annotate.project import Project
from napari_atlas_annotate.project.importing import import_labels
from napari_atlas_annotate.project.sources import cases_from_manifest
from napari_atlas_annotate.spine_grades import read_coordinates_csv, read_grades_csv

PSEUDONYM = re.compile(r"^case-\d{9}$")
ORGAN_FORMATS = ("abdomenatlas", "nnunet", "monai", "dicom-seg")


def _source_identifiers(project: Project) -> set[str]:
    """The PatientName / PatientID of every source series, read here with pydicom (not
    with the export's own collector)."""
    found = set()
    for case in project.cases():
        for ref in case.images:
            first = sorted(project.resolve(ref.path).glob("*.dcm"))[0]
            ds = pydicom.dcmread(first, stop_before_pixels=True)
            found |= {str(ds.PatientName), str(ds.PatientID)}
    return found


def _export_records(project: Project, case_id: str) -> list[dict]:
    return [a["detail"] for a in project.audit_trail(case_id) if a["action"] == "export"]


@pytest.mark.parametrize("fmt", ORGAN_FORMATS)
def test_patient_id_case_ids_export_in_every_organ_format(fmt, id_named_organs, tmp_path):
    folder, truth = id_named_organs
    with Project(folder) as project:
        identifiers = _source_identifiers(project)
        assert {"ct_000", "ct_001", "ct_002"} <= identifiers  # PatientID = case id
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = export_project(project, fmt, tmp_path / "out", status="corrected")
        audit = {c: _export_records(project, c) for c in truth}
    assert not [w for w in caught if "person name" in str(w.message)]
    # Nothing that identifies a patient, in any byte (gzip content included) of any file.
    assert find_identifiers(result.root, identifiers, every_byte=True) == []
    names = result.names
    assert all(PSEUDONYM.match(names[c]) for c in ("ct_000", "ct_001", "ct_002"))
    assert names["scan-a"] == "scan-a"  # a case id naming no patient stays as it is
    assert len(set(names.values())) == len(names)
    assert result.cases == ["ct_000", "ct_001", "scan-a"]
    assert [s.case_id for s in result.skipped] == ["ct_002"]
    manifest = json.loads(result.manifest.read_text())
    assert [c["case_id"] for c in manifest["cases"]] == [
        names["ct_000"],
        names["ct_001"],
        "scan-a",
    ]
    assert [s["case_id"] for s in manifest["skipped"]] == [names["ct_002"]]
    assert manifest["pseudonymised_case_ids"] == 3
    # The labels are where the exported name says, on the right grid.
    label_file = {
        "abdomenatlas": "{}/combined_labels.nii.gz",
        "nnunet": "labelsTr/{}.nii.gz",
        "monai": "labels/{}.nii.gz",
    }
    if fmt in label_file:
        for case_id in result.cases:
            path = result.root / label_file[fmt].format(names[case_id])
            np.testing.assert_array_equal(load_nifti(path).array, truth[case_id])
    if fmt == "monai":
        datalist = json.loads((result.root / "datalist.json").read_text())
        listed = {Path(e["label"]).name for e in datalist["training"] + datalist["validation"]}
        assert listed == {f"{names[c]}.nii.gz" for c in result.cases}
    if fmt == "dicom-seg":
        seg = pydicom.dcmread(result.root / names["ct_000"] / "segmentation.dcm")
        assert seg.PatientID == names["ct_000"]
        assert str(seg.PatientName) == f"{names['ct_000']}^"  # a valid one-component PN
    # The map back is in the project's audit trail, for skipped cases too.
    for case_id, records in audit.items():
        assert records[-1]["exported_as"] == names[case_id]
        assert records[-1]["format"] == fmt and records[-1]["to"] == str(result.root.resolve())
    assert "label_version_id" in audit["ct_000"][-1] and "skipped" in audit["ct_002"][-1]


def test_exported_names_are_stable_keyed_and_printed(id_named_organs, tmp_path, capsys):
    folder, _ = id_named_organs
    with Project(folder) as project:
        first = export_project(project, "abdomenatlas", tmp_path / "a", status="corrected")
        second = export_project(project, "nnunet", tmp_path / "b", status="corrected")
        keys = [a for a in project.audit_trail() if a["action"] == "export-pseudonym-key"]
    assert first.names == second.names
    assert len(keys) == 1  # one key per project, made on the first pseudonymising export
    assert sorted(p.name for p in first.root.iterdir() if p.is_dir()) == sorted(
        first.names[c] for c in first.cases
    )
    # The CLI prints the map (it is not in the export) and exits 0.
    code = main(["export", str(folder), "--format", "monai", "--out", str(tmp_path / "c")])
    assert code == 2  # default --status final: nothing final yet (see the empty-export test)
    code = main(
        [
            "export",
            str(folder),
            "--format",
            "monai",
            "--out",
            str(tmp_path / "c"),
            "--status",
            "corrected",
            "--by",
            "lead",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for case_id in ("ct_000", "ct_001", "ct_002"):
        assert f"{case_id} -> {first.names[case_id]}" in out
    assert "scan-a ->" not in out
    with Project(folder) as project:
        assert {r["actor"] for r in project.audit_trail("ct_000") if r["action"] == "export"} >= {
            "lead"
        }


def test_pseudonyms_cannot_be_recomputed_from_the_case_id(id_phantoms, tmp_path):
    """Two projects with the same case ids: different pseudonyms (the hash is keyed per
    project, so hashing a list of PatientIDs does not reverse it)."""
    names = []
    for i in range(2):
        with Project.create(tmp_path / f"p{i}", task="organs") as project:
            case = cases_from_manifest(id_phantoms, "organs")[0]
            project.add_case(case.id, case.images)
            project.submit_mask(case.id, "ann", load_nifti(case.truth["label"]).array, base=None)
            result = export_project(project, "nnunet", tmp_path / f"out{i}", status="corrected")
            names.append(result.names[case.id])
    assert all(PSEUDONYM.match(n) for n in names) and names[0] != names[1]


def test_keep_identifiers_keeps_case_ids(id_named_organs, id_named_spine, tmp_path):
    folder, truth = id_named_organs
    with Project(folder) as project:
        identifiers = _source_identifiers(project)
        result = export_project(
            project, "abdomenatlas", tmp_path / "a", status="corrected", keep_identifiers=True
        )
    assert result.pseudonyms == {}
    assert sorted(p.name for p in result.root.iterdir() if p.is_dir()) == [
        "ct_000",
        "ct_001",
        "scan-a",
    ]
    assert find_identifiers(result.root, identifiers, every_byte=True)
    with Project(folder) as project, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seg = export_project(
            project, "dicom-seg", tmp_path / "s", status="corrected", keep_identifiers=True
        )
    # The source's own caret-less PatientName is kept, without highdicom's warning.
    assert not [w for w in caught if "person name" in str(w.message)]
    kept = pydicom.dcmread(seg.root / "ct_000" / "segmentation.dcm", stop_before_pixels=True)
    assert kept.PatientID == "ct_000" and str(kept.PatientName) == "ct_000"
    folder, entries = id_named_spine
    with Project(folder) as project:
        kept = export_project(
            project, "rsna", tmp_path / "r", status="corrected", keep_identifiers=True
        )
    assert list(read_grades_csv(kept.root / "train.csv")) == [entries[0]["study_id"]]


def test_rsna_patient_id_study_ids_and_imported_grades(id_named_spine, tmp_path):
    folder, entries = id_named_spine
    study = str(entries[0]["study_id"])
    with Project(folder) as project:
        identifiers = _source_identifiers(project)
        assert study in identifiers  # RSNA-style: PatientID = study id = case id
        first = export_project(project, "rsna", tmp_path / "a", status="corrected")
        second = export_project(project, "rsna", tmp_path / "b", status="corrected")
        audit = _export_records(project, study)
    assert find_identifiers(first.root, identifiers, every_byte=True) == []
    assert PSEUDONYM.match(first.names[study]) and first.names == second.names
    assert audit[-1]["exported_as"] == first.names[study]
    grades = read_grades_csv(first.root / "train.csv")
    assert grades == read_grades_csv(second.root / "train.csv")  # stable study ids
    (study_id,) = grades
    # the summary gives the team the way back from the CSVs' study_id to their case
    assert first.study_ids == {study: study_id}
    assert f"{study} -> study_id {study_id}" in first.summary()
    # Not the unkeyed hash of the PatientID either: nothing derived from the identifier.
    assert study_id not in (int(study), study_pseudonym(study))
    manifest = json.loads(first.manifest.read_text())
    assert manifest["cases"][0]["label_version"]["kind"] == "imported"
    assert manifest["cases"][0]["case_id"] == first.names[study]
    assert len(read_coordinates_csv(first.root / "train_label_coordinates.csv")) > 0


def test_corrected_takes_the_newest_corrected_or_imported_version(id_named_organs):
    folder, truth = id_named_organs
    with Project(folder) as project:
        label_path = project.case("ct_000").truth["label"]
        chosen = {s.case_id: s.version for s in select_versions(project, "corrected")[0]}
        assert chosen["ct_001"].kind == "imported"
        assert not select_versions(project, "final")[0]
        # ct_000: corrected, then imported -> the imported one; then final wins.
        newer = import_labels(project, "ct_000", "ts", label_path)
        chosen = {s.case_id: s.version for s in select_versions(project, "corrected")[0]}
        assert chosen["ct_000"].id == newer.id
        final = project.save_mask_version("ct_000", truth["ct_000"], kind="final", annotator="lead")
        chosen = {s.case_id: s.version for s in select_versions(project, "corrected")[0]}
        assert chosen["ct_000"].id == final.id


def test_nothing_to_export_creates_nothing(id_named_organs, tmp_path, capsys):
    folder, _ = id_named_organs
    out = tmp_path / "export" / "atlas"
    with Project(folder) as project:
        with pytest.raises(ExportError) as info:
            export_project(project, "abdomenatlas", out)  # default status: final
    message = str(info.value)
    assert "no case has a final mask version" in message
    assert "3 cases have corrected or imported labels" in message
    assert "--status corrected" in message and "review" in message and "--finalize" in message
    assert not (tmp_path / "export").exists()
    # The CLI says the same as one error line, and the retry with --status corrected works.
    args = ["export", str(folder), "--format", "abdomenatlas", "--out", str(out)]
    assert main(args) == 2
    assert "--status corrected" in capsys.readouterr().err
    assert not (tmp_path / "export").exists()
    assert main([*args, "--status", "corrected"]) == 0
    assert (out / "provenance.json").is_file()


def test_no_labels_at_all_says_how_to_get_some(id_phantoms, tmp_path):
    with Project.create(tmp_path / "p", task="organs") as project:
        with pytest.raises(ExportError, match="has no cases"):
            export_project(project, "nnunet", tmp_path / "out", status="corrected")
        case = cases_from_manifest(id_phantoms, "organs")[0]
        project.add_case(case.id, case.images)
        with pytest.raises(ExportError, match="atlas-annotate import"):
            export_project(project, "nnunet", tmp_path / "out", status="corrected")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
