"""The model's grid: an image reoriented to one canonical axis order and resampled to the
model's voxel spacing, and the exact way back onto the image's own grid.

A helper model always sees its input the same way: array axes pointing (S, P, L) (the axial
CT order; the display order used by :mod:`napari_atlas_annotate._napari.layers`), voxels of
the model's spacing (e.g. 3 mm). Reorientation is a pure transpose/flip of the voxel array
(nibabel orientation codes), so it is lossless and exactly invertible; the only interpolation
is the axis-aligned resampling, and labels come back with nearest-neighbour lookups of
voxel centres. A proposal therefore lies on the image's exact grid and affine: nothing is
ever resampled in patient space, and oblique or flipped acquisitions need no special case.

Image intensities are resampled in torch (area averaging along axes that shrink, which also
averages CT noise down, and linear interpolation along axes that grow). Labels go to
the model grid and back by nearest lookup in uint8. Per-class scores come back with
:meth:`ModelGrid.scores_to_labels`: trilinear interpolation and argmax a slab of a few
image slices at a time, so no per-class float map is ever built at image resolution.

Examples
--------
>>> import numpy as np
>>> axial = np.array([[0, 0, -0.8, 0], [0, -0.8, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1.0]])
>>> grid = ModelGrid.for_image((40, 64, 64), axial, (3.0, 3.0, 3.0))
>>> grid.model_shape
(33, 17, 17)
>>> labels = np.zeros(grid.model_shape, np.uint8)
>>> grid.labels_to_image(labels).shape
(40, 64, 64)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import nibabel.orientations as nio
import numpy as np

#: Default memory budget (bytes) of one slab of interpolated per-class scores.
SLAB_BYTES: int = 64 * 2**20

#: Anatomical direction of model array axes 0, 1, 2 (axial slices, rows to posterior,
#: columns to the patient's left: the usual DICOM axial CT layout).
CANONICAL_AXES: tuple[str, str, str] = ("S", "P", "L")


@dataclass(frozen=True)
class ModelGrid:
    """Voxel-exact mapping between an image grid and the model grid.

    Attributes
    ----------
    image_shape
        Shape ``(z, y, x)`` of the image array.
    transform
        nibabel orientation transform (3x2) from image axes to canonical axes.
    canonical_shape
        Image shape after reorientation.
    canonical_spacing
        Voxel size (mm) of the reoriented image along the canonical axes.
    model_shape
        Shape of the model-resolution array.
    """

    image_shape: tuple[int, int, int]
    transform: np.ndarray
    canonical_shape: tuple[int, int, int]
    canonical_spacing: tuple[float, float, float]
    model_shape: tuple[int, int, int]

    @classmethod
    def for_image(
        cls,
        shape: Sequence[int],
        affine: np.ndarray,
        spacing: Sequence[float],
        axes: Sequence[str] = CANONICAL_AXES,
    ) -> ModelGrid:
        """The model grid of an image of ``shape`` and ``(z, y, x) -> RAS`` ``affine``.

        Parameters
        ----------
        spacing
            Model voxel size (mm) along the canonical axes.
        axes
            Canonical orientation codes of the model's array axes.
        """
        shape = tuple(int(s) for s in shape)
        affine = np.asarray(affine, float)
        start = nio.io_orientation(affine)
        transform = nio.ornt_transform(start, nio.axcodes2ornt(tuple(axes)))
        image_spacing = np.linalg.norm(affine[:3, :3], axis=0)
        order = transform[:, 0].astype(int)  # image axis i goes to canonical axis order[i]
        canonical_shape = [0, 0, 0]
        canonical_spacing = [0.0, 0.0, 0.0]
        for i in range(3):
            canonical_shape[order[i]] = shape[i]
            canonical_spacing[order[i]] = float(image_spacing[i])
        model_shape = tuple(
            max(1, int(round(n * s / t)))
            for n, s, t in zip(canonical_shape, canonical_spacing, spacing, strict=True)
        )
        return cls(
            shape,
            transform,
            tuple(canonical_shape),
            tuple(canonical_spacing),
            model_shape,  # type: ignore[arg-type]
        )

    # -- orientation --------------------------------------------------------------------
    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        """Transpose/flip an image-grid array into canonical axis order (a view)."""
        if tuple(array.shape) != self.image_shape:
            raise ValueError(f"array shape {array.shape} is not the image's {self.image_shape}")
        return nio.apply_orientation(array, self.transform)

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_canonical` (a view)."""
        return nio.apply_orientation(array, _inverse_ornt(self.transform))

    def model_affine(self, image_affine: np.ndarray) -> np.ndarray:
        """``(z, y, x) -> RAS`` affine of model-grid arrays (canonical axis order).

        Model voxel ``k`` along a canonical axis covers canonical image voxels
        ``[k * f, (k + 1) * f)`` with ``f = canonical / model`` size, so its centre sits at
        canonical index ``(k + 0.5) * f - 0.5``; the orientation transform then maps canonical
        indices to image indices. A model-resolution map saved with this affine (e.g. the
        uncertainty map) overlays the image in any viewer.
        """
        scale = np.eye(4)
        for a in range(3):
            f = self.canonical_shape[a] / self.model_shape[a]
            scale[a, a] = f
            scale[a, 3] = 0.5 * f - 0.5
        # canonical index -> image index: canonical axis order[i] holds image axis i.
        to_image = np.zeros((4, 4))
        to_image[3, 3] = 1.0
        for i, (axis, flip) in enumerate(self.transform):
            a = int(axis)
            if flip < 0:
                to_image[i, a] = -1.0
                to_image[i, 3] = self.image_shape[i] - 1
            else:
                to_image[i, a] = 1.0
        return np.asarray(image_affine, float) @ to_image @ scale

    @property
    def model_spacing(self) -> tuple[float, float, float]:
        """Actual model voxel size (mm) along the canonical axes (whole voxels per extent)."""
        return tuple(  # type: ignore[return-value]
            n * s / m
            for n, s, m in zip(
                self.canonical_shape, self.canonical_spacing, self.model_shape, strict=True
            )
        )

    # -- resampling ---------------------------------------------------------------------
    def _lookup(self, axis: int, src: int, dst: int) -> np.ndarray:
        """Nearest source index (0..src-1) of each of ``dst`` voxel centres along ``axis``."""
        centres = (np.arange(dst) + 0.5) * (src / dst)
        return np.minimum(centres.astype(np.int64), src - 1)

    def image_to_model(self, array: np.ndarray) -> np.ndarray:
        """Resample image intensities (any numeric dtype) to a float32 model-grid array.

        Axes that shrink are area-averaged (each model voxel is the mean of the image
        voxels it covers, which also averages CT noise down); axes that grow are linearly
        interpolated. Both put model voxel ``k`` at canonical index ``(k + 0.5) * f - 0.5``,
        the same centres :meth:`labels_to_model` and :meth:`model_affine` use.
        """
        import torch
        import torch.nn.functional as F

        canonical = self.to_canonical(array)
        tensor = torch.from_numpy(np.ascontiguousarray(canonical, dtype=np.float32))[None, None]
        shrunk = tuple(
            min(c, m) for c, m in zip(self.canonical_shape, self.model_shape, strict=True)
        )
        with torch.no_grad():
            if shrunk != self.canonical_shape:
                tensor = F.adaptive_avg_pool3d(tensor, shrunk)
            if shrunk != self.model_shape:
                tensor = F.interpolate(
                    tensor, size=self.model_shape, mode="trilinear", align_corners=False
                )
        return tensor[0, 0].numpy()

    def labels_to_model(self, labels: np.ndarray) -> np.ndarray:
        """Nearest-neighbour label map (same dtype) on the model grid."""
        out = self.to_canonical(labels)
        for axis in range(3):
            idx = self._lookup(axis, self.canonical_shape[axis], self.model_shape[axis])
            out = np.take(out, idx, axis=axis)
        return np.ascontiguousarray(out)

    def fraction_to_model(self, mask: np.ndarray) -> np.ndarray:
        """Fraction (float32 0..1) of each model voxel covered by a boolean image-grid mask."""
        return np.clip(self.image_to_model(mask.astype(np.uint8)), 0.0, 1.0)

    def labels_to_image(self, labels: np.ndarray) -> np.ndarray:
        """Nearest-neighbour resampling of a model-grid label map onto the image grid.

        Each image voxel takes the label of the model voxel containing its centre; the
        result has exactly the image's shape and voxel order, so it shares its affine.
        """
        if tuple(labels.shape) != self.model_shape:
            raise ValueError(f"label shape {labels.shape} is not the model grid {self.model_shape}")
        out = labels
        for axis in range(3):
            idx = self._lookup(axis, self.model_shape[axis], self.canonical_shape[axis])
            out = np.take(out, idx, axis=axis)
        return np.ascontiguousarray(self.from_canonical(out))

    def scores_to_labels(
        self,
        scores,
        *,
        slab_bytes: int = SLAB_BYTES,
        on_slab: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Argmax of per-class scores interpolated (trilinear) onto the image grid, as uint8.

        The result equals ``argmax`` of the full-resolution trilinear interpolation of
        ``scores`` (``F.interpolate(..., mode='trilinear', align_corners=False)`` to the
        canonical image shape, then back to the image's voxel order), but it is computed a
        slab of canonical axis-0 slices at a time: along axis 0 each slab is a weighted sum
        of two model slices per output slice, in-plane it is a bilinear interpolation, and
        the argmax goes straight into the uint8 output. At most ``n_classes * slab``
        float32 image-resolution planes exist at once (see :func:`slab_slices`).

        Parameters
        ----------
        scores
            ``(C, *model_shape)`` float tensor or array (probabilities or logits).
        slab_bytes
            Memory budget of one slab of interpolated scores.
        on_slab
            ``on_slab(done, total)`` after each slab (e.g. progress; it may raise to cancel).

        Returns
        -------
        numpy.ndarray
            uint8 label map (the class index of the largest score) on the image grid.
        """
        import torch

        scores = torch.as_tensor(scores)
        if scores.ndim != 4 or tuple(scores.shape[1:]) != self.model_shape:
            raise ValueError(
                f"scores shape {tuple(scores.shape)} is not (classes, *{self.model_shape})"
            )
        if scores.shape[0] > 256:
            raise ValueError(f"{scores.shape[0]} classes do not fit a uint8 label map")
        scores = scores.float()
        depth, plane = self.canonical_shape[0], self.canonical_shape[1:]
        lower, upper, weight = linear_weights(self.model_shape[0], depth)
        rows = linear_weights(self.model_shape[1], plane[0])
        cols = linear_weights(self.model_shape[2], plane[1])
        step = slab_slices(scores.shape[0], plane, slab_bytes)
        total = -(-depth // step)
        out = np.empty(self.canonical_shape, np.uint8)
        with torch.no_grad():
            for n, start in enumerate(range(0, depth, step)):
                stop = min(start + step, depth)
                w = torch.from_numpy(weight[start:stop])[None, :, None, None]
                lo = scores[:, torch.from_numpy(lower[start:stop])]
                hi = scores[:, torch.from_numpy(upper[start:stop])]
                slab = torch.lerp(lo, hi, w).permute(1, 2, 3, 0).contiguous()  # (n, Ym, Xm, C)
                del lo, hi
                out[start:stop] = _bilinear_argmax(slab.numpy(), rows, cols)
                del slab
                if on_slab is not None:
                    on_slab(n + 1, total)
        return np.ascontiguousarray(self.from_canonical(out))


def _bilinear_argmax(slab: np.ndarray, rows, cols) -> np.ndarray:
    """uint8 argmax of the bilinear interpolation of ``slab`` (n, Ym, Xm, C) to (n, Y, X).

    ``rows`` and ``cols`` are the :func:`linear_weights` (lower, upper, weight) arrays.
    A bilinear value is a convex combination of the four corner scores, so where all four
    corners share their argmax the result has it too: those pixels take the corners'
    label, and only pixels in cells whose corners disagree (organ borders, a few percent
    of the plane) are interpolated over all classes. This gives the argmax of
    ``F.interpolate(slab, mode='bilinear', align_corners=False)`` without computing it.
    """
    y0, y1, wy = rows
    x0, x1, wx = cols
    n_slices, ym, xm, n_classes = slab.shape
    top = slab.argmax(axis=-1).astype(np.uint8)  # (n, Ym, Xm)
    down = np.minimum(np.arange(ym) + 1, ym - 1)
    right = np.minimum(np.arange(xm) + 1, xm - 1)
    below = top[:, down]
    differ = (top != below) | (top != top[:, :, right]) | (top != below[:, :, right])
    # Each image pixel takes its cell's upper-left corner label, right where corners agree.
    labels = top[:, y0][:, :, x0]
    n, y, x = np.nonzero(differ[:, y0][:, :, x0])
    if n.size:
        table = slab.reshape(-1, n_classes)  # (n * Ym * Xm, C)
        base = n * (ym * xm)
        a, b = base + y0[y] * xm, base + y1[y] * xm
        c, d = x0[x], x1[x]
        u = wx[x, None]
        upper_row = table[a + c] + u * (table[a + d] - table[a + c])
        lower_row = table[b + c] + u * (table[b + d] - table[b + c])
        blend = upper_row + wy[y, None] * (lower_row - upper_row)
        labels[n, y, x] = blend.argmax(axis=1)
    return labels


def slab_slices(n_classes: int, plane_shape: Sequence[int], budget_bytes: int = SLAB_BYTES) -> int:
    """Number of output slices per slab so that ``n_classes`` float32 planes fit the budget.

    At least one slice, whatever the budget: a slab never holds more than
    ``max(budget_bytes, n_classes * plane bytes)`` of interpolated scores.

    Examples
    --------
    >>> slab_slices(10, (512, 512), 64 * 2**20)
    6
    """
    plane = int(n_classes) * int(np.prod(plane_shape)) * 4
    return max(1, int(budget_bytes) // max(plane, 1))


def linear_weights(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation from ``src`` model voxels to ``dst`` image voxels along one axis.

    Image voxel ``i`` sits at model coordinate ``(i + 0.5) * src / dst - 0.5`` (the inverse
    of the centres in :meth:`ModelGrid.model_affine`), clamped to the first and last model
    voxel centres: the rule of ``torch.nn.functional.interpolate(..., align_corners=False)``.

    Returns
    -------
    lower, upper, weight
        Model indices either side of each image voxel and the weight of ``upper``.
    """
    coord = np.maximum((np.arange(dst) + 0.5) * (src / dst) - 0.5, 0.0)
    lower = np.minimum(np.floor(coord).astype(np.int64), src - 1)
    upper = np.minimum(lower + 1, src - 1)
    weight = np.where(upper > lower, coord - lower, 0.0).astype(np.float32)
    return lower, upper, weight


def _inverse_ornt(transform: np.ndarray) -> np.ndarray:
    """The orientation transform undoing ``transform`` (both as nibabel 3x2 arrays)."""
    inverse = np.empty_like(transform)
    for i, (axis, flip) in enumerate(transform):
        inverse[int(axis)] = (i, flip)
    return inverse
