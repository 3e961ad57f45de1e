"""The campaign summary ``status`` prints before the case list."""

from napari_atlas_annotate.project.progress import campaign_progress, progress_lines


def _case(case_id, proposals, final, **annotators):
    rows = {
        name: {"role": role, "state": state, "versions": 0, "edits": edits, "seconds": seconds}
        for name, (role, state, edits, seconds) in annotators.items()
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
