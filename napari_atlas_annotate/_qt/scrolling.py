"""A dock's contents in a vertical scroll area, so the dock never sets the window's height.

napari docks a widget as it is: a dock whose contents need 900 px (the lumbar grade sheet
with the helper-model panel) made the main window at least that tall, taller than a
laptop screen, with the bottom of the dock (*Submit*) off screen. In a scroll area the
window can be any height; when the contents do not fit, a vertical scroll bar appears.
The dock keeps the width its contents need (no horizontal scrolling of the grade table).
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, QSize, Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget


class _VerticalScroll(QScrollArea):
    """Scrolls vertically only; as wide as its contents need."""

    def setWidget(self, widget: QWidget) -> None:  # noqa: N802 (Qt's name)
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        # the contents changed (a grade sheet added, a panel shown): the dock's width and
        # minimum follow, as they did without the scroll area
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)

    def _width(self) -> int:
        inner = self.widget()
        need = inner.minimumSizeHint().width() if inner is not None else 0
        return need + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:
        return QSize(self._width(), 120)

    def sizeHint(self) -> QSize:
        inner = self.widget()
        height = inner.sizeHint().height() if inner is not None else 120
        return QSize(self._width(), height + 2 * self.frameWidth())


class _Contents(QVBoxLayout):
    """The contents' layout. It reports no height-for-width, so the scroll area sizes the
    contents from their minimum height (as a dock without one did) rather than the
    preferred height of their word-wrapped lines, which put a scroll bar on a dock that
    fits."""

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt's name)
        return False


def scrolling_layout(dock: QWidget) -> QVBoxLayout:
    """Give ``dock`` a vertical scroll area and return the layout to build its contents in."""
    outer = QVBoxLayout(dock)
    outer.setContentsMargins(0, 0, 0, 0)
    scroll = _VerticalScroll(dock)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    contents = QWidget()
    scroll.setWidget(contents)
    outer.addWidget(scroll)
    dock.scroll_area = scroll
    return _Contents(contents)
