"""A DICOM series of several stacks at different angles (lumbar axial T2 angled through
each disc, saved as one series): refused as one volume with the stacks listed, loaded
stack by stack with exact geometry, and every stack in a study."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.io import VolumeLoadError, VolumeLoadWarning, load_study, load_volume
from napari_atlas_annotate.io.dicom_writer import write_dicom_series
from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.phantoms.spine import make_spine_phantom
from napari_atlas_annotate.phantoms.writer import case_seed
from napari_atlas_annotate.spine_grades import LEVELS
from napari_atlas_annotate.volume import Volume

STACK_LEVELS = LEVELS[2:]  # L3/L4, L4/L5, L5/S1: three blocks, as many protocols have


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    out = tmp_path_factory.mktemp("stacked")
    manifest = write_phantoms(out, 0, 1, seed=3, axial_stacks=STACK_LEVELS)
    [entry] = json.loads(manifest.read_text())["cases"]
    axial = next(im for im in entry["images"] if im["description"] == "Axial T2")
    # the study write_phantoms wrote, made again in memory
    case = make_spine_phantom(case_seed(3, 0, 2), site=0, axial_stacks=STACK_LEVELS)
    return out, out / axial["path"], case


def test_a_series_of_stacks_is_refused_as_one_volume_with_its_stacks_listed(stacked):
    _, axial, _ = stacked
    with pytest.raises(VolumeLoadError) as err:
        load_volume(axial)
    text = str(err.value)
    assert "holds 3 stacks of images at different angles" in text
    assert "stack 2: 6 images, instances 7-12" in text
    assert "stack=1..N" in text and "spine project" in text


def test_each_stack_loads_with_the_geometry_it_was_written_with(stacked):
    _, axial, case = stacked
    for k in (1, 2, 3):
        volume = load_volume(axial, stack=k)
        want = case.series[f"Axial T2 (stack {k}/3)"]
        np.testing.assert_array_equal(volume.array, want.array)
        np.testing.assert_allclose(volume.affine, want.affine, atol=1e-4)
        assert volume.metadata["stack"] == k and volume.metadata["stack_count"] == 3
        first = 1 + 6 * (k - 1)
        assert volume.metadata["instance_numbers"] == list(range(first, first + 6))
    with pytest.raises(VolumeLoadError, match="has 3 stack"):
        load_volume(axial, stack=4)


def test_the_stacks_are_at_different_angles(stacked):
    _, axial, _ = stacked
    normals = []
    for k in (1, 2, 3):
        a = load_volume(axial, stack=k).affine[:3, 0]
        normals.append(a / np.linalg.norm(a))
    # each block follows the lordosis at its disc: a few degrees apart
    angles = [np.degrees(np.arccos(np.clip(normals[i] @ normals[i + 1], -1, 1))) for i in (0, 1)]
    assert all(a > 1.0 for a in angles), angles


def test_a_study_loads_every_stack_as_a_series_of_its_own(stacked):
    out, axial, case = stacked
    study = load_study(axial.parent)
    keys = [k for k in study.series if k.startswith("Axial T2")]
    assert keys == [f"Axial T2 (stack {k}/3)" for k in (1, 2, 3)]
    for key in keys:
        np.testing.assert_array_equal(study.series[key].array, case.series[key].array)


def test_a_localizer_among_the_stacks_is_left_out_with_a_warning(stacked, tmp_path):
    _, axial, _ = stacked
    copy = tmp_path / "axial"
    shutil.copytree(axial, copy)
    # one image re-angled to a plane of its own: a scout saved into the series
    scout = sorted(copy.iterdir())[0]
    ds = pydicom.dcmread(scout)
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.save_as(scout)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = load_study(copy)
    assert any(
        issubclass(w.category, VolumeLoadWarning) and scout.name in str(w.message) for w in caught
    )
    assert [study.series[k].shape[0] for k in study.series] == [5, 6, 6]


def _parallel_blocks(folder, modality: str, gap_mm: float = 20.0):
    """Two blocks of 5 axial slices 4 mm apart, one series; the step between the blocks'
    nearest slices is ``gap_mm``."""
    rng = np.random.default_rng(7)
    blocks = []
    z0 = -30.0
    for k in range(2):
        data = rng.integers(0, 800, (5, 12, 10)).astype(np.int16)
        affine = np.array([[0, 0, -0.7, 40], [0, -0.7, 0, 50], [4.0, 0, 0, z0], [0, 0, 0, 1.0]])
        write_dicom_series(
            Volume(data, affine, modality),
            folder,
            series_description="Axial T2",
            series_uid="1.2.826.0.1.3680043.8.498.7",
            uid_seed="blocks",
            first_instance=1 + 5 * k,
            file_prefix=f"B{k}",
        )
        blocks.append((data, affine))
        z0 += 4.0 * 4 + gap_mm
    return blocks


def test_mr_blocks_at_one_angle_apart_along_their_normal_load_as_stacks(tmp_path):
    # lumbar axial blocks at each disc acquired at the same angle: the vertebral bodies
    # between them are skipped, which is no missing slice
    blocks = _parallel_blocks(tmp_path / "ax", "MR")
    with pytest.raises(VolumeLoadError) as err:
        load_volume(tmp_path / "ax")
    assert "holds 2 stacks of images at the same angle, apart along their normal" in str(err.value)
    for k, (data, affine) in enumerate(blocks, start=1):
        volume = load_volume(tmp_path / "ax", stack=k)
        np.testing.assert_array_equal(volume.array, data)
        np.testing.assert_allclose(volume.affine, Volume(data, affine).affine, atol=1e-4)
        assert volume.metadata["instance_numbers"] == list(range(5 * k - 4, 5 * k + 1))
    with pytest.warns(VolumeLoadWarning, match="loaded as 2 stacks.*re-export"):
        study = load_study(tmp_path / "ax")
    assert list(study.series) == ["Axial T2 (stack 1/2)", "Axial T2 (stack 2/2)"]


def test_a_ct_with_a_gap_is_missing_slices_not_stacks(tmp_path):
    _parallel_blocks(tmp_path / "ct", "CT")
    with pytest.raises(VolumeLoadError, match="slice\\(s\\) missing"):
        load_volume(tmp_path / "ct")


def test_an_mr_missing_one_slice_is_still_refused(tmp_path):
    # one step of 8 mm among 4 mm steps: a lost slice, not a second block
    _parallel_blocks(tmp_path / "mr", "MR", gap_mm=8.0)
    with pytest.raises(VolumeLoadError, match="1 slice\\(s\\) missing"):
        load_volume(tmp_path / "mr")
