"""Viewer keys that run a dock's actions: only while the dock is open, and, for a key that
several open docks bind (the annotator and review docks both step cases on Ctrl+PageDown /
Ctrl+PageUp), only the action of the dock the user opened or worked in last.

napari keeps one function per viewer key, and keeps it after the dock is closed: its close
button takes the dock out of the window without deleting it (the binding holds it alive).
So each key is bound once per viewer to a ``DockKey`` that holds every dock's action for it
and, on a press, drops the docks that are no longer in the window and runs the action of
the one most recently opened or focused (a click into its case list, a field, a button).
Closing that dock hands the key back to the other one.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Mapping
from typing import Any

_tick = itertools.count(1)
# dock -> tick of when it was last opened or had the keyboard focus inside it
_last_used: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_focus_watched: Any = None  # the QApplication whose focus changes _note_focus follows


def bind_dock_keys(viewer: Any, dock: Any, actions: Mapping[str, Callable[[], object]]) -> None:
    """Bind each napari key name (``"Control-Enter"``) to its action on ``dock``; a key
    another dock of ``viewer`` binds too goes to whichever of the two was used last."""
    _watch_focus()
    _last_used[dock] = next(_tick)
    for key, action in actions.items():
        previous = viewer.bind_key(key, None)  # unbinds, returns what was bound
        dispatch = previous if isinstance(previous, DockKey) else DockKey(key)
        dispatch.add(dock, action)
        viewer.bind_key(key, dispatch, overwrite=True)


class DockKey:
    """One viewer key: the actions of the docks that bind it, run for the dock used last."""

    def __init__(self, key: str) -> None:
        self.__name__ = f"dock key {key}"  # napari names the functions of its keymaps
        self.actions: dict[Any, Callable[[], object]] = {}  # dock -> action
        self._placed: set[Any] = set()  # docks seen in a window (a dock binds before that)

    def add(self, dock: Any, action: Callable[[], object]) -> None:
        self._forget_closed()
        self.actions[dock] = action

    def dock(self) -> Any | None:
        """The open dock the key goes to now (None: none is open)."""
        self._forget_closed()
        docks = [dock for dock in self.actions if _is_open(dock)]
        return max(docks, key=lambda dock: _last_used.get(dock, 0), default=None)

    def __call__(self, _viewer: Any) -> None:
        dock = self.dock()
        if dock is not None:
            self.actions[dock]()

    def _forget_closed(self) -> None:
        """Let go of the docks closed for good: deleted, or taken out of their window."""
        for dock in list(self.actions):
            try:
                in_window = dock.parentWidget() is not None
            except RuntimeError:  # its Qt widgets are gone
                in_window = False
                self._placed.add(dock)
            if in_window:
                self._placed.add(dock)
            elif dock in self._placed:  # was in a window, is no longer: closed
                del self.actions[dock]
                self._placed.discard(dock)


def _is_open(dock: Any) -> bool:
    """In its viewer window and not hidden there (napari's close button takes a dock out of
    the window; its hide button hides it); a dock never added is not open either."""
    try:
        return dock.isVisibleTo(dock.window())
    except RuntimeError:  # its Qt widgets are gone
        return False


def _watch_focus() -> None:
    """Note the dock the keyboard focus moves into (once per application)."""
    global _focus_watched
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None and app is not _focus_watched:
        app.focusChanged.connect(_note_focus)
        _focus_watched = app


def _note_focus(_old: Any, new: Any) -> None:
    widget = new
    while widget is not None:
        if widget in _last_used:
            _last_used[widget] = next(_tick)
            return
        widget = widget.parentWidget()
