"""What ``train`` prints about a round: which model scored what, which cases were held out,
and why a model was kept (an ML engineer reads this line to decide on a rollback)."""

from napari_atlas_annotate import rounds
from napari_atlas_annotate.training.round import RoundResult


def _result(promoted: bool, holdout: list[str], **extra) -> RoundResult:
    return RoundResult(
        round=2,
        model_version="organs-round2",
        promoted=promoted,
        previous_version="organs-round1",
        dice_new=0.91 if promoted else 0.87,
        dice_old=0.88,
        dice_per_class={},
        train_cases=["a", "b", "c"],
        holdout_cases=holdout,
        seconds=12.0,
        **extra,
    )


def test_the_round_line_names_the_held_out_cases_and_which_model_scored_what():
    line = rounds.describe_round(
        _result(False, ["ct_003"], voxels_to_edit_new=1344.0, voxels_to_edit_old=1163.0), "/p"
    )
    assert "held out: ct_003" in line, line
    # old -> new: the line says which model is on which side of the arrow
    assert "(organs-round1 -> organs-round2)" in line, line
    # why it was kept, in words, not only implied by two numbers
    assert "kept organs-round1 (organs-round2's Dice is not higher)" in line, line


def test_a_long_held_out_list_is_shortened_with_a_count():
    cases = [f"case_{i:03d}" for i in range(30)]
    line = rounds.describe_round(_result(True, cases))
    assert "held out: case_000, case_001" in line and "(20 more)" in line, line
    assert "case_029" not in line


def test_a_failed_round_recorded_without_a_message_says_so():
    # rounds stopped by Ctrl-C before it was recorded as such carry an empty error
    from napari_atlas_annotate.commands.status import round_line

    row = {
        "id": 1,
        "started_at": 0.0,
        "finished_at": 5.0,
        "metrics": {"status": "failed", "error": ""},
    }
    line = round_line(row, "/p", "organs-starter")
    assert "failed (no reason recorded)" in line, line
