"""Review metrics are computed once per set of readers' versions and kept in the project:
the review dock ranks every case read twice each time it opens."""

from __future__ import annotations

from napari_atlas_annotate.review import cases, readers
from napari_atlas_annotate.review.cases import review_case, review_project

from .conftest import perturb


def _no_reading(monkeypatch) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("the readers' labels were read again")

    monkeypatch.setattr(cases, "load_opinions", refuse)


def test_a_case_is_compared_once_per_set_of_versions(organ_project, monkeypatch):
    project, _ = organ_project
    ranked, _ = review_project(project, distances=False)
    assert [r.case_id for r in ranked] == ["ct01", "ct00"]
    first = ranked[1].to_dict()
    with monkeypatch.context() as m:
        _no_reading(m)
        assert review_case(project, "ct00", distances=False).to_dict() == first
        again, _ = review_project(project, distances=False)
    assert [r.to_dict() for r in again] == [r.to_dict() for r in ranked]

    # a reader's new version is compared afresh (and its old metrics dropped)
    bob = project.read_mask(project.latest_version("ct00", annotator="bob"))
    again = perturb(bob, "dilate_liver")
    project.save_mask_version("ct00", again, kind="corrected", annotator="bob")
    fresh = review_case(project, "ct00", distances=False)
    assert fresh.to_dict()["versions"] != first["versions"]
    assert fresh.masks.dice["liver"]["alice|bob"] < first["classes"]["liver"]["dice"]["alice|bob"]
    rows = project._db.execute("SELECT readers FROM agreement WHERE case_id = 'ct00'").fetchall()
    assert len(rows) == 1


def test_hd95_is_computed_when_asked_for_and_then_kept(organ_project, monkeypatch):
    project, _ = organ_project
    without = review_case(project, "ct00", distances=False)
    assert without.masks.hd95["liver"]["alice|bob"] is None
    with_hd = review_case(project, "ct00")  # the opened case's table shows HD95
    assert with_hd.masks.hd95["liver"]["alice|bob"] > 0  # bob's liver is a voxel larger
    with monkeypatch.context() as m:
        _no_reading(m)
        assert review_case(project, "ct00").to_dict() == with_hd.to_dict()
        # metrics with HD95 answer a request without it
        assert review_case(project, "ct00", distances=False).to_dict() == with_hd.to_dict()
    assert with_hd.masks.dice == without.masks.dice


def test_kept_metrics_are_the_metrics(organ_project):
    """What comes back from the database is what the comparison gave (every field)."""
    from napari_atlas_annotate.review.metrics import MaskAgreement, mask_agreement

    project, _ = organ_project
    versions = readers.annotator_versions(project, "ct01")
    masks = cases.load_masks(project, versions)
    computed = mask_agreement(
        masks, project.grid("ct01")[1], cases.class_names(project, masks), distances=True
    )
    review_case(project, "ct01")
    kept = readers.ReviewIndex(project).kept_agreement("ct01", versions, True)
    assert kept == computed and isinstance(kept, MaskAgreement)
    assert kept.worst_class() == computed.worst_class()
