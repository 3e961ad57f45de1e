"""``atlas-annotate propose``'s output: summary lines count in words (one case, two cases),
and a batch of a big project is summed up, not a line per case (the whole command runs in
tests/training/test_commands.py)."""

from napari_atlas_annotate.commands.propose import failures_line, queue_line


def test_the_failure_line_says_case_and_was_for_one():
    assert failures_line(1, 1) == "1 case could not be proposed (1 was)"
    assert failures_line(2, 1) == "2 cases could not be proposed (1 was)"
    assert failures_line(1, 2) == "1 case could not be proposed (2 were)"
    assert failures_line(3, 0) == "3 cases could not be proposed (0 were)"


def test_the_queue_line_counts_final_cases_and_the_rest():
    assert queue_line(["a", "b"], 0) == "queue (most doubtful first): a, b"
    assert queue_line(["a"], 1) == "queue (most doubtful first; 1 final case left out): a"
    assert queue_line([], 2) == (
        "queue (most doubtful first; 2 final cases left out): nothing to annotate"
    )
    ids = [f"c{i}" for i in range(22)]
    assert queue_line(ids, 0, shown=20).endswith(", c19, ... (2 more)")
    assert queue_line(ids[:21], 0, shown=20).endswith(", c19, ... (1 more)")


def _proposals(n, warning=""):
    from napari_atlas_annotate.models.proposals import CaseProposal

    return [
        CaseProposal(
            case_id=f"c{i:02d}",
            version_id=100 + i,
            model_version="organs-round2" if i % 2 else "organs-round1",
            uncertainty=i / 100,
            seconds=2.0,
            uncertainty_path=None,
            unchanged=i < 3,
            warning=warning,
        )
        for i in range(n)
    ]


def test_a_big_batch_is_summed_up_in_one_line(capsys):
    from napari_atlas_annotate.commands import propose

    propose._print_results(_proposals(propose.LISTED + 5))
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "25 proposals (3 unchanged, 22 new) by organs-round1, organs-round2; uncertainty "
        "0.0000 to 0.2400 (median 0.1200); 50 s in all, 2.0 s a case (--json lists each)"
    ]


def test_a_small_batch_lists_each_case(capsys):
    from napari_atlas_annotate.commands import propose

    propose._print_results(_proposals(2))
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "c00: proposal version 100 by organs-round1 (unchanged, uncertainty 0.0000, 2.0 s)",
        "c01: proposal version 101 by organs-round2 (unchanged, uncertainty 0.0100, 2.0 s)",
    ]


def test_many_warnings_are_cut_to_the_first_and_a_count(capsys):
    from napari_atlas_annotate.commands import propose

    propose._print_results(_proposals(propose.LISTED + 3, warning="values do not look like HU"))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == propose.LISTED + 1
    assert err[0] == "warning: c00: values do not look like HU"
    assert err[-1] == (
        "warning: 3 more cases have warnings: c20, c21, c22 (--json gives each case's)"
    )


def test_the_progress_line_says_how_long_the_rest_takes():
    from napari_atlas_annotate.commands.propose import time_left

    assert time_left(8.0, 1, 20_000) == "; about 44.4 h left"
    assert time_left(80.0, 10, 100) == "; about 12 min left"
    assert time_left(10.0, 1, 3) == "; about 20 s left"
    assert time_left(5.0, 4, 4) == ""  # done
    assert time_left(0.0, 0, 4) == ""  # nothing to go by yet


def test_many_failures_are_cut_to_the_first_and_a_count(capsys):
    from napari_atlas_annotate.commands import propose

    failures = {f"c{i:02d}": f"case c{i:02d}: image missing" for i in range(propose.LISTED + 7)}
    propose._print_failures(failures, 3)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "atlas-annotate propose: 27 cases could not be proposed (3 were):"
    assert err[1] == "  case c00: image missing"
    assert len(err) == propose.LISTED + 2
    assert err[-1] == "  ... and 7 more: c20, c21, c22, c23, c24 and 2 more (--json lists each)"


def test_a_case_named_twice_is_proposed_once():
    from napari_atlas_annotate.commands.propose import case_ids

    # "--cases ct_000,ct_000" proposed it twice
    assert case_ids(["ct_000,ct_000", "ct_001", "ct_000"]) == ["ct_000", "ct_001"]


def test_every_unknown_case_is_named(tmp_path):
    import pytest

    from napari_atlas_annotate.models.proposals import check_case_ids
    from napari_atlas_annotate.project import Project, ProjectError

    with Project.create(tmp_path / "p", task="organs") as project:
        with pytest.raises(ProjectError, match="no cases 'a', 'b' in project"):
            check_case_ids(project, ["a", "b"])
        with pytest.raises(ProjectError, match="'a'"):
            check_case_ids(project, ["a"])
