"""write_phantoms and ``atlas-annotate phantoms``: layout, manifest, DICOM headers, CSVs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.io.nifti import load_nifti
from napari_atlas_annotate.phantoms import CLASSES, case_seed, make_ct_phantom, write_phantoms
from napari_atlas_annotate.spine_grades import (
    GRADE_COLUMNS,
    SERIES_DESCRIPTIONS,
    SERIES_FOR_CONDITION,
    read_coordinates_csv,
    read_grades_csv,
    read_series_descriptions_csv,
)


def _run(out: Path, fmt: str) -> dict:
    argv = [
        "phantoms",
        "--out",
        str(out),
        "--ct",
        "2",
        "--mri",
        "1",
        "--seed",
        "4",
        "--format",
        fmt,
    ]
    assert main(argv) == 0
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def dicom_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantoms_dicom")
    return out, _run(out, "dicom")


@pytest.fixture(scope="module")
def nifti_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantoms_nifti")
    return out, _run(out, "nifti")


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.dcm"))


def test_manifest_schema(dicom_set, nifti_set):
    for out, man in (dicom_set, nifti_set):
        assert man["version"] == 1 and man["seed"] == 4 and man["site"] == 0
        tasks = [c["task"] for c in man["cases"]]
        assert tasks == ["organs", "organs", "spine"]
        ids = [c["id"] for c in man["cases"]]
        assert len(set(ids)) == 3
        for c in man["cases"]:
            for img in c["images"]:
                assert not Path(img["path"]).is_absolute() and (out / img["path"]).exists()
            if c["task"] == "organs":
                assert c["classes"] == list(CLASSES)
                assert (out / c["label"]).is_file()
                assert c["images"][0]["description"].startswith("Abdomen CT ")
            else:
                assert c["label"] is None
                assert [i["description"] for i in c["images"]] == list(SERIES_DESCRIPTIONS)
                for key in ("grades", "points", "series_descriptions"):
                    assert (out / c[key]).is_file()
    nifti_paths = [c["images"][0]["path"] for c in nifti_set[1]["cases"][:2]]
    assert all(p.endswith("ct.nii.gz") for p in nifti_paths)


def test_ct_dicom_headers_and_label(dicom_set):
    out, man = dicom_set
    for c in man["cases"][:2]:
        files = _dicom_files(out / c["images"][0]["path"])
        label = load_nifti(out / c["label"])
        assert len(files) == label.shape[0]
        ds = pydicom.dcmread(files[0])
        assert ds.Modality == "CT" and ds.SeriesDescription == c["images"][0]["description"]
        assert ds.PatientID == c["id"] and str(ds.PatientName) == c["id"]
        # rebuild the image from the files and compare with a fresh phantom
        stack = np.stack([pydicom.dcmread(f).pixel_array for f in files]).astype(np.int16)
        image, truth, _ = make_ct_phantom(c["case_seed"])
        assert np.array_equal(stack, image.array)
        assert np.array_equal(label.array, truth.array)
        assert np.allclose(label.affine, image.affine, atol=1e-4)
        z_pos = [float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in files[:2]]
        assert z_pos[1] - z_pos[0] == pytest.approx(image.spacing[0], abs=1e-3)


def test_spine_dicom_study_and_csvs(dicom_set):
    out, man = dicom_set
    case = man["cases"][2]
    series_ids = {}
    uids = set()
    for img in case["images"]:
        files = _dicom_files(out / img["path"])
        heads = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        assert {h.SeriesDescription for h in heads} == {img["description"]}
        assert [int(h.InstanceNumber) for h in heads] == list(range(1, len(files) + 1))
        assert {h.Modality for h in heads} == {"MR"}
        uids.add((heads[0].StudyInstanceUID, heads[0].FrameOfReferenceUID))
        assert int(heads[0].SeriesNumber) == img["series_id"]
        assert heads[0].PatientID == str(case["study_id"])
        series_ids[img["description"]] = (img["series_id"], len(files))
    assert len(uids) == 1  # one study, one frame of reference
    grades = read_grades_csv(out / case["grades"])
    assert list(grades) == [case["study_id"]]
    assert all(grades[case["study_id"]][c] is not None for c in GRADE_COLUMNS)
    rows = read_series_descriptions_csv(out / case["series_descriptions"])
    assert {(sid, d) for _, sid, d in rows} == {(v[0], d) for d, v in series_ids.items()}
    points = read_coordinates_csv(out / case["points"])
    assert len(points) == 25
    for p in points:
        sid, n = series_ids[SERIES_FOR_CONDITION[p.condition]]
        assert p.series_id == sid and 1 <= p.instance_number <= n
    # the set-wide RSNA files hold the same rows
    assert read_grades_csv(out / "spine" / "train.csv") == grades
    assert read_coordinates_csv(out / "spine" / "train_label_coordinates.csv") == points


def test_same_seed_same_bytes(tmp_path):
    a = write_phantoms(tmp_path / "a", 1, 0, seed=9, ct_shape=(16, 48, 48))
    b = write_phantoms(tmp_path / "b", 1, 0, seed=9, ct_shape=(16, 48, 48))
    fa = sorted(p.relative_to(a.parent) for p in a.parent.rglob("*.dcm"))
    assert fa and fa == sorted(p.relative_to(b.parent) for p in b.parent.rglob("*.dcm"))
    for rel in fa[:3]:
        assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes()
    assert a.read_text() == b.read_text()


def test_site_and_shape_options(tmp_path, capsys):
    argv = [
        "phantoms",
        "--out",
        str(tmp_path),
        "--ct",
        "1",
        "--mri",
        "0",
        "--format",
        "nifti",
        "--site",
        "2",
        "--ct-shape",
        "20",
        "40",
        "48",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "manifest" in printed and "site2_ct_000" in printed
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["site"] == 2 and man["format"] == "nifti"
    img = load_nifti(tmp_path / man["cases"][0]["images"][0]["path"])
    assert img.shape == (20, 40, 48)
    assert case_seed(0, 0, 1) != case_seed(0, 1, 1) != case_seed(0, 0, 2)
    with pytest.raises(ValueError):
        write_phantoms(tmp_path, 1, 0, seed=0, fmt="png")


# -- through the package's own readers (io.dicom) ---------------------------------------


def test_dicom_and_nifti_load_identically(dicom_set, nifti_set):
    pytest.importorskip("napari_atlas_annotate.io.dicom")
    from napari_atlas_annotate.io import load_volume

    (dout, dman), (nout, nman) = dicom_set, nifti_set
    for dc, nc in zip(dman["cases"][:2], nman["cases"][:2], strict=True):
        dimg = load_volume(dout / dc["images"][0]["path"])
        nimg = load_volume(nout / nc["images"][0]["path"])
        label = load_volume(dout / dc["label"])
        assert np.array_equal(dimg.array, nimg.array)
        assert np.allclose(dimg.affine, nimg.affine, atol=1e-4)
        assert label.shape == dimg.shape
        assert np.allclose(label.affine, dimg.affine, atol=1e-4)
        assert dimg.orientation == ("S", "P", "L")


def test_spine_study_loads_with_shared_frame(dicom_set):
    pytest.importorskip("napari_atlas_annotate.io.dicom")
    from napari_atlas_annotate.io import load_study
    from napari_atlas_annotate.phantoms import make_spine_phantom

    out, man = dicom_set
    case = man["cases"][2]
    study = load_study(out / "spine" / "train_images" / case["id"])
    truth = make_spine_phantom(case["case_seed"])
    assert sorted(d for d, _ in study) == sorted(SERIES_DESCRIPTIONS)
    for desc, vol in study:
        assert np.array_equal(vol.array, truth.series[desc].array), desc
        assert np.allclose(vol.affine, truth.series[desc].affine, atol=1e-4), desc
    frames = {vol.metadata.get("frame_of_reference_uid") for _, vol in study}
    assert len(frames) == 1
