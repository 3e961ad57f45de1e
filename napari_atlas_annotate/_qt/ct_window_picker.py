"""The CT window list of a dock: presets and Custom, kept from one case's image to the next.

:class:`CTWindowPicker` shows the windows of :mod:`.._napari.ct_windows` and a *Custom*
entry for whatever the image layer's contrast slider was set to. The window picked (or
set with the slider) is the one the next CT opens in; an image that is not a CT keeps
the display range it opened with, and the list is greyed out.

A dock calls :meth:`CTWindowPicker.release` when it closes a case (before the layer is
reused or removed: what showing the next image does to the layer's contrast is not a
choice) and :meth:`CTWindowPicker.show_on` once the next image is in its layer.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QComboBox

from .._napari.ct_windows import ABDOMEN, CT_WINDOWS, describe, matching_window
from .._napari.layers import guess_modality

_CT_TIP = (
    "Display window of a CT (width and level in HU). The window you pick, or set with the "
    "layer's contrast slider, stays from case to case."
)
_NOT_CT_TIP = "Not a CT (no Hounsfield units): the display range comes from the image."


class CTWindowPicker(QComboBox):
    """A list of CT windows driving one image layer at a time."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        for preset in CT_WINDOWS:
            self.addItem(preset.label)
        self.addItem("Custom")  # what the layer's contrast slider was set to
        self.setToolTip(_CT_TIP)
        self.activated.connect(self._picked)
        #: the window the next CT opens in
        self.window: tuple[float, float] = ABDOMEN.limits
        self._custom = ABDOMEN.limits
        self._layer: Any = None

    def show_on(self, layer: Any, volume) -> None:
        """Show ``layer`` (holding ``volume``) in the window chosen so far if it is a CT,
        and follow its contrast from now on."""
        self.release()
        is_ct = guess_modality(volume) == "CT"
        self.setEnabled(is_ct)
        self.setToolTip(_CT_TIP if is_ct else _NOT_CT_TIP)
        if not is_ct:
            return
        self._layer = layer
        layer.contrast_limits = self.window
        layer.events.contrast_limits.connect(self._changed)
        self._changed()

    def release(self) -> None:
        """Stop following the layer shown (its case is being closed)."""
        if self._layer is not None:
            self._layer.events.contrast_limits.disconnect(self._changed)
            self._layer = None

    def _picked(self, index: int) -> None:
        if self._layer is not None:
            self._layer.contrast_limits = (
                CT_WINDOWS[index].limits if index < len(CT_WINDOWS) else self._custom
            )

    def _changed(self, _event=None) -> None:
        """The layer's contrast changed (a pick here, the slider): remember it for the next
        CT and show which window it is."""
        if self._layer is None:
            return
        limits = tuple(float(v) for v in self._layer.contrast_limits)
        self.window = limits
        preset = matching_window(limits)
        if preset is not None:
            self.setCurrentIndex(CT_WINDOWS.index(preset))
            return
        self._custom = limits
        custom = len(CT_WINDOWS)
        self.setItemText(custom, f"Custom ({describe(limits)})")
        self.setCurrentIndex(custom)
