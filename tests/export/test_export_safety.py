"""The export's guards: NIfTI writer fidelity, identifier leaks caught, mirrored SEG frames
caught, the CLI."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.export import ExportError, dicom_seg, export_project
from napari_atlas_annotate.export.monai_datalist import split_cases
from napari_atlas_annotate.export.nifti_writer import write_nifti
from napari_atlas_annotate.export.pseudonymise import find_identifiers, identifiers_of
from napari_atlas_annotate.io import load_nifti, save_nifti
from napari_atlas_annotate.project import Project
from napari_atlas_annotate.volume import Volume

AFFINE = np.array([[0, 0, -0.8, 10], [0, -0.7, 0, 20], [2.5, 0, 0, -30], [0, 0, 0, 1.0]])


@pytest.mark.parametrize("dtype, mask", [(np.int16, False), (np.uint8, True), (np.float32, False)])
def test_nifti_writer_matches_nibabel_save(tmp_path, dtype, mask):
    rng = np.random.default_rng(1)
    data = (rng.random((6, 9, 7)) * (2 if mask else 2000) - (0 if mask else 1000)).astype(dtype)
    vol = Volume(data, AFFINE)
    ours = write_nifti(data, AFFINE, tmp_path / "ours.nii.gz", mask=mask, descrip="case7")
    save_nifti(vol, tmp_path / "ref.nii.gz")
    a, b = load_nifti(ours), load_nifti(tmp_path / "ref.nii.gz")
    np.testing.assert_array_equal(a.array, data)
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-6)
    header = nib.load(ours).header
    assert header["descrip"].item() == b"case7" and header["aux_file"].item() == b""
    assert header.get_sform(coded=True)[1] == 1 and header.get_qform(coded=True)[1] == 1
    assert gzip.decompress(ours.read_bytes())[344:348] == b"n+1\x00"
    assert not list(tmp_path.glob(".*part"))  # no temp files left behind


def test_identifier_scan_finds_leaks_and_spellings(tmp_path):
    headers = [{"patient_name": "Doe^Jane", "patient_id": "PID-12345"}]
    found = identifiers_of(headers)
    assert {"Doe^Jane", "PID-12345", "Jane"} <= found
    (tmp_path / "a.csv").write_text("x,DOE JANE\n")
    write_nifti(np.zeros((2, 3, 4), np.uint8), AFFINE, tmp_path / "b.nii.gz", descrip="pid-12345")
    (tmp_path / "c.json").write_text('{"ok": 1}')
    hits = find_identifiers(tmp_path, found)
    assert {h[0] for h in hits} == {"a.csv", "b.nii.gz"}


def test_leak_aborts_the_export_and_leaves_nothing(organ_project, tmp_path, monkeypatch):
    monkeypatch.setattr(dicom_seg, "deidentify_dataset", lambda ds, case_id: None)
    with Project(organ_project[0]) as project:
        with pytest.raises(ExportError, match="patient identifiers"):
            export_project(project, "dicom-seg", tmp_path / "seg", status="final")
    assert list(tmp_path.iterdir()) == []


def test_keep_identifiers_output_would_fail_the_byte_scan(organ_project, tmp_path, no_identifiers):
    """The every-byte scan used by the format tests does see identifiers when present."""
    with Project(organ_project[0]) as project:
        result = export_project(
            project, "dicom-seg", tmp_path / "keep", status="final", keep_identifiers=True
        )
    with pytest.raises(AssertionError, match="found in"):
        no_identifiers(result.root)


def test_check_segmentation_catches_mirrored_frames(organ_project, tmp_path):
    folder, truth = organ_project
    with Project(folder) as project:
        image = project.load_image("case0")
    labels = truth["case0"][1]
    files = image.metadata["files"]
    seg = dicom_seg.build_segmentation(files, labels[::-1].copy(), project.classes, "case0")
    path = dicom_seg.write_segmentation(seg, tmp_path / "flipped.dcm")
    with pytest.raises(ExportError, match="source slice"):
        dicom_seg.check_segmentation(path, image.metadata["sop_instance_uids"], labels)
    seg = dicom_seg.build_segmentation(files, labels, project.classes, "case0")
    dicom_seg.check_segmentation(
        dicom_seg.write_segmentation(seg, tmp_path / "ok.dcm"),
        image.metadata["sop_instance_uids"],
        labels,
    )


def test_split_is_stable_when_cases_are_added():
    ids = [f"case{i:03d}" for i in range(50)]
    train, val = split_cases(ids, 0.2)
    assert len(val) == 10 and set(train) | set(val) == set(ids) and not set(train) & set(val)
    _, val_more = split_cases(ids + ["case999"], 0.2)
    assert len(set(val) & set(val_more)) >= 9
    assert split_cases(["a"], 0.2) == (["a"], [])


def test_cli_export(organ_project, tmp_path, capsys):
    folder, _ = organ_project
    code = main(
        [
            "export",
            str(folder),
            "--format",
            "nnunet",
            "--out",
            str(tmp_path),
            "--dataset-id",
            "3",
            "--dataset-name",
            "Organs",
            "--status",
            "corrected",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "exported 3 case(s) as nnunet" in out.out and "skipped case3" in out.out
    meta = json.loads((tmp_path / "Dataset003_Organs" / "dataset.json").read_text())
    assert meta["numTraining"] == 3
    code = main(
        [
            "export",
            str(folder),
            "--format",
            "nnunet",
            "--out",
            str(tmp_path),
            "--dataset-id",
            "3",
            "--dataset-name",
            "Organs",
        ]
    )
    assert code == 2 and "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("z0, n", [(0, 3), (2, 4), (5, 1), (3, 0), (0, 6)])
def test_zslab_writer_is_a_valid_gzip_of_the_full_volume(tmp_path, z0, n):
    """Zero slices outside the slab come from the cached deflate piece; gzip's own CRC and
    length checks pass and the voxels are the full volume."""
    from napari_atlas_annotate.export.nifti_writer import write_nifti_zslab

    rng = np.random.default_rng(z0 * 10 + n)
    full = np.zeros((6, 33, 17), np.uint8)
    full[z0 : z0 + n] = rng.integers(0, 2, (n, 33, 17))
    path = write_nifti_zslab(full[z0 : z0 + n], z0, full.shape, AFFINE, tmp_path / "m.nii.gz")
    raw = gzip.decompress(path.read_bytes())  # raises on a bad CRC-32 or size
    assert len(raw) == 352 + full.size
    np.testing.assert_array_equal(load_nifti(path).array, full)
    with pytest.raises(ValueError, match="does not fit"):
        write_nifti_zslab(full[:2], 5, full.shape, AFFINE, tmp_path / "bad.nii.gz")


def test_class_masks_cover_the_full_grid_for_absent_classes(tmp_path):
    from napari_atlas_annotate.export.abdomenatlas import write_class_masks

    labels = np.zeros((7, 10, 12), np.uint8)
    labels[2:4, 3:6, 4:9] = 2
    labels[6, 0, 0] = 3
    paths = write_class_masks(labels, AFFINE, tmp_path, ["a", "b", "c", "d"], threads=2)
    for value, path in enumerate(paths, start=1):
        back = load_nifti(path)
        assert back.shape == labels.shape and back.array.dtype == np.uint8
        np.testing.assert_array_equal(back.array, (labels == value).astype(np.uint8))


def test_pseudonymised_seg_carries_no_source_visit_dates(
    make_organ_project, source_dates, tmp_path
):
    """The study date and time of the source CT identify the visit (HIPAA counts every date
    tied to the patient); the SEG copies the study module from the source images, so a
    pseudonymised SEG must leave them empty. With identifiers kept they stay."""
    folder, _, _ = make_organ_project(tmp_path / "proj", tmp_path / "ct", AFFINE)
    with Project(folder) as project:
        plain = export_project(project, "dicom-seg", tmp_path / "plain")
        kept = export_project(project, "dicom-seg", tmp_path / "kept", keep_identifiers=True)
    seg = pydicom.dcmread(plain.root / "ct" / "segmentation.dcm", stop_before_pixels=True)
    source_values = set(source_dates.values())
    leaked = [str(e) for e in seg.iterall() if str(e.value) in source_values]
    assert not leaked
    assert seg.StudyDate == "" and seg.StudyTime == ""
    seg = pydicom.dcmread(kept.root / "ct" / "segmentation.dcm", stop_before_pixels=True)
    assert seg.StudyDate == source_dates["StudyDate"]


def test_skipped_cases_say_what_to_do(organ_project, tmp_path, capsys):
    """A case left out names what it has and the command that gets it into the export;
    the provenance keeps the reason only (no project paths or commands)."""
    folder, _ = organ_project
    code = main(["export", str(folder), "--format", "monai", "--out", str(tmp_path / "m")])
    out = capsys.readouterr().out
    assert code == 0
    (case1,) = [line for line in out.splitlines() if line.startswith("skipped case1")]
    assert "ann" in case1 and "corrected" in case1
    assert f"atlas-annotate review {folder} --finalize case1 --lead NAME" in case1
    assert "--status corrected" in case1
    (case3,) = [line for line in out.splitlines() if line.startswith("skipped case3")]
    assert "proposal" in case3 and f"atlas-annotate open {folder}" in case3
    manifest = json.loads((tmp_path / "m" / "provenance.json").read_text())
    reasons = {s["case_id"]: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == {"case1", "case3"}
    assert not any("atlas-annotate" in r or str(folder) in r for r in reasons.values())
