"""napari hook: every change of a Labels layer becomes one logged edit.

napari reports edits in two ways, and this hook listens to both:

- ``layer.events.paint`` fires once per brush stroke, fill, polygon or
  ``data_setitem`` call, with the undo item (a list of private "atoms") as payload. The
  atoms' boxes are read when they look like napari 0.9's (``slice_key``) or like the
  legacy ``(indices, old, new)`` tuple, so the diff is taken inside the stroke's box and
  costs what the stroke costs; anything unrecognised falls back to a whole-volume diff.
- undo and redo fire ``set_data``, which also fires on every slice change. The hook
  compares the lengths of the layer's undo/redo stacks (private, read only) to tell an
  undo or redo from a slice change, and takes the box from the item that moved; when the
  stacks cannot be read it diffs the whole volume (no change -> nothing is logged).
- ``layer.data = array`` fires ``data``: diffed over the whole volume.

A programmatic ``Labels.paint`` / ``fill`` outside a stroke emits ``paint`` before it
writes; such an edit is logged at the next event (or :meth:`LabelsEditHook.flush`), and
merged into the next edit's event when that one is already written, so every state the
log passes through is one the layer really had (what crash recovery relies on).

Accelerators (fill between slices, threshold window, island cleanup, reset) are applied
with :meth:`LabelsEditHook.apply_labels`, which writes only the changed voxels as one atom
of napari's undo history inside ``Labels.block_history()`` (not through
``Labels.data_setitem``, which on a tilted series also wrote into the slice shown): napari's own
Ctrl-Z / Ctrl-Shift-Z undo and redo them in one step, and they are logged under the
accelerator's name and class. A reset restores several classes: it is logged with no class
(``class_id`` null, as undo and redo are) and the classes it changed in its detail, never as
a paint of the class that happened to be selected. An accelerator that changes nothing
writes, logs and pushes nothing.

Labels are logged in the Volume's (z, y, x) order even when the layer shows a transposed
array (sagittal series): ``axes`` is the transpose recorded by ``_napari/layers.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..corrections.recording import EditRecorder
from ..project.edit_log import BBox, EditEvent

#: Layer modes that name the tool of a paint event; others (pan_zoom, pick, transform)
#: mean the edit came from a script, logged as ``paint``.
EDIT_MODES = ("paint", "fill", "erase", "polygon")


class _UnknownAtom(Exception):
    pass


def _atom_box(atom: Any, shape: Sequence[int]) -> list[tuple[int, int]] | None:
    """Box (layer order) of one napari undo atom; None when it changed nothing."""
    key = getattr(atom, "slice_key", None)
    if isinstance(key, tuple) and len(key) == len(shape) and all(isinstance(s, slice) for s in key):
        return [
            (0 if s.start is None else int(s.start), n if s.stop is None else int(s.stop))
            for s, n in zip(key, shape, strict=True)
        ]
    if isinstance(atom, tuple) and len(atom) == 3 and isinstance(atom[0], tuple):
        index = atom[0]
        if len(index) == len(shape) and all(isinstance(i, np.ndarray) for i in index):
            if index[0].size == 0:
                return None
            return [(int(i.min()), int(i.max()) + 1) for i in index]
    raise _UnknownAtom(type(atom).__name__)


def _atom_value(atom: Any) -> int | None:
    value = getattr(atom, "new_value", None)
    if value is None and isinstance(atom, tuple) and len(atom) == 3:
        value = atom[2]
    if value is not None and np.ndim(value) == 0:
        return int(value)
    return None


def _as_atoms(item: Any) -> list:
    return list(item) if isinstance(item, list) else [item]


def _is_written(item: Any, data: Any) -> bool:
    """Whether the data already holds the new values of a napari undo item.

    Unknown atoms count as written (they are diffed over the whole volume anyway).
    """
    atoms = item if isinstance(item, list) else [item]
    for atom in atoms:
        key = getattr(atom, "slice_key", None)
        if key is not None and hasattr(atom, "mask") and hasattr(atom, "new_value"):
            region = np.asarray(data[key])
            now = region if atom.mask is None else region[atom.mask]
            if now.size and not bool(np.all(now == atom.new_value)):
                return False
        elif isinstance(atom, tuple) and len(atom) == 3 and isinstance(atom[0], tuple):
            try:
                now = np.asarray(data[atom[0]])
            except (IndexError, TypeError):
                continue
            if now.size and not bool(np.all(now == atom[2])):
                return False
    return True


def history_item_box(item: Any, shape: Sequence[int]) -> list[tuple[int, int]] | None:
    """Union box (layer order) of a napari undo item; raises ``_UnknownAtom`` if unsure."""
    if not isinstance(item, (list, tuple)) or (isinstance(item, tuple) and len(item) == 3):
        item = [item]
    box = None
    for atom in item:
        one = _atom_box(atom, shape)
        if one is None:
            continue
        box = (
            one
            if box is None
            else [(min(a0, b0), max(a1, b1)) for (a0, a1), (b0, b1) in zip(box, one, strict=True)]
        )
    return box


class LabelsEditHook:
    """Connects a napari Labels layer to an :class:`EditRecorder`.

    Parameters
    ----------
    layer
        The labels layer being edited (its data is ``volume_labels.transpose(axes)``).
    recorder
        Logs the edits.
    axes
        The transpose from Volume (z, y, x) order to layer data order.
    on_error
        Called with the exception when logging fails (the dock shows it); the edit stays
        in the layer and is logged with the next one.
    on_logged
        Called with each :class:`EditEvent` once it is logged (the dock's class volumes
        move by its diff).
    """

    def __init__(
        self,
        layer: Any,
        recorder: EditRecorder,
        axes: Sequence[int] = (0, 1, 2),
        on_error=None,
        on_logged=None,
    ) -> None:
        self.layer = layer
        self.on_logged = on_logged
        self.recorder = recorder
        self.axes = tuple(int(a) for a in axes)
        self._inverse = tuple(int(a) for a in np.argsort(self.axes))
        self._override: tuple[str, int | None, dict] | None = None
        self._stacks = self._stack_lengths()
        self.on_error = on_error
        self._pending: tuple | None = None
        self.events: list[EditEvent] = []  # what this hook logged, newest last
        layer.events.paint.connect(self._on_paint)
        layer.events.set_data.connect(self._on_set_data)
        layer.events.data.connect(self._on_data)
        layer.events.labels_update.connect(self._on_labels_update)

    def disconnect(self) -> None:
        """Stop listening (the case is closed)."""
        for emitter, callback in (
            (self.layer.events.paint, self._on_paint),
            (self.layer.events.set_data, self._on_set_data),
            (self.layer.events.data, self._on_data),
            (self.layer.events.labels_update, self._on_labels_update),
        ):
            emitter.disconnect(callback)

    # -- what napari tells us --------------------------------------------------------
    def _stack_lengths(self) -> tuple[int, int] | None:
        undo = getattr(self.layer, "_undo_history", None)
        redo = getattr(self.layer, "_redo_history", None)
        if undo is None or redo is None:
            return None
        return len(undo), len(redo)

    def _volume_box(self, layer_box: list[tuple[int, int]] | None) -> BBox | None:
        if layer_box is None:
            return None
        return tuple(layer_box[self._inverse[j]] for j in range(3))  # type: ignore[return-value]

    def current_labels(self) -> np.ndarray:
        """The layer's labels in Volume (z, y, x) order (a view)."""
        return np.asarray(self.layer.data).transpose(self._inverse)

    def _record(
        self,
        tool: str,
        class_id: int | None,
        item: Any,
        detail: dict | None = None,
        full: bool = False,
    ) -> None:
        region = None
        if not full:
            try:
                region = self._volume_box(history_item_box(item, self.layer.data.shape))
            except _UnknownAtom:
                region = None  # unknown napari internals: compare the whole volume
            else:
                if region is None:
                    return
        try:
            event = self.recorder.record(
                self.current_labels(), tool, class_id, region=region, detail=detail
            )
        except Exception as exc:  # never let logging break painting
            if self.on_error is None:
                raise
            self.on_error(exc)
            return
        if event is not None:
            self.events.append(event)
            if self.on_logged is not None:
                self.on_logged(event)

    def log_paint(self, event) -> None:
        """Log a ``paint`` event of another layer showing this layer's data array (a
        coronal or sagittal view's copy, :mod:`.orthogonal_views`), as this layer's own
        are logged. Connect it before anything that reacts to the edit."""
        self._on_paint(event)

    def _on_paint(self, event) -> None:
        item = getattr(event, "value", None)
        painted = getattr(event, "source", None)  # this layer, or a view's copy of it
        if getattr(painted, "data", None) is not self.layer.data:
            painted = self.layer
        mode = str(getattr(painted, "mode", "paint"))
        tool = mode if mode in EDIT_MODES else "paint"
        atoms = item if isinstance(item, list) else [item]
        values = {_atom_value(a) for a in atoms}
        class_id = values.pop() if len(values) == 1 else None
        if class_id is None:
            class_id = 0 if tool == "erase" else int(painted.selected_label)
        elif tool == "erase" and class_id != 0:
            tool = "paint"  # a script painted a label while the layer was in erase mode
        if self._override is not None:  # an accelerator: its class, or None for several
            tool, class_id, detail = self._override
        else:
            detail = {}
        self._stacks = self._stack_lengths()
        written = _is_written(item, self.layer.data)
        if written and self._pending is not None:
            # The earlier programmatic edit and this one are both in the data now and may
            # overlap: log them as one event, so every logged state is one the user saw.
            pending, self._pending = self._pending, None
            merged = list(_as_atoms(pending[2])) + list(_as_atoms(item))
            detail = {**detail, "with": pending[0]}
            self._record(tool, class_id, merged, detail)
        elif written:
            self._record(tool, class_id, item, detail)
        else:
            self.flush()  # the earlier programmatic edit has been written by now
            # napari emits ``paint`` before writing for a programmatic paint/fill outside a
            # stroke; log it at the next event (labels_update, set_data, paint) or flush().
            self._pending = (tool, class_id, item, detail)

    def flush(self) -> None:
        """Log an edit napari announced before writing it (call before reading the log)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._record(*pending)

    def _on_labels_update(self, event=None) -> None:
        self.flush()

    def _on_set_data(self, event=None) -> None:
        self.flush()
        stacks = self._stack_lengths()
        if stacks is None:
            self._record("undo/redo", None, None, full=True)
            return
        if stacks == self._stacks:
            return  # a slice change or a refresh, not an edit
        before = self._stacks
        self._stacks = stacks
        if before is None:
            self._record("undo/redo", None, None, full=True)
        elif stacks[0] < before[0] and stacks[1] > before[1]:
            self._record("undo", None, self.layer._redo_history[-1], {})
        elif stacks[0] > before[0] and stacks[1] < before[1]:
            self._record("redo", None, self.layer._undo_history[-1], {})
        # Otherwise an edit is under way (napari cleared the redo stack); its paint event
        # logs it.

    def _on_data(self, event=None) -> None:
        self._pending = None  # the whole-volume diff below includes it
        self._record("replace", None, None, full=True)
        self._stacks = self._stack_lengths()

    # -- accelerators ----------------------------------------------------------------
    @contextmanager
    def tool(self, name: str, class_id: int | None = None, **detail) -> Iterator[None]:
        """Log edits made inside the block under ``name`` (an accelerator)."""
        previous = self._override
        self._override = (name, class_id, detail)
        try:
            yield
        finally:
            self._override = previous

    def apply_labels(
        self,
        new_labels: np.ndarray,
        tool: str,
        class_id: int | None = None,
        region: tuple[slice, ...] | None = None,
        **detail,
    ) -> int:
        """Write ``new_labels`` (layer order) into the layer as one undoable edit.

        Only changed voxels are written (:meth:`_write`), inside
        ``Labels.block_history()``: napari's undo reverts the whole operation in one
        step, and the change is logged once as ``tool``.

        Parameters
        ----------
        new_labels
            The new labels: the whole layer, or the box ``region`` of it.
        tool, class_id, detail
            What is logged. ``class_id`` ``None`` means the tool changed several classes
            (a reset): it is logged without a class, whatever class is selected, and
            ``detail["classes"]`` lists the classes whose voxels it changed.
        region
            Box (layer order, slices with explicit bounds) that ``new_labels`` covers.

        Returns
        -------
        int
            Number of voxels changed. 0 when ``new_labels`` equals the layer: then nothing
            is written, logged or put on the undo stack.
        """
        data = self.layer.data
        region = tuple(slice(0, n) for n in data.shape) if region is None else tuple(region)
        current = np.asarray(data[region])
        if new_labels.shape != current.shape:
            raise ValueError(
                f"{tool}: result shape {new_labels.shape} does not match the labels "
                f"layer {current.shape}"
            )
        changed = np.nonzero(current != new_labels)
        if changed[0].size == 0:
            return 0
        values = np.asarray(new_labels[changed], dtype=data.dtype)
        index = tuple(c + s.start for c, s in zip(changed, region, strict=True))
        if class_id is None:
            touched = np.union1d(np.unique(current[changed]), np.unique(values))
            detail = {**detail, "classes": [int(c) for c in touched if c != 0]}
        with self.tool(tool, class_id, **detail), self.layer.block_history():
            self._write(index, values)
        return int(changed[0].size)

    def _write(self, index: tuple[np.ndarray, ...], values: np.ndarray) -> None:
        """Set the voxels ``index`` to ``values`` as one atom of napari's undo history.

        ``Labels.data_setitem`` also copies the new values of the slice its full inverse
        transform of the slider's point picks into the texture of the slice drawn, which
        for uint8 labels is a view of the data. On a tilted series napari draws another
        slice than that one (it drops the out-of-slice rotation), so data_setitem wrote
        the tool's values into voxels of the shown slice too, unlogged and not undone.
        Here the history atom is saved and the data written as data_setitem does, and the
        view is redrawn from the data (napari's undo writes its data the same way).
        """
        layer = self.layer
        save = getattr(layer, "_save_history", None)
        if save is None:  # a napari without it: its public path (exact on aligned grids)
            layer.data_setitem(index, values)
            return
        save((index, np.array(layer.data[index], copy=True), values))
        layer.data[index] = values
        layer.refresh()

    def volume_box_to_layer(self, box: tuple[slice, ...]) -> tuple[slice, ...]:
        """A (z, y, x) box as a box of the layer's (possibly transposed) data."""
        return tuple(box[a] for a in self.axes)

    def to_layer_order(self, array: np.ndarray) -> np.ndarray:
        """A (z, y, x) array in the layer's axis order (a view)."""
        return array.transpose(self.axes)

    def merge_last_undo_steps(self) -> bool:
        """Make napari's last two undo steps one (a stroke and its threshold clean-up).

        Uses napari's private undo stack; returns False (two steps stay) when it is not
        there in this napari version.
        """
        undo = getattr(self.layer, "_undo_history", None)
        if undo is None or len(undo) < 2:
            return False
        last = undo.pop()
        undo[-1] = list(undo[-1]) + list(last)
        self._stacks = self._stack_lengths()
        return True
