"""Decode a series' pixels into one preallocated ``(z, y, x)`` array, rescaled.

Value policy (``RescaleSlope`` / ``RescaleIntercept``, per file or per frame):

* no rescale anywhere -> the stored integer type (``uint16`` MR stays ``uint16``);
* integer slope and intercept (CT to HU) -> ``int16`` when every value fits, which is
  exact; a slice that overflows switches the whole volume to ``float32`` (still exact:
  16-bit stored values with integer rescale stay below 2**24);
* any fractional slope or intercept -> ``float32``.

Compressed transfer syntaxes (JPEG, JPEG 2000, JPEG-LS, RLE, deflate) are decoded by
pydicom through the installed pylibjpeg plugins, JPEG-LS by CharLS (pyjpegls) where it is
installed (:func:`faster_plugin`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from .dicom_frames import FrameRef
from .errors import VolumeLoadError

_INT16 = np.iinfo(np.int16)


def _is_rescaled(frame: FrameRef) -> bool:
    return frame.slope != 1.0 or frame.intercept != 0.0


def stored_dtype(frames: list[FrameRef]) -> np.dtype:
    """The integer type holding every frame's stored values (BitsAllocated, sign)."""
    types = set()
    for f in frames:
        bits = 8 if f.bits_allocated <= 8 else 16 if f.bits_allocated <= 16 else 32
        types.add(np.dtype(f"{'int' if f.signed else 'uint'}{bits}"))
    return np.result_type(*types)


def planned_dtype(frames: list[FrameRef]) -> np.dtype:
    """The output type the value policy above gives (before any int16 overflow)."""
    if not any(_is_rescaled(f) for f in frames):
        return stored_dtype(frames)
    if all(float(f.slope).is_integer() and float(f.intercept).is_integer() for f in frames):
        return np.dtype(np.int16)
    return np.dtype(np.float32)


def _read_dataset(path: Path) -> Dataset:
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises many types on damaged files
        raise VolumeLoadError(
            path,
            f"could not be read ({exc}); the file is probably truncated or damaged.",
            "Copy it again from its source or re-export the series.",
        ) from exc
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise VolumeLoadError(
            path,
            "has no pixel data although its header describes an image; the file is "
            "probably truncated.",
            "Copy it again from its source or re-export the series.",
        )
    return ds


#: Decoder plugins faster than pydicom's first choice for a transfer syntax: CharLS
#: (pyjpegls) decodes a 512x512 JPEG-LS CT slice in about 6 ms, pylibjpeg-libjpeg in about
#: 20 (this machine; a 300-slice series then opens in about 2.5 s instead of 7).
FASTER_PLUGINS: dict[str, str] = {
    "1.2.840.10008.1.2.4.80": "pyjpegls",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls",  # JPEG-LS Near-Lossless
}


@lru_cache(maxsize=32)
def faster_plugin(syntax: str) -> str:
    """The plugin in :data:`FASTER_PLUGINS` to decode ``syntax`` with, where pydicom has it
    available; ``""`` (pydicom's own choice) otherwise."""
    name = FASTER_PLUGINS.get(str(syntax), "")
    if not name:
        return ""
    from pydicom.pixels import get_decoder

    try:
        available = get_decoder(syntax).available_plugins
    except Exception:  # a syntax pydicom has no decoder for says so when decoded
        return ""
    return name if name in available else ""


def _decode(ds: Dataset, path: Path, n_frames: int) -> np.ndarray:
    """All frames of ``ds`` as an ``(n, rows, columns)`` array."""
    syntax = ds.file_meta.get("TransferSyntaxUID", "unknown transfer syntax")
    try:
        plugin = faster_plugin(str(syntax))
        if plugin:
            ds.pixel_array_options(decoding_plugin=plugin)
        pixels = ds.pixel_array
    except ValueError as exc:
        raise VolumeLoadError(
            path,
            f"pixel data is shorter or longer than its header says ({exc}).",
            "The file is probably truncated: copy it again or re-export the series.",
        ) from exc
    except Exception as exc:  # missing decoder plugin, corrupt compressed stream
        name = getattr(syntax, "name", str(syntax))
        raise VolumeLoadError(
            path,
            f"pixel data ({name}) could not be decoded ({exc}).",
            "Check that pylibjpeg and its libjpeg/openjpeg/rle plugins are installed, or "
            "that the file is complete.",
        ) from exc
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3 or pixels.shape[0] != n_frames:
        raise VolumeLoadError(
            path,
            f"decoded to shape {pixels.shape}, not {n_frames} greyscale frame(s).",
            "Only greyscale single- or multi-frame images can be loaded.",
        )
    return pixels


class _FrameSource:
    """Decoded pixels per frame; each multi-frame file is decoded once and kept."""

    def __init__(self) -> None:
        self._multi: dict[Path, np.ndarray] = {}

    def pixels(self, frame: FrameRef) -> np.ndarray:
        if frame.frame is None:
            return _decode(_read_dataset(frame.path), frame.path, 1)[0]
        if frame.path not in self._multi:
            ds = _read_dataset(frame.path)
            n = max(int(ds.get("NumberOfFrames", 1) or 1), 1)
            self._multi[frame.path] = _decode(ds, frame.path, n)
        return self._multi[frame.path][frame.frame]


def read_pixels(frames: list[FrameRef]) -> np.ndarray:
    """Decode and rescale ``frames`` (already in z order) into a new ``(z, y, x)`` array.

    Parameters
    ----------
    frames
        One record per output slice, in z order; all of the same size.

    Returns
    -------
    numpy.ndarray
        Rescaled values; dtype by the module's value policy.

    Raises
    ------
    VolumeLoadError
        A file is truncated, lacks pixel data, cannot be decoded or has the wrong size.
    """
    rows, cols = frames[0].rows, frames[0].columns
    out = np.empty((len(frames), rows, cols), dtype=planned_dtype(frames))
    rescale = any(_is_rescaled(f) for f in frames)
    source = _FrameSource()
    for k, frame in enumerate(frames):
        pixels = source.pixels(frame)
        if pixels.shape != (rows, cols):
            raise VolumeLoadError(
                frame.path,
                f"{frame.label} decoded to {pixels.shape}, not {rows}x{cols}.",
                "The header and pixel data disagree; re-export the series.",
            )
        if not rescale:
            out[k] = pixels
        elif out.dtype == np.int16:
            values = pixels.astype(np.int32) * int(frame.slope) + int(frame.intercept)
            if values.size and (values.min() < _INT16.min or values.max() > _INT16.max):
                out = out.astype(np.float32)  # rare: exact in float32, keep going
            out[k] = values
        else:
            out[k] = pixels * frame.slope + frame.intercept
    return out
