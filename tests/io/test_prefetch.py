"""Reading the next case's image ahead: handed over only when a fresh read would give it."""

import shutil
import threading
import time
import warnings

import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.io import (
    VolumeLoadError,
    VolumeLoadWarning,
    load_volume,
    prefetch,
    save_nifti,
)
from napari_atlas_annotate.io.dicom_writer import write_dicom_series
from napari_atlas_annotate.io.prefetch import ImagePrefetch
from napari_atlas_annotate.volume import Volume


def _ct(path, seed=0, shape=(6, 10, 12)):
    rng = np.random.default_rng(seed)
    affine = np.diag([2.5, 0.8, 0.7, 1.0])
    affine[:3, 3] = (-10.0, 20.0, 5.0)
    array = rng.integers(-1000, 1000, shape).astype(np.int16)
    return save_nifti(Volume(array, affine, "CT", {}), path)


def _series_volume(seed=0, shape=(6, 10, 12)) -> Volume:
    """A CT whose first axis runs foot to head (2 mm), rows anterior to posterior."""
    rng = np.random.default_rng(seed)
    array = rng.integers(-1000, 1000, shape).astype(np.int16)
    affine = np.array([[0, 0, -0.7, 30], [0, -0.8, 0, 40], [2.0, 0, 0, -50], [0, 0, 0, 1.0]])
    return Volume(array, affine, "CT", {})


def _same_volume(volume, fresh) -> None:
    assert volume is not None
    np.testing.assert_array_equal(volume.array, fresh.array)
    assert volume.array.dtype == fresh.array.dtype
    np.testing.assert_array_equal(volume.affine, fresh.affine)
    assert volume.modality == fresh.modality
    assert volume.metadata == fresh.metadata


def _seen(caught) -> list[tuple[type, str]]:
    return [(w.category, str(w.message)) for w in caught]


def test_the_image_read_ahead_is_the_image_a_fresh_read_gives(tmp_path):
    path = _ct(tmp_path / "ct001.nii.gz")
    ahead = ImagePrefetch()
    assert ahead.start("ct001", path) and ahead.pending() == "ct001"
    volume = ahead.take("ct001", path)
    fresh = load_volume(path)
    assert volume is not None
    np.testing.assert_array_equal(volume.array, fresh.array)
    assert volume.array.dtype == fresh.array.dtype
    np.testing.assert_array_equal(volume.affine, fresh.affine)
    assert volume.metadata == fresh.metadata
    assert ahead.take("ct001", path) is None  # handed over once
    assert ahead.pending() is None


def test_another_case_or_another_image_gets_nothing(tmp_path):
    path = _ct(tmp_path / "ct001.nii.gz")
    other = _ct(tmp_path / "ct002.nii.gz", seed=1)
    ahead = ImagePrefetch()
    ahead.start("ct001", path)
    assert ahead.take("ct002", other) is None
    ahead.start("ct001", path)
    assert ahead.take("ct001", other) is None  # the case now points at another file
    ahead.start("ct001", path)
    ahead.start("ct002", other)  # the queue moved on: the earlier read is forgotten
    assert ahead.take("ct001", path) is None


def test_a_file_replaced_after_the_read_began_is_read_again(tmp_path):
    path = _ct(tmp_path / "ct001.nii.gz")
    ahead = ImagePrefetch()
    ahead.start("ct001", path)
    ahead._read.done.wait(10)
    time.sleep(0.01)  # a new modification time even on coarse clocks
    _ct(path, seed=7, shape=(6, 10, 13))
    assert ahead.take("ct001", path) is None
    assert load_volume(path).shape == (6, 10, 13)


def test_a_broken_file_is_left_to_the_caller_who_reports_it(tmp_path):
    path = _ct(tmp_path / "ct001.nii.gz")
    path.write_bytes(path.read_bytes()[:200])  # truncated
    ahead = ImagePrefetch()
    assert ahead.start("ct001", path)
    assert ahead.take("ct001", path) is None
    with pytest.raises(VolumeLoadError, match="ct001.nii.gz"):
        load_volume(path)


def test_what_is_read_ahead(tmp_path):
    folder = tmp_path / "series"
    write_dicom_series(_series_volume(), folder, uid_seed="what")
    ahead = ImagePrefetch()
    assert not ahead.start("ct", folder, stack=1)  # one stack of a series: read when opened
    assert not ahead.start("ct", _ct(tmp_path / "a.nii.gz"), series="2")
    assert not ahead.start("ct", tmp_path / "missing.nii.gz")
    assert not ahead.start("ct", tmp_path / "missing")
    assert ahead.pending() is None
    assert ahead.start("ct", folder) and ahead.pending() == "ct"
    assert ahead.start("ct", folder, series="1") and ahead.pending() == "ct"


def test_taking_a_read_under_way_waits_for_it(tmp_path, monkeypatch):
    path = _ct(tmp_path / "ct001.nii.gz")
    release, reading = threading.Event(), threading.Event()
    real = prefetch.load_nifti

    def slow(p):
        reading.set()
        release.wait(10)
        return real(p)

    monkeypatch.setattr(prefetch, "load_nifti", slow)
    ahead = ImagePrefetch()
    ahead.start("ct001", path)
    assert reading.wait(10)
    threading.Timer(0.2, release.set).start()
    start = time.perf_counter()
    volume = ahead.take("ct001", path)
    assert volume is not None and time.perf_counter() - start >= 0.15
    np.testing.assert_array_equal(volume.array, load_volume(path).array)


# -- DICOM series ----------------------------------------------------------------------------
def test_a_dicom_series_read_ahead_is_what_a_fresh_read_gives(tmp_path):
    folder = tmp_path / "ct001"
    paths = write_dicom_series(_series_volume(), folder, uid_seed="fresh")
    for path in paths:  # files named head to foot, as scanners often write them
        path.rename(folder / f"IM{99 - paths.index(path):04d}.dcm")
    ahead = ImagePrefetch()
    assert ahead.start("ct001", folder)
    volume = ahead.take("ct001", folder)
    _same_volume(volume, load_volume(folder))
    assert volume.array.flags.c_contiguous
    assert ahead.take("ct001", folder) is None  # handed over once


def test_a_series_of_a_study_folder_is_the_one_asked_for(tmp_path):
    write_dicom_series(_series_volume(1), tmp_path / "t1", uid_seed="t1", series_number=1)
    write_dicom_series(
        _series_volume(2, shape=(5, 10, 12)), tmp_path / "t2", uid_seed="t2", series_number=2
    )
    ahead = ImagePrefetch()
    ahead.start("s", tmp_path, series="2")
    _same_volume(ahead.take("s", tmp_path, series="2"), load_volume(tmp_path, series="2"))
    ahead.start("s", tmp_path)  # no choice: a fresh read refuses, the caller says why
    assert ahead.take("s", tmp_path) is None
    with pytest.raises(VolumeLoadError, match="holds 2 image series"):
        load_volume(tmp_path)


def _series_with_warnings(folder, monkeypatch):
    """A series a fresh read warns of five times, at four moments: an invalid header value
    pydicom finds while the files are scanned, a file that is not DICOM and a repeated
    image (the scan), an invalid value found while the images are listed (pydicom), and
    uneven slice spacing (the geometry)."""
    paths = write_dicom_series(_series_volume(), folder, uid_seed="warned")
    monkeypatch.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.IGNORE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's, on writing them
        first = pydicom.dcmread(paths[0])
        first.SeriesNumber = "0000000000001"  # IS: at most 12 characters
        first.save_as(paths[0])
        third = pydicom.dcmread(paths[2])
        third.InstanceNumber = "00000000000003"  # read when the images are listed
        third.ImagePositionPatient[2] += 0.06  # 3% off the 2 mm spacing
        third.save_as(paths[2])
    (folder / "notes.txt").write_text("scanned on Tuesday")
    shutil.copy(paths[4], folder / "copy_of_slice5.dcm")


def test_warnings_of_a_series_read_ahead_are_given_when_it_is_taken(tmp_path, monkeypatch):
    folder = tmp_path / "ct001"
    _series_with_warnings(folder, monkeypatch)
    ahead = ImagePrefetch()
    with warnings.catch_warnings(record=True) as before:  # this thread: the GUI's
        warnings.simplefilter("always")
        assert ahead.start("ct001", folder)
        assert ahead._read.done.wait(30) and ahead._read.series is not None
    assert before == []  # nothing shown while another case is open
    with warnings.catch_warnings(record=True) as taken:
        warnings.simplefilter("always")
        volume = ahead.take("ct001", folder)
    with warnings.catch_warnings(record=True) as fresh:
        warnings.simplefilter("always")
        expected = load_volume(folder)
    _same_volume(volume, expected)
    assert _seen(taken) == _seen(fresh)  # same texts, categories and order
    assert [w.category for w in taken].count(UserWarning) == 2  # pydicom's
    assert sum(issubclass(w.category, VolumeLoadWarning) for w in taken) == 3
    texts = " ".join(str(w.message) for w in taken)
    assert "notes.txt" in texts and "same SOPInstanceUID" in texts and "uneven" in texts
    pydicom_warnings = [(w.filename, w.lineno) for w in fresh if w.category is UserWarning]
    assert [(w.filename, w.lineno) for w in taken if w.category is UserWarning] == (
        pydicom_warnings  # shown as pydicom's, where pydicom gave them
    )


def test_warnings_of_this_thread_are_shown_while_a_read_runs(tmp_path, monkeypatch):
    folder = tmp_path / "ct001"
    write_dicom_series(_series_volume(), folder, uid_seed="other thread")
    release, reading = threading.Event(), threading.Event()
    real = prefetch._read_series

    def slow(read, path, series):
        real(read, path, series)
        with prefetch._kept(read.warned["pixels"]):
            warnings.warn("decoded with a fallback", UserWarning, stacklevel=1)
        reading.set()
        release.wait(10)

    monkeypatch.setattr(prefetch, "_read_series", slow)
    ahead = ImagePrefetch()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        ahead.start("ct001", folder)
        assert reading.wait(10)
        warnings.warn("the open case's own warning", UserWarning, stacklevel=1)
        release.set()
        assert ahead._read.done.wait(10)
    assert _seen(shown) == [(UserWarning, "the open case's own warning")]
    with warnings.catch_warnings(record=True) as taken:
        warnings.simplefilter("always")
        assert ahead.take("ct001", folder) is not None
    assert _seen(taken) == [(UserWarning, "decoded with a fallback")]


def test_a_read_ahead_not_taken_shows_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "ct001"
    _series_with_warnings(folder, monkeypatch)
    ahead = ImagePrefetch()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        ahead.start("ct001", folder)
        assert ahead._read.done.wait(30)
        assert ahead.take("ct002", folder) is None  # the queue moved on
    assert shown == []


def _add_file(folder, paths):
    (folder / "notes.txt").write_text("added")


def _remove_file(folder, paths):
    paths[-1].unlink()


def _change_file(folder, paths):
    ds = pydicom.dcmread(paths[2])
    ds.RescaleIntercept = -1000
    ds.save_as(paths[2])


def _add_subfolder_file(folder, paths):
    shutil.copy(paths[0], folder / "sub")


@pytest.mark.parametrize("change", [_add_file, _remove_file, _change_file, _add_subfolder_file])
def test_a_series_folder_changed_after_the_read_began_is_read_again(tmp_path, change):
    folder = tmp_path / "ct001"
    paths = write_dicom_series(_series_volume(), folder, uid_seed="changed")
    (folder / "sub").mkdir()
    ahead = ImagePrefetch()
    ahead.start("ct001", folder)
    assert ahead._read.done.wait(30)
    time.sleep(0.01)  # a new modification time even on coarse clocks
    change(folder, paths)
    with warnings.catch_warnings(record=True) as taken:
        warnings.simplefilter("always")
        assert ahead.take("ct001", folder) is None
    assert taken == []  # what the fresh read gives is what will be shown


def test_a_series_a_fresh_read_refuses_is_left_to_the_caller(tmp_path):
    folder = tmp_path / "ct001"
    paths = write_dicom_series(_series_volume(), folder, uid_seed="gap")
    paths[3].unlink()  # a missing slice
    ahead = ImagePrefetch()
    assert ahead.start("ct001", folder)
    assert ahead.take("ct001", folder) is None
    with pytest.raises(VolumeLoadError, match="missing"):
        load_volume(folder)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("no DICOM here")
    assert ahead.start("notes", tmp_path / "notes")
    assert ahead.take("notes", tmp_path / "notes") is None


def test_images_listed_for_another_series_are_listed_again(tmp_path):
    # take() plans the series from the images the background listed, only if they are
    # that series' (its placement must never come from another's headers)
    import dataclasses

    folder = tmp_path / "ct001"
    write_dicom_series(_series_volume(), folder, uid_seed="listed")
    ahead = ImagePrefetch()
    ahead.start("ct001", folder)
    assert ahead._read.done.wait(30)
    scan, listed, frames, decoded = ahead._read.series
    shifted = [dataclasses.replace(f, position=f.position + 5.0) for f in frames]
    other = dataclasses.replace(listed, series_uid="1.2.3")
    ahead._read.series = (scan, other, shifted, decoded)
    _same_volume(ahead.take("ct001", folder), load_volume(folder))


def test_warnings_of_a_nifti_read_ahead_are_given_when_it_is_taken(tmp_path, monkeypatch):
    path = _ct(tmp_path / "ct001.nii.gz")
    real = prefetch.load_nifti

    def warning(p):  # as nibabel warns of an odd header
        warnings.warn("pixdim[0] (qfac) should be 1 (default) or -1", UserWarning, stacklevel=1)
        return real(p)

    monkeypatch.setattr(prefetch, "load_nifti", warning)
    ahead = ImagePrefetch()
    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("always")
        ahead.start("ct001", path)
        assert ahead._read.done.wait(10)
    assert before == []
    with warnings.catch_warnings(record=True) as taken:
        warnings.simplefilter("always")
        assert ahead.take("ct001", path) is not None
    assert _seen(taken) == [(UserWarning, "pixdim[0] (qfac) should be 1 (default) or -1")]
