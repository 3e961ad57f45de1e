"""Volume <-> napari layer data, with the one display geometry every layer shares.

napari world coordinates are patient millimetres ordered like a radiologist reads an axial
slice: world axis 0 is S (the slider runs foot to head), axis 1 is P (screen rows, so
anterior is up) and axis 2 is L (screen columns, so the patient's right is on the screen's
left). In RAS terms ``world = DISPLAY_FROM_RAS @ (R, A, S, 1)`` and a layer's data-to-world
transform is ``DISPLAY_FROM_RAS @ volume.affine``: a standard axial CT (orientation S, P, L)
gets a positive diagonal one, and an image and a mask with the same Volume affine overlay
voxel for voxel. The voxel size goes into the layer's ``scale`` and the directions and
origin into its ``affine`` (:func:`layer_placement`), as napari expects: its 3D brush sizes
the ball it paints by ``scale``, so with the voxel size in the affine a 3 mm-slice CT got a
ball four times deeper than wide.

napari slices data along its first axes regardless of the affine, so a series whose index
axes are permuted relative to the world (a sagittal MRI) would show the wrong plane. Such
data is handed to napari transposed so that data axis ``i`` runs mostly along world axis
``i``; the permutation is recorded in the layer metadata and undone by
:func:`volume_from_layer`, so labels painted on a sagittal series are written back on the
series' own (z, y, x) grid. Flips stay in the affine (negative diagonal entries), so no
data is copied.

The Volume's own geometry travels in ``layer.metadata["atlas_annotate"]``: ``affine``
(the Volume's ``(z, y, x) -> RAS`` matrix), ``shape``, ``axes`` (the transpose applied),
``modality``, ``source`` and, for labels, ``class_names``.

Examples
--------
>>> import numpy as np
>>> from napari_atlas_annotate.volume import Volume
>>> ras = [[0, 0, -0.7, 0], [0, -0.8, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1]]
>>> axial = Volume(np.zeros((3, 4, 5), np.int16), np.array(ras, float))
>>> axial.orientation
('S', 'P', 'L')
>>> data, kwargs, kind = image_layer_data(axial, "ct")
>>> [round(float(s), 3) for s in kwargs["scale"]], np.diag(kwargs["affine"]).tolist()
([2.5, 0.8, 0.7], [1.0, 1.0, 1.0, 1.0])
>>> volume_from_layer((data, kwargs)).same_grid(axial)
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..classes import class_colors
from ..models.intensity import finite_values
from ..volume import Volume
from .ct_windows import ABDOMEN

#: RAS (x_R, y_A, z_S, 1) -> napari world (S, P, L, 1).
DISPLAY_FROM_RAS = np.array(
    [
        [0.0, 0.0, 1.0, 0.0],
        [0.0, -1.0, 0.0, 0.0],
        [-1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)

#: Names of the napari world axes under :data:`DISPLAY_FROM_RAS`.
WORLD_AXIS_LABELS = ("S", "P", "L")

#: Key of this plugin's entry in ``layer.metadata``.
META_KEY = "atlas_annotate"

#: What a CT opens with: the abdominal soft-tissue window (level 40 HU, width 400 HU).
CT_WINDOW = ABDOMEN.limits

LayerDataTuple = tuple[Any, dict[str, Any], str]


def display_axes(volume_affine: np.ndarray) -> tuple[int, int, int]:
    """The transpose that makes data axis ``i`` run mostly along world axis ``i``.

    Parameters
    ----------
    volume_affine
        A Volume's ``(z, y, x) -> RAS`` affine.

    Returns
    -------
    tuple of int
        ``axes`` such that ``array.transpose(axes)`` is the data napari gets; ``(0, 1, 2)``
        for an axial series.
    """
    linear = (DISPLAY_FROM_RAS @ np.asarray(volume_affine, float))[:3, :3]
    weight = np.abs(linear) / np.linalg.norm(linear, axis=0, keepdims=True)
    axes: list[int] = [-1, -1, -1]
    # Assign the most decisive data axis first, so an oblique axis cannot steal a world
    # axis from one that is exactly aligned with it.
    for data_axis in np.argsort(-weight.max(axis=0)):
        order = np.argsort(-weight[:, data_axis])
        world_axis = next(int(w) for w in order if axes[w] == -1)
        axes[world_axis] = int(data_axis)
    return tuple(axes)  # type: ignore[return-value]


def layer_affine(volume_affine: np.ndarray, axes: Sequence[int] = (0, 1, 2)) -> np.ndarray:
    """napari affine of ``array.transpose(axes)`` for a Volume with ``volume_affine``."""
    permute = np.eye(4)
    permute[:3, :3] = np.eye(3)[:, list(axes)]  # old index = permute @ new index
    return DISPLAY_FROM_RAS @ np.asarray(volume_affine, float) @ permute


def layer_placement(volume_affine: np.ndarray, axes: Sequence[int] = (0, 1, 2)) -> dict:
    """napari ``scale`` (voxel size, mm) and ``affine`` (unit directions and origin) of
    ``array.transpose(axes)`` for a Volume with ``volume_affine``: together they are
    :func:`layer_affine`."""
    full = layer_affine(volume_affine, axes)
    spacing = np.linalg.norm(full[:3, :3], axis=0)
    unit = full.copy()
    unit[:3, :3] = full[:3, :3] / spacing
    return {"scale": tuple(float(s) for s in spacing), "affine": unit}


def tilt_degrees(affine: np.ndarray) -> float:
    """How far a layer's voxel grid is turned against the view: the largest angle between
    a data axis and the world axis nearest to it (0 for a grid napari shows axis-aligned,
    flips and scaling included).

    napari draws each slice of a tilted grid flat, while its brush paints the slice the
    full inverse transform of the mouse's point falls in: near the image's edges that can
    be a slice away from the one drawn.

    Examples
    --------
    >>> tilt_degrees(np.diag([2.0, -0.7, 0.7, 1.0]))
    0.0
    >>> t = np.deg2rad(12); tilted = np.eye(4)
    >>> tilted[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    >>> round(tilt_degrees(tilted), 1)
    12.0
    """
    linear = np.asarray(affine, float)[:3, :3]
    columns = linear / np.linalg.norm(linear, axis=0)
    cosines = np.clip(np.abs(columns).max(axis=0), 0.0, 1.0)
    return float(np.degrees(np.arccos(cosines)).max())


def guess_modality(volume: Volume) -> str:
    """``volume.modality``, or ``"CT"`` when the values look like Hounsfield units.

    NIfTI files carry no modality; air at about -1000 HU is the giveaway of a CT.
    """
    if volume.modality:
        return volume.modality.upper()
    sample = finite_values(volume.array[:: max(1, volume.shape[0] // 16), ::4, ::4])
    if sample.size and np.issubdtype(sample.dtype, np.number) and float(sample.min()) < -500:
        return "CT"
    return ""


def display_window(volume: Volume, modality: str | None = None) -> tuple[float, float]:
    """Contrast limits: the abdominal window for CT, robust percentiles otherwise.

    Parameters
    ----------
    volume
        The image.
    modality
        Overrides :func:`guess_modality`.
    """
    modality = guess_modality(volume) if modality is None else modality.upper()
    if modality == "CT":
        return CT_WINDOW
    # A strided sample keeps this O(1 MB) for any volume size.
    step = max(1, int(round((volume.array.size / 2_000_000) ** (1 / 3))))
    sample = finite_values(np.asarray(volume.array[::step, ::step, ::step], dtype=np.float32))
    low, high = (float(v) for v in np.percentile(sample, [0.5, 99.5])) if sample.size else (0, 1)
    if not high > low:
        low, high = float(sample.min(initial=0)), float(sample.max(initial=1))
    if not high > low:
        high = low + 1.0
    return low, high


def _layer_name(volume: Volume, name: str | None) -> str:
    if name:
        return name
    meta = volume.metadata
    if meta.get("series_description"):
        return str(meta["series_description"])
    source = str(meta.get("source", ""))
    if source:
        base = source.rstrip("/").split("/")[-1]
        for suffix in (".nii.gz", ".nii", ".dcm"):
            if base.lower().endswith(suffix):
                return base[: -len(suffix)]
        return base
    return "volume"


def _grid_metadata(volume: Volume, axes: Sequence[int]) -> dict[str, Any]:
    return {
        "affine": np.asarray(volume.affine, float).tolist(),
        "shape": list(volume.shape),
        "axes": [int(a) for a in axes],
        "modality": volume.modality,
        "source": str(volume.metadata.get("source", "")),
        "volume_metadata": dict(volume.metadata),
    }


def image_layer_data(volume: Volume, name: str | None = None) -> LayerDataTuple:
    """napari ``(data, kwargs, "image")`` for a CT or MR volume.

    Parameters
    ----------
    volume
        The image; its affine places the layer in patient millimetres.
    name
        Layer name; defaults to the SeriesDescription or the file name.

    Returns
    -------
    tuple
        Layer data tuple with ``affine``, ``contrast_limits`` (abdominal window for CT,
        0.5-99.5 percentiles for MR), ``colormap="gray"`` and the grid in ``metadata``.
    """
    axes = display_axes(volume.affine)
    modality = guess_modality(volume)
    kwargs = {
        "name": _layer_name(volume, name),
        **layer_placement(volume.affine, axes),
        "contrast_limits": display_window(volume, modality),
        "colormap": "gray",
        "units": ("mm", "mm", "mm"),
        "axis_labels": WORLD_AXIS_LABELS,
        "metadata": {META_KEY: {**_grid_metadata(volume, axes), "modality": modality}},
    }
    return volume.array.transpose(axes), kwargs, "image"


def label_colormap(names: Sequence[str]):
    """napari ``DirectLabelColormap``: fixed class colours, background transparent.

    Labels beyond the configured classes are drawn in grey, so they stand out as
    unexpected rather than disappearing.
    """
    from napari.utils.colormaps import DirectLabelColormap

    color_dict: dict[int | None, Any] = {None: np.array([0.5, 0.5, 0.5, 1.0])}
    for value, rgb in class_colors(names).items():
        alpha = 0.0 if value == 0 else 1.0
        color_dict[value] = np.array([*(c / 255.0 for c in rgb), alpha])
    return DirectLabelColormap(color_dict=color_dict)


def labels_layer_data(
    labels: np.ndarray | Volume | None,
    volume: Volume,
    names: Sequence[str],
    colors: Mapping[str, Sequence[int]] | None = None,
    name: str | None = None,
) -> LayerDataTuple:
    """napari ``(data, kwargs, "labels")`` for a label map on ``volume``'s grid.

    Parameters
    ----------
    labels
        Label map indexed (z, y, x) like ``volume.array`` (or a Volume on the same grid);
        ``None`` makes an empty map (uint8) to paint on.
    volume
        The image the labels belong to; its affine is the one written back.
    names
        Class names; label value ``i`` is ``names[i - 1]``.
    colors
        RGB (0-255) overrides by class name; others use
        :data:`napari_atlas_annotate.classes.CLASS_COLORS` or the fallback palette.
    name
        Layer name; defaults to ``"<image name> labels"``.

    Raises
    ------
    ValueError
        When the labels are not on the image's grid.
    """
    if labels is None:
        array = np.zeros(volume.shape, np.uint8)
    elif isinstance(labels, Volume):
        if not labels.same_grid(volume):
            raise ValueError(
                f"label volume (shape {labels.shape}) is not on the image grid "
                f"(shape {volume.shape}); resample it explicitly before displaying"
            )
        array = labels.array
    else:
        array = np.asarray(labels)
    if tuple(array.shape) != volume.shape:
        raise ValueError(f"label shape {array.shape} does not match image shape {volume.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise ValueError(f"labels must be integers; got dtype {array.dtype}")
    names = [str(n) for n in names]
    colormap = label_colormap(names)
    if colors:
        for value, class_name in enumerate(names, start=1):
            if class_name in colors:
                rgb = [c / 255.0 for c in colors[class_name]]
                colormap.color_dict[value] = np.array([*rgb[:3], 1.0])
    axes = display_axes(volume.affine)
    kwargs = {
        "name": name or f"{_layer_name(volume, None)} labels",
        **layer_placement(volume.affine, axes),
        "colormap": colormap,
        "features": {"index": list(range(len(names) + 1)), "class": ["background", *names]},
        "units": ("mm", "mm", "mm"),
        "axis_labels": WORLD_AXIS_LABELS,
        "metadata": {META_KEY: {**_grid_metadata(volume, axes), "class_names": names}},
    }
    return array.transpose(axes), kwargs, "labels"


def show_in_layer(layer: Any, data: Any, kwargs: Mapping[str, Any]) -> None:
    """Show layer data (``data`` and the ``kwargs`` of :func:`image_layer_data` or
    :func:`labels_layer_data`) in an existing layer of the same kind: array, grid, metadata,
    name and, for an image, the display range a new layer would get. Reusing a layer for
    the next case costs a few hundredths of a second where removing it and adding another
    costs about half a second (a canvas cleanup and a new visual)."""
    layer.data = data
    layer.scale = kwargs["scale"]
    layer.affine = kwargs["affine"]
    layer.metadata = kwargs["metadata"]
    layer.name = kwargs["name"]
    if "contrast_limits" in kwargs:
        layer.contrast_limits_range = kwargs["contrast_limits"]  # as add_image does
        layer.contrast_limits = kwargs["contrast_limits"]


def empty_undo_history(layer) -> None:
    """Empty napari's undo and redo stacks of ``layer`` (the next case is shown in it).

    ``Labels._reset_history`` makes new stacks; the coronal and sagittal views' copies of
    the layer share the old ones (:mod:`napari_atlas_annotate._qt.orthogonal_views`), and
    an undo there then wrote the last case's strokes into the next. The stacks are emptied
    in place instead, after napari's reset has dropped anything staged."""
    undo, redo = layer._undo_history, layer._redo_history
    layer._reset_history()
    undo.clear()
    redo.clear()
    layer._undo_history, layer._redo_history = undo, redo


def undo_history_can_be_emptied(layer) -> bool:
    """Whether ``layer`` has what :func:`empty_undo_history` uses (napari's private undo
    state): a layer without it is replaced on the next case, not reused."""
    stacks = (getattr(layer, name, None) for name in ("_undo_history", "_redo_history"))
    return callable(getattr(layer, "_reset_history", None)) and all(
        callable(getattr(stack, "clear", None)) for stack in stacks
    )


def removing_layers(viewer: Any):
    """A context in which the viewer's canvas is cleaned up once for every layer removed,
    not after each one.

    napari runs a full garbage collection per cleanup: a quarter of a second and more in a
    session holding a CT or a study's series, paid once per layer when a case's layers
    are removed one by one.

    Examples
    --------
    >>> with removing_layers(viewer):  # doctest: +SKIP
    ...     for layer in gone:
    ...         viewer.layers.remove(layer)
    """
    batched = getattr(viewer.layers, "batched_update", None)
    return batched() if batched is not None else contextlib.nullcontext()


def grid_metadata(source: Any) -> dict[str, Any] | None:
    """This plugin's grid record from a layer, a layer-data tuple or a metadata dict."""
    if isinstance(source, tuple):
        meta = source[1] if len(source) > 1 else {}
    elif hasattr(source, "metadata") and hasattr(source, "data"):
        meta = source.metadata
    else:
        meta = source
    if not isinstance(meta, Mapping):
        return None
    if META_KEY in meta:
        return meta[META_KEY]
    inner = meta.get("metadata")
    if isinstance(inner, Mapping) and META_KEY in inner:
        return inner[META_KEY]
    return None


def volume_from_layer(layer: Any, meta: Mapping[str, Any] | None = None) -> Volume:
    """The Volume a layer shows, on the grid recorded when the layer was made.

    Parameters
    ----------
    layer
        A napari layer, a ``(data, meta)`` / ``(data, meta, type)`` tuple (what
        ``layer.as_layer_data_tuple()`` and npe2 writers give), or the layer data array
        when ``meta`` is given.
    meta
        Layer metadata or layer-data kwargs, when ``layer`` is a bare array.

    Returns
    -------
    Volume
        Array back in (z, y, x) order (a view, no copy) with the original affine.

    Raises
    ------
    ValueError
        When the layer carries no grid of this plugin (it was not opened or created by
        napari-atlas-annotate), or its data no longer has the recorded shape.
    """
    if meta is not None:
        data, grid, label = layer, grid_metadata(meta), meta.get("name", "layer")
    elif isinstance(layer, tuple):
        data, grid = layer[0], grid_metadata(layer)
        label = layer[1].get("name", "layer") if len(layer) > 1 else "layer"
    else:
        data, grid, label = layer.data, grid_metadata(layer), getattr(layer, "name", "layer")
    if grid is None:
        raise ValueError(
            f"layer {label!r} has no source grid: it was not opened or created by "
            "napari-atlas-annotate, nor does it lie on an image opened with it, so its "
            "patient geometry is unknown. Open the image with napari-atlas-annotate, select "
            "it and press the layer list's 'New labels layer' button, then paint on that layer."
        )
    axes = [int(a) for a in grid.get("axes", (0, 1, 2))]
    array = np.asarray(data).transpose(np.argsort(axes))
    if list(array.shape) != [int(s) for s in grid["shape"]]:
        raise ValueError(
            f"layer {label!r} data has shape {array.shape} in (z, y, x) order but its source "
            f"grid is {tuple(grid['shape'])}; the data was resized after opening."
        )
    metadata = dict(grid.get("volume_metadata", {}))
    if "class_names" in grid:
        metadata["class_names"] = list(grid["class_names"])
    return Volume(array, np.asarray(grid["affine"], float), grid.get("modality", ""), metadata)


def data_to_world_matrix(source: Any) -> np.ndarray:
    """A layer's full data -> world matrix (its scale, translate, rotate, shear and affine).

    ``source`` is a napari layer or a layer-data kwargs dict (what writers receive).
    """
    from napari.utils.transforms import Affine

    def get(name: str) -> Any:
        return source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)

    physical = Affine(
        **{k: v for k in ("scale", "translate", "rotate", "shear") if (v := get(k)) is not None}
    ).affine_matrix
    affine = get("affine")
    affine = affine.affine_matrix if hasattr(affine, "affine_matrix") else affine
    affine = np.eye(len(physical)) if affine is None else np.asarray(affine, float)
    return affine @ physical


def matching_grid(
    shape: Sequence[int], meta: Mapping[str, Any], layers: Sequence[Any]
) -> dict[str, Any] | None:
    """The grid of one of ``layers`` that data of ``shape`` placed by ``meta`` sits on.

    napari's "New labels layer" button copies the selected image's shape and transform but
    not its metadata; such a layer lies voxel for voxel on the image's grid, which is found
    here by comparing shapes and data -> world matrices (to 1e-4 mm). ``None`` when no
    layer of this plugin matches.
    """
    target = data_to_world_matrix(meta)
    for layer in layers:
        grid = grid_metadata(layer)
        if grid is None or tuple(np.shape(layer.data)) != tuple(shape):
            continue
        matrix = data_to_world_matrix(layer)
        if matrix.shape == target.shape and np.allclose(matrix, target, atol=1e-4):
            return {k: v for k, v in grid.items() if k != "class_names"}
    return None
