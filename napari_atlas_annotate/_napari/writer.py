"""npe2 writer: one Labels layer -> NIfTI on the grid of the image it was painted on."""

from __future__ import annotations

from typing import Any

from .layers import META_KEY, grid_metadata, matching_grid, volume_from_layer


class LabelsWriteError(RuntimeError):
    """A Labels layer cannot be written on its image's grid.

    Deliberately not a ``ValueError``: napari's writer dispatch reads a ``ValueError`` as
    "this writer does not apply", drops the message and warns that no writer was found.
    A ``RuntimeError`` reaches the user with the reason and the fix.
    """


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer as ``.nii``/``.nii.gz`` with its source image's affine.

    Parameters
    ----------
    path
        Destination file; ``.nii.gz`` is appended when it has neither NIfTI suffix.
    data
        The layer's data (as napari holds it).
    meta
        The layer's attributes (``layer.as_layer_data_tuple()[1]``). Its ``metadata``
        holds the grid this plugin recorded when the layer was made; a layer without one
        (made with napari's "New labels layer" button from an image this plugin opened)
        takes the grid of the image in the current viewer it lies on voxel for voxel.

    Returns
    -------
    list of str
        The one file written.

    Raises
    ------
    LabelsWriteError
        When the layer has no recorded source grid (its geometry would be a guess), its
        shape no longer matches that grid, or its values do not fit a label file.
    """
    from ..io import save_labels

    if grid_metadata(meta) is None:
        grid = matching_grid(getattr(data, "shape", ()), meta, _current_layers())
        if grid is not None:
            meta = {**meta, "metadata": {**(meta.get("metadata") or {}), META_KEY: grid}}
    try:
        volume = volume_from_layer(data, meta)
        if not path.lower().endswith((".nii", ".nii.gz")):
            path = f"{path}.nii.gz"
        return [str(save_labels(volume.array, volume, path))]
    except ValueError as exc:
        raise LabelsWriteError(f"cannot save labels to {path}: {exc}") from exc


def _current_layers() -> list[Any]:
    """The layers of napari's current viewer (none when no viewer is open)."""
    import napari

    viewer = napari.current_viewer()
    return list(viewer.layers) if viewer is not None else []
