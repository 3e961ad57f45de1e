"""``atlas-annotate demo``: refusing politely without a display, rendering headless."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from napari_atlas_annotate import cli
from napari_atlas_annotate.commands import demo


@pytest.fixture
def no_display(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_without_display_exits_2_and_says_what_to_do(no_display, tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no display found" in err
    assert "--headless" in err and "xvfb-run" in err
    assert not out.exists()  # refused before doing any work


def test_headless_without_xvfb_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(demo.shutil, "which", lambda name: None)
    assert cli.main(["demo", "--headless", "--out", str(tmp_path / "d")]) == 2
    assert "Xvfb is not installed" in capsys.readouterr().err


def test_has_display():
    if sys.platform.startswith("linux"):
        assert not demo.has_display({})
        assert demo.has_display({"DISPLAY": ":0"})
        assert demo.has_display({"WAYLAND_DISPLAY": "wayland-0"})


@pytest.mark.qt
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs the Xvfb binary")
def test_headless_writes_screenshot_and_summary(no_display, tmp_path, capsys):
    """Works with no display at all: the command brings its own Xvfb."""
    from PIL import Image

    out = tmp_path / "demo"
    assert cli.main(["demo", "--headless", "--out", str(out), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "demo_screenshot.png") in printed

    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["seed"] == 3
    tasks = [case["task"] for case in summary["cases"]]
    assert tasks.count("organs") == demo.N_CT and tasks.count("spine") == demo.N_MRI

    ct_layers = {layer["type"]: layer for layer in summary["viewers"]["ct"]}
    image, labels = ct_layers["image"], ct_layers["labels"]
    assert image["shape"] == labels["shape"] and len(image["shape"]) == 3
    assert image["spacing"] == labels["spacing"] and all(s > 0 for s in image["spacing"])
    assert "liver" in labels["classes_present"]
    study = summary["viewers"]["study"]
    assert {layer["name"] for layer in study} == {"Sagittal T1", "Sagittal T2/STIR", "Axial T2"}
    assert summary["seconds"]["total"] >= summary["seconds"]["render"] > 0

    for name in ("demo_screenshot.png", "demo_screenshot_lumbar.png"):
        pixels = np.asarray(Image.open(out / name).convert("RGB"), dtype=np.float32)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 200
        assert pixels.std() > 20, f"{name} looks blank"
    ct_shot = np.asarray(Image.open(out / "demo_screenshot.png").convert("RGB"), np.int16)
    coloured = np.abs(ct_shot[..., 0] - ct_shot[..., 2]) > 40  # organ overlay, not grey CT
    assert coloured.mean() > 0.01
