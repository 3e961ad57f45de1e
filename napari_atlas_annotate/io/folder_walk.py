"""Walking a data folder the way its owner sees it: linked folders included, each once.

Datasets are often put together with symbolic links (a study folder linking to where the
PACS export really lies, a training set of links into an archive). ``os.walk`` and
``Path.rglob`` do not enter a linked folder by default, so a scan of such a dataset found
nothing there. :func:`walk` follows links to folders but enters each real folder once, so
a link back up the tree (``study/up -> ..``) or two links to one folder neither loop nor
give its files twice.

Examples
--------
>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "archive").mkdir(); _ = (root / "archive" / "a.dcm").write_bytes(b"")
>>> (root / "dataset").mkdir(); (root / "dataset" / "s1").symlink_to(root / "archive")
>>> (root / "dataset" / "s1" / "loop").symlink_to(root / "dataset")
>>> [str(Path(f).relative_to(root)) for f in files_under(root / "dataset")]
['dataset/s1/a.dcm']
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path


def walk(folder: str | Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(folder)`` top-down, following links to folders, each real folder once
    (the first path it is reached by). Prune ``dirs`` in place to skip folders."""
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        yield root, dirs, files


def file_stamps(files: Iterable[str | Path]) -> list[tuple[str, int, int]]:
    """``(path, size, mtime_ns)`` of each file, what tells a file changed since (a read
    ahead, a training cache). Raises OSError for a file that cannot be looked at."""
    stamps = []
    for file in files:
        st = os.stat(file)
        stamps.append((str(file), st.st_size, st.st_mtime_ns))
    return stamps


def files_under(folder: str | Path) -> list[str]:
    """Every file under ``folder`` (through linked folders, each once), as text, in walk
    order; links to files count when they lead to a file."""
    return [
        os.path.join(root, name)
        for root, _, files in walk(folder)
        for name in files
        if os.path.isfile(os.path.join(root, name))
    ]
