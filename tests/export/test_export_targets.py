"""Where an export may be written: never over the project or its source images, and never
as a second nnU-Net dataset with an id already in use."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.export import ExportError, export_project
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


def test_nnunet_refuses_a_second_dataset_with_the_same_id(make_organ_project, tmp_path):
    folder, _, _ = make_organ_project(tmp_path / "proj", tmp_path / "ct", AFFINE)
    raw = tmp_path / "nnUNet_raw"
    with Project(folder) as project:
        export_project(project, "nnunet", raw, dataset_id=7, dataset_name="Liver")
        with pytest.raises(ExportError) as caught:
            export_project(project, "nnunet", raw, dataset_id=7, dataset_name="Organs")
        message = str(caught.value)
        assert "Dataset007_Liver" in message and "--dataset-id" in message
        assert "--dataset-name Liver" in message
        # nor with --overwrite: that replaces Dataset007_Organs, not the other dataset
        with pytest.raises(ExportError, match="Dataset007_Liver"):
            export_project(
                project, "nnunet", raw, dataset_id=7, dataset_name="Organs", overwrite=True
            )
        assert sorted(p.name for p in raw.iterdir()) == ["Dataset007_Liver"]
        # the same dataset again (with --overwrite) and another id are fine
        export_project(project, "nnunet", raw, dataset_id=7, dataset_name="Liver", overwrite=True)
        export_project(project, "nnunet", raw, dataset_id=8, dataset_name="Organs")
    assert sorted(p.name for p in raw.iterdir()) == ["Dataset007_Liver", "Dataset008_Organs"]
