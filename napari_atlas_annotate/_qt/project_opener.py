"""The docks' *Project* box: a form to open a project, then one line once it is open.

The form (folder with *Browse…*, the person's name, an open button) takes three rows that
the grade sheet, the class list or the review table need once a project is open, so an
open project shows as ``folder · name`` with *Change…*, which brings the form back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .folder_field import FolderField


class ProjectOpener(QGroupBox):
    """The *Project* box.

    Parameters
    ----------
    who
        The name field's label (``"Annotator"``, ``"Lead"``).
    button
        The open button's text.
    on_open
        Called with no arguments when the open button is pressed.
    browse_title
        Title of the *Browse…* folder dialog.
    """

    def __init__(
        self, who: str, button: str, on_open: Callable[[], object], browse_title: str
    ) -> None:
        super().__init__("Project")
        layout = QVBoxLayout(self)
        self.summary = QWidget()
        row = QHBoxLayout(self.summary)
        row.setContentsMargins(0, 0, 0, 0)
        self.line = QLabel()
        self.line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.line, 1)
        self.change_button = QPushButton("Change…")
        self.change_button.clicked.connect(lambda: self.show_form(True))
        row.addWidget(self.change_button)
        layout.addWidget(self.summary)
        self.form = QWidget()
        form = QFormLayout(self.form)
        form.setContentsMargins(0, 0, 0, 0)
        self.folder_field = FolderField(browse_title)
        form.addRow("Folder", self.folder_field)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("your name" if who == "Annotator" else f"{who}'s name")
        form.addRow(who, self.name_edit)
        self.open_button = QPushButton(button)
        self.open_button.clicked.connect(lambda: on_open())
        form.addRow(self.open_button)
        layout.addWidget(self.form)
        self.summary.setVisible(False)

    def opened(self, folder: Path, name: str, task: str) -> None:
        """A project is open: fill the form in and show the one-line summary."""
        self.folder_field.edit.setText(str(folder))
        self.name_edit.setText(name)
        self.line.setText(f"{folder.name} · {name}" if name else folder.name)
        self.line.setToolTip(f"{folder} ({task})" + (f", as {name}" if name else ""))
        self.show_form(not name)  # a lead who has not typed their name yet still can

    def show_form(self, show: bool) -> None:
        """The form (``show``) or the one-line summary (only once a project was opened)."""
        show = show or not self.line.text()
        self.form.setVisible(show)
        self.summary.setVisible(not show)
