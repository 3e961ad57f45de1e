"""Non-blocking exclusive ``flock`` on a file or folder: taken when free, refused (None) while
another open of it holds it (this or another process, as another machine sharing the disk
would), free again once the holder closes it or is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from napari_atlas_annotate.io.file_locks import CAN_LOCK, try_flock

pytestmark = pytest.mark.skipif(not CAN_LOCK, reason="no flock on this system")


def _holder(path) -> subprocess.Popen:
    """Another process holding the lock on ``path`` until it is killed."""
    code = (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(path)!r}, os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_created_lock_file_is_held_until_closed(tmp_path):
    path = tmp_path / ".training.lock"
    fd = try_flock(path, create=True)
    assert fd is not None and path.is_file()
    os.write(fd, b"who holds it")  # a created lock file is open for writing
    assert try_flock(path, create=True) is None  # a second open is refused, even here
    assert try_flock(path) is None
    os.close(fd)
    again = try_flock(path)
    assert again is not None
    os.close(again)
    assert path.read_bytes() == b"who holds it"


def test_a_folder_is_locked_and_a_missing_one_raises(tmp_path):
    fd = try_flock(tmp_path)
    assert fd is not None
    assert try_flock(tmp_path) is None
    os.close(fd)
    with pytest.raises(FileNotFoundError):
        try_flock(tmp_path / "gone")  # not created unless asked


def test_a_lock_another_process_holds_is_refused_until_it_is_killed(tmp_path):
    proc = _holder(tmp_path)
    try:
        assert try_flock(tmp_path) is None
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean-up runs: the system drops the lock
        proc.wait(timeout=10)
    fd = try_flock(tmp_path)
    assert fd is not None
    os.close(fd)
