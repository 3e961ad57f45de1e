"""Viewer keys that run a dock's actions, and do nothing once the dock is closed.

napari keeps a viewer's key bindings after a dock widget is closed and its Qt object
deleted; a key pressed then would call into the deleted widget. Each binding here first
checks the dock is still there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def bind_dock_keys(viewer: Any, dock: Any, actions: Mapping[str, Callable[[], object]]) -> None:
    """Bind each napari key name (``"Control-Enter"``) to its action on ``dock``."""
    for key, action in actions.items():
        viewer.bind_key(key, _while_open(dock, action), overwrite=True)


def _while_open(dock: Any, action: Callable[[], object]):
    def run(_viewer) -> None:
        try:
            dock.isEnabled()
        except RuntimeError:  # the dock was closed: its Qt widgets are gone
            return
        action()

    return run
