"""Export options a user can get wrong are refused before any case is read or written."""

from __future__ import annotations

import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.export import ExportError, export_project
from napari_atlas_annotate.export import project_export as pe
from napari_atlas_annotate.project import Project


@pytest.mark.parametrize("fraction", [1.0, 1.5, -0.1])
def test_bad_validation_fraction_is_refused_before_any_case_is_written(
    organ_project, tmp_path, monkeypatch, fraction
):
    written = []
    monkeypatch.setattr(pe, "_write_organ_case", lambda *a, **kw: written.append(a) or [])
    with Project(organ_project[0]) as project, pytest.raises(ExportError, match="validation"):
        export_project(project, "monai", tmp_path / "m", validation_fraction=fraction)
    assert written == [] and list(tmp_path.iterdir()) == []


def test_cli_names_the_option(organ_project, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(
            ["export", str(organ_project[0]), "--format", "monai", "--out", str(tmp_path / "m")]
            + ["--validation-fraction", "1"]
        )
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--validation-fraction" in err and "Traceback" not in err
    assert "0" in err and "1" in err


def test_a_reopened_case_is_skipped_saying_it_was_reopened(organ_project, tmp_path):
    import shutil

    from napari_atlas_annotate.review.adjudication import reopen

    folder = tmp_path / "proj"
    shutil.copytree(organ_project[0], folder)
    with Project(folder) as project:
        reopen(project, "case0", "lead", "aorta leaks into the spine")
        result = export_project(project, "monai", tmp_path / "m", status="final")
    skipped = {s.case_id: s for s in result.skipped}
    text = skipped["case0"].reason + "; " + skipped["case0"].hint
    assert "reopened" in text and "aorta leaks into the spine" in text and "lead" in text
    assert "no final mask version" not in text
    assert "--finalize case0" in text
