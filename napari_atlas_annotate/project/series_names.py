"""The names a DICOM series goes by outside the project: its folder, number and UID.

RSNA's CSVs name a series by ``series_id``, the name of the folder holding its files;
other tools use the SeriesNumber or the SeriesInstanceUID. A case's image may point at
the study folder instead (a study added as a whole), so these names are read from the
series' own files. Headers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..io.nifti import is_nifti_path

__all__ = ["SeriesNames", "series_names"]


@dataclass(frozen=True)
class SeriesNames:
    """``folder``: the folder holding the series' files (None if they are spread over
    several); ``number``: SeriesNumber as text; ``uid``: SeriesInstanceUID."""

    folder: str | None = None
    number: str | None = None
    uid: str | None = None

    def all(self) -> list[str]:
        """The names that are set."""
        return [n for n in (self.folder, self.number, self.uid) if n]


def series_names(
    path: str | Path, series: str | None = None, scans: dict | None = None
) -> SeriesNames:
    """The names of the DICOM series ``series`` under ``path`` (empty for NIfTI, or when
    the headers cannot be read). ``scans`` caches each path's scan across calls."""
    from ..io import VolumeLoadError
    from ..io.dicom import list_series, select_series

    if is_nifti_path(path):
        return SeriesNames()
    scans = {} if scans is None else scans
    try:
        if str(path) not in scans:
            scans[str(path)] = list_series(path)
        info = select_series(scans[str(path)], path, series)
    except (VolumeLoadError, OSError):
        return SeriesNames()
    folders = {Path(f).parent.name for f in info.files}
    number = None if info.series_number is None else str(info.series_number)
    return SeriesNames(folders.pop() if len(folders) == 1 else None, number, info.series_uid)
