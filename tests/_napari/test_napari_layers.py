"""Volume <-> layer data geometry, checked in napari's ViewerModel (no display needed)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_atlas_annotate._napari.layers import (
    CT_WINDOW,
    DISPLAY_FROM_RAS,
    META_KEY,
    data_to_world_matrix,
    display_axes,
    image_layer_data,
    labels_layer_data,
    volume_from_layer,
)
from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES, CLASS_COLORS
from napari_atlas_annotate.volume import Volume

# napari displays oblique series in-plane only and says so; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")

ALL_ORIENTATIONS = ["axial_SPL", "sagittal_RIP", "axial_IAR", "oblique_axial", "oblique_sagittal"]


def _world(volume: Volume, zyx) -> np.ndarray:
    """napari world position of a voxel centre: DISPLAY_FROM_RAS applied to its RAS."""
    ras = volume.index_to_world(np.asarray(zyx, float))
    return (DISPLAY_FROM_RAS @ np.append(ras, 1.0))[:3]


def _add(viewer: ViewerModel, layer_data):
    data, kwargs, kind = layer_data
    return getattr(viewer, f"add_{kind}")(data, **kwargs)


def test_axial_ct_gets_positive_diagonal_affine_and_ct_window(make_ct):
    volume = make_ct("axial_SPL")
    assert volume.orientation == ("S", "P", "L")
    data, kwargs, kind = image_layer_data(volume)
    assert kind == "image"
    assert data.shape == volume.shape
    np.testing.assert_allclose(data_to_world_matrix(kwargs), DISPLAY_FROM_RAS @ volume.affine)
    linear = data_to_world_matrix(kwargs)[:3, :3]
    np.testing.assert_allclose(linear, np.diag(np.diag(linear)))
    np.testing.assert_allclose(np.diag(linear), volume.spacing)
    assert kwargs["contrast_limits"] == CT_WINDOW
    assert kwargs["colormap"] == "gray"


def test_display_is_radiological_for_axial_ct(make_ct):
    """Anterior up, patient right on the screen's left, slider from foot to head."""
    volume = make_ct("axial_SPL")
    layer = _add(ViewerModel(), image_layer_data(volume))
    origin = np.asarray(layer.data_to_world((0, 0, 0)))
    toward_anterior = volume.world_to_index(volume.index_to_world([0, 0, 0]) + [0, 10, 0])
    toward_right = volume.world_to_index(volume.index_to_world([0, 0, 0]) + [10, 0, 0])
    toward_head = volume.world_to_index(volume.index_to_world([0, 0, 0]) + [0, 0, 10])
    # world axis 1 is screen rows (down), axis 2 screen columns (right), axis 0 the slider
    assert layer.data_to_world(toward_anterior)[1] < origin[1]  # anterior is up
    assert layer.data_to_world(toward_right)[2] < origin[2]  # right is on the left
    assert layer.data_to_world(toward_head)[0] > origin[0]  # slider up = towards head


@pytest.mark.parametrize("orientation", ALL_ORIENTATIONS)
def test_voxel_lands_at_its_patient_position(make_ct, orientation):
    volume = make_ct(orientation)
    layer = _add(ViewerModel(), image_layer_data(volume))
    for zyx in [(0, 0, 0), (5, 23, 19), (2, 7, 11)]:
        np.testing.assert_allclose(
            layer.data_to_world(layer_index(layer, zyx)), _world(volume, zyx), atol=1e-6
        )


def layer_index(layer, zyx):
    """The napari data index of volume voxel ``zyx`` (napari may hold it transposed)."""
    axes = layer.metadata[META_KEY]["axes"]
    return tuple(zyx[a] for a in axes)


@pytest.mark.parametrize("orientation", ALL_ORIENTATIONS)
def test_napari_slices_along_world_axes(make_ct, orientation):
    """Data axis i runs (mostly) along world axis i, so 2D slicing shows the right plane."""
    volume = make_ct(orientation)
    _, kwargs, _ = image_layer_data(volume)
    linear = data_to_world_matrix(kwargs)[:3, :3]
    dominant = np.argmax(np.abs(linear), axis=0)
    assert dominant.tolist() == [0, 1, 2]


def test_sagittal_series_is_transposed_for_display(make_ct):
    volume = make_ct("sagittal_RIP")
    assert display_axes(volume.affine) == (1, 2, 0)
    data, kwargs, _ = image_layer_data(volume)
    assert data.shape == (24, 20, 6)
    assert np.shares_memory(data, volume.array)  # a view, never a copy
    linear = data_to_world_matrix(kwargs)[:3, :3]
    np.testing.assert_allclose(np.abs(np.diag(linear)), [0.7, 0.8, 2.5])


@pytest.mark.parametrize("orientation", ALL_ORIENTATIONS)
def test_image_and_labels_overlay_exactly(make_ct, make_organ_labels, orientation):
    volume = make_ct(orientation)
    viewer = ViewerModel()
    image = _add(viewer, image_layer_data(volume))
    labels = _add(
        viewer, labels_layer_data(make_organ_labels(volume), volume, ABDOMEN_ATLAS_CLASSES)
    )
    np.testing.assert_allclose(data_to_world_matrix(image), data_to_world_matrix(labels))
    spleen_world = _world(volume, (4, 15, 13))
    index = np.round(labels.world_to_data(spleen_world)).astype(int)
    assert labels.data[tuple(index)] == 8
    assert tuple(index) == layer_index(image, (4, 15, 13))


@pytest.mark.parametrize("orientation", ALL_ORIENTATIONS)
def test_paint_then_volume_from_layer_round_trips(make_ct, orientation):
    volume = make_ct(orientation)
    viewer = ViewerModel()
    labels = _add(viewer, labels_layer_data(None, volume, ABDOMEN_ATLAS_CLASSES))
    target = (3, 10, 6)
    world = _world(volume, target)
    viewer.dims.set_point(range(3), world)
    labels.brush_size = 1
    labels.selected_label = 2
    labels.paint(np.round(labels.world_to_data(world)), 2)
    back = volume_from_layer(labels)
    assert back.same_grid(volume)
    assert np.argwhere(back.array == 2).tolist() == [list(target)]
    assert back.metadata["class_names"] == list(ABDOMEN_ATLAS_CLASSES)
    # tuple form, as npe2 writers receive it
    assert volume_from_layer(labels.as_layer_data_tuple()).same_grid(volume)


def test_labels_use_fixed_class_colours_and_names(make_ct):
    volume = make_ct()
    _, kwargs, kind = labels_layer_data(None, volume, ["liver", "my_tumour"])
    assert kind == "labels"
    layer = _add(ViewerModel(), (np.zeros(volume.shape, np.uint8), kwargs, "labels"))
    rgba = layer.colormap.map(np.array([0, 1, 2, 7]))
    assert rgba[0, 3] == 0  # background transparent
    np.testing.assert_allclose(rgba[1, :3] * 255, CLASS_COLORS["liver"], atol=1)
    assert not np.allclose(rgba[2, :3], rgba[1, :3])
    assert rgba[3, 3] == 1  # unexpected labels still visible
    assert list(layer.features["class"]) == ["background", "liver", "my_tumour"]
    assert layer.metadata[META_KEY]["class_names"] == ["liver", "my_tumour"]


def test_colour_override(make_ct):
    _, kwargs, _ = labels_layer_data(None, make_ct(), ["liver"], colors={"liver": (0, 255, 0)})
    np.testing.assert_allclose(kwargs["colormap"].map(np.array([1]))[0], [0, 1, 0, 1])


def test_mr_window_uses_percentiles():
    rng = np.random.default_rng(0)
    array = rng.integers(0, 1000, (8, 32, 32)).astype(np.uint16)
    array[0, 0, 0] = 60000  # one hot pixel must not flatten the window
    volume = Volume(array, np.diag([4.0, 0.5, 0.5, 1.0]), modality="MR")
    low, high = image_layer_data(volume)[1]["contrast_limits"]
    assert 0 <= low < 20 and 980 < high < 1000


def test_nifti_ct_without_modality_is_recognised_by_hounsfield_units(make_ct):
    volume = make_ct()
    volume.modality = ""
    assert image_layer_data(volume)[1]["contrast_limits"] == CT_WINDOW


def test_voxels_that_are_not_numbers_leave_the_window_as_it_would_be(make_ct):
    """NaN outside the field of view (some converters write it): a NIfTI CT is still
    recognised, and an MR's window is the percentiles of its other voxels, not NaN (napari's
    contrast controls failed on a NaN range, and the case did not open)."""
    ct = make_ct()
    ct.modality = ""
    ct.array = ct.array.astype(np.float32)
    ct.array[:, :, :2] = np.nan
    assert image_layer_data(ct)[1]["contrast_limits"] == CT_WINDOW

    rng = np.random.default_rng(0)
    mr = rng.uniform(0, 1000, (8, 32, 32)).astype(np.float32)
    clean = image_layer_data(Volume(mr.copy(), np.eye(4), modality="MR"))[1]["contrast_limits"]
    mr[:, :4] = np.nan
    mr[0, 10, 10] = np.inf
    holed = image_layer_data(Volume(mr, np.eye(4), modality="MR"))[1]["contrast_limits"]
    assert np.isfinite(holed).all()
    np.testing.assert_allclose(holed, clean, atol=25)


def test_labels_off_grid_are_refused(make_ct):
    volume = make_ct()
    with pytest.raises(ValueError, match="does not match image shape"):
        labels_layer_data(np.zeros((2, 2, 2), np.uint8), volume, ["liver"])
    other = Volume(
        np.zeros(volume.shape, np.uint8),
        volume.affine * [1, 1, 1, 1] + 0.5 * np.eye(4) * [1, 1, 1, 0],
    )
    with pytest.raises(ValueError, match="not on the image grid"):
        labels_layer_data(other, volume, ["liver"])


def test_layer_without_source_grid_is_refused():
    layer = ViewerModel().add_labels(np.zeros((4, 5, 6), np.uint8), name="hand made")
    with pytest.raises(ValueError, match="'hand made' has no source grid"):
        volume_from_layer(layer)


def test_resized_layer_data_is_refused(make_ct):
    volume = make_ct()
    _, kwargs, _ = labels_layer_data(None, volume, ["liver"])
    with pytest.raises(ValueError, match="resized"):
        volume_from_layer(np.zeros((1, 2, 3), np.uint8), kwargs)


def test_tilt_is_the_largest_turn_of_a_data_axis_off_its_world_axis():
    from napari_atlas_annotate._napari.layers import layer_affine, tilt_degrees

    axial = np.diag([-0.7, -0.7, 2.5, 1.0])  # RAS: flips and anisotropic spacing
    assert tilt_degrees(layer_affine(axial)) == 0.0
    t = np.deg2rad(15.0)  # a gantry tilt about the left-right axis
    tilt = np.eye(4)
    tilt[1:3, 1:3] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    assert tilt_degrees(layer_affine(tilt @ axial)) == pytest.approx(15.0)
    sagittal = axial[:, [2, 0, 1, 3]]  # another axis order is still aligned
    assert tilt_degrees(layer_affine(sagittal)) == 0.0


def test_the_3d_brush_paints_a_ball_in_millimetres():
    """napari sizes its 3D brush by the layer's scale: with the voxel size in the affine a
    3 mm-slice CT (0.8 mm pixels) got a ball 9 slices (27 mm) deep and 7 mm wide. The
    voxel size is the scale, so the ball is as deep as it is wide."""
    from napari.layers import Labels

    affine = np.diag([0.8, 0.8, 3.0, 1.0])  # x, y 0.8 mm, slices 3 mm: (z, y, x) -> RAS
    affine[:3, :3] = affine[:3, :3][:, ::-1]
    volume = Volume(np.zeros((20, 40, 40), np.int16), affine, "CT")
    data, kwargs, _ = labels_layer_data(None, volume, ["liver"])
    viewer = ViewerModel()
    layer = viewer.add_layer(Labels(data, **kwargs))
    layer.n_edit_dimensions = 3
    layer.brush_size = 9
    layer.paint((10, 20, 20), 1)
    painted = np.argwhere(layer.data == 1)
    depth_mm = (np.ptp(painted[:, 0]) + 1) * 3.0
    width_mm = (np.ptp(painted[:, 2]) + 1) * 0.8
    assert width_mm == pytest.approx(7.2)
    assert depth_mm <= width_mm + 3.0  # whole slices: 9 mm for a 7.2 mm ball
