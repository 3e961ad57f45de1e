"""Atomic file writes: a temp file in the target folder, fsync, then rename.

A reader (or a crash) never sees a half-written file: either the old content or the new
one is at ``path``. Label versions, project settings and exports all write through here.

Files and staging folders get the permissions a plain ``open``/``mkdir`` would give under
the process's umask (``tempfile`` makes them owner-only), so a project or an export on a
shared drive can be read by the rest of the team.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _process_umask() -> int:
    """The umask, from /proc where it can be read without changing it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def shared_mode(directory: bool = False) -> int:
    """Permission bits a new file (or folder) gets from ``open`` (``mkdir``) under the
    process's umask: 0o644 / 0o755 with the usual 0o022."""
    return (0o777 if directory else 0o666) & ~_process_umask()


def staging_folder(parent: str | Path, prefix: str, suffix: str = "") -> Path:
    """A new, uniquely named folder in ``parent`` (to be renamed into place when complete),
    with the permissions ``mkdir`` would give it."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(folder, shared_mode(directory=True))
    return folder


@contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temp file beside ``path`` for binary writing; rename it over ``path`` on success.

    Examples
    --------
    >>> with atomic_output(tmp / "a.bin") as fh:  # doctest: +SKIP
    ...     fh.write(b"data")
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        yield fh


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside ``path`` (same suffix) for writers that take a file name, such as
    ``nibabel.save``; fsynced and renamed over ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    os.chmod(tmp, shared_mode())
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


#: A temp file :func:`atomic_path` makes: ``.<target name>.<mkstemp's 8 characters><suffix>``.
_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]{8}(\.nii\.gz|\.[A-Za-z0-9]+)?")


def remove_stale_temps(folder: str | Path, older_than_s: float = 3600.0) -> int:
    """Delete the temp files :func:`atomic_path` left in ``folder`` when its process was
    killed mid-write (nothing else removes them), if untouched for ``older_than_s``
    seconds: a write in progress elsewhere keeps its file fresh. Returns how many went."""
    gone = 0
    cutoff = time.time() - older_than_s
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not _TEMP_NAME.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                gone += 1
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return gone
