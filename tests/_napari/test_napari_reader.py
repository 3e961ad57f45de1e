"""The npe2 reader's decisions and layer output, without a display."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate._napari.layers import (
    DISPLAY_FROM_RAS,
    data_to_world_matrix,
    volume_from_layer,
)
from napari_atlas_annotate._napari.reader import get_reader, looks_like_labels
from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES, CLASS_COLORS
from napari_atlas_annotate.io import VolumeLoadError, VolumeLoadWarning, save_labels, save_nifti
from napari_atlas_annotate.io.dicom_writer import write_dicom_series
from napari_atlas_annotate.volume import Volume

pytestmark = pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")


def test_declines_paths_that_are_not_ours(tmp_path):
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "pngs").mkdir()
    (tmp_path / "pngs" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "empty").mkdir()
    assert get_reader(str(tmp_path / "photo.png")) is None
    assert get_reader(str(tmp_path / "pngs")) is None
    assert get_reader(str(tmp_path / "empty")) is None
    assert get_reader([str(tmp_path / "photo.png")]) is None


def test_nifti_ct_and_labels(tmp_path, make_ct, make_organ_labels):
    volume = make_ct("axial_IAR")
    ct = save_nifti(volume, tmp_path / "ct.nii.gz")
    seg = save_labels(make_organ_labels(volume), volume, tmp_path / "combined_labels.nii.gz")
    reader = get_reader([str(seg), str(ct)])
    assert reader is not None
    (img, img_kw, img_kind), (lab, lab_kw, lab_kind) = reader([str(seg), str(ct)])
    assert (img_kind, lab_kind) == ("image", "labels")  # labels on top whatever the order
    np.testing.assert_allclose(data_to_world_matrix(img_kw), data_to_world_matrix(lab_kw))
    back = volume_from_layer(lab, lab_kw)
    assert back.same_grid(volume)
    np.testing.assert_array_equal(back.array, make_organ_labels(volume))
    assert lab_kw["metadata"]["atlas_annotate"]["class_names"] == list(ABDOMEN_ATLAS_CLASSES)
    assert img_kw["name"] == "ct"


def test_per_organ_mask_takes_the_class_colour(tmp_path, make_ct):
    volume = make_ct()
    mask = np.zeros(volume.shape, np.uint8)
    mask[2, 3, 4] = 1
    path = save_labels(mask, volume, tmp_path / "segmentations" / "spleen.nii.gz")
    [(_, kwargs, kind)] = get_reader(str(path))(str(path))
    assert kind == "labels" and kwargs["name"] == "spleen"
    rgba = kwargs["colormap"].map(np.array([1]))[0]
    np.testing.assert_allclose(rgba[:3] * 255, CLASS_COLORS["spleen"], atol=1)


def test_label_detection():
    affine = np.eye(4)
    mr = Volume(np.random.default_rng(0).integers(0, 900, (4, 16, 16)).astype(np.uint16), affine)
    assert not looks_like_labels(mr)
    assert not looks_like_labels(Volume(np.full((2, 2, 2), -1000, np.int16), affine))
    assert not looks_like_labels(Volume(np.zeros((2, 2, 2), np.float32), affine))
    assert looks_like_labels(Volume(np.arange(8, dtype=np.uint8).reshape(2, 2, 2), affine))


def test_dicom_study_folder_opens_each_series(tmp_path, make_ct):
    study = tmp_path / "study"
    sag = make_ct("sagittal_RIP", shape=(5, 12, 10))
    sag.modality = "MR"
    ax = make_ct("oblique_axial", shape=(4, 10, 12))
    ax.modality = "MR"
    write_dicom_series(
        sag,
        study / "s1",
        series_description="Sagittal T1",
        series_number=1,
        study_uid="1.2.3",
        uid_seed="s",
    )
    write_dicom_series(
        ax,
        study / "s3",
        series_description="Axial T2",
        series_number=3,
        study_uid="1.2.3",
        uid_seed="s",
    )
    layers = get_reader(str(study))(str(study))
    assert [kw["name"] for _, kw, _ in layers] == ["Sagittal T1", "Axial T2"]
    for (data, kwargs, kind), source in zip(layers, [sag, ax], strict=True):
        assert kind == "image"
        back = volume_from_layer(data, kwargs)
        assert back.same_grid(source, atol=1e-3)
        np.testing.assert_allclose(back.array, source.array)
        # the voxel at the far corner sits where the source puts it in world space
        corner = np.array(source.shape) - 1
        axes = kwargs["metadata"]["atlas_annotate"]["axes"]
        data_index = np.array([corner[a] for a in axes], float)
        world = data_to_world_matrix(kwargs) @ np.append(data_index, 1)
        expected = DISPLAY_FROM_RAS @ np.append(source.index_to_world(corner), 1)
        np.testing.assert_allclose(world, expected, atol=1e-3)


def test_broken_nifti_raises_volume_load_error(tmp_path, make_ct):
    path = save_nifti(make_ct(), tmp_path / "ct.nii.gz")
    path.write_bytes(path.read_bytes()[:200])
    reader = get_reader(str(path))
    assert reader is not None  # it is ours, so the user hears why it failed
    with pytest.raises(VolumeLoadError, match="ct.nii.gz"):
        reader(str(path))


def test_folder_of_several_studies_is_refused_naming_each(tmp_path, make_ct):
    # A folder of cases (two patients' CTs): overlaying them in one viewer would show two
    # patients as one. The user is told which study folders to open instead.
    root = tmp_path / "cases"
    for case, patient in (("ct_000", "P0"), ("ct_001", "P1")):
        write_dicom_series(
            make_ct("axial_SPL", shape=(4, 10, 12)),
            root / case / "dicom",
            series_description="Abdomen CT",
            patient_id=patient,
            study_uid=f"1.2.3.{patient[-1]}",
            uid_seed=case,
        )
    reader = get_reader(str(root))
    assert reader is not None
    with pytest.raises(VolumeLoadError) as err:
        reader(str(root))
    message = str(err.value)
    assert str(root) in message and "2 studies" in message
    assert "ct_000/dicom" in message and "ct_001/dicom" in message
    assert "P0" in message and "P1" in message
    # One study folder opens as before.
    [(data, kwargs, kind)] = reader(str(root / "ct_001"))
    assert kind == "image" and data.shape == (4, 10, 12)


def test_study_folder_warns_once_about_stray_files(tmp_path, make_ct):
    study = tmp_path / "study"
    write_dicom_series(make_ct("axial_SPL", shape=(4, 10, 12)), study, uid_seed="one")
    (study / "notes.txt").write_text("not an image\n")
    with pytest.warns(VolumeLoadWarning) as caught:
        get_reader(str(study))(str(study))
    assert [str(w.message).count("notes.txt") for w in caught] == [1]


def test_one_file_of_a_series_opens_the_whole_series(tmp_path, make_ct):
    # Dropping one slice of a CT (as ITK-SNAP and Slicer do) gives the series it belongs
    # to, not a one-slice layer that labels would then be painted and saved on.
    folder = tmp_path / "export"
    ct = make_ct("axial_SPL", shape=(6, 10, 12))
    files = write_dicom_series(ct, folder, series_description="CT", series_number=2, uid_seed="c")
    other = make_ct("axial_SPL", shape=(3, 10, 12))
    write_dicom_series(other, folder, series_number=3, uid_seed="o", file_prefix="OT")
    [(data, kwargs, kind)] = get_reader(str(files[2]))(str(files[2]))
    assert kind == "image" and kwargs["name"] == "CT"
    back = volume_from_layer(data, kwargs)
    assert back.same_grid(ct, atol=1e-3)
    np.testing.assert_array_equal(back.array, ct.array)


def test_one_file_of_an_angled_stack_opens_its_stack(tmp_path, make_ct):
    folder = tmp_path / "axial"
    uid = "1.2.826.0.1.3680043.8.498.1"
    first = write_dicom_series(
        make_ct("axial_SPL", shape=(4, 10, 12)),
        folder,
        series_uid=uid,
        series_description="Axial T2",
        uid_seed="a",
        file_prefix="A",
    )
    tilted = make_ct("oblique_axial", shape=(4, 10, 12))
    second = write_dicom_series(
        tilted,
        folder,
        series_uid=uid,
        series_description="Axial T2",
        uid_seed="b",
        file_prefix="B",
        first_instance=5,
    )
    assert first and second
    [(data, kwargs, _)] = get_reader(str(second[1]))(str(second[1]))
    assert kwargs["name"] == "Axial T2 (stack 2/2)"
    assert volume_from_layer(data, kwargs).same_grid(tilted, atol=1e-3)


def test_dataset_root_refusal_names_a_few_studies(tmp_path, make_ct):
    root = tmp_path / "train_images"
    for k in range(7):
        write_dicom_series(
            make_ct("axial_SPL", shape=(2, 6, 6)),
            root / f"study{k}",
            study_uid=f"1.2.9.{k}",
            uid_seed=f"s{k}",
        )
    with pytest.raises(VolumeLoadError, match="holds 7 studies") as err:
        get_reader(str(root))(str(root))
    assert "study0/" in str(err.value) and "and 2 more" in str(err.value)
    assert "study6/" not in str(err.value)
