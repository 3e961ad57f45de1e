"""Edge cases of the models / propose command lines an ML engineer hits in a shell."""

import pytest

from napari_atlas_annotate.cli import main

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_rollback_to_an_empty_version_name_is_an_error_not_a_listing(organ_project, capsys):
    # `models P --rollback "$VERSION"` with VERSION unset listed the models and exited 0,
    # so a script believed it had rolled back
    assert main(["models", str(organ_project.folder), "--rollback", ""]) == 2
    captured = capsys.readouterr()
    assert "model versions" not in captured.out
    (line,) = captured.err.strip().splitlines()
    assert "error:" in line and "--rollback" in line, line


def test_propose_in_a_project_without_cases_says_to_add_some(tmp_path, capsys):
    folder = str(tmp_path / "empty")
    assert main(["init", folder, "--task", "organs"]) == 0
    capsys.readouterr()
    assert main(["propose", folder]) == 0
    out = capsys.readouterr().out
    assert "every case not final has a proposal" not in out, out
    assert "no cases yet" in out and f"atlas-annotate add {folder}" in out, out
