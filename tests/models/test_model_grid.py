import numpy as np
import pytest

from napari_atlas_annotate.models.model_grid import ModelGrid
from napari_atlas_annotate.volume import Volume

pytestmark = pytest.mark.usefixtures("one_thread")

# (z, y, x) -> RAS affines: axial S,P,L (the phantom layout), axial I,A,R (flipped on all
# axes) and a sagittal-like permutation; none oblique, none identity.
AFFINES = {
    "SPL": np.array([[0, 0, -0.8, 10], [0, -0.9, 0, 20], [2.5, 0, 0, -30], [0, 0, 0, 1.0]]),
    "IAR": np.array([[0, 0, 0.8, -10], [0, 0.9, 0, 5], [-2.5, 0, 0, 40], [0, 0, 0, 1.0]]),
    "LSA": np.array([[-2.5, 0, 0, 3], [0, 0, 0.8, -7], [0, 0.9, 0, 11], [0, 0, 0, 1.0]]),
}


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_canonical_round_trip_is_exact(name):
    rng = np.random.default_rng(0)
    grid = ModelGrid.for_image((12, 20, 18), AFFINES[name], (3.0, 3.0, 3.0))
    array = rng.integers(0, 9, (12, 20, 18)).astype(np.uint8)
    assert np.array_equal(grid.from_canonical(grid.to_canonical(array)), array)


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_canonical_axes_point_superior_posterior_left(name):
    affine = AFFINES[name]
    grid = ModelGrid.for_image((12, 20, 18), affine, (3.0, 3.0, 3.0))
    volume = Volume(np.zeros((12, 20, 18)), affine)
    index = np.stack(np.meshgrid(*[np.arange(n) for n in volume.shape], indexing="ij"), -1)
    world = volume.index_to_world(index.reshape(-1, 3)).reshape(*volume.shape, 3)
    canon = [grid.to_canonical(world[..., k]) for k in range(3)]  # R, A, S per voxel
    s, a, r = canon[2], canon[1], canon[0]
    assert np.all(np.diff(s, axis=0) > 0)  # axis 0 goes superior
    assert np.all(np.diff(a, axis=1) < 0)  # axis 1 goes posterior
    assert np.all(np.diff(r, axis=2) < 0)  # axis 2 goes to the patient's left


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_model_affine_matches_label_lookup(name):
    """Each model voxel's label lands on image voxels centred on the model voxel centre
    (integer zoom factors, where the covered voxels are symmetric about the centre)."""
    affine = AFFINES[name]
    shape = (12, 24, 20)
    native = ModelGrid.for_image(shape, affine, (1.0, 1.0, 1.0)).canonical_spacing
    grid = ModelGrid.for_image(shape, affine, tuple(2 * s for s in native))
    ids = np.arange(np.prod(grid.model_shape)).reshape(grid.model_shape)
    back = grid.labels_to_image(ids)
    volume = Volume(np.zeros(shape), affine)
    model_affine = grid.model_affine(affine)
    for k in (0, ids.size // 2, ids.size - 1):
        centre = volume.index_to_world(np.argwhere(back == k)).mean(axis=0)
        expected = model_affine @ np.r_[np.unravel_index(k, grid.model_shape), 1.0]
        np.testing.assert_allclose(centre, expected[:3], atol=1e-6)


def test_labels_survive_model_grid_round_trip_at_native_spacing():
    affine = AFFINES["IAR"]
    shape = (8, 10, 12)
    spacing = (2.5, 0.9, 0.8)  # canonical spacing of IAR equals the image spacing
    grid = ModelGrid.for_image(shape, affine, spacing)
    assert grid.model_shape == grid.canonical_shape
    labels = np.random.default_rng(1).integers(0, 5, shape).astype(np.uint8)
    assert np.array_equal(grid.labels_to_image(grid.labels_to_model(labels)), labels)


def test_image_to_model_averages_and_keeps_position():
    affine = AFFINES["SPL"]
    shape = (24, 60, 60)
    image = np.zeros(shape, np.int16)
    image[:, :, -15:] = 1000  # the patient's left edge (x points left)
    grid = ModelGrid.for_image(shape, affine, (5.0, 3.0, 3.0))
    out = grid.image_to_model(image)
    assert out.dtype == np.float32 and out.shape == grid.model_shape
    assert out[:, :, -1].mean() > 900 and out[:, :, 0].mean() < 1
    flipped_affine = affine.copy()
    flipped_affine[:3, 2] *= -1
    flipped_affine[:3, 3] = affine[:3, 3] + affine[:3, 2] * (shape[2] - 1)
    grid_f = ModelGrid.for_image(shape, flipped_affine, (5.0, 3.0, 3.0))
    np.testing.assert_array_equal(grid_f.image_to_model(image[:, :, ::-1]), out)


def test_bad_shapes_are_refused():
    grid = ModelGrid.for_image((8, 8, 8), AFFINES["SPL"], (3.0, 3.0, 3.0))
    with pytest.raises(ValueError, match="image"):
        grid.to_canonical(np.zeros((8, 8, 9)))
    with pytest.raises(ValueError, match="model grid"):
        grid.labels_to_image(np.zeros((1, 2, 3), np.uint8))
