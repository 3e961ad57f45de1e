"""A campaign on a dataset waiting to be annotated (``--pool``): each round the model
proposes every case not yet reviewed and the annotator reviews the queue's most uncertain
proposals first, as AbdomenAtlas sent its most doubtful cases to radiologists."""

from __future__ import annotations

import pytest

from napari_atlas_annotate.campaign import CampaignSettings, _pick, run_campaign
from napari_atlas_annotate.project import ImageRef, Project

from .conftest import campaign_on_one_thread


@pytest.fixture(scope="module")
def pool_campaign(tmp_path_factory):
    settings = CampaignSettings(
        cases=2,
        rounds=2,
        pool=5,
        shape=(24, 48, 48),
        eval_cases=1,
        device="cpu",
        epochs=1,
        iterations_per_epoch=2,
        spine=False,
    )
    return campaign_on_one_thread(settings, tmp_path_factory.mktemp("pool"))


def test_each_round_reviews_the_most_uncertain_proposals_not_yet_reviewed(pool_campaign):
    first, second = pool_campaign["rounds"]
    assert len(first["proposal_uncertainty"]) == 5  # the whole pool was proposed
    ranked = sorted(first["proposal_uncertainty"].items(), key=lambda kv: -kv[1])
    assert first["reviewed_cases"] == [cid for cid, _ in ranked[:2]]
    # round 2 proposes only what is left, with the model active then
    assert set(second["proposal_uncertainty"]) == set(first["proposal_uncertainty"]) - set(
        first["reviewed_cases"]
    )
    ranked = sorted(second["proposal_uncertainty"].items(), key=lambda kv: -kv[1])
    assert second["reviewed_cases"] == [cid for cid, _ in ranked[:2]]
    assert [r["pool_cases_reviewed"] for r in (first, second)] == [2, 4]


def test_what_is_left_wrong_in_the_pool_falls_as_cases_are_reviewed(pool_campaign):
    first, second = pool_campaign["rounds"]
    # a tolerance-0 annotator leaves reviewed cases exactly right: what is left is the
    # proposals of the cases not reviewed, over the whole pool
    assert first["dataset_wrong_voxels_per_case"] > second["dataset_wrong_voxels_per_case"] > 0
    assert first["dataset_wrong_voxels_per_case"] >= first["dataset_wrong_off_boundary_per_case"]


def test_the_order_added_is_the_baseline_and_a_short_pool_is_refused(tmp_path):
    project = Project.create(tmp_path / "p", task="organs")
    for i, u in enumerate([0.1, 0.9, 0.5]):
        project.add_case(f"c{i}", [ImageRef(str(tmp_path / f"c{i}.nii.gz"))])
        project.set_uncertainty(f"c{i}", u)
    ids = ["c0", "c1", "c2"]
    assert _pick(project, ids, CampaignSettings(cases=2, order="queue")) == ["c1", "c2"]
    assert _pick(project, ids, CampaignSettings(cases=2, order="added")) == ["c0", "c1"]
    project.close()
    with pytest.raises(ValueError, match="runs out before round 3"):
        run_campaign(CampaignSettings(cases=2, rounds=3, pool=5, spine=False), tmp_path / "x")
    with pytest.raises(ValueError, match="order must be one of"):
        run_campaign(CampaignSettings(order="random", spine=False), tmp_path / "y")
