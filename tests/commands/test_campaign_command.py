"""``atlas-annotate campaign``'s options, without running a campaign (tests/test_campaign.py
runs one): a newcomer sizes a run from --help, so it names each default."""

from __future__ import annotations

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
