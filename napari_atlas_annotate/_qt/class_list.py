"""The class list of the annotator dock: names with their fixed colours and volumes, 1-9 to
pick."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qtpy.QtCore import QSize, Qt
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import QListWidget, QListWidgetItem

from ..classes import class_colors
from ..corrections.class_volumes import ClassVolumes

#: Rows the list always shows (the classes keys 1-9 pick); more classes scroll.
ROWS_IN_VIEW: int = 9


class ClassList(QListWidget):
    """One row per class (``"1  liver"``) with a colour swatch; selecting one calls
    ``on_select(label_value)``. It is tall enough for the classes keys 1-9 pick, so the
    dock's other parts give way before a class goes out of view.

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
        self._names = list(names)
        for value in range(1, len(self._names) + 1):
            swatch = QPixmap(14, 14)
            swatch.fill(QColor(*colors[value]))
            item = QListWidgetItem(QIcon(swatch), self._text(value))
            item.setData(Qt.ItemDataRole.UserRole, value)
            self.addItem(item)
        self.blockSignals(False)
        self.setMinimumHeight(self._rows_height(min(self.count(), ROWS_IN_VIEW)))
        self.updateGeometry()

    def _text(self, value: int, ml: float | None = None) -> str:
        key = f"{value}" if value <= 9 else "  "
        text = f"{key}  {self._names[value - 1]}"
        if ml is not None:
            text += f"  ({ml:,.1f} ml)" if ml < 10 else f"  ({ml:,.0f} ml)"
        return text

    def show_volumes(self, volumes: ClassVolumes | None) -> None:
        """Each class's volume beside its name (``"5  liver  (1,523 ml)"``); None: the
        names alone (no case open)."""
        for row in range(self.count()):
            item = self.item(row)
            value = int(item.data(Qt.ItemDataRole.UserRole))
            item.setText(self._text(value, None if volumes is None else volumes.ml(value)))

    def _rows_height(self, rows: int) -> int:
        row = self.sizeHintForRow(0) if self.count() else self.fontMetrics().height()
        return max(rows, 1) * max(row, 1) + 2 * self.frameWidth()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        hint = super().sizeHint()
        return QSize(hint.width(), self._rows_height(self.count()))

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self._on_select(row + 1)

    def show_selected(self, value: int) -> None:
        """Highlight ``value`` without calling back (the layer changed it)."""
        self.blockSignals(True)
        self.setCurrentRow(value - 1 if 1 <= value <= self.count() else -1)
        self.blockSignals(False)
