"""Series acquired as several stacks: which stack holds a slice, which one is nearest a point.

Lumbar axial T2 series are often acquired as blocks of slices angled through each disc,
saved as one series. Each block loads as a volume of its own (metadata ``stack``,
``stack_count``, and the series' ``series_uid`` or ``series_id``), while a level point
names the *series* and an InstanceNumber, unique within the series: the instance picks
the stack. These helpers are the one place that rule lives, for the grader, training and
the grade sheet.

Examples
--------
>>> import numpy as np
>>> from napari_atlas_annotate.volume import Volume
>>> def block(k, first):
...     meta = {"series_uid": "1.2.3", "stack": k, "stack_count": 2,
...             "instance_numbers": [first, first + 1]}
...     affine = np.eye(4)
...     affine[2, 3] = 10.0 * k
...     return Volume(np.zeros((2, 4, 4), np.int16), affine, "MR", meta)
>>> upper, lower = block(1, 1), block(2, 3)
>>> stack_holding([upper, lower], 4) is lower
True
>>> nearest_stack([upper, lower], np.array([0.0, 0.0, 10.5])) is upper
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .volume import Volume

__all__ = ["CaseImages", "nearest_stack", "series_stacks", "stack_holding", "stack_key"]


def stack_key(name: str, metadata: dict) -> str:
    """``name`` for an ordinary series, ``"<name> (stack k/n)"`` for one of several stacks
    (``metadata`` of the stack's volume)."""
    count = int((metadata or {}).get("stack_count") or 1)
    return name if count <= 1 else f"{name} (stack {metadata['stack']}/{count})"


def _series_key(volume: Volume) -> str | None:
    meta = volume.metadata or {}
    if int(meta.get("stack_count") or 1) <= 1:
        return None
    key = meta.get("series_uid") or meta.get("series_id")
    return None if key in (None, "") else str(key)


def series_stacks(volume: Volume, volumes: Iterable[Volume]) -> list[Volume]:
    """``volume`` and the other stacks of its series among ``volumes``, in stack order.

    A volume that is not one of several stacks gives ``[volume]``.
    """
    key = _series_key(volume)
    if key is None:
        return [volume]
    found = [v for v in volumes if v is volume or _series_key(v) == key]
    if not any(v is volume for v in found):
        found.append(volume)
    return sorted(found, key=lambda v: int(v.metadata.get("stack") or 0))


def _instances(volume: Volume) -> list[int]:
    numbers = (volume.metadata or {}).get("instance_numbers")
    if numbers is not None and len(numbers) == volume.shape[0]:
        return [int(n) for n in numbers]
    return list(range(1, volume.shape[0] + 1))


def stack_holding(stacks: Sequence[Volume], instance: int | None) -> Volume | None:
    """The stack whose slices include InstanceNumber ``instance``; None if none does."""
    if instance is None:
        return None
    return next((v for v in stacks if int(instance) in _instances(v)), None)


def nearest_stack(stacks: Sequence[Volume], world: np.ndarray) -> Volume:
    """The stack whose slab is nearest the RAS point ``world`` (mm outside its box; a
    point inside several, as where two blocks cross, goes to the one whose middle slice
    is closest)."""
    if len(stacks) == 1:
        return stacks[0]

    def distance(volume: Volume) -> tuple[float, float]:
        inv = np.linalg.inv(volume.affine)
        index = inv[:3, :3] @ np.asarray(world, float) + inv[:3, 3]
        last = np.asarray(volume.shape, float) - 1
        outside = np.maximum(0.0, np.maximum(-index, index - last))
        spacing = np.linalg.norm(volume.affine[:3, :3], axis=0)
        from_middle = abs(index[0] - last[0] / 2) * spacing[0]
        return float(np.linalg.norm(outside * spacing)), from_middle

    return min(stacks, key=distance)


class CaseImages:
    """Reads a case's images as ``project.load_image`` does, from one scan of each folder.

    The images of a case often lie in one folder: an RSNA study folder holds all three
    series (each image picks its series), and the stacks of an axial series acquired as
    several are images of their own (same folder and series, ``stack`` 1..n). Loading
    them one by one reads every header of the folder once per image, and works out a
    series' stacks once per stack. Here each folder's headers are read once and each
    series planned once, for all the images of the case in it; each image's pixels are
    read when it is asked for. An image that cannot be read that way (a missing file, a
    series that no longer splits as recorded, a NIfTI file) is loaded by
    ``project.load_image``, which gives its usual error.

    Parameters
    ----------
    project
        A :class:`~napari_atlas_annotate.project.Project`.
    case_id
        The case whose images are read.
    """

    def __init__(self, project: Any, case_id: str) -> None:
        self.project = project
        self.case_id = case_id
        self.images = project.case(case_id).images
        self._scans: dict[str, list | None] = {}
        self._plans: dict[tuple[str, str | None, bool], list] = {}

    def load(self, index: int) -> Volume:
        """The case's ``index``-th image (a :class:`~napari_atlas_annotate.volume.Volume`)."""
        from .io import VolumeLoadError

        ref = self.images[index]
        try:
            plans = self._series_plans(ref.path, ref.series, ref.stack is not None)
            if plans is not None:
                number = 1 if ref.stack is None else int(ref.stack)
                if 1 <= number <= len(plans):
                    volume = plans[number - 1].read()
                    if index == 0:
                        self.project.remember_grid(self.case_id, volume)
                    return volume
        except VolumeLoadError:
            pass  # load_image says what is wrong, in the project's words
        return self.project.load_image(self.case_id, index)

    def _series_plans(self, path: str, series: str | None, stacked: bool) -> list | None:
        """The plans of a series' stacks (``stacked``) or of the series as one volume;
        None for a file that is not read from a DICOM scan."""
        from .io import is_nifti_path
        from .io.dicom import plan_series, plan_stacks, scan_dicom, select_series

        key = (path, series, stacked)
        if key not in self._plans:
            if path not in self._scans:
                where = Path(self.project.resolve(path))
                found = where.exists() and not (where.is_file() and is_nifti_path(where))
                self._scans[path] = scan_dicom(where, label_maps_expected=True) if found else None
            found = self._scans[path]
            if found is None:
                return None
            where = Path(self.project.resolve(path))
            info = select_series(found, where, series)
            self._plans[key] = (
                plan_stacks(info, where, warn=False) if stacked else [plan_series(info, where)]
            )
        return self._plans[key]
