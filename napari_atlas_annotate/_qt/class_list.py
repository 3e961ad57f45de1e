"""The class list of the annotator dock: names with their fixed colours, 1-9 to pick."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import QListWidget, QListWidgetItem

from ..classes import class_colors


class ClassList(QListWidget):
    """One row per class (``"1  liver"``) with a colour swatch; selecting one calls
    ``on_select(label_value)``.

    Parameters
    ----------
    names
        Class names; label value ``i`` is ``names[i - 1]``.
    on_select
        Called with the label value when the user picks a row.
    """

    def __init__(self, names: Sequence[str], on_select: Callable[[int], None]) -> None:
        super().__init__()
        self._on_select = on_select
        self.set_classes(names)
        self.currentRowChanged.connect(self._row_changed)

    def set_classes(self, names: Sequence[str]) -> None:
        self.blockSignals(True)
        self.clear()
        colors = class_colors(list(names))
        for value, name in enumerate(names, start=1):
            swatch = QPixmap(14, 14)
            swatch.fill(QColor(*colors[value]))
            key = f"{value}" if value <= 9 else "  "
            item = QListWidgetItem(QIcon(swatch), f"{key}  {name}")
            item.setData(Qt.ItemDataRole.UserRole, value)
            self.addItem(item)
        self.blockSignals(False)

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self._on_select(row + 1)

    def show_selected(self, value: int) -> None:
        """Highlight ``value`` without calling back (the layer changed it)."""
        self.blockSignals(True)
        self.setCurrentRow(value - 1 if 1 <= value <= self.count() else -1)
        self.blockSignals(False)
