"""Small synthetic volumes with known geometry, shared by the napari adapter tests."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.volume import Volume, affine_from_geometry

#: z -> S, y -> P, x -> L: the standard axial CT (radiological display, no transpose).
AXIAL_SPL = np.column_stack([[0, 0, 1], [0, -1, 0], [-1, 0, 0]]).astype(float)
#: Sagittal MR as scanners write it (ImageOrientationPatient 0,1,0,0,0,-1): columns run
#: to P, rows go down (I), slices along row x column, towards the patient's right.
SAGITTAL_RIP = np.column_stack([[1, 0, 0], [0, 0, -1], [0, -1, 0]]).astype(float)
#: Axial but flipped: slices go down (I), rows anterior, columns to the right.
AXIAL_IAR = np.column_stack([[0, 0, -1], [0, 1, 0], [1, 0, 0]]).astype(float)


def rotation_about_r(degrees: float) -> np.ndarray:
    """RAS rotation about the R axis (tilts an axial stack like an angled Axial T2)."""
    t = np.deg2rad(degrees)
    return np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])


#: Index-axis directions by name, for parametrised tests.
DIRECTIONS = {
    "axial_SPL": AXIAL_SPL,
    "sagittal_RIP": SAGITTAL_RIP,
    "axial_IAR": AXIAL_IAR,
    "oblique_axial": rotation_about_r(12.0) @ AXIAL_SPL,
    "oblique_sagittal": rotation_about_r(-9.0) @ SAGITTAL_RIP,
}


def _ct_volume(directions: str | np.ndarray = "axial_SPL", shape=(6, 24, 20)) -> Volume:
    """CT-like int16 volume: air (-1000 HU) around a soft-tissue block with a gradient.

    ``directions`` is a key of :data:`DIRECTIONS` or a 3x3 matrix (columns: RAS unit
    vectors of the z, y and x index axes).
    """
    if isinstance(directions, str):
        directions = DIRECTIONS[directions]
    array = np.full(shape, -1000, np.int16)
    z, y, x = shape
    array[:, 2 : y - 2, 2 : x - 2] = 40
    array += np.arange(x, dtype=np.int16)[None, None, :]
    affine = affine_from_geometry([-31.5, 12.25, -402.0], directions, (2.5, 0.7, 0.8))
    return Volume(array, affine, modality="CT", metadata={"source": "synthetic"})


def _organ_labels(volume: Volume) -> np.ndarray:
    """A liver (5) block and a one-voxel spleen (8) at a known index."""
    labels = np.zeros(volume.shape, np.uint8)
    labels[1:4, 5:12, 4:9] = 5
    labels[4, 15, 13] = 8
    return labels


@pytest.fixture
def make_ct():
    """``make_ct(directions="axial_SPL", shape=(6, 24, 20))`` -> a CT-like Volume."""
    return _ct_volume


@pytest.fixture
def make_organ_labels():
    """``make_organ_labels(volume)`` -> uint8 labels: liver block, one spleen voxel."""
    return _organ_labels
