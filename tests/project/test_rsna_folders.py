"""Recognising an RSNA 2024 lumbar dataset folder: from its root, its images folder or a
study inside it; series named by the series CSV; which studies the grades CSV holds."""

from __future__ import annotations

import pytest

from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.project.rsna_folders import find_rsna_folder
from napari_atlas_annotate.spine_grades import read_series_descriptions_csv


@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("rsna")
    write_phantoms(out, 0, 2, seed=1)
    return out / "spine"  # train_images/, train.csv, train_label_coordinates.csv, ...


def test_found_from_the_root_the_images_folder_or_a_study(rsna_root):
    study = next((rsna_root / "train_images").iterdir())
    for path in (rsna_root, rsna_root / "train_images", study, next(study.iterdir())):
        found = find_rsna_folder(path)
        assert found is not None and found.root == rsna_root.resolve()
        assert found.images == (rsna_root / "train_images").resolve()
        assert found.grades == rsna_root.resolve() / "train.csv"
        assert found.points == rsna_root.resolve() / "train_label_coordinates.csv"


def test_series_named_by_the_csv_and_graded_studies(rsna_root):
    found = find_rsna_folder(rsna_root)
    rows = read_series_descriptions_csv(rsna_root / "train_series_descriptions.csv")
    assert len(rows) == 6
    for study, series, description in rows:
        folder = rsna_root / "train_images" / str(study) / str(series)
        assert found.series_of(folder) == (study, series)
        assert found.description(study, series) == description
    assert found.graded_studies() == {study for study, _, _ in rows}
    assert found.series_of(rsna_root / "train_images") is None  # not a series folder


def test_not_an_rsna_folder(tmp_path, rsna_root):
    assert find_rsna_folder(tmp_path) is None
    (tmp_path / "train_images").mkdir()  # images but no series CSV
    assert find_rsna_folder(tmp_path) is None


def test_an_unreadable_series_csv_names_the_file(tmp_path):
    (tmp_path / "train_images").mkdir()
    csv = tmp_path / "train_series_descriptions.csv"
    csv.write_text("study_id,series_id,series_description\nabc,1,Axial T2\n")
    with pytest.raises(ValueError, match="train_series_descriptions.csv"):
        find_rsna_folder(tmp_path)


def test_csv_rows_of_series_not_on_disk_are_found_for_the_studies_under_a_path(rsna_root):
    """The rows naming a series that was not found: every study's for the dataset's root or
    images folder, one study's for its folder, none for a series folder (its study was
    not given whole) or a folder elsewhere."""
    found = find_rsna_folder(rsna_root)
    rows = sorted(found.descriptions)
    gone = rows[0], rows[-1]  # series of two different studies, as if not on disk
    assert gone[0][0] != gone[1][0]
    on_disk = set(rows) - set(gone)
    images = rsna_root / "train_images"
    for path in (rsna_root, images):
        missing = found.missing_series(path, on_disk)
        assert [(m.study_id, m.series_id) for m in missing] == list(gone)
        for m in missing:
            assert m.csv == rsna_root.resolve() / "train_series_descriptions.csv"
            assert m.description == found.description(m.study_id, m.series_id)
            assert m.folder == images.resolve() / str(m.study_id) / str(m.series_id)
    study = images / str(gone[1][0])
    assert [(m.study_id, m.series_id) for m in found.missing_series(study, on_disk)] == [gone[1]]
    assert found.missing_series(study / str(gone[1][1]), on_disk) == []
    assert found.missing_series(rsna_root / "truth", on_disk) == []
    assert found.missing_series(images, set(rows)) == []


def test_study_folders_are_what_a_scan_of_the_root_or_images_folder_looks_into(rsna_root, tmp_path):
    """The study folders of the images folder (and, from the root, the root's other
    entries); a link to a study folder and a hidden file are left out, as a scan of the
    folder leaves them out; a study or series folder has none (it is one study)."""
    import shutil

    root = tmp_path / "rsna"
    shutil.copytree(rsna_root, root)
    images = root / "train_images"
    studies = sorted(images.iterdir())
    (images / "linked").symlink_to(studies[0], target_is_directory=True)
    (images / ".DS_Store").write_text("")
    found = find_rsna_folder(images)
    assert found.study_folders(images) == (studies, [])
    from_root, others = found.study_folders(root)
    assert from_root == studies
    assert others == sorted(e for e in root.iterdir() if e.name != "train_images")
    assert found.study_folders(studies[0]) is None
    assert found.study_folders(next(studies[0].iterdir())) is None
