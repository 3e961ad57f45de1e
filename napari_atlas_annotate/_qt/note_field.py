"""The reader's note for the lead, stored with the version they submit.

A radiologist who leaves an organ out on purpose (a kidney removed, a spleen not in the
field of view) or is unsure of a border says so here; the lead sees the note beside that
reader's labels in the review (dock, HTML report, ``review --json``). The note of the
reader's own last submission comes back when the case is opened again, so submitting
again keeps it unless it is changed.

A note typed and not submitted is the reader's work like an unsubmitted stroke: it is kept
in the project (``Project.save_note_draft``) half a second after a key (every half second
while the reader types on, so a crash loses at most that), when the field loses the focus
and when the reader moves to another case, so it comes back after a crash or in a new
window.
"""

from __future__ import annotations

import sqlite3

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLineEdit

from ..project import LabelVersion, Project

#: Milliseconds after a key before a note being typed is written to the project.
DRAFT_DELAY_MS = 500

#: What a note might say, by where it is typed.
ORGAN_EXAMPLE = "left kidney removed"
GRADES_EXAMPLE = "L5/S1 foramina unclear: motion"


class NoteField(QLineEdit):
    """One line of text; empty means no note.

    A note typed and not yet submitted is kept when the reader moves to another case and
    comes back, and, with a project given to :meth:`show_note_of`, across a crash or a new
    window, as the label's own edits are.
    """

    def __init__(self, example: str = ORGAN_EXAMPLE, parent=None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(f"Note for the lead (optional), e.g. {example}")
        self.setToolTip(
            "Stored with the version you submit; the lead sees it beside your labels when "
            "reviewing the case."
        )
        self.setClearButtonEnabled(True)
        self._case: str | None = None
        self._stored = ""  # the note of the reader's own version of the open case
        self._unsent: dict[str, str] = {}  # case -> a note typed there and not submitted
        self._project: Project | None = None
        self._annotator = ""
        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(DRAFT_DELAY_MS)
        self._draft_timer.timeout.connect(self._keep_draft)
        # started by the first key after a write, not restarted by each key: a reader who
        # types on without a pause has the note kept every half second as they go
        self.textEdited.connect(
            lambda _text: self._draft_timer.isActive() or self._draft_timer.start()
        )
        self.editingFinished.connect(self._keep_draft)

    def show_note_of(
        self,
        base: LabelVersion | None,
        annotator: str,
        case_id: str,
        project: Project | None = None,
    ) -> None:
        """Open ``case_id``: the note the reader typed there and did not submit (in this
        window, else kept in ``project``), else the note of their own submitted version
        ``base`` (a proposal's or an import's note is not the reader's: empty)."""
        self._leave()
        own = base is not None and base.kind == "corrected" and base.annotator == annotator
        self._case, self._stored = case_id, (base.note or "") if own else ""
        self._project, self._annotator = project, annotator
        unsent = self._unsent.pop(case_id, None)
        if unsent is None and project is not None:
            unsent = self._call(project.note_draft, case_id, annotator)
        self.setText(self._stored if unsent is None else unsent)

    def submitted(self) -> None:
        """The open case's note was stored with the version just submitted."""
        self._draft_timer.stop()
        self._stored = self.text()
        if self._case is not None:
            self._unsent.pop(self._case, None)
            if self._project is not None:
                self._call(self._project.discard_note_draft, self._case, self._annotator)

    def closed(self) -> None:
        """The open case was closed: keep what was typed there, show nothing."""
        self._leave()
        self._case, self._stored, self._project = None, "", None
        self.clear()

    def _leave(self) -> None:
        if self._case is None:
            return
        self._keep_draft()
        if self.text() != self._stored:
            self._unsent[self._case] = self.text()

    def _keep_draft(self) -> None:
        """Write the note being typed to the project (or forget it once it is the stored
        note again)."""
        self._draft_timer.stop()
        if self._case is None or self._project is None:
            return
        if self.text() == self._stored:
            self._call(self._project.discard_note_draft, self._case, self._annotator)
        else:
            self._call(self._project.save_note_draft, self._case, self._annotator, self.text())

    @staticmethod
    def _call(method, *args):
        """A draft is kept in the window as well: a project that cannot be written (a
        read-only share, a locked database) does not stop the reader typing."""
        try:
            return method(*args)
        except (sqlite3.Error, OSError):
            return None

    def note(self) -> str | None:
        """The note to store, or None."""
        return self.text().strip() or None


def note_changed(base: LabelVersion | None, note: str | None) -> bool:
    """Whether ``note`` differs from the note ``base`` was submitted with."""
    return (base.note if base is not None else None) != note
