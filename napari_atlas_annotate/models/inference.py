"""Organ proposals: a model's label map on an image's exact grid, plus how sure it is.

Pipeline (all in :func:`propose_organs`)::

    image (z, y, x) on its grid
      -> canonical axis order, model spacing, HU window      (ModelGrid.image_to_model)
      -> sliding-window inference (MONAI), softmax            (model resolution only)
      -> entropy of the softmax                               (model resolution only)
      -> upsample='linear' (default): trilinear softmax onto the image grid and argmax,
         a slab of a few slices at a time                     (ModelGrid.scores_to_labels)
         upsample='nearest': argmax as uint8 at model resolution, nearest lookup of the
         label map onto the image grid                        (ModelGrid.labels_to_image)
      -> largest connected component per organ, each within its bounding box
      -> borders snapped to the image's edges (random walker on a band half a model voxel
         wide, :mod:`.border_refinement`), then the largest components again

The full set of per-class float maps exists only at model resolution (a few MB for a 4 mm
grid), never at image resolution: the linear path holds at most one slab of them
(``slab_bytes``, 64 MB by default), which keeps CPU post-processing of a 512x512x300 CT
fast and its memory bounded, while matching the label map of a full-resolution
probability resampling (MONAI ``Invertd`` style) voxel for voxel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..corrections.tools import keep_largest_components
from ..volume import Volume
from .border_refinement import band_widths, refine_borders
from .bundle import ModelBundle
from .devices import autocast, select_device, set_cpu_threads
from .intensity import finite, normalise_intensity
from .model_grid import SLAB_BYTES, ModelGrid

if TYPE_CHECKING:
    import torch

#: How proposals go back onto the image grid.
UPSAMPLE_MODES: tuple[str, ...] = ("linear", "nearest")

#: ``progress(done, total, stage)``: called between sliding-window batches and slabs.
ProgressCallback = Callable[[int, int, str], None]
#: ``cancel()``: return True to stop; checked between sliding-window batches and slabs.
CancelFlag = Callable[[], bool]


class InferenceCancelled(RuntimeError):
    """Raised when the ``cancel`` callable asked to stop."""


@dataclass
class LoadedModel:
    """A bundle with its network loaded on a device (load once, propose many times)."""

    bundle: ModelBundle
    network: Any
    device: Any

    @property
    def version(self) -> str:
        return self.bundle.version


@dataclass
class Proposal:
    """A model's proposal for one image.

    Attributes
    ----------
    labels
        uint8 label map on the image's grid (same shape and affine as the image).
    uncertainty
        Mean normalised softmax entropy (0..1) over the predicted foreground at model
        resolution; higher means review sooner.
    uncertainty_map
        float16 normalised entropy at model resolution, canonical axis order (see
        :attr:`grid`); :meth:`uncertainty_on_image` puts it on the image grid.
    grid
        The model grid used.
    model_version
        Version of the model that made it.
    seconds
        Wall time per stage.
    borders_refined
        Whether the borders were snapped to the image's edges (``refine``).
    """

    labels: np.ndarray
    uncertainty: float
    uncertainty_map: np.ndarray | None
    grid: ModelGrid
    model_version: str
    seconds: dict[str, float] = field(default_factory=dict)
    borders_refined: bool = False

    def uncertainty_on_image(self) -> np.ndarray:
        """The uncertainty map (float16) looked up onto the image grid (nearest)."""
        if self.uncertainty_map is None:
            raise ValueError("this proposal was made without an uncertainty map")
        return self.grid.labels_to_image(self.uncertainty_map)


def load_model(model: ModelBundle | LoadedModel | str | Path, device: str = "auto") -> LoadedModel:
    """Load a model folder (or bundle) onto ``device``; a :class:`LoadedModel` passes through."""
    if isinstance(model, LoadedModel):
        return model
    bundle = model if isinstance(model, ModelBundle) else ModelBundle.load(model)
    torch_device = select_device(device)
    return LoadedModel(bundle, bundle.load_network(torch_device), torch_device)


def model_input(volume: Volume, bundle: ModelBundle) -> tuple[ModelGrid, np.ndarray]:
    """The model grid of ``volume`` and its normalised float32 image on that grid."""
    grid = ModelGrid.for_image(volume.shape, volume.affine, bundle.spacing)
    image = normalise_intensity(grid.image_to_model(finite(volume.array)), bundle.window)
    return grid, image


def count_windows(shape, roi_size, overlap: float) -> int:
    """Number of sliding windows MONAI visits (same scan-interval rule)."""
    n = 1
    for size, roi in zip(shape, roi_size, strict=True):
        roi = min(roi, size)
        interval = max(int(roi * (1 - overlap)), 1)
        n *= math.ceil(max(size - roi, 0) / interval) + 1
    return n


def predict_probabilities(
    loaded: LoadedModel,
    image: np.ndarray,
    *,
    overlap: float | None = None,
    sw_batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
) -> torch.Tensor:
    """Softmax probabilities (C, *model_shape) float32 on CPU, by sliding window."""
    import torch
    from monai.inferers import sliding_window_inference

    settings = loaded.bundle.metadata["inference"]
    overlap = float(settings.get("overlap", 0.25) if overlap is None else overlap)
    sw_batch_size = int(sw_batch_size or settings.get("sw_batch_size", 1))
    roi = loaded.bundle.roi_size
    total = math.ceil(count_windows(image.shape, roi, overlap) / sw_batch_size)
    done = 0
    network = loaded.network
    device = loaded.device

    def predictor(batch: torch.Tensor) -> torch.Tensor:
        nonlocal done
        if cancel is not None and cancel():
            raise InferenceCancelled("proposal cancelled")
        with autocast(device):
            out = network(batch.to(device))
        done += 1
        if progress is not None:
            progress(min(done, total), total, "inference")
        return out.float()

    x = torch.from_numpy(image)[None, None]
    with torch.inference_mode():
        logits = sliding_window_inference(
            x,
            roi,
            sw_batch_size,
            predictor,
            overlap=overlap,
            mode="gaussian",
            sw_device=device,
            device="cpu",
        )
        probs = torch.softmax(logits[0].float(), dim=0)
    return probs


def propose_organs(
    volume: Volume,
    model: ModelBundle | LoadedModel | str | Path,
    device: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    *,
    overlap: float | None = None,
    sw_batch_size: int | None = None,
    threads: int | None = None,
    cleanup: bool = True,
    upsample: str = "linear",
    slab_bytes: int = SLAB_BYTES,
    refine: bool = True,
) -> Proposal:
    """Propose an organ label map for ``volume`` on its exact grid.

    Parameters
    ----------
    volume
        CT image; any orientation (the affine says how to read it).
    model
        Model folder, :class:`ModelBundle` or :class:`LoadedModel` (reuse it across cases).
    device
        ``'auto'``, ``'cpu'`` or ``'cuda'``; ignored for a :class:`LoadedModel`.
    progress
        ``progress(done, total, stage)`` between sliding-window batches (stage
        ``'inference'``) and slabs of the linear upsampling (stage ``'upsample'``).
    cancel
        Callable returning True to stop (checked between batches and between slabs);
        raises :class:`InferenceCancelled`.
    overlap, sw_batch_size
        Sliding-window settings (default: the model's metadata).
    threads
        CPU threads for torch (process-wide), when given.
    cleanup
        Keep the largest connected component of each single-organ class (on the image
        grid; also at model resolution for the uncertainty's foreground).
    upsample
        ``'linear'``: interpolate the softmax trilinearly onto the image grid and take the
        argmax there, slab by slab (smooth organ borders, best Dice). ``'nearest'``: argmax
        at model resolution, nearest lookup of the label map (blocky, slightly faster).
    slab_bytes
        Memory budget of one slab of interpolated probabilities (linear only).
    refine
        Snap organ borders to the image's edges (:func:`.border_refinement.refine_borders`:
        each border moves by at most half a model voxel; progress stage ``'refine'``).

    Returns
    -------
    Proposal
        ``labels`` (uint8, image grid), ``uncertainty`` (float) and ``uncertainty_map``.
    """
    import torch

    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, not {upsample!r}")
    set_cpu_threads(threads)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = load_model(model, device)
    bundle = loaded.bundle
    seconds["load_model"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    grid, image = model_input(volume, bundle)
    seconds["preprocess"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    probs = predict_probabilities(
        loaded,
        image,
        overlap=overlap,
        sw_batch_size=sw_batch_size,
        progress=progress,
        cancel=cancel,
    )
    del image
    seconds["inference"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_channels = probs.shape[0]
    labels_model = probs.argmax(dim=0).to(torch.uint8).numpy()
    entropy = -(probs * torch.log(probs.clamp_min(1e-8))).sum(dim=0) / math.log(n_channels)
    entropy_np = entropy.numpy()
    ids: list[int] = []
    if cleanup:
        single = bundle.metadata.get("single_component_classes", bundle.classes)
        ids = [bundle.classes.index(c) + 1 for c in single if c in bundle.classes]
        keep_largest_components(labels_model, ids)
    foreground = labels_model > 0
    uncertainty = float(entropy_np[foreground].mean()) if foreground.any() else 1.0
    uncertainty_map = entropy_np.astype(np.float16)
    seconds["postprocess"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if upsample == "linear":

        def on_slab(done: int, total: int) -> None:
            if cancel is not None and cancel():
                raise InferenceCancelled("proposal cancelled")
            if progress is not None:
                progress(done, total, "upsample")

        labels = grid.scores_to_labels(probs, slab_bytes=slab_bytes, on_slab=on_slab)
        del probs
        seconds["to_image_grid"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if ids:
            keep_largest_components(labels, ids)
        seconds["cleanup_image_grid"] = time.perf_counter() - t0
    else:
        del probs
        labels = grid.labels_to_image(labels_model)
        seconds["to_image_grid"] = time.perf_counter() - t0
    if refine:
        t0 = time.perf_counter()

        def on_refined_slab(done: int, total: int) -> None:
            if cancel is not None and cancel():
                raise InferenceCancelled("proposal cancelled")
            if progress is not None:
                progress(done, total, "refine")

        # in canonical order (views): the same patient gives the same slabs however stored
        refine_borders(
            grid.to_canonical(labels),
            grid.to_canonical(volume.array),
            grid.canonical_spacing,
            widths=band_widths(grid.canonical_spacing, grid.model_spacing),
            on_slab=on_refined_slab,
        )
        if ids:
            keep_largest_components(labels, ids)
        seconds["refine_borders"] = time.perf_counter() - t0
    if progress is not None:
        progress(1, 1, "done")
    return Proposal(
        labels, uncertainty, uncertainty_map, grid, bundle.version, seconds, borders_refined=refine
    )
