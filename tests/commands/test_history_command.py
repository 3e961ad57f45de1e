"""``atlas-annotate history``: one case's versions and audit trail, and a version brought
back with ``import`` from the file it names."""

import json

import numpy as np

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.volume import Volume

AFFINE = np.array([[0, 0, -0.9, 50], [0, -0.9, 0, 60], [2.0, 0, 0, -20], [0, 0, 0, 1.0]])


def _case_with_two_versions(tmp_path):
    save_nifti(Volume(np.zeros((6, 12, 10), np.int16), AFFINE, "CT"), tmp_path / "ct.nii.gz")
    folder = tmp_path / "proj"
    with Project.create(folder, task="organs") as p:
        p.add_case("ct0", [ImageRef(str(tmp_path / "ct.nii.gz"))])
        proposal = np.zeros((6, 12, 10), np.uint8)
        proposal[1:4, 2:8, 2:8] = 5
        v1 = p.save_mask_version("ct0", proposal, kind="proposal", model_version="organs-starter")
        corrected = proposal.copy()
        corrected[1:4, 2:8, 2:4] = 0  # alice takes a strip of liver back
        p.submit_mask("ct0", "alice", corrected, v1, note="liver edge was fat")
    return folder, proposal, corrected


def test_history_lists_versions_changes_and_decisions(tmp_path, capsys):
    folder, _, _ = _case_with_two_versions(tmp_path)
    assert main(["history", str(folder), "ct0"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "case ct0: 2 label version(s), 1 audit record(s)"
    assert lines[1].startswith("  v1 proposal mask by model organs-starter, ")
    assert "  v2 corrected mask by alice from v1, " in out
    assert "      36 voxel(s) changed from v1\n      liver -36\n" in out
    assert "      note: liver edge was fat" in out
    assert "submit by alice: version=2" in out
    assert f"atlas-annotate import {folder} FILE --case ct0 --annotator NAME" in out

    assert main(["history", str(folder), "ct0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in report["versions"]] == [1, 2]
    assert report["versions"][1]["class_changes"] == {"liver": [0, 36]}
    assert report["audit"][0]["action"] == "submit"


def test_a_version_comes_back_with_import_from_the_file_history_names(tmp_path, capsys):
    folder, proposal, _ = _case_with_two_versions(tmp_path)
    assert main(["history", str(folder), "ct0", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["versions"][0]
    path = folder / first["path"]
    code = main(["import", str(folder), str(path), "--case", "ct0", "--annotator", "alice"])
    assert code == 0, capsys.readouterr()
    with Project(folder) as p:
        back = p.latest_version("ct0", annotator="alice")
        assert back.kind == "imported" and np.array_equal(p.read_mask(back), proposal)


def test_an_unknown_case_is_one_line_naming_the_known_ones(tmp_path, capsys):
    folder, _, _ = _case_with_two_versions(tmp_path)
    assert main(["history", str(folder), "ct9"]) == 2  # a usage error, as elsewhere
    err = capsys.readouterr().err
    assert "ct9" in err and "ct0" in err and "Traceback" not in err


def test_a_grades_version_comes_back_with_import_too(
    spine_phantoms, spine_project_from, submit_spine_truths, capsys
):
    manifest = spine_phantoms(0)
    project = spine_project_from(manifest)
    truths = submit_spine_truths(project, manifest)
    case = next(iter(truths))
    folder = project.folder
    project.close()
    assert main(["history", str(folder), case, "--json"]) == 0
    [version] = json.loads(capsys.readouterr().out)["versions"]
    assert version["content"] == "grades" and version["annotator"] == "sim"
    path = folder / version["path"]
    assert main(["import", str(folder), str(path), "--case", case, "--annotator", "bob"]) == 0
    with Project(folder) as p:
        back = p.read_grades(p.latest_version(case, annotator="bob"))
    assert back.grades == truths[case].grades and back.points == truths[case].points
    bad = path.with_name("not_a_sheet.json")
    bad.write_text("[1, 2]")
    assert main(["import", str(folder), str(bad), "--case", case, "--annotator", "bob"]) == 2
    assert "not a grade sheet of a project" in capsys.readouterr().err
