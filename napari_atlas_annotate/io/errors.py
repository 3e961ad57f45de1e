"""Errors and warnings that tell the user which file, what is wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class VolumeLoadError(ValueError):
    """A file or folder cannot be turned into a correct Volume.

    The message always names the path, the problem and a fix, e.g.::

        /data/ct/slice_017.dcm: 2 slices missing between z=-120.0 and z=-112.5 mm
        (expected spacing 2.5 mm). Re-export the complete series from PACS.
    """

    def __init__(self, path: str | Path, problem: str, hint: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.hint = hint
        message = f"{self.path}: {problem}"
        if hint:
            message += f" {hint}"
        super().__init__(message)


class VolumeLoadWarning(UserWarning):
    """The volume loaded, but something about it deserves the user's attention."""
