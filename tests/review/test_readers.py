"""ReviewIndex answers as the per-case queries do, on a project with every reader state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.grade_sheet import GradeSheet
from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.review import finalize, reopen
from napari_atlas_annotate.review.agreement_cache import keep_agreement
from napari_atlas_annotate.review.cases import review_case, review_project
from napari_atlas_annotate.review.readers import ReviewIndex, annotator_versions, readers_key
from napari_atlas_annotate.volume import Volume

SHAPE = (4, 8, 8)


def _label(value: int, z: int = 0) -> np.ndarray:
    out = np.zeros(SHAPE, np.uint8)
    out[z, 2:6, 2:6] = value
    return out


@pytest.fixture
def project(tmp_path):
    """Cases with no reader, one, two, three; a reader's second submission; an import
    under a reader's own submission; a final; a final reopened; finalized again after a
    reopen; grades saved in an organ project (not an opinion); metrics kept with and
    without HD95 and for older versions."""
    image = save_nifti(Volume(np.zeros(SHAPE, np.int16), np.eye(4)), tmp_path / "ct.nii.gz")
    p = Project.create(tmp_path / "p", task="organs", classes=list(ABDOMEN_ATLAS_CLASSES))
    for i in range(8):
        p.add_case(f"c{i}", [ImageRef(str(image), "CT")])
    p.save_mask_version("c0", _label(1), kind="proposal", model_version="m")
    p.save_mask_version("c1", _label(1), kind="corrected", annotator="ann")
    for case in ("c2", "c3", "c4", "c5", "c6", "c7"):
        p.save_mask_version(case, _label(1), kind="imported", annotator="ann")
        p.save_mask_version(case, _label(2), kind="corrected", annotator="bob")
    p.save_mask_version("c3", _label(3, z=1), kind="corrected", annotator="bob")  # again
    p.save_mask_version("c3", _label(1, z=2), kind="corrected", annotator="cy")
    p.save_mask_version("c4", _label(1), kind="corrected", annotator="ann")  # over her import
    p.save_grades_version("c4", GradeSheet(), kind="corrected", annotator="dee")
    finalize(p, "c5", "lead", {"all": "ann"})
    finalize(p, "c6", "lead", {"all": "bob"})
    reopen(p, "c6", "lead", "wrong side")
    finalize(p, "c7", "lead", {"all": "bob"})
    reopen(p, "c7", "lead", "check")
    finalize(p, "c7", "lead", {"all": "ann"}, comment="checked")
    review_case(p, "c2", distances=False)  # kept without HD95
    review_case(p, "c3", distances=True)  # kept with
    old = {"ann": p.versions("c2", annotator="ann")[0], "bob": p.versions("c2")[0]}
    keep_agreement(p, "c4", old, False, review_case(p, "c2", distances=False).masks)
    yield p
    p.close()


def test_the_index_gives_what_each_case_asks_the_database(project):
    index = ReviewIndex(project)
    assert index.case_ids == [c.id for c in project.cases()]
    readers_seen = set()
    for case_id in index.case_ids:
        one = ReviewIndex(project, case_id)
        versions = annotator_versions(project, case_id)
        readers_seen.add(len(versions))
        records = [r for r in project.audit_trail(case_id) if r["action"] in ("finalize", "reopen")]
        final = project.current_final(case_id, "mask")
        for ix in (index, one):
            assert ix.knows(case_id)
            assert ix.readers(case_id) == versions
            assert ix.final_id(case_id) == (final.id if final else None)
            assert ix.decision_records(case_id) == records
            for distances in (False, True):
                row = project._db.execute(  # the kept metrics, as a lookup of one case
                    "SELECT metrics FROM agreement WHERE case_id = ? AND readers = ? AND "
                    "distances >= ? ORDER BY distances DESC LIMIT 1",
                    (case_id, readers_key(versions), int(distances)),
                ).fetchone()
                kept = ix.kept_agreement(case_id, versions, distances)
                assert ix.is_kept(case_id, versions, distances) == (row is not None)
                assert (kept.to_dict() if kept else None) == (
                    json.loads(row["metrics"]) if row else None
                )
    assert readers_seen == {0, 1, 2, 3}
    assert not index.knows("nope") and not ReviewIndex(project, "nope").knows("nope")
    # the states the fixture set up are there to be compared
    assert index.final_id("c5") is not None and index.final_id("c6") is None
    actions = [r["action"] for r in index.decision_records("c7")]
    assert actions == ["finalize", "reopen", "finalize"]
    assert "dee" not in index.readers("c4")
    assert index.is_kept("c3", index.readers("c3"), True)
    assert index.is_kept("c2", index.readers("c2"), False)
    assert not index.is_kept("c2", index.readers("c2"), True)
    assert not index.is_kept("c4", index.readers("c4"), False)  # kept for older versions


def test_ranking_from_the_index_is_the_ranking_case_by_case(project):
    reviews, skipped = review_project(project, distances=False)
    assert [r.case_id for r in reviews] and {s["id"] for s in skipped} == {"c0", "c1"}
    for review in reviews:
        alone = review_case(project, review.case_id, distances=False)
        assert review.to_dict() == alone.to_dict()
        assert review.history == alone.history
    with pytest.raises(Exception, match="nope"):
        review_project(project, ["c2", "nope"])
