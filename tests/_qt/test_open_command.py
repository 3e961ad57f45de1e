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
