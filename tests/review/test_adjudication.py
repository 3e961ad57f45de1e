"""finalize / reopen: the stored final label, versions kept, the audit trail."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.project import ProjectError
from napari_atlas_annotate.review.adjudication import (
    CONSENSUS,
    PAINTED,
    compose_mask,
    current_final,
    finalize,
    reopen,
)
from napari_atlas_annotate.review.consensus import majority_vote
from napari_atlas_annotate.spine_grades import GRADES


def test_finalize_takes_each_class_from_the_chosen_source(organ_project):
    project, truths = organ_project
    alice = project.read_mask(project.latest_version("ct00", annotator="alice"))
    bob = project.read_mask(project.latest_version("ct00", annotator="bob"))
    decisions = {"liver": "bob", "kidney_left": "alice", "spleen": "bob"}
    version = finalize(project, "ct00", "lead", decisions, comment="liver edge per bob")
    assert version.kind == "final" and version.annotator == "lead"
    stored = project.read_mask(version)

    consensus = majority_vote([alice, bob])
    expected = np.zeros_like(alice)
    for value, name in enumerate(ABDOMEN_ATLAS_CLASSES, start=1):
        source = {"alice": alice, "bob": bob}.get(decisions.get(name), consensus)
        expected[(source == value) & (expected == 0)] = value
    np.testing.assert_array_equal(stored, expected)
    np.testing.assert_array_equal(stored == 5, bob == 5)  # bob's dilated liver
    np.testing.assert_array_equal(stored == 3, alice == 3)  # alice's kidney

    note = json.loads(version.note)
    assert note["decisions"]["liver"] == "bob" and note["decisions"]["aorta"] == "consensus"
    assert note["sources"] == {
        "alice": project.latest_version("ct00", annotator="alice").id,
        "bob": project.latest_version("ct00", annotator="bob").id,
    }
    [audit] = [r for r in project.audit_trail("ct00") if r["action"] == "finalize"]
    assert audit["actor"] == "lead" and audit["detail"]["version"] == version.id
    assert audit["detail"]["decisions"]["spleen"] == "bob"
    assert current_final(project, "ct00").id == version.id


def test_finalize_with_painted_class_and_bad_decisions(organ_project):
    project, truths = organ_project
    painted = np.zeros_like(truths["ct00"])
    painted[10:14, 20:24, 20:24] = 9  # the lead's own stomach
    version = finalize(project, "ct00", "lead", {"stomach": "painted"}, painted=painted)
    stored = project.read_mask(version)
    np.testing.assert_array_equal(stored == 9, painted == 9)  # paint wins over organs
    overlap = np.count_nonzero((painted == 9) & ~np.isin(truths["ct00"], (0, 9)))
    assert overlap > 0 and json.loads(version.note)["overlap_voxels"] == overlap
    with pytest.raises(ProjectError, match="'liver' -> 'carol' is not possible"):
        finalize(project, "ct00", "lead", {"liver": "carol"})
    with pytest.raises(ProjectError, match="unknown classes"):
        finalize(project, "ct00", "lead", {"lungs": "alice"})


def test_finalize_grades_cell_by_cell(spine_project):
    project, sheets = spine_project
    alice, bob = sheets["mr01"]["alice"], sheets["mr01"]["bob"]
    disputed = [(c, lv) for c, lv in alice.cells() if alice.grade(c, lv) != bob.grade(c, lv)]
    decisions = {f"{c}_{lv}": "bob" for c, lv in disputed[:3]}
    decisions[f"{disputed[3][0]}_{disputed[3][1]}"] = "Severe"  # the lead's own grade
    version = finalize(project, "mr01", "lead", decisions)
    final = project.read_grades(version)
    for c, lv in alice.cells():
        key = f"{c}_{lv}"
        if decisions.get(key) == "bob":
            assert final.grade(c, lv) == bob.grade(c, lv)
        elif key in decisions:
            assert final.grade(c, lv) == "Severe"
        elif alice.grade(c, lv) == bob.grade(c, lv):
            assert final.grade(c, lv) == alice.grade(c, lv)
        else:  # undecided 1-1 tie: consensus takes the milder grade
            milder = min(alice.grade(c, lv), bob.grade(c, lv), key=GRADES.index)
            assert final.grade(c, lv) == milder
    assert final.is_complete()


def test_finalize_reopen_finalize_keeps_every_version_and_audit(organ_project):
    project, _ = organ_project
    before = project.versions("ct00")
    first = finalize(project, "ct00", "lead", {"liver": "alice"})
    with pytest.raises(ProjectError, match="reason is required"):
        reopen(project, "ct00", "lead", "  ")
    reopen(project, "ct00", "lead", "spleen slice missing in both")
    assert current_final(project, "ct00") is None
    with pytest.raises(ProjectError, match="not final"):
        reopen(project, "ct00", "lead", "again")
    # Back in annotation: bob submits a corrected label, the lead finalizes again.
    alice = project.read_mask(project.latest_version("ct00", annotator="alice"))
    project.save_mask_version("ct00", alice, kind="corrected", annotator="bob")
    second = finalize(project, "ct00", "lead2", {})
    np.testing.assert_array_equal(project.read_mask(second), alice)  # now unanimous

    after = project.versions("ct00")
    assert [v.id for v in after[: len(before)]] == [v.id for v in before]
    assert [v.kind for v in after[len(before) :]] == ["final", "corrected", "final"]
    first_labels = project.read_mask(project.version(first.id))  # still readable
    np.testing.assert_array_equal(first_labels == 5, alice == 5)
    assert np.count_nonzero(first_labels != alice) > 0  # it held the consensus elsewhere
    trail = [(r["actor"], r["action"]) for r in project.audit_trail("ct00")]
    assert trail == [("lead", "finalize"), ("lead", "reopen"), ("lead2", "finalize")]
    reopen_record = project.audit_trail("ct00")[1]["detail"]
    assert reopen_record == {"final_version": first.id, "reason": "spleen slice missing in both"}
    assert current_final(project, "ct00").id == second.id
    assert project.case_state("ct00", "alice") == "final"


def test_finalizing_the_same_again_stores_nothing_new(organ_project, spine_project):
    project, _ = organ_project
    first = finalize(project, "ct00", "lead", {"liver": "alice"})
    n_versions, n_audit = len(project.versions("ct00")), len(project.audit_trail("ct00"))
    again = finalize(project, "ct00", "lead", {"liver": "alice"})  # a second click
    assert again.id == first.id
    assert (len(project.versions("ct00")), len(project.audit_trail("ct00"))) == (
        n_versions,
        n_audit,
    )
    other = finalize(project, "ct00", "lead", {"liver": "bob"})  # a new decision is stored
    assert other.id != first.id and current_final(project, "ct00").id == other.id
    other_lead = finalize(project, "ct00", "lead2", {"liver": "bob"})  # and another lead's
    assert other_lead.id != other.id
    reopen(project, "ct00", "lead", "recheck")
    refinal = finalize(project, "ct00", "lead2", {"liver": "bob"})  # after a reopen: new
    assert refinal.id != other_lead.id

    spine, _ = spine_project
    case_id = spine.cases()[0].id
    sheet = finalize(spine, case_id, "lead", {})
    assert finalize(spine, case_id, "lead", {}).id == sheet.id


def test_a_final_stored_without_its_audit_record_gets_it_when_finalized_again(
    organ_project, monkeypatch
):
    # The process ended between the final version and its audit record; finalizing again
    # said "already final as decided" and the record (and provenance's audit) never came.
    project, _ = organ_project
    real = project.record_audit

    def ended(case_id, actor, action, **detail):
        if action == "finalize":
            raise KeyboardInterrupt
        return real(case_id, actor, action, **detail)

    monkeypatch.setattr(project, "record_audit", ended)
    with pytest.raises(KeyboardInterrupt):
        finalize(project, "ct00", "lead", {"liver": "alice"})
    monkeypatch.setattr(project, "record_audit", real)
    stored = current_final(project, "ct00")
    assert stored is not None
    assert not [r for r in project.audit_trail("ct00") if r["action"] == "finalize"]
    again = finalize(project, "ct00", "lead", {"liver": "alice"})
    assert again.id == stored.id and len(project.versions("ct00", kinds=("final",))) == 1
    (record,) = [r for r in project.audit_trail("ct00") if r["action"] == "finalize"]
    assert record["actor"] == "lead" and record["detail"]["version"] == stored.id
    finalize(project, "ct00", "lead", {"liver": "alice"})  # once recorded, not again
    assert len([r for r in project.audit_trail("ct00") if r["action"] == "finalize"]) == 1


def test_reopened_case_is_annotatable_again(organ_project):
    project, _ = organ_project
    finalize(project, "ct00", "lead", {})
    assert project.case_state("ct00", "bob") == "final"
    reopen(project, "ct00", "lead", "recheck the pancreas")
    assert project.case_state("ct00", "bob") == "imported"  # bob's labels are still there
    assert project.case_state("ct00", "lead") == "reopened"  # not 'new': the lead sent it back
    [case] = [c for c in project.status()["cases"] if c["id"] == "ct00"]
    assert case["final"] is False


def test_finalize_agreed_accepts_agreeing_readers_and_leaves_the_disputed(
    organ_project, monkeypatch
):
    from napari_atlas_annotate.review.adjudication import finalize_agreed
    from napari_atlas_annotate.review.cases import load_masks, review_case
    from napari_atlas_annotate.review.readers import annotator_versions

    project, truths = organ_project
    agreement = {c: 1.0 - review_case(project, c).disagreement for c in ("ct00", "ct01")}
    assert agreement["ct01"] < agreement["ct00"] < 1.0  # ct01: bob dropped the spleen

    read, read_mask = [], project.read_mask
    monkeypatch.setattr(project, "read_mask", lambda v: read.append(v.case_id) or read_mask(v))
    outcomes = finalize_agreed(project, "lead", agreement["ct00"])
    monkeypatch.undo()
    # the metrics were kept: only the case finalized had its two label files read
    assert read == ["ct00", "ct00"]
    by_case = {o.case_id: o for o in outcomes}
    assert by_case["ct00"].version is not None
    assert by_case["ct00"].agreement == pytest.approx(agreement["ct00"])
    assert by_case["ct01"].version is None and "disagree" in by_case["ct01"].reason
    assert current_final(project, "ct01") is None
    # the final label is the readers' majority vote, stored as the lead's final version
    final = current_final(project, "ct00")
    assert final.id == by_case["ct00"].version.id and final.annotator == "lead"
    masks = load_masks(project, annotator_versions(project, "ct00"))
    assert np.array_equal(project.read_mask(final), majority_vote(list(masks.values())))

    # a second pass leaves final cases alone; a single-reader case needs the flag
    project.add_case("ct09", project.case("ct00").images)
    project.save_mask_version("ct09", truths["ct00"], kind="corrected", annotator="carol")
    again = {o.case_id: o for o in finalize_agreed(project, "lead", 0.0)}
    assert again["ct00"].reason == "already final" and again["ct00"].version is None
    assert again["ct01"].version is not None  # threshold 0 accepts the disputed case too
    assert again["ct09"].version is None and again["ct09"].reason == "one reader only"
    single = finalize_agreed(project, "lead", 0.9, case_ids=["ct09"], single_reader=True)
    assert single[0].version is not None and single[0].agreement is None
    assert np.array_equal(project.read_mask(single[0].version), truths["ct00"])
    with pytest.raises(ProjectError, match="0..1"):
        finalize_agreed(project, "lead", 1.5)


def test_finalize_agreed_never_settles_a_grade_the_readers_differ_on(spine_project):
    from napari_atlas_annotate.review.adjudication import finalize_agreed

    project, sheets = spine_project
    # mr02: bob graded every cell as alice did
    project.add_case("mr02", project.case("mr00").images)
    for who in ("alice", "bob"):
        project.save_grades_version(
            "mr02", sheets["mr00"]["alice"], kind="corrected", annotator=who
        )
    done = {o.case_id: o for o in finalize_agreed(project, "lead", 0.0)}
    # even at threshold 0, a study with differing cells waits for the lead (bob changed 4
    # cells of mr00 and 8 of mr01), and the reason names them
    assert done["mr00"].version is None and "4 cell(s) differently" in done["mr00"].reason
    assert done["mr01"].version is None and "8 cell(s)" in done["mr01"].reason
    assert done["mr02"].version is not None and done["mr02"].agreement == pytest.approx(1.0)
    final = project.read_grades(done["mr02"].version)
    assert final.grades == sheets["mr00"]["alice"].grades


def test_a_consensus_cell_takes_the_point_of_a_reader_who_gave_that_grade():
    """Two readers of three say Moderate: the consensus cell's point is one of theirs,
    not the first reader's (alphabetically), who said Normal/Mild."""
    from napari_atlas_annotate.grade_sheet import GradeSheet, LevelPoint
    from napari_atlas_annotate.review.adjudication import compose_grades

    cell = ("spinal_canal_stenosis", "l4_l5")
    sheets = {}
    for reader, grade, x in (
        ("amy", GRADES[0], 10.0),
        ("bob", GRADES[1], 20.0),
        ("cy", GRADES[1], 30.0),
    ):
        sheet = GradeSheet()
        sheet.set_grade(*cell, grade)
        sheet.set_point(*cell, LevelPoint("Sagittal T2/STIR", 8, x, 40.0))
        sheets[reader] = sheet
    final, _ = compose_grades(sheets, {})
    assert final.grades[cell] == GRADES[1]
    assert final.points[cell].x == 20.0  # bob's: the first reader who said Moderate
    # a grade the lead gives (--take CELL=Severe) kept no point at all: the final and the
    # export lost the level's place
    key = "_".join(cell)
    final, _ = compose_grades(sheets, {key: GRADES[0]})
    assert final.grades[cell] == GRADES[0] and final.points[cell].x == 10.0  # amy's
    final, _ = compose_grades(sheets, {key: GRADES[2]})  # nobody said Severe: a reader's
    assert final.grades[cell] == GRADES[2] and final.points[cell].x == 10.0


def test_history_says_who_decided_what_and_what_the_lead_painted(organ_project):
    from napari_atlas_annotate.review.adjudication import decision_history, describe_decision
    from napari_atlas_annotate.review.cases import review_case

    project, truths = organ_project
    readers = {
        who: project.read_mask(project.latest_version("ct00", annotator=who))
        for who in ("alice", "bob")
    }
    painted = majority_vote(list(readers.values()))
    spleen = ABDOMEN_ATLAS_CLASSES.index("spleen") + 1
    z = int(np.nonzero((painted == spleen).any(axis=(1, 2)))[0][0])
    added = int((painted[z] == 0).sum())
    painted[z][painted[z] == 0] = spleen  # the lead paints a whole slice's background
    version = finalize(
        project,
        "ct00",
        "dr_wu",
        {"liver": "bob", "spleen": "painted"},
        painted=painted,
        comment="spleen redrawn",
    )
    reopen(project, "ct00", "dr_wu", "kidney shifted")
    history = review_case(project, "ct00").history
    assert [e["action"] for e in history] == ["finalize", "reopen"]
    first = history[0]
    assert first["by"] == "dr_wu" and first["version"] == version.id
    assert first["decisions"] == {"liver": "bob", "spleen": "painted"}  # not the defaults
    assert first["painted_voxels"] == {"spleen": {"added": added, "removed": 0}}
    assert json.loads(version.note)["painted_voxels"] == first["painted_voxels"]
    line = describe_decision(first)
    assert line.startswith(f"final v{version.id} by dr_wu ") and "UTC: liver: bob" in line
    assert f"spleen: painted (+{added}/-0 voxels) - spleen redrawn" in line
    assert describe_decision(history[1]).endswith("UTC: kidney shifted")
    assert decision_history(project, "ct01") == []


def test_composed_mask_follows_the_rule_voxel_by_voxel():
    # The rule, voxel by voxel: the painted classes claim first, then those taken from a
    # reader, then those from the consensus, each group in class order, each class from its
    # chosen source; a voxel claimed twice keeps the first claim.
    rng = np.random.default_rng(11)
    classes = ["a", "b", "c", "d", "e"]
    maps = {who: rng.integers(0, 6, size=(7, 8, 9)).astype(np.uint8) for who in ("x", "y", "z")}
    painted = rng.integers(0, 6, size=(7, 8, 9)).astype(np.uint8)
    decisions = {"a": "y", "b": PAINTED, "c": CONSENSUS, "e": "z"}  # d: the consensus
    ours, summary = compose_mask(maps, classes, decisions, painted=painted)
    sources = {**maps, PAINTED: painted, CONSENSUS: majority_vote(list(maps.values()))}
    full = {c: decisions.get(c, CONSENSUS) for c in classes}
    order = [("b", 2), ("a", 1), ("e", 5), ("c", 3), ("d", 4)]
    expected, overlap = np.zeros_like(painted), 0
    for index in np.ndindex(painted.shape):
        for name, value in order:
            if sources[full[name]][index] == value:
                if expected[index]:
                    overlap += 1
                else:
                    expected[index] = value
    np.testing.assert_array_equal(ours, expected)
    assert summary["overlap_voxels"] == overlap > 0


def test_finalize_hands_over_what_it_stores_and_takes_a_vote_already_counted(organ_project):
    from napari_atlas_annotate.review.cases import load_opinions, mask_consensus
    from napari_atlas_annotate.review.readers import annotator_versions

    project, _ = organ_project
    opinions = load_opinions(project, annotator_versions(project, "ct00"))
    vote = mask_consensus(opinions, "majority")
    seen = []
    version = finalize(
        project,
        "ct00",
        "lead",
        {"liver": "bob"},
        opinions=opinions,
        consensus=vote,
        on_composed=seen.append,
    )
    np.testing.assert_array_equal(seen[0], project.read_mask(version))
    # the same final as with the vote counted inside
    composed, _ = compose_mask(opinions, list(ABDOMEN_ATLAS_CLASSES), {"liver": "bob"})
    np.testing.assert_array_equal(project.read_mask(version), composed)


def test_a_class_taken_from_a_reader_wins_over_the_consensus_where_they_meet(organ_project):
    """--take liver=bob is bob's whole liver: where the readers' vote gives a voxel of bob's
    liver to another organ (alice's gall bladder in bob's liver: a tie, which the vote
    gives the lower label), the lead's choice of bob's liver keeps it."""
    project, truths = organ_project
    alice = truths["ct00"]
    gall_bladder = ABDOMEN_ATLAS_CLASSES.index("gall_bladder") + 1
    liver = ABDOMEN_ATLAS_CLASSES.index("liver") + 1
    bob = alice.copy()
    bob[alice == gall_bladder] = liver  # bob sees no gall bladder: liver there
    project.save_mask_version("ct00", bob, kind="corrected", annotator="bob")
    assert (alice == gall_bladder).any()
    version = finalize(project, "ct00", "lead", {"liver": "bob"})
    final = project.read_mask(version)
    np.testing.assert_array_equal(final == liver, bob == liver)
    assert not (final == gall_bladder).any()
    # both taken from readers: the lower class id keeps the voxel, as before
    both = finalize(project, "ct00", "lead", {"liver": "bob", "gall_bladder": "alice"})
    np.testing.assert_array_equal(project.read_mask(both) == gall_bladder, alice == gall_bladder)


def test_a_class_that_loses_voxels_to_another_is_named_with_how_many():
    # --take all=alice --take kidney_left=carol: carol's left kidney lay on alice's right
    # kidney, which the final then lacked with no word but a count in the version note
    from napari_atlas_annotate.review.adjudication import compose_mask

    alice = np.zeros((2, 4, 4), np.uint8)
    alice[0] = 2  # her right kidney
    carol = np.zeros_like(alice)
    carol[0, :2] = 1  # carol's left kidney on half of it
    labels, summary = compose_mask(
        {"alice": alice, "carol": carol},
        ["kidney_left", "kidney_right"],
        {"kidney_left": "carol", "kidney_right": "alice"},
    )
    assert (labels[0, :2] == 1).all() and (labels[0, 2:] == 2).all()
    assert summary["overlap_voxels"] == 8 and summary["overlap_by_class"] == {"kidney_right": 8}
