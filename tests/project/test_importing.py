"""Per-class masks merged into one label map: a voxel two masks claim goes to the smaller
structure whatever order the files come in, and the overlap is counted by class pair."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_atlas_annotate.project import ImageRef, Project, ProjectError
from napari_atlas_annotate.project.importing import merge_class_masks

SHAPE = (6, 8, 10)


@pytest.fixture
def project(tmp_path):
    image = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(SHAPE[::-1], np.int16), np.eye(4)), image)
    with Project.create(tmp_path / "proj", task="organs") as project:
        project.add_case("c1", [ImageRef(str(image), "CT")])
        yield project


def _write(folder, masks: dict) -> dict:
    folder.mkdir(exist_ok=True)
    files = {}
    for name, mask in masks.items():
        files[name] = folder / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(mask.transpose(2, 1, 0).astype(np.uint8), np.eye(4)), files[name])
    return files


def test_disputed_voxels_go_to_the_smallest_claimant_in_any_order(project, tmp_path):
    liver = np.zeros(SHAPE, bool)
    liver[:, :, :6] = True  # 288 voxels
    pancreas = np.zeros(SHAPE, bool)
    pancreas[2:4, 2:6, 4:9] = True  # 40 voxels, 16 of them in the liver
    aorta = np.zeros(SHAPE, bool)
    aorta[:, 3, 5] = True  # 6 voxels through both
    masks = {"liver": liver, "pancreas": pancreas, "aorta": aorta}
    files = _write(tmp_path / "masks", masks)
    expected = np.zeros(SHAPE, np.uint8)
    for name in ("liver", "pancreas", "aorta"):  # largest first: the smaller paints over
        expected[masks[name]] = project.classes.index(name) + 1

    results = [
        merge_class_masks(project, "c1", dict(order))
        for order in (list(files.items()), list(files.items())[::-1])
    ]
    for labels, overlaps in results:
        assert np.array_equal(labels, expected)
        assert overlaps.voxels == int(((liver + 0 + pancreas + aorta) > 1).sum())
        assert overlaps.crowded == int(((liver + 0 + pancreas + aorta) > 2).sum()) == 2
        assert overlaps.pairs == (
            ("liver", "pancreas", int((liver & pancreas).sum()), "pancreas"),
            ("aorta", "liver", int((aorta & liver).sum()), "aorta"),
            ("aorta", "pancreas", int((aorta & pancreas).sum()), "aorta"),
        )
    summary = results[0][1].summary(limit=1)
    assert summary.startswith(f"{overlaps.voxels} voxel(s) claimed by more than one class mask")
    assert "liver & pancreas 16, to pancreas; 2 more pair(s)" in summary


def test_masks_that_do_not_overlap_report_nothing(project, tmp_path):
    liver, spleen = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
    liver[:, :, :3], spleen[:, :, 5:] = True, True
    labels, overlaps = merge_class_masks(
        project, "c1", _write(tmp_path / "m", {"liver": liver, "spleen": spleen})
    )
    assert overlaps is None
    assert (labels == project.classes.index("spleen") + 1).sum() == spleen.sum()


@pytest.fixture
def rsna_study(tmp_path):
    """A phantom lumbar study added as 'atlas-annotate add' does, and its RSNA CSVs."""
    import json

    from napari_atlas_annotate.phantoms import write_phantoms
    from napari_atlas_annotate.project.sources import cases_from_path

    manifest = write_phantoms(tmp_path / "phantoms", 0, 1, 3, "dicom")
    [entry] = json.loads(manifest.read_text())["cases"]
    [case] = cases_from_path(manifest, "spine")
    project = Project.create(tmp_path / "spine", task="spine")
    project.add_case(case.id, case.images, source=case.source)
    root = manifest.parent
    yield project, case.id, root / entry["grades"], root / entry["points"], root / "spine"
    project.close()


def _edited(points_csv, tmp_path, row: int, **values):
    """A copy of a coordinates CSV with some columns of one data row changed."""
    import csv

    with open(points_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[row].update({k: str(v) for k, v in values.items()})
    out = tmp_path / f"coordinates_{row}.csv"
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out, rows[row]


def _series_with_seg(tmp_path):
    """A phantom CT series and ``tmp_path/seg.dcm``, a DICOM SEG of two boxes drawn on it;
    returns the series folder and the drawn labels."""
    from napari_atlas_annotate.export.dicom_seg import build_segmentation, write_segmentation
    from napari_atlas_annotate.io import load_volume
    from napari_atlas_annotate.phantoms import write_phantoms

    series = write_phantoms(tmp_path / "ph", 1, 0, 0, "dicom", ct_shape=(8, 16, 16))
    series = series.parent / "ct" / "ct_000" / "dicom"
    image = load_volume(series)
    drawn = np.zeros(image.shape, np.uint8)
    drawn[2:5, 3:9, 4:12], drawn[5:7, 10:14, 1:6] = 1, 2
    seg = build_segmentation(
        image.metadata["files"], drawn, ["spleen", "liver"], "x", keep_identifiers=True
    )
    write_segmentation(seg, tmp_path / "seg.dcm")
    return series, drawn


def test_points_off_the_cases_series_or_slices_are_refused_by_row(rsna_study, tmp_path):
    """A coordinates row whose instance number the series lacks, or whose series the study
    lacks, could never be shown, graded on or exported: the import names each such
    point, what the series holds, and stores nothing."""
    from napari_atlas_annotate.project import ProjectError
    from napari_atlas_annotate.project.importing import import_labels
    from napari_atlas_annotate.spine_grades import read_coordinates_csv

    project, case_id, grades, points, root = rsna_study
    good = read_coordinates_csv(points)
    series_id = good[0].series_id
    n_slices = len(list(root.glob(f"train_images/*/{series_id}/*.dcm")))
    assert n_slices > 0
    bad, row = _edited(points, tmp_path, 0, instance_number=n_slices + 5)
    with pytest.raises(ProjectError) as err:
        import_labels(project, case_id, "rsna", grades, points=bad)
    said = str(err.value)
    assert f"{bad}: 1 point(s) of case {case_id} are not on its images" in said
    assert f"(instance {n_slices + 5}) on series " in said and f"({series_id})" in said
    assert f"whose instances are 1..{n_slices}" in said
    assert "Nothing was imported" in said

    elsewhere, _ = _edited(points, tmp_path, 1, series_id=123)
    with pytest.raises(ProjectError, match="on series 123, which case .* does not have"):
        import_labels(project, case_id, "rsna", grades, points=elsewhere)
    assert project.versions(case_id) == []  # nothing stored, nobody registered
    version = import_labels(project, case_id, "rsna", grades, points=points)
    assert len(project.read_grades(version).points) == len(good) == 25


def test_a_dicom_seg_is_placed_by_the_grid_a_caller_has_without_loading_the_image(
    tmp_path, monkeypatch
):
    """Given the case's image as planned from its headers (grid and slice UIDs, no pixels),
    a DICOM SEG import stores the same labels as one that loads the image, and loads
    nothing: neither to place the frames nor for the version's grid."""
    from napari_atlas_annotate.io.dicom import list_series, plan_series
    from napari_atlas_annotate.project.importing import import_labels

    series, drawn = _series_with_seg(tmp_path)
    [info] = list_series(series)
    with Project.create(tmp_path / "proj", task="organs") as project:
        for case in ("loaded", "planned"):
            project.add_case(case, [ImageRef(str(series), "CT")])
        loaded = import_labels(project, "loaded", "a", tmp_path / "seg.dcm")

        def refuse(*args, **kwargs):
            raise AssertionError("the image was loaded")

        monkeypatch.setattr(Project, "load_image", refuse)
        grid = plan_series(info, series).grid()
        planned = import_labels(project, "planned", "a", tmp_path / "seg.dcm", image=grid)
        monkeypatch.undo()
        assert np.array_equal(project.read_mask(planned), project.read_mask(loaded))
        assert np.count_nonzero(project.read_mask(planned)) == np.count_nonzero(drawn)


def test_a_dicom_seg_import_reads_no_pixels_of_the_cases_image(tmp_path, monkeypatch):
    """Without the caller's image (``atlas-annotate import``; ``add --labels`` finding a case's
    series again under another path), a DICOM SEG import places its frames with the case's
    series as planned from its headers: the labels land on the slices they were drawn on, and
    no pixel of the image is read (a 300-slice CT took 0.5-1 s more, JPEG 2000 about 8 s)."""
    import pydicom

    from napari_atlas_annotate.project.importing import import_labels

    series, drawn = _series_with_seg(tmp_path)
    pixel_reads = []
    dcmread = pydicom.dcmread

    def counted(fp, *args, **kwargs):
        if Path(str(fp)).parent == series and not kwargs.get("stop_before_pixels"):
            pixel_reads.append(fp)
        return dcmread(fp, *args, **kwargs)

    with Project.create(tmp_path / "proj", task="organs") as project:
        project.add_case("ct", [ImageRef(str(series), "CT")])
        monkeypatch.setattr(pydicom, "dcmread", counted)
        monkeypatch.setattr(Project, "load_image", lambda *a, **k: pytest.fail("image loaded"))
        version = import_labels(project, "ct", "a", tmp_path / "seg.dcm")
        monkeypatch.undo()
        assert pixel_reads == []
        spleen, liver = (project.classes.index(c) + 1 for c in ("spleen", "liver"))
        expected = np.select([drawn == 1, drawn == 2], [spleen, liver], 0)
        np.testing.assert_array_equal(project.read_mask(version), expected)


def _pseudonym_of(export: Path) -> str:
    """The one study_id of an RSNA export's train.csv."""
    from napari_atlas_annotate.spine_grades import read_grades_csv

    (study_id,) = read_grades_csv(export / "train.csv")
    return str(study_id)


def test_a_pseudonymised_rsna_export_is_refused_naming_keep_identifiers(rsna_study, tmp_path):
    """A newcomer re-imported an `export --format rsna`: its study_id and series_id are
    pseudonyms, so its points name series the case does not have. The refusal says so,
    and that an export with --keep-identifiers keeps the real ids (which import)."""
    from napari_atlas_annotate.cli import main
    from napari_atlas_annotate.project import ProjectError
    from napari_atlas_annotate.project.importing import import_labels

    project, case_id, grades, points, _ = rsna_study
    import_labels(project, case_id, "lee", grades, points=points)
    folder = str(project.folder)
    out = {}
    for how, options in (("pseudonymised", []), ("kept", ["--keep-identifiers"])):
        out[how] = tmp_path / how
        argv = ["export", folder, "--format", "rsna", "--status", "corrected", "--out"]
        assert main([*argv, str(out[how]), *options]) == 0
    exported = out["pseudonymised"]
    with pytest.raises(ProjectError) as err:
        import_labels(
            project,
            case_id,
            "kim",
            exported / "train.csv",
            points=exported / "train_label_coordinates.csv",
        )
    said = str(err.value)
    assert f"holds study_id {_pseudonym_of(exported)}, but case {case_id} is study" in said
    assert (
        f"{exported / 'provenance.json'} says these CSVs are a pseudonymised 'atlas-annotate "
        "export --format rsna': their study_id and series_id are pseudonyms, not the ids of "
        "the study and its series. Export again with --keep-identifiers to keep the real "
        "ids, and import that." in said
    )
    assert project.versions(case_id, kinds=("imported",))[-1].annotator == "lee"

    kept = out["kept"]
    version = import_labels(
        project, case_id, "kim", kept / "train.csv", points=kept / "train_label_coordinates.csv"
    )
    assert len(project.read_grades(version).points) == 25


def test_a_pseudonymised_rsna_export_of_several_studies_is_refused_naming_keep_identifiers(
    rsna_study, tmp_path
):
    import json

    from napari_atlas_annotate.project import ProjectError
    from napari_atlas_annotate.project.importing import import_labels

    project, case_id, grades, _, _ = rsna_study
    rows = grades.read_text().splitlines()
    header, row = rows[0], rows[1]
    exported = tmp_path / "rsna"
    exported.mkdir()
    (exported / "train.csv").write_text(
        "\n".join([header, "605644128" + row[row.index(",") :], "7" + row[row.index(",") :]])
    )
    (exported / "provenance.json").write_text(
        json.dumps({"format": "rsna", "identifiers": "pseudonymised"})
    )
    with pytest.raises(ProjectError, match="pass --study-id to pick one") as err:
        import_labels(project, case_id, "kim", exported / "train.csv")
    assert "Export again with --keep-identifiers" in str(err.value)
    (exported / "provenance.json").write_text(json.dumps({"format": "rsna", "identifiers": "kept"}))
    with pytest.raises(ProjectError) as err:
        import_labels(project, case_id, "kim", exported / "train.csv")
    assert "--keep-identifiers" not in str(err.value)  # real ids: nothing to say about them


def test_another_studys_grades_are_refused_unless_asked_for(rsna_study, tmp_path):
    """A case named by its RSNA study_id takes the row of that study; a CSV holding only
    another study is refused (it was stored silently as this case's grades), and
    --study-id takes it all the same."""
    from napari_atlas_annotate.project import ProjectError
    from napari_atlas_annotate.project.importing import import_labels, read_grade_sheet
    from napari_atlas_annotate.spine_grades import read_grades_csv, write_grades_csv

    project, case_id, grades, points, _ = rsna_study
    assert case_id.isdigit()
    (study,) = read_grades_csv(grades).values()
    other = write_grades_csv(tmp_path / "other.csv", {12345: study})
    with pytest.raises(ProjectError) as err:
        import_labels(project, case_id, "kim", other)
    assert f"holds study_id 12345, but case {case_id} is study {case_id}" in str(err.value)
    assert "pass --study-id 12345" in str(err.value)
    assert project.versions(case_id) == []
    version = import_labels(project, case_id, "kim", other, study_id=12345)
    assert project.read_grades(version).grades == read_grade_sheet(grades, None).grades


def test_a_points_file_that_is_not_one_or_lacks_the_study_is_refused(rsna_study, tmp_path):
    from napari_atlas_annotate.project import ProjectError
    from napari_atlas_annotate.project.importing import import_labels

    project, case_id, grades, points, _ = rsna_study
    with pytest.raises(ValueError, match="no column series_id.* a coordinates CSV needs"):
        import_labels(project, case_id, "kim", grades, points=grades)  # grades as points
    elsewhere, _ = _edited(points, tmp_path, 0)
    text = elsewhere.read_text().replace(case_id, "777")  # every row another study's
    elsewhere.write_text(text)
    said = f"no points of study_id {case_id} \\(its studies: 777\\)"
    with pytest.raises(ProjectError, match=said):
        import_labels(project, case_id, "kim", grades, points=elsewhere)
    assert project.versions(case_id) == []


def test_a_label_map_given_to_a_spine_project_says_what_it_takes(rsna_study, tmp_path):
    from napari_atlas_annotate.project import ProjectError
    from napari_atlas_annotate.project.importing import import_labels

    project, case_id, *_ = rsna_study
    nifti = tmp_path / "labels.nii.gz"
    nifti.write_bytes(b"\x1f\x8b\x08\x00" + bytes(64))  # gzip bytes, as a .nii.gz starts
    with pytest.raises(ProjectError, match="not a CSV text file. A spine project imports grades"):
        import_labels(project, case_id, "kim", nifti)


def _no_orientation(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data.transpose(2, 1, 0).astype(np.uint8), None), path)
    return path


def test_a_label_without_orientation_is_refused_on_an_oriented_image(tmp_path):
    # nibabel's fall-back grid was taken as geometry: on an LPS image centred on the
    # origin it was "reordered" onto the image, flipped front to back, without a word
    from napari_atlas_annotate.project.importing import import_labels

    image = tmp_path / "ct.nii.gz"
    lps = np.diag([-2.0, -2.0, 3.0, 1.0])
    lps[:3, 3] = [7.0, 9.0, -7.5]  # centred on the origin, as in the audit's repro
    nib.save(nib.Nifti1Image(np.zeros(SHAPE[::-1], np.int16), lps), image)
    labels = np.zeros(SHAPE, np.uint8)
    labels[1:3, 1:4, 2:5] = 5
    with Project.create(tmp_path / "proj", task="organs") as project:
        project.add_case("c1", [ImageRef(str(image), "CT")])
        label = _no_orientation(tmp_path / "lab.nii.gz", labels)
        with pytest.raises(ProjectError, match="no orientation") as caught:
            import_labels(project, "c1", "a", label)
        assert "Nothing was imported" in str(caught.value)
        assert project.versions("c1") == []


def test_a_label_without_orientation_fits_an_image_without_it(tmp_path):
    from napari_atlas_annotate.io import VolumeLoadWarning
    from napari_atlas_annotate.project.importing import import_labels

    labels = np.zeros(SHAPE, np.uint8)
    labels[1:3, 1:4, 2:5] = 5
    image = _no_orientation(tmp_path / "ct.nii.gz", np.zeros(SHAPE))
    with Project.create(tmp_path / "proj", task="organs") as project:
        with pytest.warns(VolumeLoadWarning, match="no orientation"):
            project.add_case("c1", [ImageRef(str(image), "CT")])
            imported = import_labels(
                project, "c1", "a", _no_orientation(tmp_path / "l.nii", labels)
            )
            np.testing.assert_array_equal(project.read_mask(imported), labels)


def test_an_off_grid_label_is_measured_in_voxels_of_its_own_axis():
    # a half-slice shift on 3 mm slices with 1.8 x 2.2 mm pixels was called "0.83 voxel"
    from napari_atlas_annotate.project.importing import on_image_grid

    image = np.diag([3.0, 2.2, 1.8, 1.0])
    shifted = image.copy()
    shifted[0, 3] += 1.5
    data = np.zeros(SHAPE, np.uint8)
    with pytest.raises(ProjectError, match=r"1\.5 mm \(0\.5 voxel\)"):
        on_image_grid(data, shifted, SHAPE, image, Path("lab.nii.gz"), "c1")
