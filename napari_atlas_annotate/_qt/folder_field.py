"""A project folder field with a *Browse…* button, for the docks' open forms."""

from __future__ import annotations

from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QWidget


class FolderField(QWidget):
    """A line edit for a folder and a *Browse…* button that fills it in.

    ``edit`` is the line edit (its ``text()`` is the folder).
    """

    def __init__(self, title: str = "Open annotation project") -> None:
        super().__init__()
        self._title = title
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("project folder")
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self.browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit)
        row.addWidget(self.browse_button)

    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self._title)
        if folder:
            self.edit.setText(folder)
