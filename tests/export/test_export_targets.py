"""Where an export may be written: never over the project or its source images."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.export import export_project
from napari_atlas_annotate.project import Project

AFFINE = np.array([[0, 0, -0.8, 10], [0, -0.7, 0, 20], [2.5, 0, 0, -30], [0, 0, 0, 1.0]])


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("source", ["dicom", "nifti"])
def test_overwrite_never_replaces_the_project_or_its_images(
    make_organ_project, tmp_path, capsys, source
):
    work = tmp_path / "work"
    folder, _, _ = make_organ_project(work / "proj", work / "data" / "ct", AFFINE, source=source)
    before = _files(work)
    # the folder holding project and images, the images' folder, the project, a folder in it
    for out in (work, work / "data", folder, folder / "export"):
        code = main(["export", str(folder), "--format", "monai", "--out", str(out), "--overwrite"])
        err = capsys.readouterr().err
        assert code == 2, out
        assert str(out) in err and "choose an --out folder outside" in err.lower()
        assert err.count("\n") == 1  # one 'error:' line, no traceback
    assert _files(work) == before
    with Project(folder) as project:
        result = export_project(project, "monai", tmp_path / "elsewhere", overwrite=True)
    assert result.cases == ["ct"]
