"""``atlas-annotate review``: JSON per case, sorted by disagreement, and the HTML report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.cli import main
from napari_atlas_annotate.review.adjudication import current_final, finalize
from napari_atlas_annotate.review.cases import review_case


def run_json(capsys, *argv) -> dict:
    assert main(["review", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_review_json_organs(organ_project, capsys, tmp_path):
    project, truths = organ_project
    finalize(project, "ct00", "lead", {})
    out = run_json(capsys, str(project.folder), "--report", str(tmp_path / "report"))
    assert [c["id"] for c in out["cases"]] == ["ct01", "ct00"]
    ct00 = out["cases"][1]
    assert ct00["annotators"] == ["alice", "bob"] and ct00["final_version"] is not None
    liver = ct00["classes"]["liver"]
    assert set(liver) == {"dice", "hd95", "volume_ml", "volume_diff_ml", "disputed_ml"}
    bob = project.read_mask(project.version(ct00["versions"]["bob"]))
    truth = truths["ct00"]
    a, b = truth == 5, bob == 5
    expected = 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))
    assert liver["dice"]["alice|bob"] == pytest.approx(expected, abs=1e-4)
    _, affine = project.grid("ct00")
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000
    assert liver["disputed_ml"] == pytest.approx(np.count_nonzero(a != b) * voxel_ml, abs=1e-3)
    assert out["cases"][0]["classes"]["spleen"]["hd95"]["alice|bob"] is None  # JSON null
    assert out["cases"][0]["disagreement"] == 1.0

    html = (tmp_path / "report" / "index.html").read_text()
    assert out["report"].endswith("index.html")
    assert html.count("<svg") == 2 and "Most disputed cases" in html and "ct01" in html
    assert re.search(r"<title>ct00 alice\|bob: 0\.\d{3}</title>", html)

    only = run_json(capsys, str(project.folder), "--case", "ct00")
    assert [c["id"] for c in only["cases"]] == ["ct00"]
    assert main(["review", str(project.folder)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("ct01") and "worst spleen Dice 0.000" in text
    spleen_ml = out["cases"][0]["classes"]["spleen"]["disputed_ml"]
    assert spleen_ml > 0 and f"{spleen_ml:.1f} ml disputed" in text.splitlines()[0]


def test_review_json_spine_and_skipped(spine_project, capsys, tmp_path):
    project, sheets = spine_project
    project.add_case("mr09", project.case("mr00").images)
    project.save_grades_version("mr09", sheets["mr00"]["alice"], kind="imported", annotator="alice")
    out = run_json(capsys, str(project.folder), "--report", str(tmp_path / "r"))
    assert [c["id"] for c in out["cases"]] == ["mr01", "mr00"]
    [skipped] = out["skipped"]
    assert skipped["id"] == "mr09" and skipped["annotators"] == ["alice"]
    # says who labelled it and what the lead can do
    reason = skipped["reason"]
    assert reason.startswith("only alice submitted labels")
    # ... with the commands ready to paste: the project's own folder, not a placeholder
    assert f"atlas-annotate import {project.folder} --case mr09" in reason
    assert f"atlas-annotate review {project.folder} --finalize mr09" in reason
    kappa = out["cases"][0]["kappa"]
    assert set(kappa) == {
        "overall",
        "spinal_canal_stenosis",
        "left_neural_foraminal_narrowing",
        "right_neural_foraminal_narrowing",
        "left_subarticular_stenosis",
        "right_subarticular_stenosis",
    }
    assert len(out["cases"][0]["disputed_cells"]) == 8
    html = (tmp_path / "r" / "index.html").read_text()
    assert "Quadratic weighted kappa per condition" in html


def test_review_errors_are_clean(organ_project, capsys, tmp_path):
    project, _ = organ_project
    assert main(["review", str(project.folder), "--case", "nope"]) == 2
    assert "no case 'nope'" in capsys.readouterr().err


def test_reviewing_a_case_one_annotator_labelled_says_what_to_do(organ_project, capsys):
    project, truths = organ_project
    project.add_case("ct09", project.case("ct00").images)
    project.save_mask_version("ct09", truths["ct00"], kind="imported", annotator="alice")
    assert main(["review", str(project.folder), "--case", "ct09"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: nothing to review: case ct09: only alice" in err
    assert "--annotator NAME" in err and "--finalize ct09 --lead NAME" in err
    # with a reviewable case beside it, the review goes on and lists why ct09 is left out
    out = run_json(capsys, str(project.folder), "--case", "ct00", "--case", "ct09")
    assert [c["id"] for c in out["cases"]] == ["ct00"]
    assert [s["id"] for s in out["skipped"]] == ["ct09"]
    # and a case nobody labelled yet says so
    project.add_case("ct10", project.case("ct01").images)
    assert main(["review", str(project.folder), "--case", "ct10"]) == 2
    assert "no annotator has submitted or imported labels yet" in capsys.readouterr().err


def test_many_cases_left_out_are_summed_up_per_reason(organ_project, capsys):
    """A big project (most cases read once or not yet) gets a line per reason with the
    first ids and what to do, not a line per case; --case and --json still give each."""
    from napari_atlas_annotate.commands.review import SKIPPED_LISTED

    project, truths = organ_project
    images = project.case("ct00").images
    for i in range(SKIPPED_LISTED):
        project.add_case(f"one{i:02d}", images)
        who = "carol" if i % 3 else "dan"
        project.save_mask_version(f"one{i:02d}", truths["ct00"], kind="corrected", annotator=who)
        project.add_case(f"new{i:02d}", images)
    folder = str(project.folder)
    assert main(["review", folder]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["ct01", "ct00"]
    assert not any("skipped" in line for line in lines)
    unread, single, hint = lines[2:]
    assert unread.startswith(f"{SKIPPED_LISTED} case(s) not compared, no annotator")
    assert unread.endswith(f"new00, new01, new02, new03, new04 and {SKIPPED_LISTED - 5} more")
    assert single.startswith(f"{SKIPPED_LISTED} case(s) not compared, one reader only (carol 6,")
    assert f"review {folder} --finalize-agreed --lead NAME --single-reader" in single
    assert hint == f"('atlas-annotate review {folder} --json' lists each case left out and why)"
    out = run_json(capsys, folder)
    assert len(out["skipped"]) == 2 * SKIPPED_LISTED
    assert main(["review", folder, "--case", "ct00", "--case", "one03"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[1].startswith("one03            skipped: only dan")
    # --finalize-agreed: the disputes to adjudicate case by case, the rest per reason
    assert main(["review", folder, "--finalize-agreed", "--lead", "lead"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["ct00", "ct01"]
    assert all("left: readers disagree" in line for line in lines[:2])
    assert lines[2] == (
        f"{SKIPPED_LISTED} case(s) left, no submitted labels (still in the annotation queue): "
        f"new00, new01, new02, new03, new04 and {SKIPPED_LISTED - 5} more"
    )
    assert lines[3].startswith(
        f"{SKIPPED_LISTED} case(s) left, one reader only (--single-reader takes them): one00,"
    )
    assert lines[4:6] == [
        f"finalized 0 case(s), left {2 + 2 * SKIPPED_LISTED} (2 to adjudicate, "
        f"{SKIPPED_LISTED} no submitted labels, {SKIPPED_LISTED} one reader only)",
        "(--json lists each case)",
    ]
    # a one-reader case made final is no longer among those to finalize
    finalize(project, "one00", "lead", {})
    assert main(["review", folder]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == (
        "1 case(s) final with fewer than two readers (nothing to compare or decide): one00"
    )
    assert lines[4].startswith(f"{SKIPPED_LISTED - 1} case(s) not compared, one reader only")


def test_lead_finalizes_from_the_command_line(organ_project, capsys):
    project, _ = organ_project
    folder = str(project.folder)
    threshold = 1.0 - review_case(project, "ct00").disagreement
    argv = ["review", folder, "--finalize-agreed", "--lead", "dr_wu"]
    assert main([*argv, "--min-agreement", f"{threshold - 1e-6:.8f}"]) == 0
    out = capsys.readouterr().out
    assert "ct00" in out and "final version" in out
    assert "ct01" in out and "readers disagree" in out
    assert "finalized 1 case(s), left 1" in out
    assert current_final(project, "ct00").annotator == "dr_wu"

    # one case adjudicated by hand: liver from bob, the rest by consensus
    assert (
        main(["review", folder, "--finalize", "ct01", "--lead", "dr_wu", "--take", "liver=bob"])
        == 0
    )
    out = capsys.readouterr().out
    version = current_final(project, "ct01").id
    assert f"final v{version} by dr_wu" in out and "UTC: liver: bob" in out  # what was decided
    final = project.read_mask(current_final(project, "ct01"))
    bob = project.read_mask(project.latest_version("ct01", annotator="bob"))
    liver = ABDOMEN_ATLAS_CLASSES.index("liver") + 1
    assert np.array_equal(final == liver, bob == liver)  # exactly as bob drew it
    n_versions = len(project.versions("ct01"))
    argv = ["review", folder, "--finalize", "ct01", "--lead", "dr_wu", "--take", "liver=bob"]
    assert main(argv) == 0  # the same decision again
    out = capsys.readouterr().out
    assert "already final as decided" in out
    # not "(1 to adjudicate)": the case is final, nothing is left to decide
    assert "finalized 0 case(s), left 1 (1 already final)" in out
    assert len(project.versions("ct01")) == n_versions

    done = run_json(capsys, folder, "--reopen", "ct01", "--lead", "dr_wu", "--reason", "spleen")
    assert done == {"reopened": "ct01"} and current_final(project, "ct01") is None
    assert main(["review", folder, "--case", "ct01"]) == 0
    history = capsys.readouterr().out.splitlines()[1:]
    assert history[0].strip().startswith(f"final v{version} by dr_wu")
    assert history[1].strip().startswith(f"reopened v{version} by dr_wu") and "spleen" in history[1]


def test_lead_decisions_refuse_unclear_requests(organ_project, capsys):
    project, _ = organ_project
    folder = str(project.folder)
    assert main(["review", folder, "--finalize-agreed"]) == 2
    assert "--lead NAME" in capsys.readouterr().err
    assert main(["review", folder, "--finalize", "nope", "--lead", "x"]) == 2
    assert "no case 'nope'" in capsys.readouterr().err
    assert main(["review", folder, "--finalize", "ct00", "--lead", "x", "--take", "liver"]) == 2
    assert "CLASS=SOURCE" in capsys.readouterr().err
    assert main(["review", folder, "--finalize", "ct00", "--lead", "x", "--take", "liver=eve"]) == 2
    assert "not possible" in capsys.readouterr().err
    assert main(["review", folder, "--reopen", "ct00", "--lead", "x"]) == 2
    assert "add --reason TEXT" in capsys.readouterr().err  # the flag that says why
    assert main(["review", folder, "--finalize-agreed", "--lead", "x", "--min-agreement", "2"]) == 2
    assert "0..1" in capsys.readouterr().err
    assert current_final(project, "ct00") is None


def test_lead_takes_one_readers_whole_label_but_one_class(organ_project, capsys):
    project, _ = organ_project
    folder = str(project.folder)
    argv = ["review", folder, "--finalize", "ct00", "--lead", "dr_wu", "--take", "all=eve"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "case ct00: all -> 'eve' is not possible; choose one of alice, bob" in err
    argv[-1] = "all=bob"
    assert main([*argv, "--take", "spleen=alice"]) == 0
    assert "UTC: all: bob; spleen: alice" in capsys.readouterr().out
    final = project.read_mask(current_final(project, "ct00"))
    alice, bob = (
        project.read_mask(project.latest_version("ct00", annotator=who)) for who in ("alice", "bob")
    )
    spleen = ABDOMEN_ATLAS_CLASSES.index("spleen") + 1
    np.testing.assert_array_equal(final == spleen, alice == spleen)
    outside = (alice != spleen) & (bob != spleen)
    np.testing.assert_array_equal(final[outside], bob[outside])  # everything else is bob's


def test_lead_finalizes_from_a_consensus_edited_in_another_tool(organ_project, capsys, tmp_path):
    import nibabel as nib

    project, _ = organ_project
    folder = str(project.folder)
    exported = tmp_path / "ct01_consensus.nii.gz"
    argv = ["review", folder, "--case", "ct01", "--write-consensus", str(exported)]
    assert main(argv) == 0
    assert str(exported) in capsys.readouterr().out
    image = nib.load(project.case("ct01").images[0].path)
    written = nib.load(exported)
    np.testing.assert_allclose(written.affine, image.affine, atol=1e-5)  # overlays the CT
    assert written.shape == image.shape and np.issubdtype(written.get_data_dtype(), np.integer)
    versions = {w: project.latest_version("ct01", annotator=w) for w in ("alice", "bob")}
    alice, bob = (project.read_mask(v) for v in versions.values())
    consensus = np.where(alice == bob, alice, 0)  # two readers: what both labelled
    np.testing.assert_array_equal(np.asarray(written.dataobj).transpose(2, 1, 0), consensus)

    # the lead adds a block of liver and erases the aorta in ITK-SNAP, saves as RAS
    liver, aorta = (ABDOMEN_ATLAS_CLASSES.index(n) + 1 for n in ("liver", "aorta"))
    edited = consensus.copy()
    edited[10:12, 20:24, 20:24] = liver
    edited[edited == aorta] = 0
    ras = nib.as_closest_canonical(nib.Nifti1Image(edited.transpose(2, 1, 0), image.affine))
    path = tmp_path / "ct01_edited.nii.gz"
    nib.save(ras, path)

    argv = ["review", folder, "--finalize", "ct01", "--lead", "dr_wu", "--edited", str(path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "liver: painted (+" in out and "aorta: painted (+0/-" in out
    final = project.read_mask(current_final(project, "ct01"))
    np.testing.assert_array_equal(final, edited)  # every edit kept, nothing else changed

    # taking an edited class from a reader would drop the edits: refused, nothing stored
    project_versions = len(project.versions("ct00"))
    assert main(["review", folder, "--case", "ct00", "--write-consensus", str(path)]) == 0
    ct00 = nib.load(path)
    more_liver = np.asarray(ct00.dataobj).copy()
    more_liver[20:24, 20:24, 10:12] = liver
    nib.save(nib.Nifti1Image(more_liver, ct00.affine), path)
    capsys.readouterr()
    argv = ["review", folder, "--finalize", "ct00", "--lead", "dr_wu", "--edited", str(path)]
    assert main([*argv, "--take", "liver=bob"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "liver" in err and "would be lost" in err
    assert len(project.versions("ct00")) == project_versions


def test_an_edited_folder_of_some_class_masks_leaves_the_other_classes_as_they_were(
    organ_project, capsys, tmp_path
):
    # a folder holding only liver.nii.gz: every other organ was finalized empty, booked
    # as the lead's paint ("painted (+0/-N voxels)")
    import nibabel as nib

    project, _ = organ_project
    folder = str(project.folder)
    exported = tmp_path / "ct01_consensus.nii.gz"
    assert main(["review", folder, "--case", "ct01", "--write-consensus", str(exported)]) == 0
    written = nib.load(exported)
    consensus = np.asarray(written.dataobj).transpose(2, 1, 0)
    liver = ABDOMEN_ATLAS_CLASSES.index("liver") + 1
    trimmed = consensus == liver
    trimmed[trimmed.nonzero()[0].max()] = False  # the liver's last slice taken off
    masks = tmp_path / "edited"
    masks.mkdir()
    nib.save(
        nib.Nifti1Image(trimmed.transpose(2, 1, 0).astype(np.uint8), written.affine),
        masks / "liver.nii.gz",
    )
    capsys.readouterr()
    argv = ["review", folder, "--finalize", "ct01", "--lead", "dr_wu", "--edited", str(masks)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "liver: painted (+0/-" in out and out.count("painted") == 1, out
    final = project.read_mask(current_final(project, "ct01"))
    expected = np.where(consensus == liver, 0, consensus)
    expected[trimmed] = liver
    np.testing.assert_array_equal(final, expected)


def test_edited_consensus_errors_name_the_file_and_the_fix(organ_project, spine_project, capsys):
    import nibabel as nib

    project, _ = organ_project
    folder = str(project.folder)
    tmp = project.folder.parent
    wrong = tmp / "wrong_grid.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.uint8), np.eye(4)), wrong)
    argv = ["review", folder, "--finalize", "ct00", "--lead", "dr_wu", "--edited", str(wrong)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(wrong) in err and "does not match" in err
    assert "Nothing was imported" not in err and "Nothing was finalized" in err
    assert current_final(project, "ct00") is None
    assert main(["review", folder, "--edited", str(wrong)]) == 2
    assert "--edited goes with --finalize CASE" in capsys.readouterr().err
    out = str(tmp / "c.nii.gz")
    assert main(["review", folder, "--write-consensus", out]) == 2
    assert "--write-consensus needs exactly one --case" in capsys.readouterr().err
    spine, _ = spine_project
    argv = ["review", str(spine.folder), "--case", "mr00", "--write-consensus", out]
    assert main(argv) == 2
    assert "organ projects" in capsys.readouterr().err


def test_a_lead_using_3d_slicer_round_trips_the_consensus_as_seg_nrrd(
    organ_project, capsys, tmp_path
):
    pytest.importorskip("slicerio")
    from napari_atlas_annotate.project.slicer_segmentations import (
        read_segments,
        write_segmentation,
    )

    project, _ = organ_project
    folder = str(project.folder)
    path = tmp_path / "ct01.seg.nrrd"
    assert main(["review", folder, "--case", "ct01", "--write-consensus", str(path)]) == 0
    affine, segments = read_segments(path)
    _, image_affine = project.grid("ct01")
    np.testing.assert_allclose(affine, image_affine, atol=1e-5)
    alice, bob = (
        project.read_mask(project.latest_version("ct01", annotator=w)) for w in ("alice", "bob")
    )
    consensus = np.where(alice == bob, alice, 0)
    names = [ABDOMEN_ATLAS_CLASSES[v - 1] for v in np.unique(consensus) if v]
    assert [name for name, _ in segments] == names  # one named segment per class, for Slicer
    edited = consensus.copy()
    liver = ABDOMEN_ATLAS_CLASSES.index("liver") + 1
    edited[3:5, 10:14, 10:14] = liver  # the lead paints liver in Slicer and saves
    write_segmentation(edited, affine, ABDOMEN_ATLAS_CLASSES, path)
    capsys.readouterr()
    argv = ["review", folder, "--finalize", "ct01", "--lead", "dr_wu", "--edited", str(path)]
    assert main(argv) == 0
    assert "liver: painted (+" in capsys.readouterr().out
    np.testing.assert_array_equal(project.read_mask(current_final(project, "ct01")), edited)


def test_readers_notes_reach_the_lead_in_json_text_and_report(organ_project, capsys, tmp_path):
    project, _ = organ_project
    bob = project.read_mask(project.latest_version("ct00", annotator="bob"))
    base = project.latest_version("ct00", annotator="bob")
    project.submit_mask("ct00", "bob", bob, base, note="liver dome <unclear> on this scan")
    # an import's note says where it came from: not a reader's note
    project.save_mask_version(
        "ct01",
        project.read_mask(project.latest_version("ct01", annotator="alice")),
        kind="imported",
        annotator="alice",
        note="imported from somewhere.nii.gz",
    )

    out = run_json(capsys, str(project.folder), "--report", str(tmp_path / "report"))
    notes = {c["id"]: c["notes"] for c in out["cases"]}
    assert notes == {"ct00": {"bob": "liver dome <unclear> on this scan"}, "ct01": {}}
    assert review_case(project, "ct00").notes == notes["ct00"]

    assert main(["review", str(project.folder)]) == 0
    text = capsys.readouterr().out
    assert "note from bob: liver dome <unclear> on this scan" in text
    assert "imported from" not in text

    html = (tmp_path / "report" / "index.html").read_text()
    assert "Readers&#x27; notes" in html or "Readers' notes" in html
    assert "liver dome &lt;unclear&gt; on this scan" in html  # escaped
    assert "imported from" not in html


def test_reviewing_a_project_without_cases_says_so(tmp_path, capsys):
    folder = tmp_path / "empty"
    assert main(["init", str(folder), "--task", "organs"]) == 0
    capsys.readouterr()
    assert main(["review", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nothing to review:") and f"atlas-annotate add {folder} PATH" in out


def test_review_names_the_cases_it_compares_for_the_first_time(organ_project, capsys):
    project, _ = organ_project
    assert main(["review", str(project.folder), "--json"]) == 0
    err = capsys.readouterr().err
    assert "compared ct00's readers" in err and "compared ct01's readers" in err
    assert main(["review", str(project.folder), "--json"]) == 0
    assert "compared" not in capsys.readouterr().err  # kept from the first run


def test_a_damaged_label_file_skips_its_case_only_when_asked(organ_project):
    from napari_atlas_annotate.project import ProjectError
    from napari_atlas_annotate.review.cases import review_project

    project, _ = organ_project
    bob = project.latest_version("ct00", annotator="bob")
    (project.folder / bob.path).write_bytes(b"not a nifti file")
    with pytest.raises(ProjectError, match="damaged"):
        review_project(project)
    reviews, skipped = review_project(project, skip_unreadable=True)
    assert [r.case_id for r in reviews] == ["ct01"]
    (entry,) = [s for s in skipped if s.get("unreadable")]
    assert entry["id"] == "ct00" and str(bob.path) in entry["reason"]
    assert "Restore it from a backup" in entry["reason"]


def test_comparing_in_threads_gives_the_same_review_as_one_thread(organ_project, tmp_path):
    import shutil

    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.review.cases import ReviewCancelled, review_project

    project, _ = organ_project
    shutil.copytree(project.folder, tmp_path / "copy")
    one, skipped_one = review_project(project)
    with Project(tmp_path / "copy") as other:
        seen = []
        many, skipped_many = review_project(
            other, threads=3, progress=lambda done, total, case: seen.append(case)
        )
        assert [r.to_dict() for r in many] == [r.to_dict() for r in one]
        assert skipped_many == skipped_one
        assert sorted(seen) == sorted(c.id for c in other.cases())  # one step per case
        kept, _ = review_project(other, threads=3)  # read back from what was kept
        assert [r.to_dict() for r in kept] == [r.to_dict() for r in one]

        other._db.execute("DELETE FROM agreement")
        bob = other.latest_version("ct00", annotator="bob")
        (other.folder / bob.path).write_bytes(b"damaged")
        reviews, skipped = review_project(other, threads=2, skip_unreadable=True)
        assert [r.case_id for r in reviews] == ["ct01"]
        assert [s["id"] for s in skipped if s.get("unreadable")] == ["ct00"]

        other._db.execute("DELETE FROM agreement")
        steps = []
        with pytest.raises(ReviewCancelled):  # asked after the first threaded case
            review_project(
                other,
                threads=2,
                skip_unreadable=True,
                progress=lambda done, total, case: steps.append(case),
                cancel=lambda: len(steps) >= len(other.cases()) - 1,
            )


def test_readers_against_the_finals(organ_project, capsys, tmp_path):
    project, _ = organ_project
    folder = str(project.folder)
    assert main(["review", folder, "--readers"]) == 0
    assert capsys.readouterr().out.startswith("no final case yet: a lead finalizes cases")

    finalize(project, "ct00", "lead", {"all": "alice"})
    finalize(project, "ct01", "lead", {"all": "alice"})
    assert main(["review", folder, "--readers"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "readers against the lead's final labels (2 final cases):"
    alice, bob = lines[1], lines[2]
    assert alice.startswith("alice") and "the final changed 0.0 ml a case" in alice
    # bob dropped ct01's spleen (Dice 0) and lost a slice of ct00's: the median of the two
    assert bob.startswith("bob") and "2 cases" in bob and "lowest median Dice: spleen 0.4" in bob
    # the finals' files were read this once, case by case, and the counts kept
    assert "[1/2] compared ct00's final" in captured.err
    out = run_json(capsys, folder, "--readers")
    assert out["finals"] == 2 and [r["reader"] for r in out["readers"]] == ["alice", "bob"]
    assert out["readers"][0]["dice"]["liver"] == 1.0
    assert out["readers"][1]["changed_ml_per_case"] > 0
    assert "compared" not in capsys.readouterr().err

    run_json(capsys, folder, "--report", str(tmp_path / "report"))
    html = (tmp_path / "report" / "index.html").read_text()
    section = html[html.index("Readers against the final labels") :]
    assert "<td class='l'>bob</td><td>2</td>" in section

    assert main(["review", folder, "--readers", "--case", "ct00"]) == 2
    assert "--readers compares every final case" in capsys.readouterr().err


def test_spine_readers_against_the_finals(spine_project, capsys):
    project, _ = spine_project
    finalize(project, "mr00", "lead", {"all": "alice"})
    assert main(["review", str(project.folder), "--readers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "readers against the lead's final labels (1 final study):"
    # the final is alice's sheet: all of it kept, no weakest condition to name
    assert lines[1].startswith("alice")
    assert lines[1].endswith("1 study: 25 cells, 100 % kept as graded, kappa 1.000")
    assert lines[2].startswith("bob") and "25 cells" in lines[2] and "lowest kappa: " in lines[2]


def test_a_final_case_of_one_reader_is_not_offered_for_finalizing_again(organ_project, capsys):
    project, truths = organ_project
    project.add_case("solo", project.case("ct00").images)
    project.save_mask_version("solo", truths["ct00"], kind="corrected", annotator="alice")
    folder = str(project.folder)
    assert main(["review", folder, "--case", "solo"]) == 2
    assert "To accept alice's labels as they are" in capsys.readouterr().err
    version = finalize(project, "solo", "lead", {"all": "alice"})
    assert main(["review", folder]) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("solo")]
    assert line == (
        f"solo             skipped: final (version {version.id}) with one reader, alice: "
        f"nothing to compare or decide; to send it back: 'atlas-annotate review {folder} "
        "--reopen solo --lead NAME --reason TEXT'"
    )
    out = run_json(capsys, folder)
    [solo] = [s for s in out["skipped"] if s["id"] == "solo"]
    assert solo["final"] == version.id


def test_write_consensus_and_reopen_say_what_is_wrong_with_their_arguments(
    organ_project, capsys, tmp_path
):
    # a .txt or extension-less path, or a file as the parent folder, ended in a traceback;
    # an unknown case was said to have no labels, or to be not final
    project, _ = organ_project
    folder = str(project.folder)
    blocker = tmp_path / "somefile"
    blocker.write_text("x")
    for path, said in (
        (tmp_path / "cons.txt", "writes a label NIfTI (.nii.gz, .nii) or a 3D Slicer"),
        (tmp_path / "cons", "writes a label NIfTI"),
        (blocker / "c.nii.gz", "is a file, not a folder"),
    ):
        capsys.readouterr()
        assert main(["review", folder, "--case", "ct01", "--write-consensus", str(path)]) == 2
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, err
    for argv in (
        ["--case", "ct_999", "--write-consensus", str(tmp_path / "c.nii.gz")],
        ["--reopen", "ct_999", "--lead", "lee", "--reason", "why"],
    ):
        assert main(["review", folder, *argv]) == 2
        assert "no case 'ct_999'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--take", "liver=bob", "--lead", "lee"], "--take goes with --finalize CASE"),
        (["--finalize", "ct01", "--lead", "lee", "--single-reader"], "--single-reader goes"),
        (["--finalize", "ct01", "--lead", "lee", "--min-agreement", "0.2"], "--min-agreement"),
        (["--finalize", "ct01", "--lead", "lee", "--reason", "foo"], "--reason goes with"),
        (["--lead", "lee"], "--lead goes with"),
    ],
)
def test_an_option_without_its_action_is_refused_not_ignored(organ_project, capsys, argv, said):
    # "--take liver=bob" without --finalize printed the review table, exit 0; --finalize
    # with --single-reader --min-agreement --reason finalized and ignored the three
    project, _ = organ_project
    assert main(["review", str(project.folder), *argv]) == 2
    err = capsys.readouterr().err
    assert said in err and "nothing was done" in err
    assert current_final(project, "ct01") is None


def test_scores_are_not_rounded_onto_the_ends():
    # "disagreement 0.001 ... worst liver Dice 1.000" for a Dice of 0.99952
    from napari_atlas_annotate.commands.review import _fraction

    assert [_fraction(v) for v in (0.99952, 0.00048, 1.0, 0.0, 0.5)] == [
        "0.999",
        "0.001",
        "1.000",
        "0.000",
        "0.500",
    ]


def test_an_edited_consensus_older_than_a_readers_new_version_is_refused(
    organ_project, capsys, tmp_path
):
    # bob imported a larger liver after the consensus was written; finalizing from the
    # unchanged file booked "liver: painted (+0/-1187 voxels)" and cited bob's new version
    project, _ = organ_project
    folder = str(project.folder)
    written = tmp_path / "ct01_consensus.nii.gz"
    assert main(["review", folder, "--case", "ct01", "--write-consensus", str(written)]) == 0
    base = project.latest_version("ct01", annotator="bob")
    bigger = project.read_mask(base)
    bigger[bigger == 0] = ABDOMEN_ATLAS_CLASSES.index("liver") + 1
    newer = project.save_mask_version("ct01", bigger, kind="corrected", annotator="bob")
    capsys.readouterr()
    argv = ["review", folder, "--finalize", "ct01", "--lead", "dr_wu", "--edited", str(written)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"bob submitted version {newer.id} since its consensus was written" in err
    assert "Nothing was finalized" in err and current_final(project, "ct01") is None
    assert main(["review", folder, "--case", "ct01", "--write-consensus", str(written)]) == 0
    assert main(argv) == 0  # written again: finalized
