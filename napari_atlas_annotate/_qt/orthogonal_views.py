"""Coronal and sagittal views beside the axial one, as ITK-SNAP and 3D Slicer show a CT.

napari draws one plane at a time; the napari-orthogonal-views plugin (an optional
dependency, ``pip install napari-atlas-annotate[ortho]``) adds two more viewers to the
window that share the layers' data, undo history and tool. A brush stroke, fill or undo in
any of the three views writes the same label array and reaches the main view's layer; the
annotator dock's edit recorder hears a side view's strokes first (a layer hook of the
plugin's), so each is logged as the stroke it was, like an edit in the main view.

Keys bound on the main viewer (G, Shift+G) are copied to the other two: :func:`pointed_view`
gives the view the mouse is over and that view's copy of a layer, so G grows from the voxel
under the mouse in whichever view it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QCheckBox

#: What a user without the plugin is told.
MISSING = (
    "Coronal and sagittal views need the napari-orthogonal-views plugin: "
    "pip install 'napari-atlas-annotate[ortho]' (or napari-orthogonal-views), then restart "
    "napari."
)


def available() -> bool:
    """Whether napari-orthogonal-views can be imported."""
    try:
        import napari_orthogonal_views.ortho_view_manager  # noqa: F401
    except ImportError:
        return False
    return True


#: What a user with a plugin version this module cannot drive is told.
UNSUPPORTED = (
    "This napari-orthogonal-views version is not one the '3 views' box can drive (it was "
    "written for 0.5): pip install 'napari-orthogonal-views>=0.5,<0.6'."
)

#: Name of the layer hook that logs paint strokes made in the orthogonal views.
LOG_HOOK = "atlas_annotate_edit_log"


def checkbox(tooltip: str, on_toggled: Callable[[bool], None]) -> QCheckBox:
    """The docks' "3 views" box: ``tooltip`` says what works in the side views; without
    the plugin the box is disabled and its tooltip says what to install."""
    box = QCheckBox("3 views")
    if available():
        box.setToolTip(tooltip)
    else:
        box.setEnabled(False)
        box.setToolTip(MISSING)
    box.toggled.connect(on_toggled)
    return box


def set_shown(
    viewer: Any, shown: bool, log_paint: Callable[[Any, Any], None] | None = None
) -> None:
    """Show or hide the coronal and sagittal views in ``viewer``'s window.

    ``log_paint(labels_layer, event)``, when given, is called with every ``paint`` event
    of a view's copy of a Labels layer of ``viewer`` before the plugin passes the edit on,
    so a stroke in a side view is logged as a stroke (tool, class, box), not as a
    whole-volume change.

    Raises
    ------
    ImportError
        The plugin is not installed, or is a version this module cannot drive (the
        message says what to install).
    """
    try:
        from napari.layers import Labels
        from napari_orthogonal_views import ortho_view_manager
    except ImportError as exc:
        raise ImportError(MISSING) from exc
    try:
        manager = ortho_view_manager._get_manager(viewer)
    except AttributeError as exc:  # the plugin's per-viewer manager moved
        raise ImportError(UNSUPPORTED) from exc
    if not shown:
        manager.hide()
        return

    def watch(original: Any, copy: Any) -> list:
        def forward(event: Any) -> None:
            log_paint(original, event)

        copy.events.paint.connect(forward, position="first")
        return [(copy.events.paint, forward)]

    try:
        if log_paint is not None:
            manager.register_layer_hook(Labels, watch, name=LOG_HOOK)
        manager.show()
        _radiological(manager)
    except AttributeError as exc:
        raise ImportError(UNSUPPORTED) from exc


def _radiological(manager: Any) -> None:
    """Turn the two views the way radiologists read them (the world axes are S, P, L;
    napari draws a growing vertical axis downwards): the sagittal view with the head up
    and the face to the left, the coronal view with the head up and the patient's left on
    the right. The plugin shows the sagittal plane lying down (S across, P down) and the
    coronal one upside down."""
    manager.right_widget.order = (-1, -3, -2)  # slice L; S on the vertical axis, P across
    manager.update_dims_order()
    for widget in (manager.right_widget, manager.bottom_widget):
        model = widget.vm_container.viewer_model
        camera(model).orientation2d = ("up", "right")
        if not any(isinstance(child, _KeepFitted) for child in widget.children()):
            _KeepFitted(widget, model)
        model.reset_view()  # the sagittal plane fitted again, now standing up


class _KeepFitted(QObject):
    """Fits a side view to its pane again each time the pane is resized, until the user
    zooms or pans it.

    The plugin fits its views when it shows them, before the window has laid out their
    panes, so a view came up too small or cut off until the home button was pressed; a
    window resized later left the views as they were, unlike the user's own zoom, which is
    kept.
    """

    def __init__(self, widget: Any, model: Any) -> None:
        super().__init__(widget)
        self._model = model
        self._fitted = self._camera_state()
        model.events.reset_view.connect(self._remember)
        widget.installEventFilter(self)

    def _camera_state(self) -> tuple:
        view = camera(self._model)
        return (float(view.zoom), tuple(float(c) for c in view.center))

    def _remember(self, event: Any = None) -> None:
        self._fitted = self._camera_state()

    def _fit_if_untouched(self) -> None:
        if self._camera_state() == self._fitted:
            self._model.reset_view()

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Resize:
            # the pane's viewer canvas takes its new size after this event
            QTimer.singleShot(0, self._fit_if_untouched)
        return False


def camera(model: Any) -> Any:
    """A viewer model's camera (``model.scene.camera`` from napari 0.9, ``model.camera``
    before)."""
    scene = getattr(model, "scene", None)
    return scene.camera if scene is not None else model.camera


def pointed_view(viewer: Any, layer: Any) -> tuple[Any, Any]:
    """The viewer model under the mouse and its layer showing ``layer``'s data.

    ``(viewer, layer)`` itself when the orthogonal views are not shown, the plugin is not
    installed, or the mouse is over the main view (or over no view at all).
    """
    try:
        from napari_orthogonal_views.viewer_utils import viewer_model_under_mouse
    except ImportError:
        return viewer, layer
    view = viewer_model_under_mouse()
    if view is None or view is viewer:
        return viewer, layer
    for shown in view.layers:
        if shown.data is layer.data:
            return view, shown
    return viewer, layer
