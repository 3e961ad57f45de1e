"""Exclusive ``flock`` on a file or folder, taken without waiting: one training round per
project (``.training.lock``), one export per staging folder.

The lock belongs to the open descriptor: closing it, or the process ending however it ends
(``kill -9``, a closed terminal, a crash), releases it, so a stale lock never blocks anyone.
Two opens of one path conflict even in one process. On a system without ``fcntl``
(Windows) nothing is locked: :data:`CAN_LOCK` says so.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: False where there is no ``flock`` (Windows): :func:`try_flock` then locks nothing.
CAN_LOCK = fcntl is not None


def try_flock(path: str | Path, *, create: bool = False) -> int | None:
    """Open ``path`` and take an exclusive lock on it without waiting.

    Returns the open descriptor holding the lock (close it to release), or ``None`` when
    another open of ``path`` holds it. ``create``: make the file if it is missing and open
    it for writing (a lock file); otherwise ``path`` (a file or folder) is opened read-only.
    Errors opening it (missing, no permission) are raised as ``OSError``. Without ``flock``
    the descriptor is returned unlocked.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT if create else os.O_RDONLY, 0o644)
    if fcntl is None:  # pragma: no cover - Windows
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
