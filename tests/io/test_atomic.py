"""Atomic writes leave files and staging folders readable as the umask says, not owner-only
(``tempfile`` alone makes them 0600 / 0700, which locks the team out of a shared project)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from napari_atlas_annotate.io.atomic import staging_folder, write_text


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_written_files_and_staging_folders_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    path = write_text(tmp_path / "project.json", "{}")
    assert _mode(path) == 0o666 & ~mask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what an ordinary write gives
    assert _mode(path) == _mode(plain)
    folder = staging_folder(tmp_path, prefix=".export.")
    assert _mode(folder) == 0o777 & ~mask
    assert folder.name.startswith(".export.")


def test_saved_label_versions_are_readable_by_the_group(tmp_path, umask):
    from napari_atlas_annotate.io import save_nifti
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom
    from napari_atlas_annotate.project import ImageRef, Project

    umask(0o022)
    image, label, _ = make_ct_phantom(0, shape=(8, 16, 16))
    path = save_nifti(image, tmp_path / "ct.nii.gz")
    with Project.create(tmp_path / "proj", task="organs") as project:
        project.add_case("ct0", [ImageRef(str(path), "CT")])
        version = project.save_mask_version(
            "ct0", np.asarray(label.array, np.uint8), kind="corrected", annotator="a"
        )
        stored = project.folder / version.path
    assert _mode(stored) == 0o644
    assert _mode(tmp_path / "proj" / "project.json") == 0o644


def test_temp_files_left_by_a_killed_save_are_swept_when_stale(tmp_path):
    # a save killed mid-write left ".corrected-alice-....nii.gz.XXXXXXXX.nii.gz" for good
    import time

    from napari_atlas_annotate.io.atomic import atomic_path, remove_stale_temps

    with atomic_path(tmp_path / "v.nii.gz") as tmp:  # a temp name as a save makes it
        stale = tmp_path / tmp.name.replace(".v.nii.gz.", ".w.nii.gz.")
    stale.write_bytes(b"half written when the process was killed")
    fresh = tmp_path / ".x.nii.gz.abcdefgh.nii.gz"  # another process writing now
    fresh.write_bytes(b"being written")
    mine = tmp_path / ".notes"  # not a temp of ours
    mine.write_text("keep")
    old = time.time() - 7200
    for path in (stale, mine):
        os.utime(path, (old, old))
    assert remove_stale_temps(tmp_path) == 1
    assert not stale.exists() and fresh.exists() and mine.exists()
