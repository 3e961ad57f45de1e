"""End-to-end exports of small phantom projects in every format, read back and checked."""

from __future__ import annotations

import csv
import json

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.export import ExportError, export_project, select_versions
from napari_atlas_annotate.io import load_nifti, load_volume
from napari_atlas_annotate.project import Project
from napari_atlas_annotate.spine_grades import (
    CONDITION_DISPLAY,
    COORDINATE_COLUMNS,
    LEVEL_DISPLAY,
    SERIES_DESCRIPTION_COLUMNS,
    TRAIN_CSV_COLUMNS,
)
from napari_atlas_annotate.volume import LPS_TO_RAS


@pytest.fixture
def organs(organ_project):
    folder, truth = organ_project
    project = Project(folder)
    yield project, truth
    project.close()


def _overlays(path, volume, labels=None):
    """A NIfTI file read back sits on the image's exact grid (and holds ``labels``)."""
    back = load_nifti(path)
    assert back.shape == volume.shape
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-5)
    if labels is not None:
        np.testing.assert_array_equal(back.array, labels)
    return back


def test_selection_final_and_corrected(organs):
    project, _ = organs
    chosen, skipped = select_versions(project, "final")
    assert [s.case_id for s in chosen] == ["case0", "case2"]
    assert {s.case_id for s in skipped} == {"case1", "case3"}
    chosen, skipped = select_versions(project, "corrected")
    assert [(s.case_id, s.version.kind, s.annotator) for s in chosen] == [
        ("case0", "final", "lead"),
        ("case1", "corrected", "ann"),
        ("case2", "final", "lead"),
    ]
    assert [s.case_id for s in skipped] == ["case3"]


def test_selection_any_falls_back_to_the_models_proposal(organs):
    project, _ = organs
    chosen, skipped = select_versions(project, "any")
    assert skipped == []
    kinds = {s.case_id: (s.version.kind, s.version.model_version) for s in chosen}
    assert kinds["case1"] == ("corrected", None)  # a correction still wins over the proposal
    assert kinds["case3"] == ("proposal", "round-1")


def test_unreviewed_proposals_are_marked_in_the_seg_summary_and_provenance(
    organs, tmp_path, no_identifiers
):
    """An AbdomenAtlas-style release (--status any): the one case nobody corrected goes out
    as the model's proposal, and every place a user looks says so."""
    project, truth = organs
    result = export_project(project, "dicom-seg", tmp_path / "seg", status="any")
    assert result.cases == ["case0", "case1", "case2", "case3"]
    assert result.unreviewed == {"case3": "round-1"}
    summary = result.summary()
    assert "1 of the 4 exported case(s) are model proposals nobody has corrected (by round-1)" in (
        summary
    )
    proposal = pydicom.dcmread(result.root / "case3" / "segmentation.dcm")
    assert {s.SegmentAlgorithmType for s in proposal.SegmentSequence} == {"AUTOMATIC"}
    assert {s.SegmentAlgorithmName for s in proposal.SegmentSequence} == {"round-1"}
    [algorithm] = proposal.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence
    family = algorithm.AlgorithmFamilyCodeSequence[0]
    assert family.CodeMeaning == "Artificial Intelligence"
    assert proposal.SeriesDescription == "AI proposal, not reviewed"
    reviewed = pydicom.dcmread(result.root / "case1" / "segmentation.dcm")
    assert {s.SegmentAlgorithmType for s in reviewed.SegmentSequence} == {"MANUAL"}
    assert "SegmentAlgorithmName" not in reviewed.SegmentSequence[0]
    # the proposal's own labels (class 3 missing, as the fixture proposed), on its slices
    written = sorted((result.root / "case3" / "image").glob("*.dcm"))
    proposed = project.read_mask(project.latest_version("case3", kinds=("proposal",)))
    _seg_matches_per_source_instance(
        result.root / "case3" / "segmentation.dcm", written, proposed[::-1]
    )
    manifest = json.loads(result.manifest.read_text())
    assert manifest["status"] == "any"
    assert manifest["label_kinds"] == {"final": 2, "corrected": 1, "proposal": 1}
    entry = {c["case_id"]: c["label_version"] for c in manifest["cases"]}
    assert entry["case3"]["kind"] == "proposal" and entry["case3"]["model_version"] == "round-1"
    no_identifiers(result.root)


def test_abdomenatlas_layout_grid_and_provenance(organs, tmp_path, no_identifiers):
    project, truth = organs
    result = export_project(project, "abdomenatlas", tmp_path / "atlas", status="corrected")
    assert result.cases == ["case0", "case1", "case2"]
    assert [s.case_id for s in result.skipped] == ["case3"]
    for case_id in result.cases:
        image, labels = truth[case_id]
        case_dir = result.root / case_id
        ct = _overlays(case_dir / "ct.nii.gz", image)
        np.testing.assert_array_equal(ct.array, image.array)
        _overlays(case_dir / "combined_labels.nii.gz", image, labels)
        names = sorted(p.name for p in (case_dir / "segmentations").iterdir())
        assert names == sorted(f"{c}.nii.gz" for c in ABDOMEN_ATLAS_CLASSES)
        for value, name in enumerate(ABDOMEN_ATLAS_CLASSES, start=1):
            path = case_dir / "segmentations" / f"{name}.nii.gz"
            assert nib.load(path).get_data_dtype() == np.uint8
            _overlays(path, image, (labels == value).astype(np.uint8))
    manifest = json.loads(result.manifest.read_text())
    assert manifest["format"] == "abdomenatlas" and manifest["identifiers"] == "pseudonymised"
    assert manifest["skipped"] == [
        {"case_id": "case3", "reason": "no final, corrected or imported mask version"}
    ]
    entry = {c["case_id"]: c for c in manifest["cases"]}
    assert entry["case0"]["finalized_by"]["annotator"] == "lead"
    assert entry["case0"]["finalized_by"]["audit"][0]["action"] == "finalize"
    assert entry["case1"]["label_version"]["annotator"] == "ann"
    assert entry["case1"]["finalized_by"]["annotator"] is None
    assert entry["case0"]["model_versions"] == ["round-1"]
    assert entry["case0"]["annotators"] == ["ann", "lead"]
    import hashlib

    for case in manifest["cases"]:
        assert len(case["files"]) == 11
        for rel, digest in case["files"].items():
            data = (result.root / rel).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest["sha256"]
    assert "Doe" not in result.manifest.read_text()
    no_identifiers(result.root)


def test_nnunet_dataset(organs, tmp_path, no_identifiers):
    project, truth = organs
    out = tmp_path / "nnUNet_raw"
    result = export_project(
        project, "nnunet", out, status="final", dataset_id=7, dataset_name="Abdomen Atlas"
    )
    assert result.root == out / "Dataset007_Abdomen_Atlas"
    meta = json.loads((result.root / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "CT"}
    assert meta["labels"] == {
        "background": 0,
        **{c: i for i, c in enumerate(ABDOMEN_ATLAS_CLASSES, 1)},
    }
    assert meta["numTraining"] == 2 and meta["file_ending"] == ".nii.gz"
    assert sorted(p.name for p in (result.root / "imagesTr").iterdir()) == [
        "case0_0000.nii.gz",
        "case2_0000.nii.gz",
    ]
    for case_id in ("case0", "case2"):
        image, labels = truth[case_id]
        _overlays(result.root / "imagesTr" / f"{case_id}_0000.nii.gz", image)
        _overlays(result.root / "labelsTr" / f"{case_id}.nii.gz", image, labels)
    assert (result.root / "provenance.json").exists()
    no_identifiers(result.root)


def test_monai_datalist_split_is_deterministic(organs, tmp_path, no_identifiers):
    project, truth = organs
    a = export_project(
        project, "monai", tmp_path / "a", status="corrected", validation_fraction=0.34
    )
    b = export_project(
        project, "monai", tmp_path / "b", status="corrected", validation_fraction=0.34
    )
    data = json.loads((a.root / "datalist.json").read_text())
    assert data == json.loads((b.root / "datalist.json").read_text())
    entries = data["training"] + data["validation"]
    assert len(data["validation"]) == 1 and len(entries) == 3
    for entry in entries:
        case_id = entry["label"].split("/")[-1].removesuffix(".nii.gz")
        image, labels = truth[case_id]
        _overlays(a.root / entry["image"], image)
        _overlays(a.root / entry["label"], image, labels)
    no_identifiers(a.root)


def test_slicer_layout_reads_back_in_slicerio_on_the_ct_grid(organs, tmp_path, no_identifiers):
    slicerio = pytest.importorskip("slicerio")
    project, truth = organs
    result = export_project(project, "slicer", tmp_path / "s", status="corrected")
    assert len(result.cases) == 3
    for case_id in result.cases:
        image, labels = truth[case_id]
        case_dir = result.root / result.names[case_id]
        _overlays(case_dir / "ct.nii.gz", image)
        seg = slicerio.read_segmentation(str(case_dir / "segmentation.seg.nrrd"))
        # Slicer's own reading: IJK = the CT's (x, y, z), LPS
        ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(seg["ijkToLPS"])
        np.testing.assert_allclose(ras, nib.load(case_dir / "ct.nii.gz").affine, atol=1e-4)
        layers = seg["voxels"] if seg["voxels"].ndim == 4 else seg["voxels"][None]
        names = [s["name"] for s in seg["segments"]]
        assert names == [ABDOMEN_ATLAS_CLASSES[v - 1] for v in np.unique(labels) if v]
        for segment in seg["segments"]:
            mask = layers[segment["layer"]] == segment["labelValue"]
            value = ABDOMEN_ATLAS_CLASSES.index(segment["name"]) + 1
            np.testing.assert_array_equal(mask.transpose(2, 1, 0), labels == value)
    no_identifiers(result.root)


def _seg_matches_per_source_instance(seg_path, source_files, labels):
    """highdicom read-back: each source SOPInstanceUID's frame equals that slice's labels."""
    seg = hd.seg.segread(seg_path)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    for path in source_files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        k = int(ds.InstanceNumber) - 1  # write_dicom_series: instance k+1 is z slice k
        if ds.SOPInstanceUID not in referenced:
            assert not labels[k].any(), f"slice {k} has labels but no SEG frame"
            continue
        got = seg.get_pixels_by_source_instance([ds.SOPInstanceUID], combine_segments=True)[0]
        np.testing.assert_array_equal(got, labels[k], err_msg=f"slice {k}")
    return seg


def _seg_volume_on_image_grid(seg, image, labels):
    """highdicom's own volume of the SEG (its LPS affine, its slice order) lies on the
    image's grid: every SEG voxel centre is an image voxel centre (rows and columns along
    the image's, slices either way along z) and holds that voxel's label."""
    vol = seg.get_volume(combine_segments=True)
    ras = LPS_TO_RAS @ vol.affine
    n = vol.spatial_shape[0]
    corners = np.array([[0, 0, 0], [n - 1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    ours = image.world_to_index(corners @ ras[:3, :3].T + ras[:3, 3])
    np.testing.assert_allclose(ours, np.round(ours), atol=1e-3)
    ours = np.round(ours).astype(int)
    assert tuple(ours[2] - ours[0]) == (0, 1, 0) and tuple(ours[3] - ours[0]) == (0, 0, 1)
    assert ours[0, 1:].tolist() == [0, 0] and vol.spatial_shape[1:] == image.shape[1:]
    step = 1 if n == 1 else (ours[1, 0] - ours[0, 0]) // (n - 1)
    assert abs(step) == 1 and ours[1, 1:].tolist() == [0, 0]
    z = ours[0, 0] + step * np.arange(n)
    np.testing.assert_array_equal(vol.array, labels[z])


def test_dicom_seg_frames_on_the_right_slices(organs, tmp_path, no_identifiers):
    project, truth = organs
    result = export_project(project, "dicom-seg", tmp_path / "seg", status="corrected")
    for case_id in ("case0", "case1"):  # DICOM-sourced, axial and oblique
        image, labels = truth[case_id]
        source = sorted(project.resolve(project.case(case_id).images[0].path).glob("*.dcm"))
        seg = _seg_matches_per_source_instance(
            result.root / case_id / "segmentation.dcm", source, labels
        )
        assert [s.SegmentLabel for s in seg.SegmentSequence] == list(ABDOMEN_ATLAS_CLASSES)
        assert {s.SegmentAlgorithmType for s in seg.SegmentSequence} == {"MANUAL"}
        liver = seg.SegmentSequence[4]
        lab = hd.color.CIELabColor.from_dicom_value(liver.RecommendedDisplayCIELabValue)
        assert np.allclose(lab.to_rgb(), (160, 80, 45), atol=2)
        # The case id as a one-component PersonName (family name only: "case0^").
        assert seg.PatientID == case_id and seg.PatientName.family_name == case_id
        assert str(seg.PatientName) == f"{case_id}^"
        assert seg.PatientBirthDate == "" and "InstitutionName" not in seg
        # The volume highdicom rebuilds sits where our reader puts the image.
        _seg_volume_on_image_grid(seg, load_volume(source[0].parent), labels)
    # NIfTI-sourced (left-handed) case: a CT series is written and referenced.
    image, labels = truth["case2"]
    written = sorted((result.root / "case2" / "image").glob("*.dcm"))
    back = load_volume(result.root / "case2" / "image")
    np.testing.assert_allclose(
        back.index_to_world([[0, 0, 0], [7, 19, 17]]),
        image.index_to_world([[7, 0, 0], [0, 19, 17]]),
        atol=1e-4,
    )
    _seg_matches_per_source_instance(
        result.root / "case2" / "segmentation.dcm", written, labels[::-1]
    )
    manifest = json.loads(result.manifest.read_text())
    assert {c["case_id"]: c.get("image_written", False) for c in manifest["cases"]} == {
        "case0": False,
        "case1": False,
        "case2": True,
    }
    no_identifiers(result.root)


def test_keep_identifiers_keeps_them_in_dicom_seg(organs, tmp_path, identifiers):
    project, _ = organs
    result = export_project(
        project, "dicom-seg", tmp_path / "keep", status="final", keep_identifiers=True
    )
    seg = pydicom.dcmread(result.root / "case0" / "segmentation.dcm")
    assert str(seg.PatientName) == identifiers[0] and seg.PatientID == identifiers[1]


def test_rsna_csvs(spine_project, tmp_path, no_identifiers):
    folder, sheets = spine_project
    with Project(folder) as project:
        result = export_project(project, "rsna", tmp_path / "rsna", status="final")
        series_count = len(project.case("study0").images)
    assert result.cases == ["study0"] and [s.case_id for s in result.skipped] == ["study1"]
    with open(result.root / "train.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == TRAIN_CSV_COLUMNS and len(rows) == 1
    study_id = rows[0]["study_id"]
    assert study_id.isdigit() and study_id != "0"
    sheet = sheets["study0"]
    for (condition, level), grade in sheet.grades.items():
        assert rows[0][f"{condition}_{level}"] == (grade or "")
    assert rows[0]["right_subarticular_stenosis_l1_l2"] == ""
    with open(result.root / "train_series_descriptions.csv", newline="") as fh:
        series = list(csv.DictReader(fh))
    assert tuple(series[0].keys()) == SERIES_DESCRIPTION_COLUMNS
    assert len(series) == series_count and {r["study_id"] for r in series} == {study_id}
    ids = {r["series_description"]: r["series_id"] for r in series}
    assert set(ids) == {"Sagittal T1", "Sagittal T2/STIR", "Axial T2"}
    assert len(set(ids.values())) == 3
    with open(result.root / "train_label_coordinates.csv", newline="") as fh:
        coords = list(csv.DictReader(fh))
    assert tuple(coords[0].keys()) == COORDINATE_COLUMNS and len(coords) == len(sheet.points)
    for row in coords:
        match = [
            (c, lv, p)
            for (c, lv), p in sheet.points.items()
            if CONDITION_DISPLAY[c] == row["condition"] and LEVEL_DISPLAY[lv] == row["level"]
        ]
        assert len(match) == 1
        point = match[0][2]
        assert row["series_id"] == ids[point.series]
        assert int(row["instance_number"]) == point.instance
        assert float(row["x"]) == point.x and float(row["y"]) == point.y
    # Pseudonyms are stable from one export to the next.
    with Project(folder) as project:
        again = export_project(project, "rsna", tmp_path / "rsna2", status="final")
    assert (again.root / "train.csv").read_bytes() == (result.root / "train.csv").read_bytes()
    no_identifiers(result.root)


def test_refuses_existing_folder_wrong_format_and_nothing_partial(organs, spine_project, tmp_path):
    project, _ = organs
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old export")
    with pytest.raises(ExportError, match="already exists and is not empty"):
        export_project(project, "abdomenatlas", out)
    # --overwrite replaces only an earlier export: a folder of other files is never deleted
    with pytest.raises(ExportError, match="is not an earlier export"):
        export_project(project, "abdomenatlas", out, overwrite=True)
    assert (out / "old.txt").read_text() == "old export"
    (out / "old.txt").unlink()
    export_project(project, "abdomenatlas", out)
    (out / "stray.txt").write_text("left in an earlier export")
    result = export_project(project, "abdomenatlas", out, overwrite=True)
    assert not (out / "stray.txt").exists() and (out / "case0" / "ct.nii.gz").exists()
    with pytest.raises(ExportError, match="use --format rsna"):
        with Project(spine_project[0]) as spine:
            export_project(spine, "nnunet", tmp_path / "x")
    with pytest.raises(ExportError, match="use --format abdomenatlas"):
        export_project(project, "rsna", tmp_path / "y")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    # No staging leftovers beside the published export.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert result.manifest == out / "provenance.json"


def test_rsna_export_of_a_study_folder_keeps_imported_points_on_their_series(tmp_path):
    """A lumbar study added as a whole folder (images point at the study folder), its
    Axial T2 one series of three angled stacks, RSNA grades and points imported (points
    name their series by RSNA series_id): the exported coordinates name the exported
    series_id of each point's own series, and the Axial T2 is one series in the CSV."""
    from napari_atlas_annotate.phantoms import write_phantoms
    from napari_atlas_annotate.project.importing import import_labels
    from napari_atlas_annotate.project.sources import find_cases
    from napari_atlas_annotate.spine_grades import LEVELS, SERIES_FOR_CONDITION

    write_phantoms(tmp_path / "ph", 0, 1, 4, axial_stacks=LEVELS[2:])
    project = Project.create(tmp_path / "proj", task="spine")
    [case] = find_cases([tmp_path / "ph" / "spine" / "train_images"], "spine").cases
    assert len({ref.path for ref in case.images}) == 1  # every image is the study folder
    project.add_case(case.id, case.images, truth=case.truth, source=case.source)
    spine = tmp_path / "ph" / "spine"
    coordinates = spine / "train_label_coordinates.csv"
    import_labels(project, case.id, "reader", spine / "train.csv", points=coordinates)
    result = export_project(project, "rsna", tmp_path / "rsna", status="corrected")
    project.close()
    with open(result.root / "train_series_descriptions.csv", newline="") as fh:
        ids = {r["series_description"]: r["series_id"] for r in csv.DictReader(fh)}
    assert sorted(ids) == ["Axial T2", "Sagittal T1", "Sagittal T2/STIR"]
    with open(result.root / "train_label_coordinates.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(coordinates, newline="") as fh:
        imported = {(r["condition"], r["level"]): r for r in csv.DictReader(fh)}
    assert len(rows) == 25
    names = {display: c for c, display in CONDITION_DISPLAY.items()}
    for row in rows:
        condition = names[row["condition"]]
        assert row["series_id"] == ids[SERIES_FOR_CONDITION[condition]], row
        want = imported[(row["condition"], row["level"])]
        assert row["instance_number"] == want["instance_number"]


def test_provenance_lists_a_reopen_between_two_finals(organs, tmp_path):
    from napari_atlas_annotate.review.adjudication import finalize, reopen

    project, _ = organs
    reopen(project, "case0", "lead", "spleen tip missed")
    finalize(project, "case0", "lead", {"all": "ann"})
    result = export_project(project, "abdomenatlas", tmp_path / "atlas", status="final")
    manifest = json.loads(result.manifest.read_text())
    [case0] = [c for c in manifest["cases"] if c["case_id"] == "case0"]
    actions = [a["action"] for a in case0["finalized_by"]["audit"]]
    assert actions[-2:] == ["reopen", "finalize"] and actions.count("finalize") >= 1
    assert "spleen tip missed" not in result.manifest.read_text()  # no detail text
