"""Exports of projects built from the package's own phantoms (phantoms.write_phantoms),
with the DICOM headers carrying known patient identifiers."""

from __future__ import annotations

import json

import highdicom as hd
import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.export import export_project
from napari_atlas_annotate.io import load_nifti
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.spine_grades import read_coordinates_csv, read_grades_csv

phantom_writer = pytest.importorskip("napari_atlas_annotate.phantoms.writer")
importing = pytest.importorskip("napari_atlas_annotate.project.importing")


@pytest.fixture(scope="module")
def phantom_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantoms")
    manifest = phantom_writer.write_phantoms(out, 1, 1, 11, fmt="dicom", ct_shape=(16, 48, 48))
    for path in out.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID = "Doe^Jane", "PID-12345"
        ds.save_as(path)
    return out, json.loads(manifest.read_text())["cases"]


def test_organ_phantom_every_format(phantom_set, tmp_path, no_identifiers):
    out, cases = phantom_set
    entry = next(c for c in cases if c["task"] == "organs")
    project = Project.create(tmp_path / "proj", task="organs", classes=entry["classes"])
    image_dir = out / entry["images"][0]["path"]
    project.add_case(entry["id"], [ImageRef(str(image_dir), entry["images"][0]["description"])])
    truth = load_nifti(out / entry["label"]).array
    version = project.save_mask_version(entry["id"], truth, kind="final", annotator="lead")
    project.record_audit(entry["id"], "lead", "finalize", version=version.id)
    image = project.load_image(entry["id"])
    for fmt in ("abdomenatlas", "nnunet", "monai", "dicom-seg"):
        result = export_project(project, fmt, tmp_path / fmt)
        assert result.cases == [entry["id"]]
        no_identifiers(result.root)
    combined = load_nifti(tmp_path / "abdomenatlas" / entry["id"] / "combined_labels.nii.gz")
    np.testing.assert_array_equal(combined.array, truth)
    np.testing.assert_allclose(combined.affine, image.affine, atol=1e-5)
    seg = hd.seg.segread(tmp_path / "dicom-seg" / entry["id"] / "segmentation.dcm")
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    for k, uid in enumerate(image.metadata["sop_instance_uids"]):
        if uid in referenced:
            got = seg.get_pixels_by_source_instance([uid], combine_segments=True)[0]
            np.testing.assert_array_equal(got, truth[k])
        else:
            assert not truth[k].any()
    project.close()


def test_spine_phantom_rsna_round_trip(phantom_set, tmp_path, no_identifiers):
    out, cases = phantom_set
    entry = next(c for c in cases if c["task"] == "spine")
    project = Project.create(tmp_path / "proj", task="spine")
    refs = [ImageRef(str(out / i["path"]), i["description"]) for i in entry["images"]]
    project.add_case(entry["id"], refs)
    sheet = importing.read_grade_sheet(
        out / entry["grades"], entry["study_id"], out / entry["points"]
    )
    project.save_grades_version(entry["id"], sheet, kind="final", annotator="lead")
    pseudo = export_project(project, "rsna", tmp_path / "pseudo")
    no_identifiers(pseudo.root)
    assert str(entry["study_id"]) not in (pseudo.root / "train.csv").read_text()
    kept = export_project(project, "rsna", tmp_path / "kept", keep_identifiers=True)
    project.close()
    # With identifiers kept, the export reproduces the phantom's own RSNA truth files.
    assert read_grades_csv(kept.root / "train.csv") == read_grades_csv(out / entry["grades"])
    assert sorted(
        read_coordinates_csv(kept.root / "train_label_coordinates.csv"), key=str
    ) == sorted(read_coordinates_csv(out / entry["points"]), key=str)
    # Pseudonymised: same grades and points under the pseudonyms.
    (grades,) = read_grades_csv(pseudo.root / "train.csv").values()
    (truth_grades,) = read_grades_csv(out / entry["grades"]).values()
    assert grades == truth_grades
    points = read_coordinates_csv(pseudo.root / "train_label_coordinates.csv")
    assert len(points) == len(read_coordinates_csv(out / entry["points"]))
