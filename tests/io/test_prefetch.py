"""Reading the next case's image ahead: handed over only when a fresh read would give it."""

import threading
import time

import numpy as np
import pytest

from napari_atlas_annotate.io import VolumeLoadError, load_volume, prefetch, save_nifti
from napari_atlas_annotate.io.prefetch import ImagePrefetch
from napari_atlas_annotate.volume import Volume


def _ct(path, seed=0, shape=(6, 10, 12)):
    rng = np.random.default_rng(seed)
    affine = np.diag([2.5, 0.8, 0.7, 1.0])
    affine[:3, 3] = (-10.0, 20.0, 5.0)
    array = rng.integers(-1000, 1000, shape).astype(np.int16)
    return save_nifti(Volume(array, affine, "CT", {}), path)


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


def test_only_nifti_files_are_read_ahead(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    ahead = ImagePrefetch()
    assert not ahead.start("ct", folder)  # a DICOM series: read when opened
    assert not ahead.start("ct", _ct(tmp_path / "a.nii.gz"), series="2")
    assert not ahead.start("ct", tmp_path / "missing.nii.gz")
    assert ahead.pending() is None


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
