"""The reader's note for the lead, stored with the version they submit.

A radiologist who leaves an organ out on purpose (a kidney removed, a spleen not in the
field of view) or is unsure of a border says so here; the lead sees the note beside that
reader's labels in the review (dock, HTML report, ``review --json``). The note of the
reader's own last submission comes back when the case is opened again, so submitting
again keeps it unless it is changed.
"""

from __future__ import annotations

from qtpy.QtWidgets import QLineEdit

from ..project import LabelVersion

#: What a note might say, by where it is typed.
ORGAN_EXAMPLE = "left kidney removed"
GRADES_EXAMPLE = "L5/S1 foramina unclear: motion"


class NoteField(QLineEdit):
    """One line of text; empty means no note.

    A note typed and not yet submitted is kept when the reader moves to another case and
    comes back (for as long as the window is open), as the label's own edits are.
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

    def show_note_of(self, base: LabelVersion | None, annotator: str, case_id: str) -> None:
        """Open ``case_id``: the note the reader typed there and did not submit, else the
        note of their own submitted version ``base`` (a proposal's or an import's note is
        not the reader's: empty)."""
        self._leave()
        own = base is not None and base.kind == "corrected" and base.annotator == annotator
        self._case, self._stored = case_id, (base.note or "") if own else ""
        self.setText(self._unsent.pop(case_id, self._stored))

    def submitted(self) -> None:
        """The open case's note was stored with the version just submitted."""
        self._stored = self.text()
        if self._case is not None:
            self._unsent.pop(self._case, None)

    def closed(self) -> None:
        """The open case was closed: keep what was typed there, show nothing."""
        self._leave()
        self._case, self._stored = None, ""
        self.clear()

    def _leave(self) -> None:
        if self._case is not None and self.text() != self._stored:
            self._unsent[self._case] = self.text()

    def note(self) -> str | None:
        """The note to store, or None."""
        return self.text().strip() or None


def note_changed(base: LabelVersion | None, note: str | None) -> bool:
    """Whether ``note`` differs from the note ``base`` was submitted with."""
    return (base.note if base is not None else None) != note
