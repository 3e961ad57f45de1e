"""``atlas-annotate campaign``'s options, without running a campaign (tests/test_campaign.py
runs one): a newcomer sizes a run from --help, so it names each default."""

from __future__ import annotations

import json

import pytest

from napari_atlas_annotate.campaign import CampaignSettings
from napari_atlas_annotate.cli import main


def test_help_names_the_defaults_that_decide_how_long_a_campaign_takes(capsys):
    with pytest.raises(SystemExit) as done:
        main(["campaign", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for default in (
        "(default 6)",  # --cases
        "(default 3)",  # --rounds
        "(default 96 160 160;",  # --shape
        "(default 4)",  # --eval-cases
        f"(default {CampaignSettings().epochs})",  # --epochs
    ):
        assert default in text, default
    assert "kept" in text  # the default --out folder is not deleted afterwards


@pytest.mark.parametrize("argv", [["--eval-cases", "0"], ["--epochs", "0"], ["--rounds", "0"]])
def test_settings_that_measure_nothing_are_refused(capsys, argv):
    # --eval-cases 0 --epochs 0 ran, "trained" with 0 iterations and printed NaN in --json
    with pytest.raises(SystemExit) as stopped:
        main(["campaign", *argv])
    assert stopped.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_the_json_report_is_strict():
    from napari_atlas_annotate.commands.campaign import _strict

    report = {"rounds": [{"mean_dice": float("nan"), "dice_per_class": {"liver": 0.9}}]}
    text = json.dumps(_strict(report), allow_nan=False)
    assert json.loads(text)["rounds"][0] == {"mean_dice": None, "dice_per_class": {"liver": 0.9}}
