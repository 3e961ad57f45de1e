"""``atlas-annotate add``: case ids, skip reasons, task/modality fit and load checks."""

import json
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.cli import main
from napari_atlas_annotate.export.dicom_seg import build_segmentation, write_segmentation
from napari_atlas_annotate.io import VolumeLoadWarning, load_volume
from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.project import Project
from napari_atlas_annotate.spine_grades import LEVELS

SMALL_CT = (16, 32, 32)


@pytest.fixture
def phantoms(tmp_path):
    """Three small CT phantoms written as DICOM (``dicom``) and as NIfTI (``nifti``)."""
    return {
        fmt: write_phantoms(tmp_path / fmt, 3, 0, 0, fmt, ct_shape=SMALL_CT).parent
        for fmt in ("dicom", "nifti")
    }


def _init(tmp_path, task="organs", name="proj"):
    assert main(["init", str(tmp_path / name), "--task", task]) == 0
    return tmp_path / name


def _add(capsys, *argv):
    capsys.readouterr()
    code = main(["add", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _case_ids(project):
    with Project(project) as p:
        return [c.id for c in p.cases()]


# -- 1. case ids ---------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "image"), [("nifti", "ct.nii.gz"), ("dicom", "dicom")])
def test_cases_added_path_by_path_are_named_after_their_folder(
    tmp_path, phantoms, capsys, fmt, image
):
    proj = _init(tmp_path)
    paths = [phantoms[fmt] / "ct" / f"ct_00{i}" / image for i in range(2)]
    code, out, _ = _add(capsys, proj, *paths)
    assert code == 0 and out == "added 2 case(s): ct_000, ct_001\n"
    # The manifest names its cases the same way: the two already there are recognised.
    code, out, _ = _add(capsys, proj, phantoms[fmt] / "manifest.json")
    assert code == 0 and out.startswith("added 1 case(s): ct_002\nskipped 2 case(s):\n")
    assert _case_ids(proj) == ["ct_000", "ct_001", "ct_002"]


def test_id_option_names_a_single_case(tmp_path, phantoms, capsys):
    proj = _init(tmp_path)
    image = phantoms["nifti"] / "ct" / "ct_001" / "ct.nii.gz"
    code, out, _ = _add(capsys, proj, image, "--id", "liver_017")
    assert code == 0 and out == "added 1 case(s): liver_017\n"
    code, _, err = _add(capsys, proj, image, image, "--id", "x")
    assert code == 2 and "--id names one case" in err
    code, _, err = _add(capsys, proj, phantoms["nifti"] / "manifest.json", "--id", "x")
    assert code == 2 and "not with several paths or a manifest" in err
    code, _, err = _add(capsys, proj, image, "--id", "bad id!")
    assert code == 2 and "'bad id!' is not a valid case id" in err
    assert _case_ids(proj) == ["liver_017"]


# -- 2. why a case was skipped -------------------------------------------------------------
def test_rerun_skips_cases_already_there_without_error(tmp_path, phantoms, capsys):
    proj = _init(tmp_path)
    manifest = phantoms["dicom"] / "manifest.json"
    assert _add(capsys, proj, manifest)[0] == 0
    code, out, _ = _add(capsys, proj, manifest)
    assert code == 0
    assert out.splitlines() == [
        "added 0 case(s): -",
        "skipped 3 case(s):",
        "  ct_000: already in the project.",
        "  ct_001: already in the project.",
        "  ct_002: already in the project.",
    ]


def test_a_big_dataset_added_again_is_summed_up_not_listed(tmp_path, capsys):
    """More than 20 cases: the first ids and a count, not every name (20,000 would be)."""
    manifest = write_phantoms(tmp_path / "many", 22, 0, 0, "nifti", ct_shape=(8, 16, 16))
    proj = _init(tmp_path)
    code, out, _ = _add(capsys, proj, manifest, "--no-check")
    assert code == 0
    assert out == "added 22 case(s): ct_000, ct_001, ct_002, ct_003, ct_004 and 17 more\n"
    code, out, _ = _add(capsys, proj, manifest, "--no-check")
    assert code == 0
    assert out.splitlines() == [
        "added 0 case(s): -",
        "skipped 22 case(s):",
        "  22 already in the project: ct_000, ct_001, ct_002, ct_003, ct_004 and 17 more",
    ]
    assert len(_case_ids(proj)) == 22


def test_an_image_already_in_another_case_is_not_added_twice(tmp_path, phantoms, capsys):
    proj = _init(tmp_path)
    series = phantoms["dicom"] / "ct" / "ct_000" / "dicom"
    assert _add(capsys, proj, series, "--id", "first")[0] == 0
    code, out, _ = _add(capsys, proj, phantoms["dicom"] / "manifest.json")
    assert code == 0
    assert out.splitlines()[0] == "added 2 case(s): ct_001, ct_002"
    assert f"  ct_000: image {series} is already in case first; not added twice." in out
    assert _case_ids(proj) == ["first", "ct_001", "ct_002"]


def test_an_id_taken_by_another_image_is_refused(tmp_path, phantoms, capsys):
    proj = _init(tmp_path)
    first = phantoms["nifti"] / "ct" / "ct_000" / "ct.nii.gz"
    write_phantoms(tmp_path / "site2", 1, 0, 7, "dicom", ct_shape=SMALL_CT)  # another seed
    other = tmp_path / "site2" / "ct" / "ct_000" / "dicom"  # another scan, also ct_000
    assert _add(capsys, proj, first)[0] == 0
    for check in ([], ["--no-check"]):
        code, out, _ = _add(capsys, proj, other, *check)
        assert code == 1 and out.startswith("added 0 case(s): -\nskipped 1 case(s):\n")
        assert f"ct_000: the project already has a case ct_000 with another image ({first})" in out
        assert f"Add {other} on its own with --id NEW_ID." in out
        # Without loading, the voxels could not be compared: the message says so.
        assert ("--no-check: their voxels were not compared" in out) == bool(check)
    assert _add(capsys, proj, other, "--id", "ct_000_site2")[0] == 0


def test_copy_rerun_is_recognised(tmp_path, phantoms, capsys):
    proj = _init(tmp_path)
    image = phantoms["nifti"] / "ct" / "ct_000" / "ct.nii.gz"
    assert _add(capsys, proj, image, "--copy")[0] == 0
    code, out, _ = _add(capsys, proj, image, "--copy")
    assert code == 0 and "ct_000: already in the project." in out
    with Project(proj) as p:
        [case] = p.cases()
        assert p.resolve(case.images[0].path) == proj / "images" / "ct_000" / "0_ct.nii.gz"


# -- 3. the image must fit the project's task ----------------------------------------------
def test_mr_study_is_refused_by_an_organs_project(tmp_path, spine_phantoms, capsys):
    proj = _init(tmp_path)
    study = sorted((spine_phantoms(0).parent / "spine" / "train_images").iterdir())[0]
    code, out, _ = _add(capsys, proj, study, "--no-check")  # headers say it, no load needed
    assert code == 1 and out.startswith("added 0 case(s): -\nskipped 3 case(s):\n")
    for series in study.iterdir():  # one case per series, named after its folder
        assert f"  {series.name}: {series}: series " in out
    assert "'Sagittal T1' has modality MR" in out
    assert "organs projects take CT. Add it to a spine project instead" in out
    assert _case_ids(proj) == []


def test_ct_series_is_refused_by_a_spine_project(tmp_path, phantoms, spine_phantoms, capsys):
    proj = _init(tmp_path, task="spine")
    series = phantoms["dicom"] / "ct" / "ct_000" / "dicom"
    study = sorted((spine_phantoms(0).parent / "spine" / "train_images").iterdir())[0]
    code, out, _ = _add(capsys, proj, series, study)
    assert code == 1 and out.startswith(f"added 1 case(s): {study.name}\n")
    assert "\nskipped 1 case(s):\n" in out
    assert "has modality CT, but spine projects take MR. Add it to an organs project" in out


# -- 4. images are checked before they are added -------------------------------------------
def test_broken_images_are_skipped_with_the_loaders_message(tmp_path, phantoms, capsys):
    nifti = phantoms["nifti"]
    (nifti / "ct" / "ct_000" / "ct.nii.gz").unlink()
    truncated = nifti / "ct" / "ct_001" / "ct.nii.gz"
    truncated.write_bytes(truncated.read_bytes()[:2000])
    (nifti / "ct" / "ct_002" / "combined_labels.nii.gz").unlink()
    series = phantoms["dicom"] / "ct" / "ct_000" / "dicom"
    files = sorted(series.iterdir())
    files[len(files) // 2].unlink()
    proj = _init(tmp_path)
    code, out, _ = _add(capsys, proj, nifti / "manifest.json", series)
    lines = out.splitlines()
    assert code == 1 and lines[:2] == ["added 0 case(s): -", "skipped 4 case(s):"]
    assert lines[2].startswith(f"  ct_000: image {nifti}/ct/ct_000/ct.nii.gz (named by ")
    assert lines[2].endswith("does not exist. Put it back or fix the path.")
    assert lines[3].startswith(f"  ct_001: {truncated}: ") and "truncated" in lines[3]
    assert lines[4].startswith(f"  ct_002: truth file {nifti}/ct/ct_002/combined_labels")
    assert lines[5].startswith(f"  ct_000: {series}: 1 slice(s) missing")
    assert _case_ids(proj) == []
    # --no-check: files must still exist, but nothing is loaded.
    code, out, _ = _add(capsys, proj, nifti / "manifest.json", series, "--no-check")
    assert code == 1 and out.startswith("added 2 case(s): ct_001, ct_000\nskipped 2 case(s):")


def test_a_missing_path_does_not_stop_the_others(tmp_path, phantoms, capsys):
    proj = _init(tmp_path)
    image = phantoms["nifti"] / "ct" / "ct_000" / "ct.nii.gz"
    code, out, _ = _add(capsys, proj, tmp_path / "nope.nii.gz", image)
    assert code == 1 and out.startswith("added 1 case(s): ct_000\nskipped 1 case(s):\n")
    assert f"  {tmp_path / 'nope.nii.gz'}: " in out and "does not exist" in out


def test_a_manifest_without_cases_for_the_task(tmp_path, phantoms, capsys):
    proj = _init(tmp_path, task="spine")
    manifest = phantoms["nifti"] / "manifest.json"
    assert json.loads(manifest.read_text())["cases"]
    code, out, _ = _add(capsys, proj, manifest)
    assert code == 1
    assert f"  {manifest}: no spine cases in this manifest: it holds 3 organs case(s)." in out


def test_spine_study_added_by_folder_then_by_manifest(tmp_path, spine_phantoms, capsys):
    manifest = spine_phantoms(0)
    root = tmp_path / "copy"
    shutil.copytree(manifest.parent, root)
    studies = sorted((root / "spine" / "train_images").iterdir())
    proj = _init(tmp_path, task="spine")
    code, out, _ = _add(capsys, proj, studies[0])
    assert code == 0 and out.splitlines()[0] == f"added 1 case(s): {studies[0].name}"
    # a study of an RSNA-layout folder: its grades are found, and imported only if asked
    assert "found grades for 1 stud(ies) in " in out and "train.csv; not imported" in out
    code, out, _ = _add(capsys, proj, root / "manifest.json")
    assert code == 0 and f"  {studies[0].name}: already in the project." in out
    assert sorted(_case_ids(proj)) == sorted(s.name for s in studies)


# -- 5. the same image under another path --------------------------------------------------
def test_a_copy_of_the_data_folder_is_not_added_again(tmp_path, phantoms, capsys):
    proj = _init(tmp_path)
    assert _add(capsys, proj, phantoms["dicom"] / "manifest.json")[0] == 0
    copy = tmp_path / "data_copy"
    shutil.copytree(phantoms["dicom"], copy)
    code, out, _ = _add(capsys, proj, copy / "manifest.json")
    lines = out.splitlines()
    assert code == 0 and lines[:2] == ["added 0 case(s): -", "skipped 3 case(s):"]
    for line, i in zip(lines[2:], range(3), strict=True):
        assert line.startswith(f"  ct_00{i}: already in the project (image {copy}/ct/ct_00{i}/")
        assert "has the same DICOM SeriesInstanceUID " in line
    assert "--id" not in out
    # Under a new id it is still the same series: refused, naming the case it repeats.
    series = copy / "ct" / "ct_000" / "dicom"
    code, out, _ = _add(capsys, proj, series, "--id", "ct_000_again")
    assert code == 0 and out.startswith("added 0 case(s): -\nskipped 1 case(s):\n")
    assert f"  ct_000_again: image {series} is already in case ct_000 (same DICOM " in out
    assert "--id" not in out.split("\n", 1)[1]
    assert _case_ids(proj) == ["ct_000", "ct_001", "ct_002"]


def test_a_nifti_of_a_dicom_scan_is_the_same_image(tmp_path, phantoms, capsys):
    proj = _init(tmp_path)
    assert _add(capsys, proj, phantoms["dicom"] / "manifest.json")[0] == 0
    # The NIfTI phantoms are the same scans (same seed); one copied under a new name.
    copy = tmp_path / "atlas" / "BDMAP_00000007" / "ct.nii.gz"
    copy.parent.mkdir(parents=True)
    shutil.copy(phantoms["nifti"] / "ct" / "ct_001" / "ct.nii.gz", copy)
    code, out, _ = _add(capsys, proj, copy)
    assert code == 0 and out.splitlines() == [
        "added 0 case(s): -",
        "skipped 1 case(s):",
        f"  BDMAP_00000007: image {copy} is already in case ct_001 (same voxels and grid); "
        "not added twice.",
    ]
    # Two copies given together: the second is the first's duplicate.
    other = tmp_path / "other.nii.gz"
    write_phantoms(tmp_path / "site2", 1, 0, 7, "nifti", ct_shape=SMALL_CT)
    shutil.copy(tmp_path / "site2" / "ct" / "ct_000" / "ct.nii.gz", other)
    code, out, _ = _add(capsys, proj, other, tmp_path / "site2" / "ct" / "ct_000" / "ct.nii.gz")
    assert code == 0 and out.startswith("added 1 case(s): other\nskipped 1 case(s):\n")
    assert "is already in case other (same voxels and grid)" in out
    assert _case_ids(proj) == ["ct_000", "ct_001", "ct_002", "other"]


def test_cases_added_before_fingerprints_are_recognised(tmp_path, phantoms, capsys):
    from napari_atlas_annotate.project.image_identity import FINGERPRINTS_NAME
    from napari_atlas_annotate.project.sources import cases_from_path

    proj = _init(tmp_path)
    with Project(proj) as project:  # as the demo, or add before fingerprints were kept
        for case in cases_from_path(phantoms["nifti"] / "manifest.json", "organs"):
            project.add_case(case.id, case.images, truth=case.truth, source=case.source)
    assert not (proj / FINGERPRINTS_NAME).exists()
    code, out, _ = _add(capsys, proj, phantoms["dicom"] / "ct" / "ct_002" / "dicom", "--id", "x")
    assert code == 0 and "  x: image " in out and "already in case ct_002 (same voxels" in out
    assert sorted(json.loads((proj / FINGERPRINTS_NAME).read_text())["cases"]) == [
        "ct_000",
        "ct_001",
        "ct_002",
    ]


# -- 6. folders holding several cases, manifests holding other tasks -----------------------
def test_a_folder_of_series_folders_gives_a_case_per_series(tmp_path, phantoms, capsys):
    proj = _init(tmp_path)
    with pytest.warns(VolumeLoadWarning, match="1 file.s. that are not DICOM: manifest.json"):
        code, out, _ = _add(capsys, proj, phantoms["dicom"])
    assert code == 0 and out.startswith("added 3 case(s): ct_000, ct_001, ct_002\n")
    code, out, _ = _add(capsys, proj, phantoms["dicom"] / "manifest.json")
    assert code == 0 and out.count("already in the project.") == 3


def test_label_maps_beside_dicom_series_are_listed_with_the_import_that_brings_them_in(
    tmp_path, phantoms, capsys
):
    # a newcomer read "skipped 4 file(s) that are not DICOM: ...combined_labels.nii.gz" and
    # did not learn how to bring the labels in: add pairs a series only with a DICOM SEG
    proj = _init(tmp_path)
    data = phantoms["dicom"]
    (data / "ct" / "ct_001" / "liver.seg.nrrd").write_text("a Slicer segmentation")
    with pytest.warns(VolumeLoadWarning) as caught:
        code, out, _ = _add(capsys, proj, data)
    assert code == 0
    assert [str(w.message) for w in caught] == [
        f"{data}: skipped 1 file(s) that are not DICOM: manifest.json."
    ]
    labels = [data / "ct" / f"ct_00{i}" / "combined_labels.nii.gz" for i in range(3)]
    assert out.splitlines()[1:] == [
        "left out 4 label map(s) beside DICOM series (add pairs a series only with a DICOM "
        "SEG); import each as a person's version of its case:",
        f"  atlas-annotate import {proj} {labels[0]} --case ct_000 --annotator NAME",
        f"  atlas-annotate import {proj} {labels[1]} --case ct_001 --annotator NAME",
        f"  atlas-annotate import {proj} {data}/ct/ct_001/liver.seg.nrrd --case ct_001 "
        "--annotator NAME",
        f"  atlas-annotate import {proj} {labels[2]} --case ct_002 --annotator NAME",
    ]
    # the command as printed brings the labels in, on the series' grid
    command = out.splitlines()[2].split()[1:]
    assert main([*command[:-1], "dr_lee"]) == 0
    with Project(proj) as p:
        [version] = p.versions("ct_000", kinds=("imported",))
        assert version.annotator == "dr_lee"
        imported = p.read_mask(version)
    truth = np.asarray(nib.load(labels[0]).dataobj)
    assert np.array_equal(np.bincount(imported.ravel()), np.bincount(truth.ravel()))


def test_label_maps_beside_one_series_name_its_case_and_the_labels_annotator(
    tmp_path, phantoms, capsys
):
    proj = _init(tmp_path)
    case = phantoms["dicom"] / "ct" / "ct_000"  # dicom/ and combined_labels.nii.gz
    combined = nib.load(case / "combined_labels.nii.gz")
    (case / "segmentations").mkdir()  # AbdomenAtlas' per-class masks: named as one folder
    for value, name in ((5, "liver"), (8, "spleen")):
        mask = (np.asarray(combined.dataobj) == value).astype(np.uint8)
        nib.save(nib.Nifti1Image(mask, combined.affine), case / "segmentations" / f"{name}.nii.gz")
    code, out, _ = _add(capsys, proj, case, "--labels", "atlas_ai")
    assert code == 0
    assert out.splitlines()[1:] == [
        "left out 2 label map(s) beside DICOM series (add pairs a series only with a DICOM "
        "SEG); import each as a person's version of its case:",
        f"  atlas-annotate import {proj} {case}/combined_labels.nii.gz --case ct_000 "
        "--annotator atlas_ai",
        f"  atlas-annotate import {proj} {case}/segmentations --case ct_000 --annotator atlas_ai",
    ]
    assert main(out.splitlines()[3].split()[1:]) == 0  # the folder, as printed, comes in
    with Project(proj) as p:
        [version] = p.versions("ct_000", kinds=("imported",))
        assert sorted(np.unique(p.read_mask(version))) == [0, 5, 8]


def test_a_folder_of_spine_studies_gives_a_case_per_study(tmp_path, spine_phantoms, capsys):
    proj = _init(tmp_path, task="spine")
    train = spine_phantoms(0).parent / "spine" / "train_images"
    studies = sorted(s.name for s in train.iterdir())
    code, out, _ = _add(capsys, proj, train, "--no-check")
    assert code == 0 and out.splitlines()[0] == f"added 3 case(s): {', '.join(studies)}"
    with Project(proj) as p:
        assert [len(c.images) for c in p.cases()] == [3, 3, 3]


def test_cases_of_another_task_in_a_manifest_are_mentioned(tmp_path, capsys):
    manifest = write_phantoms(tmp_path / "data", 2, 1, 0, "dicom", ct_shape=SMALL_CT)
    proj = _init(tmp_path)
    code, out, _ = _add(capsys, proj, manifest, "--no-check")
    assert code == 0 and out.splitlines() == [
        "added 2 case(s): ct_000, ct_001",
        f"ignored 1 spine case(s) of {manifest}: this is an organs project.",
    ]
    spine = _init(tmp_path, task="spine", name="spine")
    code, out, _ = _add(capsys, spine, manifest, "--no-check")
    assert code == 0 and out.splitlines()[1] == (
        f"ignored 2 organs case(s) of {manifest}: this is a spine project."
    )


# -- 7. dataset folders of NIfTI files, with the labels beside the images ---------------------
def test_a_nifti_dataset_folder_adds_its_images_and_mentions_their_labels(
    tmp_path, phantoms, capsys
):
    proj = _init(tmp_path)
    code, out, _ = _add(capsys, proj, phantoms["nifti"] / "ct")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "added 3 case(s): ct_000, ct_001, ct_002"
    assert lines[1].startswith("found labels beside 3 image(s) (e.g. ct_000: ")
    assert "--labels ANNOTATOR" in lines[1]
    with Project(proj) as p:
        assert p.versions() == []  # nothing imported unasked


def test_labels_option_imports_each_cases_labels_once(tmp_path, phantoms, capsys):
    data = phantoms["nifti"] / "ct"
    proj = _init(tmp_path)
    code, out, _ = _add(capsys, proj, data / "ct_000", data / "ct_001", "--no-check")
    assert code == 0 and "found labels beside 2 image(s)" in out
    # ct_002's labels are off its image's grid: refused, the case itself is added
    bad = data / "ct_002" / "combined_labels.nii.gz"
    label = nib.load(bad)
    nib.save(nib.Nifti1Image(np.asarray(label.dataobj)[:, :, :-1], label.affine), bad)
    code, out, _ = _add(capsys, proj, data, "--labels", "atlas_v1", "--no-check")
    lines = out.splitlines()
    assert code == 1
    assert lines[:2] == [
        "added 1 case(s): ct_002",
        "imported labels of 2 case(s): ct_000, ct_001",
    ]
    assert "ct_002: added, but its labels were not imported" in out
    assert "does not match case ct_002's image" in out and "atlas-annotate import" in out
    with Project(proj) as p:
        versions = p.versions(annotator="atlas_v1")
        assert [(v.case_id, v.kind) for v in versions] == [
            ("ct_000", "imported"),
            ("ct_001", "imported"),
        ]
        truth = nib.load(data / "ct_000" / "combined_labels.nii.gz")
        stored = p.read_mask(versions[0])
        assert np.array_equal(stored, np.asarray(truth.dataobj).transpose(2, 1, 0))
    code, out, _ = _add(capsys, proj, data / "ct_000", "--labels", "atlas_v1", "--no-check")
    assert code == 0 and "imported labels" not in out  # once
    code, out, _ = _add(capsys, proj, data, "--no-check")  # without --labels: only ct_002's
    assert "found labels beside 1 image(s) (e.g. ct_002: " in out


def _segmentation(series: Path, labels_of, path: Path) -> np.ndarray:
    """Write a DICOM SEG of the CT series in folder ``series`` (segments: spleen, liver) to
    ``path``; return its labels ((z, y, x), numbered as the project's classes)."""
    image = load_volume(series)
    own = labels_of(np.zeros(image.shape, np.uint8))  # the SEG's numbering: spleen 1, liver 2
    seg = build_segmentation(
        image.metadata["files"], own, ["spleen", "liver"], "x", keep_identifiers=True
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_segmentation(seg, path)
    spleen, liver = (ABDOMEN_ATLAS_CLASSES.index(c) + 1 for c in ("spleen", "liver"))
    return np.select([own == 1, own == 2], [spleen, liver], 0).astype(np.uint8)


def _boxes(a, b):
    def draw(labels):
        labels[a] = 1
        labels[b] = 2
        return labels

    return draw


def test_labels_option_imports_the_dicom_seg_of_each_series(tmp_path, phantoms, capsys):
    cts = phantoms["dicom"] / "ct"
    pacs = tmp_path / "pacs"
    for case in ("ct_000", "ct_001"):
        shutil.copytree(cts / case / "dicom", pacs / case)
    # ct_000's SEG in a folder of its own, ct_001's among its slices, and one of ct_002,
    # whose series is not added
    first = _segmentation(
        pacs / "ct_000",
        _boxes(np.s_[3:9, 4:12, 5:15], np.s_[6:12, 18:26, 10:20]),
        pacs / "ct_000_seg" / "seg.dcm",
    )
    second = _segmentation(
        pacs / "ct_001", _boxes(np.s_[1:4, 2:6, 2:9], np.s_[8:15, 10:30, 1:31]), tmp_path / "s.dcm"
    )
    shutil.move(tmp_path / "s.dcm", pacs / "ct_001" / "seg.dcm")
    orphan = pacs / "other" / "seg.dcm"
    _segmentation(cts / "ct_002" / "dicom", _boxes(np.s_[0:2], np.s_[2:4]), orphan)

    proj = _init(tmp_path)
    code, out, _ = _add(capsys, proj, pacs, "--labels", "pacs")
    assert code == 0, out
    assert "added 2 case(s): ct_000, ct_001" in out
    assert "imported labels of 2 case(s): ct_000, ct_001" in out
    assert f"  {orphan}: a DICOM SEG of series " in out and "not among the images added" in out
    with Project(proj) as p:
        for case, expected in (("ct_000", first), ("ct_001", second)):
            [version] = p.versions(case, annotator="pacs")
            assert np.array_equal(p.read_mask(version), expected)

    # a folder of SEGs only says to give the images with them
    code, out, _ = _add(capsys, proj, orphan.parent, "--labels", "pacs")
    assert code == 1 and "only DICOM SEG object(s)" in out and "image series" in out


def _count_dicom_reads(monkeypatch) -> dict[tuple[str, bool], int]:
    """Count each file's reads by pydicom: ``{(path, header only): reads}``."""
    import pydicom

    reads: dict[tuple[str, bool], int] = {}
    dcmread = pydicom.dcmread

    def counted(fp, *args, **kwargs):
        if isinstance(fp, str | Path):
            key = (str(Path(fp).resolve()), bool(kwargs.get("stop_before_pixels")))
            reads[key] = reads.get(key, 0) + 1
        return dcmread(fp, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counted)
    return reads


def _refuse_loading_images(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the SEG import loaded the case's image again")

    monkeypatch.setattr(Project, "load_image", refuse)


@pytest.mark.parametrize("no_check", [False, True])
def test_a_dicom_seg_is_imported_from_the_series_the_add_scanned(
    tmp_path, phantoms, capsys, monkeypatch, no_check
):
    """Importing each case's SEG places its frames with the series ``add`` has just scanned
    (and, when checked, loaded): the case's folder is not scanned again and its pixels are
    read once by the check, never by the import; the same for a case added before."""
    cts = phantoms["dicom"] / "ct"
    pacs = tmp_path / "pacs"
    expected = {}
    for case, boxes in (
        ("ct_000", _boxes(np.s_[3:9, 4:12, 5:15], np.s_[6:12, 18:26, 10:20])),
        ("ct_001", _boxes(np.s_[1:4, 2:6, 2:9], np.s_[8:15, 10:30, 1:31])),
    ):
        shutil.copytree(cts / case / "dicom", pacs / case / "ct")
        expected[case] = _segmentation(pacs / case / "ct", boxes, pacs / case / "seg" / "seg.dcm")
    proj = _init(tmp_path)
    check = ["--no-check"] if no_check else []
    # ct_000 added before without its labels, both imported by the add with --labels
    code, out, _ = _add(capsys, proj, pacs / "ct_000", *check)
    assert code == 0 and "added 1 case(s)" in out
    reads = _count_dicom_reads(monkeypatch)
    _refuse_loading_images(monkeypatch)
    code, out, _ = _add(capsys, proj, pacs / "ct_000", pacs / "ct_001", "--labels", "pacs", *check)
    assert code == 0, out
    assert "added 1 case(s): ct_001" in out
    assert "imported labels of 2 case(s): ct_000, ct_001" in out
    slices = {str(f.resolve()) for f in pacs.glob("*/ct/*.dcm")}
    headers = {f: reads.get((f, True), 0) for f in slices}
    pixels = {f: reads.get((f, False), 0) for f in slices}
    # each slice's header read by the scan and once more when its case is handed out
    assert max(headers.values()) <= 2, headers
    new = {f for f in slices if "ct_001" in f}  # only a new case is checked
    assert pixels == {f: int(f in new and not no_check) for f in slices}
    monkeypatch.undo()
    with Project(proj) as p:
        for case, labels in expected.items():
            [version] = p.versions(case, annotator="pacs")
            assert np.array_equal(p.read_mask(version), labels)


def test_a_dicom_seg_naming_only_its_source_slices_finds_its_series_in_another_folder(
    tmp_path, phantoms, capsys
):
    """A SEG without ReferencedSeriesSequence names its series by the slices it was drawn
    on (per frame, SourceImageSequence): found in a folder apart from the series, among
    several series, it is that series' labels."""
    import pydicom

    cts = phantoms["dicom"] / "ct"
    pacs = tmp_path / "pacs"
    for case in ("ct_000", "ct_001", "ct_002"):
        shutil.copytree(cts / case / "dicom", pacs / "images" / case)
    path = pacs / "segmentations" / "ct_001.dcm"
    _segmentation(pacs / "images" / "ct_001", _boxes(np.s_[2:6], np.s_[9:14]), path)
    seg = pydicom.dcmread(path)
    del seg.ReferencedSeriesSequence
    seg.save_as(path)

    proj = _init(tmp_path)
    code, out, _ = _add(capsys, proj, pacs, "--no-check")
    assert code == 0, out
    assert "added 3 case(s): ct_000, ct_001, ct_002" in out
    assert f"found labels beside 1 image(s) (e.g. ct_001: {path})" in out
    assert "left out" not in out


def test_a_dicom_seg_naming_only_its_source_slices_is_imported_onto_them(
    tmp_path, phantoms, capsys
):
    """Without ReferencedSeriesSequence (type 1C, left out by some tools) a SEG still
    names, per frame, the slice it was drawn on: its labels land on those slices."""
    import pydicom

    pacs = tmp_path / "pacs"
    shutil.copytree(phantoms["dicom"] / "ct" / "ct_001" / "dicom", pacs / "ct")
    path = pacs / "seg" / "seg.dcm"
    expected = _segmentation(
        pacs / "ct", _boxes(np.s_[2:6, 3:9, 4:12], np.s_[9:14, 10:20, 5:25]), path
    )
    seg = pydicom.dcmread(path)
    del seg.ReferencedSeriesSequence
    seg.save_as(path)

    proj = _init(tmp_path)
    code, out, _ = _add(capsys, proj, pacs, "--labels", "pacs")
    assert code == 0, out
    assert "imported labels of 1 case(s)" in out
    with Project(proj) as p:
        [case] = p.cases()
        [version] = p.versions(case.id, annotator="pacs")
        assert np.array_equal(p.read_mask(version), expected)


def test_a_study_with_an_angled_stack_axial_is_added_one_image_per_stack(tmp_path, capsys):
    """'phantoms --axial-stacks' writes the Axial T2 as five angled blocks in one series;
    adding the study folder gives the case one image per block, each of which loads."""
    out = tmp_path / "ph"
    assert main(["phantoms", "--out", str(out), "--ct", "0", "--mri", "1", "--axial-stacks"]) == 0
    folder = _init(tmp_path, task="spine")
    code, text, _ = _add(capsys, folder, out / "spine" / "train_images")
    assert code == 0 and "added 1 case(s)" in text
    with Project(folder) as project:
        [case] = project.cases()
        axial = [i for i, ref in enumerate(case.images) if ref.description == "Axial T2"]
        assert [case.images[i].stack for i in axial] == [1, 2, 3, 4, 5]
        shapes = {project.load_image(case.id, i).shape for i in axial}
    assert shapes == {(6, 96, 96)}


def _rows(path: Path) -> list[str]:
    return sorted(path.read_text().splitlines()[1:])


def test_an_rsna_dataset_folder_comes_in_with_its_grades_and_goes_out_unchanged(tmp_path, capsys):
    """The RSNA 2024 layout as Kaggle ships it: series named only by the series CSV (no
    SeriesDescription in the headers, SeriesNumber unrelated to series_id). Added with
    --labels, every study gets its series' names and its grades and points as the reader's
    version; exported again with --keep-identifiers, the three CSVs hold the same rows."""
    import pydicom

    write_phantoms(tmp_path / "ph", 0, 2, seed=6)
    root = tmp_path / "ph" / "spine"
    for f in (root / "train_images").rglob("*.dcm"):
        ds = pydicom.dcmread(f)
        del ds.SeriesDescription
        ds.SeriesNumber = 7
        ds.save_as(f)
    folder = _init(tmp_path, task="spine")
    code, text, _ = _add(capsys, folder, root / "train_images", "--labels", "rsna")
    assert code == 0 and "added 2 case(s)" in text and "imported labels of 2 case(s)" in text
    with Project(folder) as project:
        for case in project.cases():
            names = sorted(ref.description for ref in case.images)
            assert names == ["Axial T2", "Sagittal T1", "Sagittal T2/STIR"]
            [version] = project.versions(case.id, annotator="rsna")
            sheet = project.read_grades(version)
            assert len(sheet.points) == 25 and {p.series for p in sheet.points.values()} <= set(
                names
            )
    out = tmp_path / "out"
    assert (
        main(
            [
                "export",
                str(folder),
                "--format",
                "rsna",
                "--out",
                str(out),
                "--status",
                "corrected",
                "--keep-identifiers",
            ]
        )
        == 0
    )
    for name in ("train.csv", "train_label_coordinates.csv", "train_series_descriptions.csv"):
        assert _rows(out / name) == _rows(root / name), name


def test_a_study_without_a_train_csv_row_is_said_to_have_no_labels(tmp_path, capsys):
    # "imported labels of 1 case(s)" and nothing about the other study or its 25 points
    write_phantoms(tmp_path / "ph", 0, 2, seed=6)
    root = tmp_path / "ph" / "spine"
    header, first, second = (root / "train.csv").read_text().splitlines()
    (root / "train.csv").write_text(f"{header}\n{first}\n")
    dropped = second.split(",")[0]
    folder = _init(tmp_path, task="spine")
    code, text, _ = _add(capsys, folder, root, "--labels", "rsna")
    assert code == 0 and "imported labels of 1 case(s)" in text
    assert (
        f"no grades found for 1 case(s) (an RSNA study needs its row in train.csv): {dropped}"
        in text
    )


def test_series_descriptions_that_name_the_wrong_plane_are_warned_of(tmp_path, capsys):
    # two rows swapped (a Sagittal T1 called "Axial T2") were taken silently, and the
    # grader then ran on the wrong planes
    write_phantoms(tmp_path / "ph", 0, 1, seed=6, axial_stacks=LEVELS)
    root = tmp_path / "ph" / "spine"
    csv_path = root / "train_series_descriptions.csv"
    text = csv_path.read_text()
    folder = _init(tmp_path, task="spine")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, _ = _add(capsys, folder, root, "--labels", "rsna")
    said = " ".join(str(w.message) for w in caught)
    assert code == 0 and "described as" not in said  # angled axial stacks are axial
    swapped = text.replace("Sagittal T1", "TMP").replace("Axial T2", "Sagittal T1")
    csv_path.write_text(swapped.replace("TMP", "Axial T2"))
    folder = _init(tmp_path / "again", task="spine")
    with pytest.warns(VolumeLoadWarning) as caught:
        code, _, _ = _add(capsys, folder, root)
    said = " ".join(str(w.message) for w in caught)
    assert code == 0
    assert "is described as 'Axial T2', but its images are sagittal" in said
    assert "is described as 'Sagittal T1', but its images are axial" in said


def test_an_rsna_dataset_folder_is_read_once_whatever_its_number_of_studies(
    tmp_path, capsys, monkeypatch
):
    """Adding RSNA's 1,975 studies with --labels must not read each study's headers or
    the grade CSVs again per study: the folder is read study by study, every file's
    header once, and each CSV is read once."""
    import napari_atlas_annotate.commands.add as add_command
    import napari_atlas_annotate.io.dicom as dicom
    import napari_atlas_annotate.io.dicom_scan as dicom_scan
    import napari_atlas_annotate.spine_grades as spine_grades

    write_phantoms(tmp_path / "ph", 0, 3, seed=4, axial_stacks=("l4_l5", "l5_s1"))
    root = tmp_path / "ph" / "spine"
    folder = _init(tmp_path, task="spine")
    reads = []

    def counted(name, original):
        def wrapper(path, *args, **kwargs):
            reads.append((name, Path(path).name if name != "_read_header" else Path(path)))
            return original(path, *args, **kwargs)

        return wrapper

    readers = {
        "read_grades_csv": (spine_grades, add_command),
        "read_coordinates_csv": (spine_grades, add_command),
        "scan_dicom": (dicom_scan, dicom),
        "_read_header": (dicom_scan,),
    }
    for name, modules in readers.items():
        wrapper = counted(name, getattr(modules[0], name))
        for module in modules:
            monkeypatch.setattr(module, name, wrapper, raising=module is not add_command)
    code, text, _ = _add(capsys, folder, root / "train_images", "--labels", "rsna")
    assert code == 0 and "added 3 case(s)" in text and "imported labels of 3 case(s)" in text
    headers = [path for name, path in reads if name == "_read_header"]
    assert sorted(headers) == sorted((root / "train_images").rglob("*.dcm"))  # each once
    assert [r for r in reads if r[0] == "scan_dicom"] == []  # no study scanned again
    # graded_studies reads train.csv to find the graded studies; the import once more
    assert reads.count(("read_grades_csv", "train.csv")) == 2
    assert reads.count(("read_coordinates_csv", "train_label_coordinates.csv")) == 1
    with Project(folder) as project:
        for case in project.cases():
            [version] = project.versions(case.id, annotator="rsna")
            assert len(project.read_grades(version).points) == 25


def test_an_rsna_dataset_folder_is_added_study_by_study(tmp_path, capsys, monkeypatch):
    """Adding a dataset folder holds the DICOM headers of one or two studies at a time,
    not of the whole folder (RSNA's 1,975 studies would take gigabytes): when each case is
    stored, the headers read and still alive are those of at most two study folders (the
    first study waits for a second, to know whether the folder holds one case), and the
    case's own are among them."""
    import gc
    import weakref

    import napari_atlas_annotate.io.dicom_scan as dicom_scan

    write_phantoms(tmp_path / "ph", 0, 5, seed=5)
    images = tmp_path / "ph" / "spine" / "train_images"
    folder = _init(tmp_path, task="spine")
    headers: list[tuple[weakref.ref, str]] = []  # (header, study folder of its file)
    read_header = dicom_scan._read_header

    def kept(path):
        ds = read_header(path)
        if ds is not None:
            headers.append((weakref.ref(ds), Path(path).relative_to(images).parts[0]))
        return ds

    live_at_add = {}
    add_case = Project.add_case

    def counted(project, case_id, *args, **kwargs):
        gc.collect()
        live_at_add[case_id] = {study for ref, study in headers if ref() is not None}
        return add_case(project, case_id, *args, **kwargs)

    monkeypatch.setattr(dicom_scan, "_read_header", kept)
    monkeypatch.setattr(Project, "add_case", counted)
    code, text, _ = _add(capsys, folder, images, "--labels", "rsna")
    assert code == 0 and "added 5 case(s)" in text and "imported labels of 5 case(s)" in text
    studies = sorted(p.name for p in images.iterdir())
    assert sorted(live_at_add) == studies and len(headers) == len(list(images.rglob("*.dcm")))
    for case_id, live in live_at_add.items():
        assert case_id in live and len(live) <= 2, (case_id, live)


def _rsna_without_descriptions(tmp_path, seed, **kwargs) -> Path:
    """Two phantom studies in RSNA layout whose headers carry no SeriesDescription (as
    Kaggle's files): only the series CSV names their series. Returns the RSNA root."""
    import pydicom

    write_phantoms(tmp_path / "ph", 0, 2, seed=seed, **kwargs)
    root = tmp_path / "ph" / "spine"
    for f in (root / "train_images").rglob("*.dcm"):
        ds = pydicom.dcmread(f)
        del ds.SeriesDescription
        ds.save_as(f)
    return root


def _csv_rows(root: Path) -> list[list[str]]:
    return [line.split(",") for line in _rows(root / "train_series_descriptions.csv")]


def _write_csv_rows(root: Path, rows: list[list[str]]) -> None:
    lines = ["study_id,series_id,series_description", *(",".join(r) for r in rows)]
    (root / "train_series_descriptions.csv").write_text("\n".join(lines) + "\n")


def test_an_rsna_series_without_a_csv_row_is_reported_and_named_once_the_row_is_added(
    tmp_path, capsys
):
    """A study's series the series CSV has no row for is added unnamed and said so (study,
    series_id folder, what to do); a row naming a series not on disk is a warning. Once the
    row is added, add run again names the series, and the readers' points on it (by the
    name the grade sheet gave the unnamed series) follow, submitted or not; nothing else
    of the case changes."""
    from napari_atlas_annotate.grade_editing import GradeSession, replay_grades
    from napari_atlas_annotate.grade_sheet import GradeSheet, LevelPoint

    root = _rsna_without_descriptions(tmp_path, seed=6, axial_stacks=("l4_l5", "l5_s1"))
    rows = _csv_rows(root)
    study, axial, _ = next(r for r in rows if r[2] == "Axial T2")
    gone = ["999", "Sagittal T1"]  # a row whose series folder is not in the study
    _write_csv_rows(root, [r for r in rows if r[1] != axial] + [[study, *gone]])
    csv = root / "train_series_descriptions.csv"
    folder = _init(tmp_path, task="spine")
    code, text, _ = _add(capsys, folder, root / "train_images", "--labels", "rsna")
    series_folder = root / "train_images" / study / axial
    assert "added 2 case(s)" in text
    assert f"warning: 1 series has no row in {csv}" in text
    assert "the grader cannot tell which plane" in text
    assert f"  study {study} (case {study}): series_id {axial} ({series_folder}), unnamed" in text
    assert "Add a row 'study_id,series_id,series_description' for each to the CSV and run" in text
    assert f"warning: 1 row of {csv} names a series that is not on disk" in text
    missing = root / "train_images" / study / "999"
    assert f"  study {study}, series_id 999 ('Sagittal T1'): no DICOM series in {missing}" in text
    # its points on the unnamed series cannot be imported: said, with the way out
    assert code == 1 and "add its row and run this add again instead" in text
    with Project(folder) as project:
        before = {c.id: c for c in project.cases()}
        unnamed = [i for i, ref in enumerate(before[study].images) if not ref.description]
        assert len(unnamed) == 2  # the axial's two stacks
        # readers' work: dr_a submits points on the unnamed axial (the grade sheet calls an
        # unnamed image 'series <index + 1>') and the sagittal; dr_b's point is not submitted
        reader = GradeSession.open(project, study, "dr_a")
        reader.set_grade("left_subarticular_stenosis", "l4_l5", "Severe")
        on_axial = LevelPoint(f"series {unnamed[0] + 1}", 3, 40.0, 41.0)
        on_sagittal = LevelPoint("Sagittal T2/STIR", 5, 50.0, 60.0)
        reader.set_point("left_subarticular_stenosis", "l4_l5", on_axial)
        reader.set_point("spinal_canal_stenosis", "l4_l5", on_sagittal)
        submitted = reader.submit()
        other = GradeSession.open(project, study, "dr_b")
        other.set_point("right_subarticular_stenosis", "l5_s1", LevelPoint(axial, 2, 7.0, 8.0))
        other.set_point(
            "left_subarticular_stenosis",
            "l5_s1",
            LevelPoint(f"series {unnamed[1] + 1}", 2, 9.0, 10.0),
        )
    _write_csv_rows(root, rows + [[study, *gone]])  # the row added; the removed one stays
    code, text, _ = _add(capsys, folder, root / "train_images", "--labels", "rsna")
    assert (
        code == 0 and "added 0 case(s)" in text and f"imported labels of 1 case(s): {study}" in text
    )
    assert "renamed 1 series of 1 case(s)" in text
    assert f"  {study}: series {series_folder} (2 stacks): (unnamed) -> Axial T2" in text
    # dr_a's submitted version and logged edit, and dr_b's two edits
    assert f"  {study}: its points on them renamed too, in 1 grades version(s) and 3 " in text
    assert "has no row" not in text and "names a series that is not on disk" in text
    with Project(folder) as project:
        after = {c.id: c for c in project.cases()}
        case = after[study]
        assert [ref.description for ref in case.images] == [
            "Axial T2" if i in unnamed else ref.description
            for i, ref in enumerate(before[study].images)
        ]
        assert [(r.path, r.series, r.stack) for r in case.images] == [
            (r.path, r.series, r.stack) for r in before[study].images
        ]
        for name in ("truth", "source", "position", "uncertainty"):
            assert getattr(case, name) == getattr(before[study], name)
        others = [c for c in after if c != study]
        assert [after[c] for c in others] == [before[c] for c in others]
        [version] = project.versions(study, annotator="dr_a")
        kept = ("id", "kind", "annotator", "parent_id", "last_event_id", "created_at", "note")
        assert {k: getattr(version, k) for k in kept} == {k: getattr(submitted, k) for k in kept}
        sheet = project.read_grades(version)
        assert sheet.grade("left_subarticular_stenosis", "l4_l5") == "Severe"
        assert sheet.points[("left_subarticular_stenosis", "l4_l5")] == LevelPoint(
            "Axial T2", 3, 40.0, 41.0
        )
        assert sheet.points[("spinal_canal_stenosis", "l4_l5")] == on_sagittal
        events = project.events(study, "dr_b")
        assert [e.detail["new_point"]["series"] for e in events] == ["Axial T2", "Axial T2"]
        assert replay_grades(GradeSheet(), events).points == {
            ("right_subarticular_stenosis", "l5_s1"): LevelPoint("Axial T2", 2, 7.0, 8.0),
            ("left_subarticular_stenosis", "l5_s1"): LevelPoint("Axial T2", 2, 9.0, 10.0),
        }
        [imported] = project.versions(study, annotator="rsna")
        assert {p.series for p in project.read_grades(imported).points.values()} >= {"Axial T2"}
        [record] = [r for r in project.audit_trail(study) if r["action"] == "rename_series"]
        assert record["detail"]["versions"] == {str(version.id): [submitted.sha256, version.sha256]}
    code, text, _ = _add(capsys, folder, root / "train_images", "--labels", "rsna")
    assert code == 0 and "renamed" not in text  # up to date: nothing more to rename


def test_labels_beside_a_copy_of_an_added_series_go_to_its_case(tmp_path, phantoms, capsys):
    """A series added before without labels, then a copy of the PACS folder with a SEG:
    the copy is not added again, and its labels are imported into the case it repeats,
    under the same id and under another one (they were dropped without a word)."""
    cts = phantoms["dicom"] / "ct"
    pacs = tmp_path / "pacs"
    shutil.copytree(cts / "ct_000" / "dicom", pacs / "ct_000" / "ct")
    proj = _init(tmp_path)
    assert _add(capsys, proj, pacs / "ct_000")[0] == 0
    copy = tmp_path / "pacs_copy"
    shutil.copytree(pacs, copy)
    expected = _segmentation(
        copy / "ct_000" / "ct",
        _boxes(np.s_[3:9, 4:12, 5:15], np.s_[6:12, 18:26, 10:20]),
        copy / "ct_000" / "seg" / "seg.dcm",
    )
    code, out, _ = _add(capsys, proj, copy / "ct_000", "--labels", "pacs")
    assert code == 0, out
    assert "ct_000: already in the project (image " in out
    assert "imported labels of 1 case(s): ct_000" in out
    code, out, _ = _add(capsys, proj, copy / "ct_000", "--labels", "other", "--id", "again")
    assert code == 0, out
    assert "again: image " in out and "is already in case ct_000" in out
    assert "were imported into case ct_000." in out
    with Project(proj) as p:
        assert [c.id for c in p.cases()] == ["ct_000"]
        for reader in ("pacs", "other"):
            [version] = p.versions("ct_000", annotator=reader)
            assert np.array_equal(p.read_mask(version), expected)


def test_a_dataset_of_links_to_series_folders_is_added(tmp_path, phantoms, capsys):
    """Series folders linked into the dataset (not copied) are scanned like any other,
    each real folder once: a link back up the tree neither loops nor adds twice."""
    cts = phantoms["dicom"] / "ct"
    data = tmp_path / "dataset"
    data.mkdir()
    for case in ("ct_000", "ct_001"):
        (data / case).symlink_to(cts / case / "dicom", target_is_directory=True)
    (cts / "ct_000" / "dicom" / "dataset").symlink_to(data, target_is_directory=True)
    try:
        proj = _init(tmp_path)
        code, out, _ = _add(capsys, proj, data)
        assert code == 0, out
        assert out.splitlines()[0] == "added 2 case(s): ct_000, ct_001"
    finally:
        (cts / "ct_000" / "dicom" / "dataset").unlink()
    with Project(proj) as p:
        for case in ("ct_000", "ct_001"):
            volume = p.load_image(case)
            assert volume.shape == load_volume(cts / case / "dicom").shape


def test_an_image_with_voxels_that_are_not_numbers_is_added_with_a_warning(
    tmp_path, phantoms, capsys
):
    source = phantoms["nifti"] / "ct" / "ct_000" / "ct.nii.gz"
    image = nib.load(source)
    array = np.asarray(image.dataobj, np.float32)
    array[:, :5] = np.nan  # outside the field of view, as some converters write it
    path = tmp_path / "nan_ct.nii.gz"
    nib.save(nib.Nifti1Image(array, image.affine), path)
    proj = _init(tmp_path)
    n = int(np.isnan(array).sum())
    with pytest.warns(VolumeLoadWarning) as caught:
        code, out, _ = _add(capsys, proj, path)
    assert code == 0 and out.startswith("added 1 case(s): nan_ct")
    [said] = [str(w.message) for w in caught if "not numbers" in str(w.message)]
    assert said.startswith(f"{path}: {n:,} of {array.size:,} voxels (15.6%) are not numbers")
    assert "read them as air (-1024 HU)" in said

    array[:] = np.nan
    nib.save(nib.Nifti1Image(array, image.affine), tmp_path / "empty_ct.nii.gz")
    code, out, _ = _add(capsys, proj, tmp_path / "empty_ct.nii.gz")
    assert code == 1 and "none of its 16,384 voxels is a number" in out


def test_a_ct_without_air_is_added_with_a_warning(tmp_path, phantoms, capsys):
    """Stored without its rescale intercept, a CT's air is at 0: the helper model would
    read every voxel 1024 HU too bright."""
    image = nib.load(phantoms["nifti"] / "ct" / "ct_000" / "ct.nii.gz")
    raw = np.asarray(image.dataobj, np.float32) + 1024
    path = tmp_path / "raw_ct.nii.gz"
    nib.save(nib.Nifti1Image(raw, image.affine), path)
    proj = _init(tmp_path)
    with pytest.warns(VolumeLoadWarning, match=r"no voxel below -500 HU \(the lowest is 0\)"):
        code, out, _ = _add(capsys, proj, path)
    assert code == 0 and out.startswith("added 1 case(s): raw_ct")
