import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.io import save_labels, save_nifti
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.volume import Volume

AFFINE = np.array([[0, 0, -0.9, 50], [0, -0.9, 0, 60], [2.0, 0, 0, -20], [0, 0, 0, 1.0]])


@pytest.fixture
def images(tmp_path):
    paths = []
    for i in range(2):
        vol = Volume(np.full((6, 12, 10), i, np.int16), AFFINE, "CT")
        paths.append(save_nifti(vol, tmp_path / f"ct{i}.nii.gz"))
    return paths


def _project(tmp_path, images):
    proj = tmp_path / "proj"
    assert main(["init", str(proj), "--task", "organs"]) == 0
    assert main(["add", str(proj), *map(str, images)]) == 0
    return proj


def test_init_add_status(tmp_path, images, capsys):
    proj = _project(tmp_path, images)
    capsys.readouterr()
    assert main(["add", str(proj), str(images[0])]) == 0  # second time: skipped, not duplicated
    assert "skipped 1" in capsys.readouterr().out
    assert main(["status", str(proj), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in status["cases"]] == ["ct0", "ct1"]
    assert status["rounds"] == [] and status["task"] == "organs"


def test_init_records_the_annotators_border_tolerance(tmp_path, capsys):
    assert main(["init", str(tmp_path / "p"), "--task", "organs", "--label-tolerance", "1"]) == 0
    with Project(tmp_path / "p") as project:
        assert project.config.label_tolerance == 1
    capsys.readouterr()
    assert main(["status", str(tmp_path / "p"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label_tolerance"] == 1
    assert main(["status", str(tmp_path / "p")]) == 0
    assert "borders up to 1 voxel(s) off" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["init", str(tmp_path / "q"), "--task", "organs", "--label-tolerance", "-1"])
    assert exit_.value.code == 2 and "must be at least 0" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_import_multilabel_and_per_class_folder(tmp_path, images, capsys):
    proj = _project(tmp_path, images)
    ref = Volume(np.zeros((6, 12, 10), np.int16), AFFINE)
    multi = np.zeros(ref.shape, np.uint8)
    multi[1:3, 2:5, 2:5] = 5  # liver
    save_labels(multi, ref, tmp_path / "multi.nii.gz")
    assert (
        main(
            [
                "import",
                str(proj),
                "--case",
                "ct0",
                "--annotator",
                "ann",
                str(tmp_path / "multi.nii.gz"),
            ]
        )
        == 0
    )
    folder = tmp_path / "segmentations"
    spleen = np.zeros(ref.shape, np.uint8)
    spleen[4, 6:9, 6:9] = 1
    save_labels(spleen, ref, folder / "spleen.nii.gz")
    save_labels((multi > 0).astype(np.uint8), ref, folder / "liver.nii.gz")
    assert main(["import", str(proj), "--case", "ct1", "--annotator", "bob", str(folder)]) == 0
    with Project(proj) as p:
        v0 = p.latest_version("ct0", annotator="ann")
        v1 = p.latest_version("ct1", annotator="bob")
        assert v0.kind == v1.kind == "imported"
        np.testing.assert_array_equal(p.read_mask(v0), multi)
        got = p.read_mask(v1)
        assert (got == 8).sum() == 9 and (got == 5).sum() == (multi > 0).sum()
        assert [a["action"] for a in p.audit_trail("ct1")] == ["import"]


def test_import_refusals_touch_nothing(tmp_path, images, capsys):
    proj = _project(tmp_path, images)
    bad_folder = tmp_path / "bad"
    ref = Volume(np.zeros((6, 12, 10), np.int16), AFFINE)
    save_labels(np.ones(ref.shape, np.uint8), ref, bad_folder / "livr.nii.gz")
    code = main(["import", str(proj), "--case", "ct0", "--annotator", "a", str(bad_folder)])
    err = capsys.readouterr().err
    assert code == 2 and "unknown class name(s) ['livr']" in err and "Nothing was imported" in err
    wrong = Volume(np.zeros((6, 12, 11), np.int16), AFFINE)
    save_labels(np.ones(wrong.shape, np.uint8), wrong, tmp_path / "wrong.nii.gz")
    code = main(
        ["import", str(proj), "--case", "ct0", "--annotator", "a", str(tmp_path / "wrong.nii.gz")]
    )
    assert code == 2 and "does not match" in capsys.readouterr().err
    shifted = Volume(np.zeros((6, 12, 10), np.int16), AFFINE.copy())
    shifted.affine[0, 3] += 5.0
    save_labels(np.ones(ref.shape, np.uint8), shifted, tmp_path / "shifted.nii.gz")
    code = main(
        ["import", str(proj), "--case", "ct0", "--annotator", "a", str(tmp_path / "shifted.nii.gz")]
    )
    assert code == 2 and "it would not overlay" in capsys.readouterr().err
    with Project(proj) as p:
        assert p.versions() == []


def test_not_a_project_and_missing_case(tmp_path, images, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "not an annotation project" in capsys.readouterr().err
    proj = _project(tmp_path, images)
    code = main(["import", str(proj), "--case", "nope", "--annotator", "a", str(images[0])])
    assert code == 2 and "no case 'nope'" in capsys.readouterr().err


def test_label_nifti_written_on_image_grid(tmp_path, images):
    proj = _project(tmp_path, images)
    with Project(proj) as p:
        shape, _ = p.grid("ct0")
        v = p.save_mask_version("ct0", np.ones(shape, np.uint8), kind="proposal")
        img = nib.load(str(p.folder / v.path))
        ct = nib.load(str(images[0]))
        np.testing.assert_allclose(img.affine, ct.affine, atol=1e-5)
        assert img.shape == ct.shape and img.get_data_dtype() == np.uint8


def _status_text(proj, capsys) -> str:
    capsys.readouterr()
    assert main(["status", str(proj)]) == 0
    return capsys.readouterr().out


def test_refused_import_registers_no_one_and_an_import_is_its_own_state(tmp_path, images, capsys):
    proj = _project(tmp_path, images)
    shifted = Volume(np.zeros((6, 12, 10), np.int16), AFFINE.copy())
    shifted.affine[0, 3] += 5.0
    save_labels(np.ones(shifted.shape, np.uint8), shifted, tmp_path / "shifted.nii.gz")
    code = main(
        [
            "import",
            str(proj),
            "--case",
            "ct0",
            "--annotator",
            "lee",
            str(tmp_path / "shifted.nii.gz"),
        ]
    )
    assert code == 2 and "Nothing was imported" in capsys.readouterr().err
    with Project(proj) as p:
        assert p.annotators() == []
    assert "lee" not in _status_text(proj, capsys)

    ref = Volume(np.zeros((6, 12, 10), np.int16), AFFINE)
    labels = np.zeros(ref.shape, np.uint8)
    labels[1:3, 2:5, 2:5] = 5
    save_labels(labels, ref, tmp_path / "kim.nii.gz")
    args = [
        "import",
        str(proj),
        "--case",
        "ct0",
        "--annotator",
        "kim",
        str(tmp_path / "kim.nii.gz"),
    ]
    assert main(args) == 0
    text = _status_text(proj, capsys)
    rows = [ln.split() for ln in text.splitlines() if ln.startswith("      kim")]
    # kim is listed on both cases: imported where they imported, new elsewhere
    assert [r[:3] for r in rows] == [
        ["kim", "imported", "versions=1"],
        ["kim", "new", "versions=0"],
    ]
    assert "  kim: 1 imported, 1 new; 0 edits, 0 s on task\n" in text  # the progress summary


def test_status_sums_up_a_large_project_and_lists_the_first_cases(tmp_path, capsys):
    from napari_atlas_annotate.commands.status import SHOWN_CASES

    proj = tmp_path / "proj"
    assert main(["init", str(proj), "--task", "organs"]) == 0
    vol = Volume(np.zeros((2, 3, 4), np.int16), AFFINE, "CT")
    paths = [save_nifti(vol, tmp_path / f"ct{i:02d}.nii.gz") for i in range(SHOWN_CASES + 3)]
    with Project(proj) as p:  # the same voxels: added directly, as add would refuse copies
        for path in paths:
            p.add_case(path.name.split(".")[0], [ImageRef(str(path), "ct")])
        p.ensure_annotator("ann")
        p.ensure_annotator("boss", role="lead")
        p.save_mask_version("ct00", np.ones(vol.shape, np.uint8), kind="proposal")
        p.save_mask_version("ct01", np.ones(vol.shape, np.uint8), kind="corrected", annotator="ann")
        p.save_mask_version("ct02", np.ones(vol.shape, np.uint8), kind="final", annotator="boss")
    text = _status_text(proj, capsys)
    lines = text.splitlines()
    assert lines[1:4] == [
        f"  1 of {SHOWN_CASES + 3} proposed, 1 final (3.0 %)",
        # ct02 is final but not ann's work: the lead finalized it without ann's version
        f"  ann: 1 submitted, 1 final without them, {SHOWN_CASES + 1} new; 0 edits, 0 s on task",
        "  boss (lead): 1 final; 0 edits, 0 s on task",
    ]
    assert f"({SHOWN_CASES} of {SHOWN_CASES + 3}; --all lists every one)" in lines[4]
    listed = [ln.split()[0] for ln in lines if ln.startswith("  ct")]
    assert len(listed) == SHOWN_CASES
    # the case's own line says the same as the summary
    ct02 = lines[next(i for i, ln in enumerate(lines) if ln.startswith("  ct02")) + 1]
    assert ct02.split()[:3] == ["ann", "final_without_them", "versions=0"]
    capsys.readouterr()
    assert main(["status", str(proj), "--all"]) == 0
    listed = [ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ct")]
    assert sorted(listed) == [f"ct{i:02d}" for i in range(SHOWN_CASES + 3)]
    assert main(["status", str(proj), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert len(status["cases"]) == SHOWN_CASES + 3
    assert status["progress"]["people"]["ann"]["states"] == {
        "submitted": 1,
        "final_without_them": 1,
        "new": SHOWN_CASES + 1,
    }


def test_status_lists_the_lead_where_they_finalized_and_rounds_in_words(tmp_path, images, capsys):
    from napari_atlas_annotate.models.registry import finish_round, start_round

    proj = _project(tmp_path, images)
    with Project(proj) as p:
        p.ensure_annotator("ann")
        p.ensure_annotator("boss", role="lead")
        shape, _ = p.grid("ct1")
        p.save_mask_version("ct1", np.ones(shape, np.uint8), kind="final", annotator="boss")
        kept = start_round(p)
        finish_round(
            p,
            kept,
            "organs-round1",
            {
                "status": "kept previous",
                "mean_dice": 0.9277930392159356,
                "previous_mean_dice": 0.94,
                "previous_version": "organs-starter",
                "train_cases": ["ct0"],
                "holdout_cases": ["ct1"],
                "label_tolerance": 0,
            },
        )
        finish_round(p, start_round(p), None, {"status": "cancelled"})
    text = _status_text(proj, capsys)
    case_rows = {}
    for line in text.splitlines():
        if line.startswith("  ct"):
            case = line.split()[0]
        elif line.startswith("      "):
            case_rows.setdefault(case, []).append(line.split()[0])
    assert case_rows == {"ct0": ["ann"], "ct1": ["ann", "boss"]}
    assert "boss (lead)" in text
    rounds = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("round ")]
    assert "{" not in text  # no raw metrics dict
    assert rounds[0].startswith("round 1: trained organs-round1 on 1 case(s)")
    assert "Dice 0.940 -> 0.928" in rounds[0] and "kept organs-starter" in rounds[0]
    assert f"models {proj} --rollback organs-round1" in rounds[0]
    assert rounds[1] == "round 2: cancelled; the active model was left as it was"


def test_status_into_a_closed_pipe_ends_quietly(tmp_path, images):
    proj = _project(tmp_path, images)
    reader = subprocess.Popen(
        [sys.executable, "-m", "napari_atlas_annotate.cli", "status", str(proj)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reader.stdout.close()  # like 'status PROJECT | head -1' after head has gone
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=120) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_phantoms_name_formats_alike_and_refuse_negative_counts(tmp_path, capsys):
    for fmt, name in (("dicom", "DICOM"), ("nifti", "NIfTI")):
        args = ["phantoms", "--out", str(tmp_path / fmt), "--ct", "1", "--mri", "0"]
        assert main([*args, "--format", fmt, "--ct-shape", "8", "16", "16"]) == 0
        first = capsys.readouterr().out.splitlines()[0]
        assert f"CT organ case(s) ({name})" in first and "(DICOM), seed" in first
    # a second set over the first would change images that projects reference
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "dicom").rglob("*") if p.is_file())
    again = ["phantoms", "--out", str(tmp_path / "dicom"), "--ct", "1", "--mri", "0", "--seed", "5"]
    assert main([*again, "--ct-shape", "8", "16", "16"]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    after = sorted(p.stat().st_mtime_ns for p in (tmp_path / "dicom").rglob("*") if p.is_file())
    assert after == before
    with pytest.raises(SystemExit) as exit_:
        main(["phantoms", "--out", str(tmp_path / "x"), "--ct", "-1"])
    assert exit_.value.code == 2
    assert "--ct: must be at least 0" in capsys.readouterr().err


def test_rsna_csv_import_takes_the_study_the_case_is(
    spine_phantoms, spine_project_from, spine_truths, capsys
):
    manifest = spine_phantoms(13)
    project = spine_project_from(manifest)
    csv = manifest.parent / "spine" / "train.csv"
    case_ids = [c.id for c in project.cases()]
    folder = str(project.folder)
    for cid in case_ids[:2]:
        assert main(["import", folder, "--case", cid, "--annotator", "kim", str(csv)]) == 0
        sheet = project.read_grades(project.latest_version(cid, annotator="kim"))
        assert sheet.grades == spine_truths(manifest)[cid].grades
    # a case that is no study of the CSV: the CSV's studies cannot be told apart
    study = spine_phantoms(14)
    other = spine_project_from(study)
    cid = other.cases()[0].id
    assert main(["import", str(other.folder), "--case", cid, "--annotator", "x", str(csv)]) == 2
    assert "pass --study-id" in capsys.readouterr().err
    assert other.annotators() == []


def test_remove_takes_out_unlabelled_cases_only(tmp_path, images, capsys):
    proj = _project(tmp_path, images)
    with Project(proj) as project:
        ids = [c.id for c in project.cases()]
        zeros = np.zeros((6, 12, 10), np.uint8)
        project.save_mask_version(ids[0], zeros, kind="proposal", model_version="m")
        project.save_mask_version(ids[1], zeros, kind="corrected", annotator="ann")
    capsys.readouterr()
    # one case holds a radiologist's labels: the whole request is refused
    assert main(["remove", str(proj), *ids, "--reason", "test", "--by", "lead"]) == 2
    err = capsys.readouterr().err
    assert "nothing removed" in err and f"{ids[1]} (1 corrected version(s) by ann)" in err
    with Project(proj) as project:
        assert [c.id for c in project.cases()] == ids
    assert main(["remove", str(proj), ids[0], "--reason", "scout series", "--by", "lead"]) == 0
    out = capsys.readouterr().out
    assert f"removed {ids[0]}; its proposals are kept in" in out
    with Project(proj) as project:
        assert [c.id for c in project.cases()] == [ids[1]]
        (record,) = [a for a in project.audit_trail(ids[0]) if a["action"] == "remove"]
        assert record["actor"] == "lead" and record["detail"]["reason"] == "scout series"
    assert main(["remove", str(proj), "nope", "--reason", "x"]) == 2
    assert "no case 'nope'" in capsys.readouterr().err


def test_ctrl_c_in_any_command_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    from napari_atlas_annotate.commands import status

    assert main(["init", str(tmp_path / "p"), "--task", "organs"]) == 0
    capsys.readouterr()

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(status, "run", interrupted)
    assert main(["status", str(tmp_path / "p")]) == 130
    err = capsys.readouterr().err
    assert err == "atlas-annotate status: interrupted (Ctrl-C).\n"


@pytest.mark.parametrize(
    "error",
    [
        OSError(28, "No space left on device"),
        __import__("sqlite3").OperationalError("database or disk is full"),
        OSError("1487200 requested and 66528 written"),  # numpy's short write
    ],
)
def test_a_full_disk_in_any_command_is_one_line_saying_so(tmp_path, capsys, monkeypatch, error):
    # it was a traceback (train, propose, import, review, models)
    from napari_atlas_annotate.commands import status

    assert main(["init", str(tmp_path / "p"), "--task", "organs"]) == 0
    capsys.readouterr()

    def full(args):
        raise error

    monkeypatch.setattr(status, "run", full)
    assert main(["status", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atlas-annotate status: error: the disk is full (")
    assert "free space" in err and err.count("\n") == 1


def test_other_os_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    from napari_atlas_annotate.commands import status

    assert main(["init", str(tmp_path / "p"), "--task", "organs"]) == 0

    def broken(args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(status, "run", broken)
    with pytest.raises(OSError, match="Input/output"):
        main(["status", str(tmp_path / "p")])
