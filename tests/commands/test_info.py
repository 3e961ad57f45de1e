"""``atlas-annotate info``: text and JSON reports through the real CLI entry point."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from nibabel.testing import data_path

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.io import load_volume, save_nifti
from napari_atlas_annotate.io.dicom_writer import write_dicom_series
from napari_atlas_annotate.volume import LPS_TO_RAS, Volume


def _volume(n_slices: int, modality: str = "MR") -> Volume:
    lps = np.eye(4)  # sagittal: row +P, column -S (i.e. +I), normal toward +R... in LPS -L
    lps[:3, :3] = np.column_stack([[-4.0, 0, 0], [0, 0, -0.5], [0, 0.6, 0]])
    lps[:3, 3] = [20.0, -30.0, 40.0]
    data = np.arange(n_slices * 5 * 6, dtype=np.int16).reshape(n_slices, 5, 6)
    return Volume(data, LPS_TO_RAS @ lps, modality)


@pytest.fixture
def study(tmp_path):
    root = tmp_path / "study"
    write_dicom_series(
        _volume(3), root / "s1", series_description="Sagittal T1", series_number=3, uid_seed="a"
    )
    write_dicom_series(
        _volume(4), root / "s2", series_description="Axial T2", series_number=5, uid_seed="b"
    )
    return root


def _run(capsys, *argv):
    code = main(["info", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_single_series_text(tmp_path, capsys):
    write_dicom_series(
        _volume(3), tmp_path, series_description="Sagittal T1", series_number=3, uid_seed="t"
    )
    vol = load_volume(tmp_path)
    code, out, err = _run(capsys, tmp_path)
    assert code == 0, err
    assert "1 DICOM series" in out
    assert "Sagittal T1" in out and vol.metadata["series_uid"] in out
    assert "shape (z, y, x)   3 x 5 x 6" in out
    assert "spacing (mm)      4 x 0.5 x 0.6" in out
    assert f"orientation       {''.join(vol.orientation)}" in out
    assert "modality          MR" in out
    affine_rows = [line for line in out.splitlines() if line.startswith("    [")]
    parsed = np.array([[float(v) for v in line.strip(" []").split()] for line in affine_rows])
    np.testing.assert_allclose(parsed, vol.affine, atol=1e-4)


def test_single_series_json_matches_the_loaded_volume(tmp_path, capsys):
    write_dicom_series(
        _volume(3), tmp_path, series_description="Sagittal T1", series_number=3, uid_seed="j"
    )
    vol = load_volume(tmp_path)
    code, out, _ = _run(capsys, tmp_path, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["shape"] == [3, 5, 6]
    assert report["spacing"] == pytest.approx(list(vol.spacing))
    np.testing.assert_allclose(report["affine"], vol.affine, atol=1e-5)
    assert report["modality"] == "MR"
    assert report["orientation"] == "".join(vol.orientation) == "RIP"
    assert report["dtype"] == str(vol.array.dtype)
    assert report["selected"] == vol.metadata["series_uid"]
    (series,) = report["series"]
    assert series["description"] == "Sagittal T1" and series["series_number"] == 3
    assert series["n_frames"] == 3 and series["is_image"] is True
    assert report["warnings"] == []


def test_multi_series_json_describes_every_series(study, capsys):
    code, out, _ = _run(capsys, study, "--json")
    assert code == 0
    report = json.loads(out)
    assert [s["description"] for s in report["series"]] == ["Sagittal T1", "Axial T2"]
    assert report["selected"] is None
    assert [v["shape"] for v in report["volumes"]] == [[3, 5, 6], [4, 5, 6]]
    assert report["shape"] == [3, 5, 6]  # top level: the first series
    assert report["volumes"][1]["series_description"] == "Axial T2"


def test_multi_series_text_lists_then_describes(study, capsys):
    code, out, _ = _run(capsys, study)
    assert code == 0
    assert "2 DICOM series" in out
    assert "describing every image series" in out
    assert out.count("shape (z, y, x)") == 2
    header = out.splitlines()[1]
    assert "number" in header and "modality" in header and "images" in header


@pytest.mark.parametrize("selector", ["Axial T2", "5"])
def test_series_option_selects_one(study, capsys, selector):
    code, out, _ = _run(capsys, study, "--series", selector, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["shape"] == [4, 5, 6]
    assert len(report["volumes"]) == 1
    assert report["volumes"][0]["series_description"] == "Axial T2"


def test_broken_series_is_reported_without_hiding_the_others(study, capsys):
    sorted((study / "s2").iterdir())[1].unlink()  # 4 slices -> a gap
    code, out, _ = _run(capsys, study, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["volumes"][0]["shape"] == [3, 5, 6]
    assert "missing" in report["volumes"][1]["error"]


def test_errors_exit_2_with_the_message(study, capsys):
    code, out, err = _run(capsys, study, "--series", "Coronal")
    assert code == 2
    assert out == ""
    assert "atlas-annotate info: error:" in err and "no series matching 'Coronal'" in err

    code, _, err = _run(capsys, study / "missing")
    assert code == 2 and "does not exist" in err


def test_warnings_reach_stderr_and_json(tmp_path, capsys):
    write_dicom_series(_volume(3), tmp_path, uid_seed="w")
    (tmp_path / "notes.txt").write_text("hello")
    code, out, err = _run(capsys, tmp_path, "--json")
    assert code == 0
    assert "warning:" in err and "notes.txt" in err
    assert any("notes.txt" in w for w in json.loads(out)["warnings"])


def test_warning_explaining_an_error_is_still_shown(tmp_path, capsys):
    paths = write_dicom_series(_volume(5), tmp_path, uid_seed="cut")
    paths[2].write_bytes(paths[2].read_bytes()[:600])
    code, _, err = _run(capsys, tmp_path)
    assert code == 2
    assert "incomplete header" in err and paths[2].name in err
    assert "missing" in err


def test_nifti_file(tmp_path, capsys):
    vol = _volume(3)
    save_nifti(vol, tmp_path / "v.nii.gz")
    code, out, _ = _run(capsys, tmp_path / "v.nii.gz", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["format"] == "nifti" and report["series"] == []
    assert report["shape"] == [3, 5, 6]
    np.testing.assert_allclose(report["affine"], vol.affine, atol=1e-5)

    code, out, _ = _run(capsys, tmp_path / "v.nii.gz")
    assert code == 0 and "NIfTI volume" in out


def test_4d_nifti_is_an_error(capsys):
    code, _, err = _run(capsys, f"{data_path}/example4d.nii.gz")
    assert code == 2 and "4D" in err


def test_enhanced_multiframe_file(capsys):
    path = pydicom.data.get_testdata_file("eCT_Supplemental.dcm")
    if path is None:
        pytest.skip("pydicom-data not installed")
    code, out, _ = _run(capsys, path, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["shape"] == [2, 512, 512]
    assert report["orientation"] == "IPR"
    assert report["modality"] == "CT"


def test_warnings_read_as_one_line_on_the_command_line(tmp_path):
    """A loader warning (a stray non-DICOM file in a series folder) is one 'warning:' line,
    not Python's file:line plus source code."""
    import subprocess
    import sys

    from napari_atlas_annotate.io.dicom_writer import write_dicom_series
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom

    image, _, _ = make_ct_phantom(0, shape=(8, 16, 16))
    folder = tmp_path / "series"
    write_dicom_series(image, folder)
    (folder / "notes.txt").write_text("not an image")
    assert main(["init", str(tmp_path / "proj"), "--task", "organs"]) == 0
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_atlas_annotate.cli",
            "add",
            str(tmp_path / "proj"),
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("warning: ") and "not DICOM" in lines[0]
    assert len(lines) == 1 and ".py:" not in run.stderr


def test_series_table_columns_line_up_with_long_numbers_and_descriptions(tmp_path, capsys):
    """RSNA studies number their series with 9-10 digit series_ids, and descriptions can be
    longer than the column: the header and each row still start every column together."""
    write_dicom_series(
        _volume(3), tmp_path / "a", series_description="Sagittal T2/STIR", series_number=1599109867
    )
    write_dicom_series(
        _volume(3),
        tmp_path / "b",
        series_description="Axial T2 FRFSE fat-saturated, motion corrected",
        series_number=7,
    )
    code, out, err = _run(capsys, tmp_path)
    assert code == 0, err
    header, *rows = out.splitlines()[1:4]
    for row in rows:
        for column in ("modality", "description", "uid"):  # left-aligned: starts together
            start = header.index(column)
            assert row[start - 2 : start] == "  " and row[start] != " ", (column, header, row)
        for column in ("number", "images"):  # right-aligned: ends together
            end = header.index(column) + len(column)
            assert row[end - 1] != " " and row[end : end + 2] == "  ", (column, header, row)
