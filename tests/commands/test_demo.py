"""``atlas-annotate demo``: refusing politely without a display; headless, the real demo
projects with the starter models' proposals, rendered in the annotator dock and grade sheet."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from napari_atlas_annotate import cli
from napari_atlas_annotate.commands import demo
from napari_atlas_annotate.project import Project


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
def test_headless_opens_the_demo_projects_with_proposals(no_display, tmp_path, capsys):
    """Works with no display at all: the command brings its own Xvfb."""
    from PIL import Image

    out = tmp_path / "demo"
    assert cli.main(["demo", "--headless", "--out", str(out), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "demo_screenshot.png") in printed
    assert "mean Dice" in printed and "RSNA score" in printed

    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["seed"] == 3
    assert summary["organ_project"] == str(out / "organs")
    assert summary["spine_project"] == str(out / "spine")
    cases = summary["cases"]
    organs = [c for c in cases if c["task"] == "organs"]
    spine = [c for c in cases if c["task"] == "spine"]
    assert len(organs) == demo.N_CT and len(spine) == demo.N_MRI
    for case in organs:
        assert case["proposal_mean_dice"] > 0.5
    for case in spine:
        assert np.isfinite(case["rsna_score"])
    for group in (organs, spine):
        values = [c["uncertainty"] for c in group]
        assert values == sorted(values, reverse=True)  # printed in queue order

    # Each window opened the queue's first case with its starter-model proposal.
    for task, group in (("organs", organs), ("spine", spine)):
        opened = summary["opened"][task]
        assert opened["case"] == group[0]["id"]
        assert opened["queue"] == [c["id"] for c in group]
        assert opened["kind"] == "proposal" and opened["model_version"] == f"{task}-starter"

    layers = {layer["type"]: layer for layer in summary["viewers"]["organs"]}
    image, labels = layers["image"], layers["labels"]
    assert image["shape"] == labels["shape"] and len(image["shape"]) == 3
    assert image["spacing"] == labels["spacing"] and all(s > 0 for s in image["spacing"])
    assert "liver" in labels["classes_present"]
    spine_layers = summary["viewers"]["spine"]
    assert sum(layer["type"] == "image" for layer in spine_layers) == 3
    assert sum(layer.get("points", 0) for layer in spine_layers) == 25
    seconds = summary["seconds"]
    assert seconds["total"] >= seconds["build"] + seconds["render"] > 0

    for name in ("demo_screenshot.png", "demo_screenshot_lumbar.png"):
        pixels = np.asarray(Image.open(out / name).convert("RGB"), dtype=np.float32)
        assert pixels.shape[0] > 600 and pixels.shape[1] > 1000  # window with its dock
        assert pixels.std() > 20, f"{name} looks blank"
    for key in ("organs", "spine"):
        assert summary["screenshots"][key]["canvas_std"] > 20  # the image, not a blank canvas
    shot = np.asarray(Image.open(out / "demo_screenshot.png").convert("RGB"), np.int16)
    coloured = np.abs(shot[..., 0] - shot[..., 2]) > 40  # organ overlay, not grey CT
    assert coloured.mean() > 0.01
    sheet = np.asarray(Image.open(out / "demo_screenshot_lumbar.png").convert("RGB"), np.int16)
    green = (sheet[..., 1] - np.maximum(sheet[..., 0], sheet[..., 2])) > 40  # graded cells
    assert green.mean() > 0.005

    # A second run reuses the projects: same cases, no new proposals.
    with Project(out / "organs") as project:
        n_versions = len(project.versions())
    assert cli.main(["demo", "--headless", "--out", str(out), "--seed", "3"]) == 0
    assert "reusing" in capsys.readouterr().out
    with Project(out / "organs") as project:
        assert len(project.versions()) == n_versions


@pytest.mark.qt
@pytest.mark.slow
def test_interactive_opens_two_windows_on_the_first_cases(tmp_path, monkeypatch, qapp):
    """With a display (pytest-xvfb's): the organ dock and the spine grade sheet, each on
    its queue's first case with the proposal; napari's event loop is stubbed out."""
    import napari

    from napari_atlas_annotate._napari import demo_scene

    monkeypatch.setattr(demo, "N_CT", 1)
    monkeypatch.setattr(demo, "N_MRI", 1)
    docks = {}
    for name in ("show_organ_project", "show_spine_project"):
        original = getattr(demo_scene, name)

        def record(viewer, folder, annotator, _original=original, _name=name):
            docks[_name] = (viewer, _original(viewer, folder, annotator))
            return docks[_name][1]

        monkeypatch.setattr(demo_scene, name, record)
    seen = {}

    def fake_run():
        for name, (viewer, dock) in docks.items():
            seen[name] = (dock.annotator, dock.case_id, dock.last_error, len(viewer.layers))
        seen["sheet_base"] = docks["show_spine_project"][1].grade_sheet.session.base.kind
        seen["organ_base"] = docks["show_organ_project"][1].base.kind
        for viewer, _ in docks.values():
            viewer.close()

    monkeypatch.setattr(napari, "run", fake_run)
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out)]) == 0
    with Project(out / "organs") as organs, Project(out / "spine") as spine:
        first_organ, first_spine = organs.queue()[0].id, spine.queue()[0].id
    assert seen["show_organ_project"][:3] == ("demo", first_organ, None)
    assert seen["show_spine_project"][:3] == ("demo", first_spine, None)
    assert seen["show_organ_project"][3] == 2  # image + proposal labels
    assert seen["show_spine_project"][3] >= 3  # three series (+ points layers)
    assert seen["organ_base"] == seen["sheet_base"] == "proposal"
