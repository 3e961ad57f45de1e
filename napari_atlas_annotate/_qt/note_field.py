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
    """One line of text; empty means no note."""

    def __init__(self, example: str = ORGAN_EXAMPLE, parent=None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(f"Note for the lead (optional), e.g. {example}")
        self.setToolTip(
            "Stored with the version you submit; the lead sees it beside your labels when "
            "reviewing the case."
        )
        self.setClearButtonEnabled(True)

    def show_note_of(self, base: LabelVersion | None, annotator: str) -> None:
        """The note of ``annotator``'s own submitted version ``base``; empty otherwise (a
        proposal's or an import's note is not the reader's)."""
        own = base is not None and base.kind == "corrected" and base.annotator == annotator
        self.setText((base.note or "") if own else "")

    def note(self) -> str | None:
        """The note to store, or None."""
        return self.text().strip() or None


def note_changed(base: LabelVersion | None, note: str | None) -> bool:
    """Whether ``note`` differs from the note ``base`` was submitted with."""
    return (base.note if base is not None else None) != note
