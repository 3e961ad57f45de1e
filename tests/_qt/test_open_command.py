"""``atlas-annotate open``: checks before any window, clear exit codes."""

from __future__ import annotations

import pytest

from napari_atlas_annotate import cli


def test_no_display_exits_2_with_a_message(organ_project, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert cli.main(["open", str(organ_project.folder), "--annotator", "alice"]) == 2
    err = capsys.readouterr().err
    assert "no display" in err and "xvfb-run" in err


def test_not_a_project_exits_2_before_any_window(tmp_path, capsys):
    assert cli.main(["open", str(tmp_path), "--annotator", "alice"]) == 2
    assert "not an annotation project" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unknown_case_exits_2(organ_project, capsys):
    assert cli.main(["open", str(organ_project.folder), "--annotator", "a", "--case", "x"]) == 2
    assert "no case 'x'" in capsys.readouterr().err


def test_annotator_is_required(organ_project):
    with pytest.raises(SystemExit):
        cli.main(["open", str(organ_project.folder)])


def test_open_with_three_views_shows_them_and_saves_the_window(
    organ_project, tmp_path, monkeypatch, make_napari_viewer
):
    """`open --three-views --screenshot`: the case opens with its coronal and sagittal views
    (the dock's box ticked, nothing reported) and the window is saved."""
    pytest.importorskip("napari_orthogonal_views")
    import napari

    from napari_atlas_annotate._qt import annotator

    # the command's viewer made by napari's fixture: a viewer made outside it leaves napari's
    # plugin registry in a state that a later viewer outside it fails on (the demo's)
    monkeypatch.setattr(napari, "Viewer", lambda **kw: make_napari_viewer(show=True, **kw))
    docks = []

    def keep(*args, **kwargs):
        docks.append(add(*args, **kwargs))
        return docks[-1]

    add = annotator.add_annotator_dock
    monkeypatch.setattr(annotator, "add_annotator_dock", keep)
    shot = tmp_path / "window.png"
    argv = ["open", str(organ_project.folder), "--annotator", "alice", "--three-views"]
    assert cli.main([*argv, "--screenshot", str(shot)]) == 0
    [dock] = docks
    assert dock.three_views.isChecked() and dock.last_error is None
    assert shot.stat().st_size > 10_000
