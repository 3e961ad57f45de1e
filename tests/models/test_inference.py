import numpy as np
import pytest

from napari_atlas_annotate.corrections.tools import keep_largest_components
from napari_atlas_annotate.models.bundle import ModelBundle
from napari_atlas_annotate.models.devices import select_device
from napari_atlas_annotate.models.inference import (
    InferenceCancelled,
    count_windows,
    load_model,
    propose_organs,
)
from napari_atlas_annotate.volume import Volume

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _flip_x(volume: Volume) -> Volume:
    """The same patient, stored with the x axis reversed (world positions unchanged)."""
    affine = volume.affine.copy()
    affine[:3, 3] = volume.affine[:3, 3] + volume.affine[:3, 2] * (volume.shape[2] - 1)
    affine[:3, 2] *= -1
    return Volume(volume.array[:, :, ::-1].copy(), affine, volume.modality)


def _swap_zx(volume: Volume) -> Volume:
    """The same patient with array axes z and x exchanged (a non-axial storage order)."""
    affine = volume.affine[:, [2, 1, 0, 3]]
    return Volume(np.ascontiguousarray(volume.array.transpose(2, 1, 0)), affine)


def test_proposal_is_uint8_on_the_image_grid(tiny_bundle, small_phantom):
    image, _ = small_phantom
    proposal = propose_organs(image, tiny_bundle, device="cpu")
    assert proposal.labels.dtype == np.uint8
    assert proposal.labels.shape == image.shape
    assert 0.0 <= proposal.uncertainty <= 1.0
    assert proposal.uncertainty_map.shape == proposal.grid.model_shape
    assert proposal.uncertainty_on_image().shape == image.shape
    assert proposal.model_version == "tiny-0"


@pytest.mark.parametrize("reorder", [_flip_x, _swap_zx])
def test_proposal_follows_the_patient_not_the_array_order(tiny_bundle, small_phantom, reorder):
    """Storing the same CT in another voxel order gives the same proposal in world space."""
    image, _ = small_phantom
    loaded = load_model(tiny_bundle, "cpu")
    reference = propose_organs(image, loaded).labels
    other = reorder(image)
    got = propose_organs(other, loaded).labels
    assert got.shape == other.shape
    expected = reorder(Volume(reference, image.affine)).array
    np.testing.assert_array_equal(got, expected)


def test_dicom_loaded_ct_gets_the_same_proposal(tiny_bundle, small_phantom, tmp_path):
    pytest.importorskip("napari_atlas_annotate.io.dicom")
    from napari_atlas_annotate.io import load_volume
    from napari_atlas_annotate.io.dicom_writer import write_dicom_series

    image, _ = small_phantom
    write_dicom_series(image, tmp_path / "dicom", modality="CT", uid_seed="t")
    loaded_ct = load_volume(tmp_path / "dicom")
    np.testing.assert_allclose(loaded_ct.affine, image.affine, atol=1e-3)
    model = load_model(tiny_bundle, "cpu")
    a = propose_organs(image, model).labels
    b = propose_organs(loaded_ct, model).labels
    np.testing.assert_array_equal(a, b)


def test_progress_and_cancel(tiny_bundle, small_phantom):
    image, _ = small_phantom
    calls = []
    propose_organs(image, tiny_bundle, progress=lambda d, t, s: calls.append((d, t, s)))
    inference = [(d, t) for d, t, s in calls if s == "inference"]
    assert inference and [d for d, _ in inference] == list(range(1, len(inference) + 1))
    assert all(t == inference[0][1] for _, t in inference)
    assert calls[-1][2] == "done"
    with pytest.raises(InferenceCancelled):
        propose_organs(image, tiny_bundle, cancel=lambda: True)


def test_count_windows_matches_monai():
    import torch
    from monai.inferers import sliding_window_inference

    seen = []

    def predictor(x):
        seen.append(x.shape[0])
        return x

    x = torch.zeros(1, 1, 37, 50, 23)
    sliding_window_inference(x, (16, 20, 30), 1, predictor, overlap=0.25)
    assert count_windows((37, 50, 23), (16, 20, 30), 0.25) == len(seen)


def test_cuda_request_without_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="--device cpu"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu")


def test_keep_largest_components_drops_islands_only_of_listed_classes():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[1:5, 1:5, 1:5] = 1
    labels[8, 8, 8] = 1  # island of class 1
    labels[7:9, 1:3, 1:3] = 2
    labels[1, 8, 8] = 2  # island of class 2, not listed
    out = keep_largest_components(labels.copy(), [1])
    assert out[8, 8, 8] == 0 and out[1:5, 1:5, 1:5].min() == 1
    assert out[1, 8, 8] == 2


def test_bundle_round_trip(tiny_bundle):
    bundle = ModelBundle.load(tiny_bundle)
    assert bundle.version == "tiny-0" and len(bundle.classes) == 9
    meta = bundle.metadata
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 10
    net = bundle.load_network("cpu")
    assert not net.training


def test_linear_proposal_is_the_full_resolution_softmax_argmax(tiny_bundle, small_phantom):
    """Without cleanup and border refinement, the linear proposal equals the MONAI-tutorial
    post-processing (all-class softmax resampled trilinearly to the full grid, argmax)."""
    import torch
    import torch.nn.functional as F

    from napari_atlas_annotate.models.inference import model_input, predict_probabilities

    image, _ = small_phantom
    loaded = load_model(tiny_bundle, "cpu")
    got = propose_organs(image, loaded, cleanup=False, refine=False).labels
    grid, model_image = model_input(image, loaded.bundle)
    probs = predict_probabilities(loaded, model_image)
    full = F.interpolate(probs[None], size=grid.canonical_shape, mode="trilinear")[0]
    expected = grid.from_canonical(full.argmax(0).to(torch.uint8).numpy())
    assert np.mean(got == expected) > 0.999
    nearest = propose_organs(image, loaded, cleanup=False, upsample="nearest", refine=False).labels
    assert nearest.shape == got.shape and nearest.dtype == np.uint8
    np.testing.assert_array_equal(
        nearest, grid.labels_to_image(probs.argmax(0).to(torch.uint8).numpy())
    )


def test_cancel_is_checked_between_upsampling_slabs(tiny_bundle, small_phantom):
    image, _ = small_phantom
    stages = []
    with pytest.raises(InferenceCancelled):
        propose_organs(
            image,
            tiny_bundle,
            progress=lambda d, t, s: stages.append(s),
            cancel=lambda: "upsample" in stages,
            slab_bytes=1,
        )
    assert stages.count("upsample") == 1 and "done" not in stages


def test_unknown_upsample_mode_is_refused(tiny_bundle, small_phantom):
    with pytest.raises(ValueError, match="nearest"):
        propose_organs(small_phantom[0], tiny_bundle, upsample="cubic")


def test_border_refinement_moves_borders_only_within_the_band(tiny_bundle, small_phantom):
    from napari_atlas_annotate.models.border_refinement import band_widths, border_band

    image, _ = small_phantom
    loaded = load_model(tiny_bundle, "cpu")
    stages = []
    raw = propose_organs(image, loaded, refine=False)
    refined = propose_organs(image, loaded, progress=lambda d, t, s: stages.append(s)).labels
    assert "refine" in stages and "refine_borders" not in raw.seconds
    grid = raw.grid
    widths = band_widths(grid.canonical_spacing, grid.model_spacing)
    band = grid.from_canonical(border_band(grid.to_canonical(raw.labels), widths))
    # outside the band only the largest-component cleanup may remove a stray piece
    moved = (refined != raw.labels) & ~band
    assert not (moved & (refined != 0)).any()


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU (skipped on CI)"
)
def test_cuda_proposal_under_autocast_agrees_with_cpu():
    # bf16/fp16 on the GPU may flip a few borderline voxels, never the organs
    from napari_atlas_annotate.models.organ_model import STARTER_FOLDER
    from napari_atlas_annotate.phantoms.ct import make_ct_phantom
    from napari_atlas_annotate.training.organs import dice_per_class

    image, _, _ = make_ct_phantom(5, shape=(48, 96, 96), site=0)
    cpu = propose_organs(image, STARTER_FOLDER, device="cpu")
    gpu = propose_organs(image, STARTER_FOLDER, device="cuda")
    assert gpu.labels.shape == image.shape and gpu.labels.dtype == np.uint8
    assert np.mean(gpu.labels == cpu.labels) > 0.995
    n = int(max(cpu.labels.max(), gpu.labels.max()))
    present = [c for c in range(1, n + 1) if (cpu.labels == c).sum() > 500]
    dice = dice_per_class(gpu.labels, cpu.labels, n)
    assert all(dice[c - 1] > 0.97 for c in present), dice
    assert gpu.uncertainty == pytest.approx(cpu.uncertainty, abs=0.02)


def test_voxels_that_are_not_numbers_are_read_as_air(small_phantom):
    """A float CT with NaN outside the scanner's field of view (as some converters write
    it) gets the proposal it gets with air there: one NaN voxel used to spread through the
    network and leave the whole proposal empty."""
    from napari_atlas_annotate.models.registry import STARTERS

    image, _ = small_phantom
    array = np.asarray(image.array, np.float32)
    _, y, x = np.indices(array.shape)
    centre, radius = np.array(array.shape[1:]) / 2, array.shape[1] / 2
    outside = (y - centre[0]) ** 2 + (x - centre[1]) ** 2 > radius**2
    with_air, with_nan = array.copy(), array.copy()
    with_air[outside] = -1024.0
    with_nan[outside] = np.nan
    with_nan[0, 0, 0], with_air[0, 0, 0] = -np.inf, -1024.0
    model = load_model(STARTERS["organs"], "cpu")
    air = propose_organs(Volume(with_air, image.affine, "CT"), model, "cpu")
    nan = propose_organs(Volume(with_nan, image.affine, "CT"), model, "cpu")
    assert np.count_nonzero(air.labels) > 1000
    np.testing.assert_array_equal(nan.labels, air.labels)
    assert nan.uncertainty == pytest.approx(air.uncertainty)
