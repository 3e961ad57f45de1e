import json

import nibabel as nib
import numpy as np
import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.io import save_labels, save_nifti
from napari_atlas_annotate.project import Project
from napari_atlas_annotate.volume import Volume

AFFINE = np.array([[0, 0, -0.9, 50], [0, -0.9, 0, 60], [2.0, 0, 0, -20], [0, 0, 0, 1.0]])


@pytest.fixture
def images(tmp_path):
    paths = []
    for i in range(2):
        vol = Volume(np.full((6, 12, 10), i, np.int16), AFFINE, "CT")
        paths.append(save_nifti(vol, tmp_path / f"ct{i}.nii.gz"))
    return paths


def _project(tmp_path, images):
    proj = tmp_path / "proj"
    assert main(["init", str(proj), "--task", "organs"]) == 0
    assert main(["add", str(proj), *map(str, images)]) == 0
    return proj


def test_init_add_status(tmp_path, images, capsys):
    proj = _project(tmp_path, images)
    capsys.readouterr()
    assert main(["add", str(proj), str(images[0])]) == 0  # second time: skipped, not duplicated
    assert "skipped 1" in capsys.readouterr().out
    assert main(["status", str(proj), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in status["cases"]] == ["ct0", "ct1"]
    assert status["rounds"] == [] and status["task"] == "organs"


def test_init_records_the_annotators_border_tolerance(tmp_path, capsys):
    assert main(["init", str(tmp_path / "p"), "--task", "organs", "--label-tolerance", "1"]) == 0
    with Project(tmp_path / "p") as project:
        assert project.config.label_tolerance == 1
    capsys.readouterr()
    assert main(["status", str(tmp_path / "p"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label_tolerance"] == 1
    assert main(["status", str(tmp_path / "p")]) == 0
    assert "borders up to 1 voxel(s) off" in capsys.readouterr().out


def test_import_multilabel_and_per_class_folder(tmp_path, images, capsys):
    proj = _project(tmp_path, images)
    ref = Volume(np.zeros((6, 12, 10), np.int16), AFFINE)
    multi = np.zeros(ref.shape, np.uint8)
    multi[1:3, 2:5, 2:5] = 5  # liver
    save_labels(multi, ref, tmp_path / "multi.nii.gz")
    assert (
        main(
            [
                "import",
                str(proj),
                "--case",
                "ct0",
                "--annotator",
                "ann",
                str(tmp_path / "multi.nii.gz"),
            ]
        )
        == 0
    )
    folder = tmp_path / "segmentations"
    spleen = np.zeros(ref.shape, np.uint8)
    spleen[4, 6:9, 6:9] = 1
    save_labels(spleen, ref, folder / "spleen.nii.gz")
    save_labels((multi > 0).astype(np.uint8), ref, folder / "liver.nii.gz")
    assert main(["import", str(proj), "--case", "ct1", "--annotator", "bob", str(folder)]) == 0
    with Project(proj) as p:
        v0 = p.latest_version("ct0", annotator="ann")
        v1 = p.latest_version("ct1", annotator="bob")
        assert v0.kind == v1.kind == "imported"
        np.testing.assert_array_equal(p.read_mask(v0), multi)
        got = p.read_mask(v1)
        assert (got == 8).sum() == 9 and (got == 5).sum() == (multi > 0).sum()
        assert [a["action"] for a in p.audit_trail("ct1")] == ["import"]


def test_import_refusals_touch_nothing(tmp_path, images, capsys):
    proj = _project(tmp_path, images)
    bad_folder = tmp_path / "bad"
    ref = Volume(np.zeros((6, 12, 10), np.int16), AFFINE)
    save_labels(np.ones(ref.shape, np.uint8), ref, bad_folder / "livr.nii.gz")
    code = main(["import", str(proj), "--case", "ct0", "--annotator", "a", str(bad_folder)])
    err = capsys.readouterr().err
    assert code == 2 and "unknown class name(s) ['livr']" in err and "Nothing was imported" in err
    wrong = Volume(np.zeros((6, 12, 11), np.int16), AFFINE)
    save_labels(np.ones(wrong.shape, np.uint8), wrong, tmp_path / "wrong.nii.gz")
    code = main(
        ["import", str(proj), "--case", "ct0", "--annotator", "a", str(tmp_path / "wrong.nii.gz")]
    )
    assert code == 2 and "does not match" in capsys.readouterr().err
    shifted = Volume(np.zeros((6, 12, 10), np.int16), AFFINE.copy())
    shifted.affine[0, 3] += 5.0
    save_labels(np.ones(ref.shape, np.uint8), shifted, tmp_path / "shifted.nii.gz")
    code = main(
        ["import", str(proj), "--case", "ct0", "--annotator", "a", str(tmp_path / "shifted.nii.gz")]
    )
    assert code == 2 and "would not overlay" in capsys.readouterr().err
    with Project(proj) as p:
        assert p.versions() == []


def test_not_a_project_and_missing_case(tmp_path, images, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "not an annotation project" in capsys.readouterr().err
    proj = _project(tmp_path, images)
    code = main(["import", str(proj), "--case", "nope", "--annotator", "a", str(images[0])])
    assert code == 2 and "no case 'nope'" in capsys.readouterr().err


def test_label_nifti_written_on_image_grid(tmp_path, images):
    proj = _project(tmp_path, images)
    with Project(proj) as p:
        shape, _ = p.grid("ct0")
        v = p.save_mask_version("ct0", np.ones(shape, np.uint8), kind="proposal")
        img = nib.load(str(p.folder / v.path))
        ct = nib.load(str(images[0]))
        np.testing.assert_allclose(img.affine, ct.affine, atol=1e-5)
        assert img.shape == ct.shape and img.get_data_dtype() == np.uint8
