"""The campaign summary ``status`` prints before the case list."""

import numpy as np

from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.project.progress import campaign_progress, progress_lines
from napari_atlas_annotate.volume import Volume

#: States in which a person holds a version of the case (unless a row says otherwise).
_OWN = ("submitted", "imported", "final")


def _case(case_id, proposals, final, **annotators):
    """Each annotator as ``(role, state, edits, seconds[, versions])``."""
    rows = {}
    for name, (role, state, edits, seconds, *versions) in annotators.items():
        rows[name] = {
            "role": role,
            "state": state,
            "versions": versions[0] if versions else int(state in _OWN),
            "edits": edits,
            "seconds": seconds,
        }
    return {
        "id": case_id,
        "uncertainty": None,
        "proposals": proposals,
        "final": final,
        "annotators": rows,
    }


def test_progress_counts_states_work_and_time_per_case_worked_on():
    status = {
        "cases": [
            _case("a", 1, False, lee=("annotator", "submitted", 40, 600.0)),
            _case(
                "b", 2, True, lee=("annotator", "final", 10, 300.0), wu=("lead", "final", 3, 30.0)
            ),
            _case("c", 0, False, lee=("annotator", "in_progress", 5, 7500.0)),
            _case("d", 0, False, lee=("annotator", "new", 0, 0.0)),
        ]
    }
    progress = campaign_progress(status)
    assert (progress["cases"], progress["proposed"], progress["final"]) == (4, 2, 1)
    lee = progress["people"]["lee"]
    assert lee["states"] == {"in_progress": 1, "submitted": 1, "final": 1, "new": 1}
    assert (lee["edits"], lee["seconds"], lee["cases_worked"]) == (55, 8400.0, 3)
    assert progress_lines(progress) == [
        "2 of 4 proposed, 1 final (25.0 %)",
        "lee: 1 in progress, 1 submitted, 1 final, 1 new; 55 edits, 2.3 h on task "
        "(47 min per case worked on)",
        "wu (lead): 1 final; 3 edits, 30 s on task (30 s per case worked on)",
    ]


def test_an_empty_project_has_no_share_to_divide():
    progress = campaign_progress({"cases": []})
    assert progress_lines(progress) == ["0 of 0 proposed, 0 final"]


def test_a_final_case_counts_as_final_only_for_those_who_made_a_version_of_it():
    # kim submitted a and b, not c; the lead finalized all three (c from lee's version):
    # c needs nothing more from kim, but it is not kim's work
    status = {
        "cases": [
            _case("a", 0, True, kim=("annotator", "final", 4, 60.0), wu=("lead", "final", 0, 0)),
            _case("b", 0, True, kim=("annotator", "final", 2, 30.0), wu=("lead", "final", 0, 0)),
            _case(
                "c",
                0,
                True,
                kim=("annotator", "final", 1, 10.0, 0),  # a few strokes, never submitted
                lee=("annotator", "final", 9, 90.0),
                wu=("lead", "final", 0, 0),
            ),
        ]
    }
    people = campaign_progress(status)["people"]
    assert people["kim"]["states"] == {"final": 2, "final_without_them": 1}
    assert people["lee"]["states"] == {"final": 1}
    assert people["wu"]["states"] == {"final": 3}
    assert (people["kim"]["edits"], people["kim"]["cases_worked"]) == (7, 3)  # work still counts
    assert progress_lines(campaign_progress(status))[1] == (
        "kim: 2 final, 1 final without them; 7 edits, 100 s on task (33 s per case worked on)"
    )


def test_status_of_a_project_counts_finals_per_person_who_made_a_version(tmp_path):
    ref = save_nifti(Volume(np.zeros((2, 3, 4), np.int16), np.eye(4), "CT"), tmp_path / "ct.nii")
    with Project.create(tmp_path / "p", task="organs") as p:
        ones = np.ones((2, 3, 4), np.uint8)
        for case_id in ("a", "b", "c"):
            p.add_case(case_id, [ImageRef(str(ref), "ct")])
        p.ensure_annotator("kim")
        p.ensure_annotator("lee")
        p.ensure_annotator("wu", role="lead")
        for case_id in ("a", "b"):
            p.save_mask_version(case_id, ones, kind="corrected", annotator="kim")
        for case_id in ("a", "b", "c"):
            p.save_mask_version(case_id, ones, kind="corrected", annotator="lee")
            p.save_mask_version(case_id, ones, kind="final", annotator="wu")
        status = p.status()
        assert p.case_state("c", "kim") == "final"  # the dock's queue: nothing left to do
    people = campaign_progress(status)["people"]
    assert people["kim"]["states"] == {"final": 2, "final_without_them": 1}
    assert people["lee"]["states"] == {"final": 3}
    assert people["wu"]["states"] == {"final": 3}
