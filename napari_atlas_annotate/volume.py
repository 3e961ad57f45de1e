"""The one in-memory image type: a voxel array with its exact patient geometry.

Geometry convention (used everywhere in this package)
-----------------------------------------------------
* ``Volume.array`` is indexed ``(z, y, x)``: slice, row, column. For a DICOM series, ``x``
  runs along a row (column index), ``y`` down the rows (row index) and ``z`` along the
  slices in order of increasing position along the slice normal.
* ``Volume.affine`` is a 4x4 matrix mapping a voxel index ``(z, y, x, 1)`` to patient
  coordinates ``(R, A, S, 1)`` in millimetres (RAS+, the NIfTI / nibabel / MONAI world).
  DICOM's LPS coordinates are converted with ``diag(-1, -1, 1)``.

NIfTI files store arrays in ``(i, j, k)`` order with an ``(i, j, k) -> RAS`` affine; converting
between the two is a transpose of the array and a swap of affine columns 0 and 2
(:func:`nifti_affine_from_zyx` / :func:`zyx_affine_from_nifti`). No resampling happens
anywhere in I/O, so a mask saved on a volume's grid overlays it voxel for voxel.

Examples
--------
>>> import numpy as np
>>> v = Volume(np.zeros((4, 5, 6), np.int16), np.diag([3.0, 0.8, 0.7, 1.0]))
>>> v.spacing
(3.0, 0.8, 0.7)
>>> v.orientation
('R', 'A', 'S')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Flip between DICOM LPS and RAS (its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Swap of the first and third index axes: (z, y, x) <-> (i, j, k) = (x, y, z).
_SWAP_ZX = np.array(
    [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def nifti_affine_from_zyx(affine: np.ndarray) -> np.ndarray:
    """The NIfTI ``(i, j, k) -> RAS`` affine of an array stored transposed to ``(x, y, z)``."""
    return np.asarray(affine, dtype=np.float64) @ _SWAP_ZX


def zyx_affine_from_nifti(affine: np.ndarray) -> np.ndarray:
    """Our ``(z, y, x) -> RAS`` affine from a NIfTI ``(i, j, k) -> RAS`` affine."""
    return np.asarray(affine, dtype=np.float64) @ _SWAP_ZX


def affine_from_geometry(
    origin_ras: np.ndarray,
    directions_ras: np.ndarray,
    spacing_zyx: tuple[float, float, float],
) -> np.ndarray:
    """Build a ``(z, y, x) -> RAS`` affine.

    Parameters
    ----------
    origin_ras
        RAS position (mm) of the centre of voxel ``(0, 0, 0)``.
    directions_ras
        3x3 matrix whose columns are unit vectors (RAS) of the z, y and x index axes.
    spacing_zyx
        Voxel size (mm) along z, y and x.
    """
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(directions_ras, float) * np.asarray(spacing_zyx, float)[None, :]
    affine[:3, 3] = np.asarray(origin_ras, float)
    return affine


@dataclass
class Volume:
    """A 3D image (or label) volume on an exact patient grid.

    Attributes
    ----------
    array
        Voxel data indexed ``(z, y, x)``.
    affine
        4x4 ``(z, y, x, 1) -> (R, A, S, 1)`` millimetre mapping.
    modality
        DICOM modality code (``"CT"``, ``"MR"``) or ``""`` when unknown.
    metadata
        Source facts: ``source`` (path), ``series_uid``, ``series_description``,
        ``sop_instance_uids`` (one per z slice, for DICOM SEG), ``study_uid``,
        ``frame_of_reference_uid``, and whatever the reader found useful.
    """

    array: np.ndarray
    affine: np.ndarray
    modality: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.array.ndim != 3:
            raise ValueError(f"Volume array must be 3D (z, y, x); got shape {self.array.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError(f"Volume affine must be 4x4; got {self.affine.shape}")
        if abs(np.linalg.det(self.affine[:3, :3])) < 1e-9:
            raise ValueError("Volume affine is singular (zero spacing or parallel axes)")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along (z, y, x)."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def directions(self) -> np.ndarray:
        """3x3 matrix; columns are RAS unit vectors of the z, y and x index axes."""
        return self.affine[:3, :3] / np.asarray(self.spacing)[None, :]

    @property
    def origin(self) -> np.ndarray:
        """RAS position (mm) of the centre of voxel (0, 0, 0)."""
        return self.affine[:3, 3].copy()

    @property
    def orientation(self) -> tuple[str, str, str]:
        """Anatomical direction each index axis (z, y, x) points to, e.g. ``('S', 'P', 'L')``."""
        import nibabel.orientations as nio

        return tuple(nio.aff2axcodes(self.affine))  # type: ignore[return-value]

    @property
    def is_oblique(self) -> bool:
        """True when an index axis is not parallel to a patient axis (beyond 1e-4)."""
        d = np.abs(self.directions)
        return bool(np.any((d > 1e-4) & (d < 1 - 1e-4)))

    def index_to_world(self, zyx: np.ndarray) -> np.ndarray:
        """RAS mm of voxel indices (..., 3) in (z, y, x) order."""
        zyx = np.asarray(zyx, float)
        return zyx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_index(self, ras: np.ndarray) -> np.ndarray:
        """Continuous (z, y, x) voxel indices of RAS mm points (..., 3)."""
        inv = np.linalg.inv(self.affine)
        ras = np.asarray(ras, float)
        return ras @ inv[:3, :3].T + inv[:3, 3]

    def same_grid(self, other: Volume, atol: float = 1e-4) -> bool:
        """True when ``other`` has the same shape and affine (within ``atol`` mm)."""
        return self.shape == other.shape and np.allclose(self.affine, other.affine, atol=atol)

    def with_array(self, array: np.ndarray, **metadata: Any) -> Volume:
        """A volume on this grid holding ``array`` (e.g. a label map)."""
        if tuple(array.shape) != self.shape:
            raise ValueError(f"array shape {array.shape} does not match volume {self.shape}")
        return Volume(array, self.affine.copy(), self.modality, {**self.metadata, **metadata})

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (what ``atlas-annotate info`` prints)."""
        return {
            "shape": list(self.shape),
            "spacing": [round(s, 6) for s in self.spacing],
            "orientation": "".join(self.orientation),
            "oblique": self.is_oblique,
            "modality": self.modality,
            "dtype": str(self.array.dtype),
            "affine": [[round(float(v), 6) for v in row] for row in self.affine],
            "series_uid": self.metadata.get("series_uid"),
            "series_description": self.metadata.get("series_description"),
            "source": str(self.metadata.get("source", "")),
        }


@dataclass
class Study:
    """Several series of one patient study (e.g. lumbar MRI: Sagittal T1, Sagittal T2/STIR,
    Axial T2), keyed by SeriesDescription in acquisition order."""

    series: dict[str, Volume]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, description: str) -> Volume:
        try:
            return self.series[description]
        except KeyError:
            raise KeyError(
                f"no series described {description!r}; this study has {list(self.series)}"
            ) from None

    def __iter__(self):
        return iter(self.series.items())

    def __len__(self) -> int:
        return len(self.series)
