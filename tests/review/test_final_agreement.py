"""Each reader against the lead's final labels: Dice and millilitres changed (organs), share
kept and kappa (grades), counted once per (final, reader version) and kept."""

import numpy as np
import pytest

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.review import final_agreement
from napari_atlas_annotate.review.adjudication import finalize, reopen
from napari_atlas_annotate.review.final_agreement import compare_with_finals, summarise
from napari_atlas_annotate.review.kappa import cohen_kappa
from napari_atlas_annotate.review.metrics import dice_per_class
from napari_atlas_annotate.spine_grades import CONDITIONS, GRADES


def _by_reader(project):
    return {s.reader: s for s in summarise(compare_with_finals(project))}


def test_organ_readers_against_the_final(organ_project):
    project, truths = organ_project
    # ct00: everything from alice (the truth); ct01: bob's liver, the rest alice's
    finalize(project, "ct00", "lead", {"all": "alice"})
    finalize(project, "ct01", "lead", {"all": "alice", "liver": "bob"})
    summaries = _by_reader(project)
    assert sorted(summaries) == ["alice", "bob"]
    alice, bob = summaries["alice"], summaries["bob"]
    assert alice.cases == ["ct00", "ct01"] and bob.cases == ["ct00", "ct01"]

    # what the finals hold, compared voxel by voxel with each reader's stored labels
    n = len(ABDOMEN_ATLAS_CLASSES)
    expected = {"alice": {}, "bob": {}}
    changed = {"alice": [], "bob": []}
    for case_id in ("ct00", "ct01"):
        final = project.read_mask(project.current_final(case_id))
        voxel_ml = abs(np.linalg.det(project.mask_grid(project.current_final(case_id))[1][:3, :3]))
        for who in ("alice", "bob"):
            theirs = project.read_mask(project.latest_version(case_id, annotator=who))
            dice = dice_per_class(theirs, final, n)
            for value, (name, d) in enumerate(zip(ABDOMEN_ATLAS_CLASSES, dice, strict=True), 1):
                if (theirs == value).any() or (final == value).any():
                    expected[who].setdefault(name, []).append(d)
            changed[who].append(np.count_nonzero(theirs != final) * voxel_ml / 1000)
    for who, summary in summaries.items():
        assert summary.dice == pytest.approx(
            {name: float(np.median(v)) for name, v in expected[who].items()}
        )
        assert summary.changed_ml_per_case == pytest.approx(np.mean(changed[who]))
    # alice's labels are the finals except ct01's liver, which came from bob
    assert alice.dice["spleen"] == 1.0 and alice.dice["liver"] < 1.0
    assert bob.dice["spleen"] < 0.9  # bob lost a spleen slice and, in ct01, the spleen
    assert bob.weakest()[0] == "spleen"
    assert 0 < alice.changed_ml_per_case < bob.changed_ml_per_case


def test_pairs_are_counted_once_and_kept(organ_project, monkeypatch):
    project, _ = organ_project
    finalize(project, "ct00", "lead", {"all": "alice"})
    first = compare_with_finals(project)
    reads = []
    monkeypatch.setattr(type(project), "read_mask", lambda self, v: reads.append(v) or 1 / 0)
    again = compare_with_finals(project)  # nothing read: the kept counts
    assert reads == []
    assert [(p.case_id, p.reader) for p in again.pairs] == [
        (p.case_id, p.reader) for p in first.pairs
    ]
    for a, b in zip(first.pairs, again.pairs, strict=True):
        np.testing.assert_array_equal(a.counts, b.counts)
        assert a.voxel_ml == pytest.approx(b.voxel_ml)


def test_a_reopened_final_leaves_the_comparison(organ_project):
    project, _ = organ_project
    finalize(project, "ct00", "lead", {"all": "alice"})
    finalize(project, "ct01", "lead", {"all": "bob"})
    reopen(project, "ct01", "lead", "bob's spleen is missing")
    agreement = compare_with_finals(project)
    assert agreement.finals == 1
    assert {p.case_id for p in agreement.pairs} == {"ct00"}


def test_an_unreadable_final_is_named_and_the_rest_compared(organ_project):
    project, _ = organ_project
    finalize(project, "ct00", "lead", {"all": "alice"})
    broken = finalize(project, "ct01", "lead", {"all": "bob"})
    (project.folder / broken.path).write_bytes(b"not a nifti")
    agreement = compare_with_finals(project)
    assert list(agreement.unreadable) == ["ct01"]
    assert {p.case_id for p in agreement.pairs} == {"ct00"}


def test_grade_readers_against_the_final(spine_project):
    project, sheets = spine_project
    finalize(project, "mr00", "lead", {"all": "alice"})
    finalize(project, "mr01", "lead", {"all": "bob"})
    summaries = _by_reader(project)
    alice, bob = summaries["alice"], summaries["bob"]
    assert alice.cells == bob.cells == 50
    # mr00 is alice's sheet, mr01 bob's: each reader's share kept is the other's flips
    flips = {
        case_id: sum(
            s["alice"].grade(c, lv) != s["bob"].grade(c, lv) for c, lv in s["alice"].cells()
        )
        for case_id, s in sheets.items()
    }
    assert alice.kept_share == pytest.approx((50 - flips["mr01"]) / 50)
    assert bob.kept_share == pytest.approx((50 - flips["mr00"]) / 50)

    def grades(sheet, condition=None):
        return [sheet.grade(c, lv) for c, lv in sheet.cells() if condition in (None, c)]

    final = {c: project.read_grades(project.current_final(c)) for c in ("mr00", "mr01")}
    mine = [g for c in ("mr00", "mr01") for g in grades(sheets[c]["alice"])]
    theirs = [g for c in ("mr00", "mr01") for g in grades(final[c])]
    assert alice.kappa == pytest.approx(cohen_kappa(mine, theirs, GRADES, weights="quadratic"))
    condition = CONDITIONS[0]
    mine = [g for c in ("mr00", "mr01") for g in grades(sheets[c]["alice"], condition)]
    theirs = [g for c in ("mr00", "mr01") for g in grades(final[c], condition)]
    assert alice.kappa_by_condition[condition] == pytest.approx(
        cohen_kappa(mine, theirs, GRADES, weights="quadratic")
    )


def test_no_finals_no_readers(organ_project):
    project, _ = organ_project
    agreement = compare_with_finals(project)
    assert agreement.finals == 0 and agreement.pairs == [] and summarise(agreement) == []


def test_a_final_stored_without_sources_takes_the_readers_opinions_before_it(organ_project):
    project, truths = organ_project
    before = {who: project.latest_version("ct01", annotator=who).id for who in ("alice", "bob")}
    final = project.save_mask_version("ct01", truths["ct01"], kind="final", annotator="lead")
    assert final_agreement._sources(final) == {}
    project.save_mask_version("ct01", truths["ct01"], kind="corrected", annotator="bob")  # after
    agreement = compare_with_finals(project)
    assert {p.reader: p.version_id for p in agreement.pairs} == before
    # a final with no reader's opinion before it has nothing to be compared with
    project.add_case("ct09", project.case("ct00").images)
    project.save_mask_version("ct09", truths["ct00"], kind="final", annotator="lead")
    assert compare_with_finals(project).unsourced == ["ct09"]
