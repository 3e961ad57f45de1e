import numpy as np
import pytest

from napari_atlas_annotate.models.model_grid import ModelGrid
from napari_atlas_annotate.volume import Volume

pytestmark = pytest.mark.usefixtures("torch_one_thread")

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


def _full_resolution_argmax(grid: ModelGrid, scores) -> np.ndarray:
    """The MONAI-tutorial way: all classes resampled to full resolution, argmax there."""
    import torch
    import torch.nn.functional as F

    full = F.interpolate(
        torch.as_tensor(scores)[None], size=grid.canonical_shape, mode="trilinear"
    )[0]
    return np.ascontiguousarray(grid.from_canonical(full.argmax(0).to(torch.uint8).numpy()))


def _random_softmax(grid: ModelGrid, n_classes: int = 6, seed: int = 0):
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(n_classes, *grid.model_shape, generator=gen), 0)


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_slab_linear_upsampling_matches_full_resolution_argmax(name):
    """Slab-wise trilinear + argmax gives the label of the full-resolution softmax argmax.

    Trilinear interpolation is separable, so a weighted sum of two model slices per output
    slice followed by bilinear in-plane interpolation is the same function; only float
    rounding order differs, which could flip a voxel whose top two scores tie to ~1e-7
    (hence the 99.9 % floor; in practice the maps are identical).
    """
    grid = ModelGrid.for_image((30, 44, 38), AFFINES[name], (4.0, 4.0, 4.0))
    scores = _random_softmax(grid)
    expected = _full_resolution_argmax(grid, scores)
    got = grid.scores_to_labels(scores, slab_bytes=1)  # one slice per slab
    assert got.dtype == np.uint8 and got.shape == (30, 44, 38)
    assert np.mean(got == expected) > 0.999
    np.testing.assert_array_equal(grid.scores_to_labels(scores), got)  # one slab for all


def test_slab_size_keeps_interpolated_scores_within_budget(monkeypatch):
    """No slab holds more than the budget's worth of image-resolution class scores."""
    from napari_atlas_annotate.models import model_grid
    from napari_atlas_annotate.models.model_grid import slab_slices

    assert slab_slices(10, (512, 512), 64 * 2**20) * 10 * 512 * 512 * 4 <= 64 * 2**20
    assert slab_slices(10, (512, 512), 1) == 1
    grid = ModelGrid.for_image((40, 44, 38), AFFINES["SPL"], (4.0, 4.0, 4.0))
    scores = _random_softmax(grid, n_classes=5)
    plane = grid.canonical_shape[1] * grid.canonical_shape[2]
    budget = 3 * 5 * plane * 4  # three slices of five float32 class planes
    slices = []
    per_slab = model_grid._bilinear_argmax

    def spy(slab, rows, cols):
        slices.append(slab.shape[0])
        assert slab.shape[3] == 5  # (slices, Ym, Xm, classes)
        return per_slab(slab, rows, cols)

    monkeypatch.setattr(model_grid, "_bilinear_argmax", spy)
    slabs = []
    got = grid.scores_to_labels(
        scores, slab_bytes=budget, on_slab=lambda d, t: slabs.append((d, t))
    )
    depth = grid.canonical_shape[0]
    assert slabs == [(i + 1, -(-depth // 3)) for i in range(-(-depth // 3))]
    assert sum(slices) == depth and max(slices) * 5 * plane * 4 <= budget
    assert np.mean(got == _full_resolution_argmax(grid, scores)) > 0.999


def _dice(a: np.ndarray, b: np.ndarray, ids) -> float:
    return float(
        np.mean([2 * np.sum((a == c) & (b == c)) / np.sum((a == c) + (b == c)) for c in ids])
    )


def _truth_scores(grid: ModelGrid, truth: np.ndarray, n_classes: int):
    """Scores a perfect model would give at model resolution: each class's voxel fraction."""
    return np.stack([grid.fraction_to_model(truth == c) for c in range(n_classes)])


def test_linear_upsampling_beats_nearest_on_an_anisotropic_phantom():
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom

    _, label, _ = make_ct_phantom(5, shape=(30, 64, 64), site=0, spacing=(1.5, 0.8, 0.8))
    truth = label.array
    n = int(truth.max()) + 1
    grid = ModelGrid.for_image(truth.shape, label.affine, (4.0, 4.0, 4.0))
    scores = _truth_scores(grid, truth, n)
    nearest = grid.labels_to_image(scores.argmax(0).astype(np.uint8))
    linear = grid.scores_to_labels(scores)
    ids = [c for c in range(1, n) if (truth == c).any()]
    assert _dice(linear, truth, ids) > _dice(nearest, truth, ids)


def _flip_x(array, affine):
    flipped = affine.copy()
    flipped[:3, 3] = affine[:3, 3] + affine[:3, 2] * (array.shape[2] - 1)
    flipped[:3, 2] *= -1
    return np.ascontiguousarray(array[:, :, ::-1]), flipped


def _swap_zx(array, affine):
    return np.ascontiguousarray(array.transpose(2, 1, 0)), affine[:, [2, 1, 0, 3]]


@pytest.mark.parametrize("reorder", [_flip_x, _swap_zx])
def test_linear_upsampling_follows_the_patient_not_the_array_order(reorder):
    rng = np.random.default_rng(2)
    shape = (20, 36, 28)
    truth = np.zeros(shape, np.uint8)
    truth[3:15, 5:30, 4:12] = 1
    truth[8:18, 10:20, 14:26] = 2
    truth[rng.random(shape) < 0.05] = 3
    affine = AFFINES["SPL"]
    grid = ModelGrid.for_image(shape, affine, (4.0, 3.0, 3.0))
    reference = grid.scores_to_labels(_truth_scores(grid, truth, 4))
    other, other_affine = reorder(truth, affine)
    grid_o = ModelGrid.for_image(other.shape, other_affine, (4.0, 3.0, 3.0))
    got = grid_o.scores_to_labels(_truth_scores(grid_o, other, 4))
    np.testing.assert_array_equal(got, reorder(reference, affine)[0])


def test_scores_of_the_wrong_shape_are_refused():
    grid = ModelGrid.for_image((8, 8, 8), AFFINES["SPL"], (3.0, 3.0, 3.0))
    with pytest.raises(ValueError, match="classes"):
        grid.scores_to_labels(np.zeros((3, 1, 2, 3), np.float32))
