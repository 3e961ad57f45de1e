"""``atlas-annotate propose``'s summary lines count in words: one case, two cases (the whole
command runs in tests/training/test_commands.py)."""

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
