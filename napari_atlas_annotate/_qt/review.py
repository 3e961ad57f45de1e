"""The annotation lead's review dock: disputed cases, side-by-side labels, adjudication.

A thin skin over :mod:`napari_atlas_annotate.review`: the case list is
:func:`~napari_atlas_annotate.review.cases.review_project` (most disputed first); opening a
case shows the image, one labels layer per annotator, the consensus (majority vote) and
the disagreement map (how many annotators differ from the most common label), all built
with :mod:`napari_atlas_annotate._napari.layers` so they overlay the image exactly. A table
lists per class (organ projects) the pairwise Dice, HD95 (mm) and volume difference (ml),
or per grade cell (spine projects) who said what, each row with a choice of source
(an annotator, consensus, STAPLE; or a grade). *Finalize* and *Reopen* call
:func:`~napari_atlas_annotate.review.adjudication.finalize` and
:func:`~napari_atlas_annotate.review.adjudication.reopen`.

A spine case is shown the way the grade sheet shows it (its functions do the work): every
series, each stack of an axial acquired as angled blocks its own image, each in its own
plane. The grade cells (:func:`~napari_atlas_annotate.review.grade_cells.cell_opinions`)
come disputed first, marked, with each reader's grade in the grade's colour; each reader's
points are a Points layer named after the reader (one colour per reader, the table's
header shows it) and the consensus points a labelled white ring. Selecting a row shows the
series and slice of the cell's consensus point (else a reader's; with no point, where the
cell is read), the readers' points on that series, and who said what in the status line.

*Readers vs finals* compares each reader with the lead's final labels
(:mod:`napari_atlas_annotate.review.final_agreement`) off the GUI thread and shows one line
per reader in a window of its own.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from qtpy.QtCore import QEvent, Qt
from qtpy.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPalette, QPixmap
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .._napari.layers import (
    META_KEY,
    data_to_world_matrix,
    empty_undo_history,
    removing_layers,
    show_in_layer,
    undo_history_can_be_emptied,
)
from .._napari.shown_slice import (
    ShownSliceImage,
    ShownSliceLabels,
    ShownSlicePoints,
    slice_world_position,
)
from ..io.prefetch import ImagePrefetch
from ..project import LabelVersion, Project, ProjectError
from ..project.store import mask_sha256
from ..review.adjudication import (
    CONSENSUS,
    STAPLE,
    current_final,
    describe_decision,
    final_decisions,
    finalize,
    keep_consensus_edits,
    reopen,
)
from ..review.cases import (
    CaseReview,
    ReviewCancelled,
    load_masks,
    load_opinions,
    review_case,
    uncompared_cases,
)
from ..review.cases import review_project as _review_project
from ..review.consensus import vote_and_disagreement
from ..review.disputed import Disputes
from ..review.final_agreement import compare_with_finals, summary_lines
from ..review.grade_cells import CellOpinions, cell_opinions
from ..review.readers import ReviewIndex, annotator_versions, task_content
from ..spine_grades import GRADES, LEVEL_DISPLAY
from . import orthogonal_views
from .background import BackgroundTask
from .ct_window_picker import CTWindowPicker
from .dock_keys import bind_dock_keys
from .grade_sheet import (
    CONDITION_TAGS,
    GRADE_COLORS,
    POINT_TEXT,
    StudySeries,
    add_series_layers,
    load_study_series,
    point_label,
    reading_place,
    series_holding,
    show_series,
)
from .project_opener import ProjectOpener
from .scrolling import scrolling_layout
from .status_messages import StatusMessages
from .study_layers import same_series, show_in_place

REPORTED = (ProjectError, ValueError, OSError, KeyError, IndexError)

#: Colours of the disagreement map: 1 annotator differs (amber), 2 (orange), 3+ (red).
DISAGREEMENT_COLORS = [(255, 210, 0), (255, 120, 0), (230, 20, 20)]

#: Colours of the readers' points, in reader order (Okabe-Ito, colour-blind safe; none is
#: a grade colour, so a point's colour says who placed it, not its grade).
READER_COLORS = ("#56B4E9", "#CC79A7", "#F0E442", "#0072B2", "#E69F00", "#009E73")

#: The consensus point: a white ring, drawn round the point of the reader it comes from.
CONSENSUS_COLOR = "#ffffff"

#: Marks a disputed grade cell (a colour no grade has).
DISPUTED_COLOR = "#7b3fa0"

#: Item data role of a grade row's cell key (``"<condition>_<level>"``).
CELL_KEY_ROLE = Qt.ItemDataRole.UserRole + 2

#: Item data role of an organ row's class name.
CLASS_ROLE = Qt.ItemDataRole.UserRole + 3

#: The selected table row: a clear accent with white text, the same whether or not the
#: table has focus (the default inactive highlight is a grey close to the dock's own).
SELECTION_COLOR = "#1f6feb"

#: Frame of a selected cell that shows a grade (or the disputed mark) in its own colour:
#: width (px) and colour. The grade sheet marks its current cell the same way.
SELECTED_FRAME_WIDTH = 3
SELECTED_FRAME_COLOR = "#ffffff"

#: Widest the decisions table asks to be (px): it scrolls rather than squeeze the canvas.
TABLE_MAX_MIN_WIDTH = 380

#: Short grade names for the who-said-what columns (the full name is in the tooltip).
GRADE_SHORT = {"Normal/Mild": "N/M", "Moderate": "Mod", "Severe": "Sev"}


#: An HD95 cell while the background job computes it, and what the status line says.
HD95_PENDING = "…"
HD95_PENDING_NOTE = f" HD95 is being computed in the background ({HD95_PENDING} in the table)."


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _dot_icon(color: str, ring: bool = False) -> QIcon:
    """A 12 px disc (or ring) in ``color``: the legend of a reader's points."""
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if ring:
        pen = painter.pen()
        pen.setColor(QColor(color))
        pen.setWidth(2)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(2, 2, 8, 8)
    else:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(color))
        painter.drawEllipse(1, 1, 10, 10)
    painter.end()
    return QIcon(pixmap)


def _tied(cell: CellOpinions) -> str:
    """``"alice Moderate, bob Severe"`` when the most common grade of a cell is tied
    between grades (the consensus then takes the milder by rule), else ``""``."""
    graded = {who: g for who, g in cell.grades.items() if g is not None}
    counts = [list(graded.values()).count(g) for g in set(graded.values())]
    if len(counts) < 2 or counts.count(max(counts)) < 2:
        return ""
    return ", ".join(f"{who} {g}" for who, g in graded.items())


def _readers_key(review: CaseReview) -> tuple[tuple[str, int], ...]:
    """Which version of each reader a case's consensus was voted from."""
    return tuple(sorted((who, v.id) for who, v in review.versions.items()))


@dataclass(frozen=True)
class LeftPaint:
    """The lead's unfinalized edits of an organ case's consensus, held while other cases
    are open: only the voxels where the edited map differs from the consensus (flat
    indices into the stored (z, y, x) map), the consensus there and the lead's labels
    there, and the readers' versions that consensus was voted from. A few bytes per
    edited voxel, nothing per untouched one: a lead may leave edits on many cases."""

    readers: tuple[tuple[str, int], ...]
    shape: tuple[int, ...]
    index: np.ndarray
    before: np.ndarray
    after: np.ndarray

    @classmethod
    def of(cls, review: CaseReview, consensus: np.ndarray, edited: np.ndarray) -> LeftPaint:
        index = np.flatnonzero(edited != consensus)
        index = index.astype(np.int32 if consensus.size < 2**31 else np.int64)
        where = np.unravel_index(index, consensus.shape)
        return cls(_readers_key(review), consensus.shape, index, consensus[where], edited[where])

    def where(self) -> tuple[np.ndarray, ...]:
        return np.unravel_index(self.index, self.shape)

    def conflicts(self, consensus: np.ndarray) -> int:
        """How many edited voxels the (new) consensus has other labels at than the one
        they were painted over (all of them when the grid changed)."""
        if consensus.shape != self.shape:
            return len(self.index)
        return int(np.count_nonzero(consensus[self.where()] != self.before))

    def changed_readers(self, review: CaseReview) -> str:
        """``"alice (v3 -> v7)"``: the readers whose version is not the one painted on."""
        then, now = dict(self.readers), dict(_readers_key(review))
        return ", ".join(
            f"{who} (v{then.get(who, '-')} -> v{now.get(who, '-')})"
            for who in sorted(set(then) | set(now))
            if then.get(who) != now.get(who)
        )


class _ColouredCellsStaySelected(QStyledItemDelegate):
    """Paints a selected cell that has its own background (a reader's grade, the
    disputed mark) in that colour with a white frame, instead of the selection colour:
    the lead compares the readers' grades of the selected cell by their colours. Other
    cells are painted as usual (the selection colour fills them)."""

    def paint(self, painter: QPainter, option, index) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if not selected or index.data(Qt.ItemDataRole.BackgroundRole) is None:
            super().paint(painter, option, index)
            return
        plain = QStyleOptionViewItem(option)
        plain.state &= ~QStyle.StateFlag.State_Selected
        super().paint(painter, plain, index)
        rect, w = option.rect, SELECTED_FRAME_WIDTH
        color = QColor(SELECTED_FRAME_COLOR)
        painter.save()
        painter.fillRect(rect.x(), rect.y(), rect.width(), w, color)
        painter.fillRect(rect.x(), rect.bottom() - w + 1, rect.width(), w, color)
        painter.fillRect(rect.x(), rect.y(), w, rect.height(), color)
        painter.fillRect(rect.right() - w + 1, rect.y(), w, rect.height(), color)
        painter.restore()


if TYPE_CHECKING:
    import napari.viewer


class ReviewDock(StatusMessages, QWidget):
    """Dock widget for the lead: pick a disputed case, choose per class, finalize.

    Parameters
    ----------
    viewer
        The napari viewer.
    project
        A :class:`Project` or its folder; ``None`` shows the open form.
    lead
        The lead's name, recorded with every decision.

    Attributes
    ----------
    inline_rank_voxels
        Cases not compared before are counted on the spot while their voxels add up to at
        most this (about 0.2 s); more go to the background (progress and Cancel in the
        dock) and join the list when counted.
    inline_hd95_voxels
        HD95 of a case this small is computed when it opens; a larger case shows Dice at
        once and its HD95 when the background job is done (about 7 s at 512x512x300).
    rank_threads
        Cases compared at once in the background (half the CPU cores, at least one: the
        viewer keeps the rest).
    """

    inline_rank_voxels = 16_000_000
    inline_hd95_voxels = 2_000_000
    rank_threads = max(1, (os.cpu_count() or 2) // 2)

    def __init__(
        self,
        viewer: napari.viewer.Viewer,
        project: Project | str | Path | None = None,
        lead: str = "",
    ) -> None:
        super().__init__()
        self.viewer = viewer
        self.project: Project | None = None
        self.review: CaseReview | None = None
        self.layers: list = []
        self.choices: dict[str, QComboBox] = {}
        # organ cases: the readers' label maps and their consensus as stored (z, y, x), and
        # the consensus layer the lead may edit (its edits are kept when finalizing)
        self.masks: dict[str, np.ndarray] = {}
        self.consensus: np.ndarray | None = None
        self.consensus_layer = None
        # spine cases: the study's series, the grade cells, one Points layer per reader
        self.series: dict[str, StudySeries] = {}
        self.cells: list[CellOpinions] = []
        self.reader_points: dict[str, object] = {}
        self.shown_series: StudySeries | None = None
        self._watched: list = []  # (emitter, callback) connected to the series' layers
        self._updating = False
        self.shown_text = ""  # what the viewer shows of a spine case, for the status line
        self.last_error: str | None = None
        # the lead's choices on cases left without finalizing (case -> row -> source), and
        # the open case's choices as it opened (to tell the lead's own from the defaults)
        self._left_choices: dict[str, dict[str, str]] = {}
        self._opened_with: dict[str, str] = {}
        # the lead's paint on organ cases left without finalizing (compact, see LeftPaint);
        # ``_paint_decided``: the open case's paint was just finalized or reopened, not kept
        self._left_paint: dict[str, LeftPaint] = {}
        self._paint_decided = False
        # background comparisons: cases whose Dice was not kept yet (``_rank_stopped``: the
        # lead cancelled it; not started again until the project is opened again), and the
        # open case's HD95 (``_hd95_for``: the case still waiting for it)
        self._rank_stopped = self._rank_waiting = False
        self._readers_waiting = False  # Readers vs finals asked while another job ran
        self._unreadable: dict[str, str] = {}  # case -> why it could not be compared
        self._ranking: list[str] = []  # every ranked case, also those the list hides
        self._hd95_for: str | None = None
        self._disputes: Disputes | None = None  # the open organ case's, for go_to_class
        self._volume = None  # the open organ case's image
        self._masks_checked: tuple | None = None  # see finalize
        #: (final version id, its label map) while Finalize shows the case again
        self._final_composed: tuple | None = None
        # the next organ case of the list, read while the lead looks at this one: its image
        # and its readers' label files (a version's file never changes once stored)
        self.read_ahead = ImagePrefetch()
        self._masks_ahead: tuple[str, tuple, Future] | None = None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review read ahead")
        self._build()
        self.lead_edit.setText(lead)
        bind_dock_keys(
            self.viewer,
            self,
            {
                "Control-PageDown": lambda: self.step_case(+1),
                "Control-PageUp": lambda: self.step_case(-1),
            },
        )
        if project is not None:
            self.open_project(project)

    def step_case(self, step: int) -> bool:
        """Open the next (``+1``) or previous (``-1``) case of the ranking (most disputed
        first); Ctrl+PageDown / Ctrl+PageUp. Says so at either end."""
        ids = self.case_ids()
        if not ids:
            return False
        current = self.review.case_id if self.review else None
        if current in ids:
            here = ids.index(current)
            target = here + step
        elif current in self._ranking:  # hidden (just finalized): its neighbour in the ranking
            at = self._ranking.index(current)
            ahead = self._ranking[at + 1 :] if step > 0 else self._ranking[:at][::-1]
            listed = [c for c in ahead if c in ids]
            if not listed:
                where = "after" if step > 0 else "before"
                self._info(f"no case of the list comes {where} {current} in the ranking.")
                return False
            target = ids.index(listed[0])
        else:
            target = 0
        if not 0 <= target < len(ids):
            self._info(f"{current} is the {'last' if step > 0 else 'first'} case of the list.")
            return False
        self.case_list.setCurrentRow(target)
        return self.load_case(ids[target])

    # -- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        layout = scrolling_layout(self)
        self.opener = ProjectOpener(
            "Lead",
            "Open for review",
            lambda: self.open_project(self.folder_edit.text()),
            "Open project for review",
        )
        self.folder_field, self.folder_edit = (
            self.opener.folder_field,
            self.opener.folder_field.edit,
        )
        self.lead_edit = self.opener.name_edit
        layout.addWidget(self.opener)

        cases = QGroupBox("Cases (most disputed first)")
        cases.setToolTip(
            "ranked by disagreement: 1 - the lowest pairwise Dice over the classes someone "
            "labelled (organs) or 1 - the lowest pairwise kappa (grades); ties: the larger "
            "disputed volume or number of disputed cells first"
        )
        box = QVBoxLayout(cases)
        self.case_list = QListWidget()
        # a click opens the case, as in the annotator dock; double-click / Enter reloads it
        self.case_list.itemActivated.connect(lambda item: self.load_case(item.data(256)))
        self.case_list.itemClicked.connect(self._case_clicked)
        self.case_list.setWordWrap(True)  # no sideways scrolling to see who read it
        self.case_list.setMaximumHeight(140)  # the decisions table needs the room
        box.addWidget(self.case_list)
        self.hide_final = QCheckBox("Hide final cases")
        self.hide_final.setToolTip(
            "list only the cases not adjudicated yet (a case you finalize leaves the list; "
            "Ctrl+PageDown opens the case ranked after it)"
        )
        self.hide_final.toggled.connect(lambda _: self.project is not None and self.refresh_cases())
        self.readers_button = QPushButton("Readers vs finals")
        self.readers_button.setToolTip(
            "each reader against your final labels: Dice per class and ml changed (organs), "
            "grades kept and kappa (spine); who needs feedback on what"
        )
        self.readers_button.clicked.connect(self.show_readers)
        final_row = QHBoxLayout()
        final_row.addWidget(self.hide_final)
        final_row.addWidget(self.readers_button)
        box.addLayout(final_row)
        self.readers_window: QDialog | None = None
        self.ct_row = QWidget()  # organ cases: the CT's window, kept from case to case
        window = QHBoxLayout(self.ct_row)
        window.setContentsMargins(0, 0, 0, 0)
        window.addWidget(QLabel("CT window"))
        self.display_combo = CTWindowPicker()
        window.addWidget(self.display_combo, 1)
        self.three_views = orthogonal_views.checkbox(
            "Coronal and sagittal views beside the axial one, showing every layer: paint "
            "the consensus in any of them; Finalize keeps the edits as it does the main "
            "view's.",
            self.show_three_views,
        )
        window.addWidget(self.three_views)
        box.addWidget(self.ct_row)
        layout.addWidget(cases)

        self.table_box = QGroupBox("Agreement and decisions")
        tbox = QVBoxLayout(self.table_box)
        every = QHBoxLayout()
        every.addWidget(QLabel("Take every row from"))
        self.all_choice = QComboBox()
        self.all_choice.setToolTip("one reader's whole label (or the consensus); then change rows")
        self.all_choice.activated.connect(
            lambda index: self.take_all(self.all_choice.itemText(index))
        )
        every.addWidget(self.all_choice, stretch=1)
        tbox.addLayout(every)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.currentCellChanged.connect(self._row_changed)
        palette = self.table.palette()
        for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
            palette.setColor(group, QPalette.ColorRole.Highlight, QColor(SELECTION_COLOR))
            palette.setColor(group, QPalette.ColorRole.HighlightedText, QColor("white"))
        self.table.setPalette(palette)
        # napari's stylesheet paints selected items itself; say the same there
        self.table.setStyleSheet(
            f"QTableWidget::item:selected {{ background: {SELECTION_COLOR}; color: white; }}"
        )
        # ... but not over a cell's own colour (the readers' grades): that one is framed
        self.table.setItemDelegate(_ColouredCellsStaySelected(self.table))
        tbox.addWidget(self.table)
        layout.addWidget(self.table_box, stretch=1)

        actions = QHBoxLayout()
        self.finalize_button = QPushButton("Finalize")
        self.finalize_button.clicked.connect(self.finalize)
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText("reason to reopen")
        self.reopen_button = QPushButton("Reopen")
        self.reopen_button.clicked.connect(self.reopen)
        actions.addWidget(self.finalize_button)
        actions.addWidget(self.reason_edit)
        actions.addWidget(self.reopen_button)
        self.apply_earlier_button = QPushButton("Apply earlier edits")
        self.apply_earlier_button.setToolTip(
            "put the consensus edits you left here before a reader submitted a new version "
            "over the new consensus"
        )
        self.apply_earlier_button.setEnabled(False)
        self.apply_earlier_button.clicked.connect(self.apply_earlier_edits)
        actions.addWidget(self.apply_earlier_button)
        layout.addLayout(actions)
        self.notes_label = QLabel()  # what the readers wrote for the lead on this case
        self.notes_label.setWordWrap(True)
        self.notes_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes_label.setVisible(False)
        layout.addWidget(self.notes_label)
        self.status = QLabel(
            "Open a project folder (made with 'atlas-annotate init') to review its readers' "
            "disagreements."
        )
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.task = BackgroundTask(self, viewer=self.viewer)  # closing the viewer stops it
        self.task.setVisible(False)  # shown only while comparing
        self.task.running_changed.connect(self.task.setVisible)
        layout.addWidget(self.task)

    def show_three_views(self, shown: bool = True) -> None:
        """Show (or hide) coronal and sagittal views beside the main one
        (:mod:`.orthogonal_views`); a missing plugin is reported, not raised. The lead's
        paint there writes the consensus layer's own data, which Finalize compares with
        the vote."""
        try:
            orthogonal_views.set_shown(self.viewer, shown)
        except ImportError as exc:
            self._error(exc)

    # -- project and cases --------------------------------------------------------------
    def open_project(self, project: Project | str | Path) -> bool:
        try:
            if not isinstance(project, Project):
                if not str(project).strip():
                    raise ProjectError("choose a project folder first.")
                project = Project(project)
        except REPORTED as exc:
            self._error(exc)
            return False
        if self.project is not None and Path(self.project.folder) != Path(project.folder):
            self.close_case()  # another project: what was left on this one is not kept
            self._left_choices, self._left_paint = {}, {}
            self.read_ahead.clear()
            self._masks_ahead = None  # its case ids and version ids mean nothing here
            self._readers_waiting = False  # asked of the other project
        self.project, self._rank_stopped, self._unreadable = project, False, {}
        self.opener.opened(project.folder, self.lead_edit.text().strip(), project.task)
        self.ct_row.setVisible(project.task != "spine")
        if project.task == "spine":  # one plane per series: no side views of them
            self.three_views.setChecked(False)
        return self.refresh_cases()

    def refresh_cases(self) -> bool:
        """Rank the project's cases by disagreement and list them.

        Metrics are kept per set of readers' versions, so this is instant once a project's
        cases were compared. Cases not compared yet (a project opened for the first time,
        new submissions) are counted here when small; many real-size CTs (0.7 s each) are
        counted in the background, and the list grows when they are done."""
        failed = self._unreadable  # not compared again until the project is opened again
        try:
            index = ReviewIndex(self.project)  # the database read once for both passes
            waiting = uncompared_cases(self.project, index=index)
            waiting = {c: n for c, n in waiting.items() if c not in failed}
            if sum(waiting.values()) <= self.inline_rank_voxels:
                waiting = {}
            ids = [c for c in index.case_ids if c not in waiting and c not in failed]
            reviews, skipped = (
                _review_project(
                    self.project, ids, distances=False, skip_unreadable=True, index=index
                )
                if ids
                else ([], [])
            )
        except REPORTED as exc:
            self._error(exc)
            return False
        failed.update((s["id"], s["reason"]) for s in skipped if s.get("unreadable"))
        skipped = [s for s in skipped if not s.get("unreadable")]
        self._ranking = [r.case_id for r in reviews]
        hidden = 0
        if self.hide_final.isChecked():
            listed = [r for r in reviews if not r.final_version]
            hidden, reviews = len(reviews) - len(listed), listed
        self.case_list.clear()
        for r in reviews:
            final = "  FINAL" if r.final_version else ""
            if r.grades is not None:
                cells = f"   {len(r.grades.disputed_cells())} disputed cell(s)"
            else:
                worst = r.masks.worst_class()
                cells = (
                    f"   {worst[0]} Dice {worst[2]:.3f}, "
                    f"{r.masks.total_disputed_ml:.1f} ml disputed"
                    if worst is not None
                    else ""
                )
            noted = f"   {len(r.notes)} note(s)" if r.notes else ""
            item = QListWidgetItem(
                f"{r.case_id}   disagreement {r.disagreement:.3f}{cells}   "
                f"[{', '.join(r.annotators)}]{noted}{final}"
            )
            item.setData(256, r.case_id)
            self.case_list.addItem(item)
        if self.review is not None and self.review.case_id in self.case_ids():
            self.case_list.setCurrentRow(self.case_ids().index(self.review.case_id))
        message = f"{len(reviews)} case(s) to review" + (
            f" ({hidden} final case(s) hidden)" if hidden else ""
        )
        message += f", {len(skipped)} with fewer than two annotators" if skipped else ""
        if waiting:
            message += "; " + self._compare_in_background(sorted(waiting))
        if failed:  # the others are listed; these say what to do
            first = next(iter(failed.items()))
            self._error(
                f"{message}; {len(failed)} could not be compared ({', '.join(failed)}). {first[1]}"
            )
        else:
            self._info(message)
        return True

    def _compare_in_background(self, case_ids: list[str]) -> str:
        """Count the Dice of cases not compared yet off the GUI thread (kept in the
        project's database); the list is ranked again when done. Says what it did."""
        more = f"{len(case_ids)} more not compared yet"
        if self._rank_stopped:
            return (
                f"{more} (stopped). Open the project for review again to compare them, or "
                f"run 'atlas-annotate review {self.project.folder}' beforehand"
            )
        if self.task.running:  # ranked again when that job ends
            self._rank_waiting = True
            return f"{more}: compared after the job running now"
        folder, threads = Path(self.project.folder), self.rank_threads

        def compare(progress, cancel) -> list[dict]:
            with Project(folder) as project:  # the worker's own database connection
                _, skipped = _review_project(
                    project,
                    case_ids,
                    distances=False,
                    progress=progress,
                    cancel=cancel,
                    skip_unreadable=True,
                    threads=threads,
                )
            return [s for s in skipped if s.get("unreadable")]

        def compared(unreadable: list[dict]) -> None:
            if self.project is not None and Path(self.project.folder) == folder:
                self._unreadable.update((s["id"], s["reason"]) for s in unreadable)
            self._job_ended(folder, ranked=True)

        self.task.start(
            f"Comparing {len(case_ids)} case(s)",
            compare,
            on_result=compared,
            on_error=lambda exc: self._job_ended(folder, ranked=True, stopped=exc),
            on_cancelled=lambda exc: self._job_ended(folder, ranked=True, stopped=exc),
            cancelled_by=(ReviewCancelled,),
        )
        return f"comparing {more} in the background (they join the list when done)"

    def show_readers(self) -> bool:
        """Compare each reader with the final labels off the GUI thread (only finals new
        since the last time read files) and show the result in its own window."""
        if self.project is None:
            self._error("open a project first.")
            return False
        if self.task.running:  # compared when that job ends
            self._readers_waiting = True
            self._info("comparing the readers with the finals after the job running now.")
            return True
        self._readers_waiting = False
        folder = Path(self.project.folder)

        def compare(progress, cancel):
            with Project(folder) as project:  # the worker's own database connection
                return compare_with_finals(project, progress=progress, cancel=cancel)

        def shown(agreement) -> None:
            lines = summary_lines(agreement, str(folder))
            self._show_readers_window("\n".join(lines))
            self._info(lines[0])
            self._job_ended(folder)

        self.task.start(
            "Comparing readers with the finals",
            compare,
            on_result=shown,
            on_error=lambda exc: self._job_ended(folder, stopped=exc),
            on_cancelled=lambda exc: self._job_ended(folder),
            cancelled_by=(ReviewCancelled,),
        )
        return True

    def _show_readers_window(self, text: str) -> None:
        if self.readers_window is None:
            self.readers_window = QDialog(self)
            self.readers_window.setWindowTitle("Readers against the final labels")
            layout = QVBoxLayout(self.readers_window)
            self.readers_text = QPlainTextEdit()
            self.readers_text.setReadOnly(True)
            self.readers_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            font = QFont("monospace")
            font.setStyleHint(QFont.StyleHint.TypeWriter)
            self.readers_text.setFont(font)
            layout.addWidget(self.readers_text)
            self.readers_window.resize(760, 260)
        self.readers_text.setPlainText(text)
        self.readers_window.show()
        self.readers_window.raise_()

    def _start_hd95(self) -> None:
        """Compute the open case's HD95 off the GUI thread, if it is still missing (after
        the running job, if there is one)."""
        case_id = self._hd95_for
        if case_id is None or self.task.running:
            return
        folder = Path(self.project.folder)

        def distances(progress, cancel):
            with Project(folder) as project:
                return review_case(project, case_id, distances=True).masks

        self.task.start(
            f"HD95 of {case_id}",
            distances,
            on_result=lambda masks: self._show_hd95(folder, case_id, masks),
            on_error=lambda exc: self._job_ended(folder, stopped=exc),
            on_cancelled=lambda exc: self._job_ended(folder),
        )

    def _job_ended(
        self, folder: Path, ranked: bool = False, stopped: BaseException | None = None
    ) -> None:
        """A background job ended. After a ranking (also a cancelled or failed one: what
        it compared is kept) the list is ranked again; a stopped ranking is not started
        again until the project is opened again. Then the next job, if one waits."""
        if self.project is None:
            return
        here = Path(self.project.folder) == folder
        if here and ranked and stopped is not None:
            self._rank_stopped = True
        if ranked or not here or self._rank_waiting:
            self._rank_waiting = False
            self.refresh_cases()
        if here and stopped is not None and not isinstance(stopped, ReviewCancelled):
            self._error(stopped)  # after the list's message, so that it stays
        if self._readers_waiting and not self.task.running:
            self.show_readers()
        self._start_hd95()

    def _show_hd95(self, folder: Path, case_id: str, masks) -> None:
        """Fill the open case's HD95 columns, leaving the lead's choices as they are."""
        here = self.project is not None and Path(self.project.folder) == folder
        if here and self.review is not None and self.review.case_id == case_id:
            self.review.masks, self._hd95_for = masks, None
            for c in range(self.table.columnCount()):
                header = self.table.horizontalHeaderItem(c).text()
                if header.startswith("HD95 "):
                    pair = header.removeprefix("HD95 ")
                    for r, name in enumerate(self.class_rows()):
                        text = _fmt(masks.hd95[name][pair], 1)
                        self.table.setItem(r, c, QTableWidgetItem(text))
            if HD95_PENDING_NOTE in self.status.text():
                self._info(self.status.text().replace(HD95_PENDING_NOTE, " HD95 is in the table."))
        self._job_ended(folder)

    def _case_clicked(self, item: QListWidgetItem) -> None:
        case_id = item.data(256)
        if self.review is None or self.review.case_id != case_id:
            self.load_case(case_id)

    def case_ids(self) -> list[str]:
        return [self.case_list.item(i).data(256) for i in range(self.case_list.count())]

    def event(self, event) -> bool:  # Qt API
        # napari's close button on a dock takes the widget out of the window (its parent
        # becomes None) without closing it: the case's layers would stay behind
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            if self.review is not None:
                self.close_case()  # the lead's choices and paint are kept for the case
        return super().event(event)

    def close_case(self, keep=()) -> None:
        """Leave the open case; its layers go, but those in ``keep`` (the next study
        shown in them) stay, all removed in one canvas cleanup."""
        self.display_combo.release()
        self._keep_choices()
        self._keep_paint()
        self.apply_earlier_button.setEnabled(False)
        for emitter, callback in self._watched:
            emitter.disconnect(callback)
        gone = [
            layer
            for layer in self.layers
            if layer in self.viewer.layers and not any(layer is k for k in keep)
        ]
        if gone:
            with removing_layers(self.viewer):
                for layer in gone:
                    self.viewer.layers.remove(layer)
        self.layers, self.review, self._watched = [], None, []
        self._hd95_for = None
        self._show_notes(None)
        self.masks, self.consensus, self.consensus_layer = {}, None, None
        self._disputes = self._volume = None
        self.series, self.cells, self.reader_points, self.shown_series = {}, [], {}, None
        self._opened_with = {}

    def _show_notes(self, review) -> None:
        """The readers' notes for the lead on the open case, one line each (hidden when
        there are none)."""
        notes = review.notes if review is not None else {}
        self.notes_label.setText(
            "Readers' notes:\n" + "\n".join(f"{who}: {note}" for who, note in notes.items())
        )
        self.notes_label.setVisible(bool(notes))

    def _keep_choices(self) -> None:
        """Remember the choices the lead made on the open case (not finalized), so that
        opening another case to compare does not throw them away."""
        if self.review is None:
            return
        changed = {k: v for k, v in self.decisions().items() if self._opened_with.get(k) != v}
        if changed:
            self._left_choices[self.review.case_id] = changed
        else:
            self._left_choices.pop(self.review.case_id, None)

    def _keep_paint(self) -> None:
        """Remember the lead's unfinalized edits of the open case's consensus (what differs
        from the vote), so that opening another case does not throw them away. Edits left
        on an older consensus and not applied stay held unless the lead painted anew."""
        if self.review is None or self.consensus_layer is None or self._paint_decided:
            return
        case_id = self.review.case_id
        left = LeftPaint.of(self.review, self.consensus, self.edited_consensus())
        if len(left.index):
            self._left_paint[case_id] = left
        elif not self.apply_earlier_button.isEnabled():
            self._left_paint.pop(case_id, None)

    def _restore_paint(self, case_id: str) -> tuple[str, bool]:
        """Put back the edits the lead left on this case's consensus; a note for the status
        line, and whether it is a warning (edits on an older consensus not applied)."""
        left = self._left_paint.get(case_id)
        if left is None:
            return "", False
        changed = left.changed_readers(self.review)
        conflicts = left.conflicts(self.consensus)
        if conflicts:
            self.apply_earlier_button.setEnabled(True)
            return (
                f" The readers' labels changed since you edited the consensus here "
                f"({changed}): the new consensus differs at {conflicts} of the "
                f"{len(left.index)} voxel(s) you edited, so your unfinalized edits are not "
                "applied. 'Apply earlier edits' puts them over the new consensus; painting "
                "here without that, Finalize or Reopen drops them."
            ), True
        self._paint(left)
        self._left_paint.pop(case_id)  # in the layer now; kept again when the case is left
        note = f" Your unfinalized edits of the consensus here ({len(left.index)} voxel(s)) are "
        note += "restored."
        if changed:
            note += (
                f" The readers' labels changed since ({changed}); the consensus is the same "
                "where you edited, so the edits still apply: check them."
            )
        return note, False

    def _paint(self, left: LeftPaint) -> None:
        layer = self.consensus_layer
        axes = layer.metadata[META_KEY]["axes"]
        np.asarray(layer.data).transpose(np.argsort(axes))[left.where()] = left.after
        layer.refresh()

    def apply_earlier_edits(self) -> bool:
        """Put the edits left on an older consensus of the open case over the new one."""
        left = self._left_paint.get(self.review.case_id) if self.review is not None else None
        if left is None or not self.apply_earlier_button.isEnabled():
            self._error("no earlier edits of this case's consensus are waiting.")
            return False
        self._paint(left)
        self._left_paint.pop(self.review.case_id)
        self.apply_earlier_button.setEnabled(False)
        self._info(
            f"{self.review.case_id}: your earlier edits ({len(left.index)} voxel(s)) are on the "
            "new consensus; check them where the readers changed their labels, then Finalize."
        )
        return True

    def _restore_choices(self, case_id: str) -> str:
        """Put back the choices the lead left on this case; a note for the status line."""
        self._opened_with = self.decisions()
        kept = self._left_choices.get(case_id, {})
        back = 0
        for key, source in kept.items():
            combo = self.choices.get(key)
            if combo is not None and combo.findText(source) >= 0:
                combo.setCurrentIndex(combo.findText(source))
                back += 1
        if not back:
            return ""
        return f" {back} choice(s) you made here before are back (not finalized yet)."

    # -- reading ahead --------------------------------------------------------------------
    def _read_image(self, case_id: str):
        """The case's image: the one shown when the open case is shown again (after
        Finalize or Reopen), read ahead while the previous case was open, or read now."""
        if self.review is not None and self.review.case_id == case_id and self._volume is not None:
            return self._volume
        ref = self.project.case(case_id).images[0]
        path = self.project.resolve(ref.path)
        volume = self.read_ahead.take(case_id, path, ref.series, ref.stack)
        if volume is None:
            return self.project.load_image(case_id)
        self.project.remember_grid(case_id, volume)
        return volume

    @staticmethod
    def _versions_key(versions: dict[str, LabelVersion]) -> tuple:
        return tuple((who, v.id) for who, v in versions.items())

    def _shown_versions(self) -> tuple | None:
        """The readers' versions whose label maps the open organ case holds, while they
        are still exactly those versions (the readers' layers show the same arrays, so a
        stroke on one changes them: then None, and they are read again from the files)."""
        if not self.masks or self.review is None:
            return None
        for who, version in self.review.versions.items():
            if mask_sha256(self.masks[who]) != version.sha256:
                return None
        return self._versions_key(self.review.versions)

    def _read_masks(self, case_id: str, versions: dict[str, LabelVersion]) -> dict:
        """The readers' label maps: those shown or read ahead if they are these versions,
        else read now."""
        open_case = self.review.case_id if self.review is not None else None
        if case_id == open_case:
            shown = self._masks_checked or self._shown_versions()
            if self._versions_key(versions) == shown:
                return self.masks
        ahead, self._masks_ahead = self._masks_ahead, None
        if ahead is not None and ahead[:2] == (case_id, self._versions_key(versions)):
            try:
                return ahead[2].result()
            except Exception:  # read again below, with the project's own error message
                pass
        return load_masks(self.project, versions)

    def _read_next_ahead(self, case_id: str) -> None:
        """Start reading the case after ``case_id`` in the list (the next one the lead
        opens with Ctrl+PageDown): its image and its readers' label files."""
        ids = self.case_ids()
        upcoming = ids[ids.index(case_id) + 1] if case_id in ids[:-1] else None
        self._masks_ahead = None
        if upcoming is None:
            self.read_ahead.clear()
            return
        try:
            ref = self.project.case(upcoming).images[0]
            versions = annotator_versions(self.project, upcoming)
        except REPORTED:  # it says what is wrong when it is opened
            self.read_ahead.clear()
            return
        self.read_ahead.start(upcoming, self.project.resolve(ref.path), ref.series, ref.stack)
        read = self._reader.submit(load_masks, self.project, versions)
        self._masks_ahead = (upcoming, self._versions_key(versions), read)

    def _reusable_layers(self, to_add: list[tuple]) -> list:
        """The open organ case's layers that can show the next case's (``to_add``, in
        order: image, readers, consensus, disagreement, final): the first ones of the same
        kind, array type and classes. Removing a CT case's five layers and adding five
        costs napari about 1.3 s; putting the arrays into the same layers a few hundredths."""
        reused = []
        if list(self.viewer.layers)[-len(self.layers) :] != self.layers:
            return reused  # a layer of the lead's above: a fresh open puts the case above it
        for layer, (data, kwargs, kind) in zip(self.layers, to_add, strict=False):
            shown = layer in self.viewer.layers and layer.data.ndim == data.ndim
            if kind == "image":
                same = isinstance(layer, ShownSliceImage) and layer.data.dtype == data.dtype
            else:
                classes = kwargs["metadata"][META_KEY].get("class_names")
                same = (
                    isinstance(layer, ShownSliceLabels)
                    and layer.data.dtype == data.dtype
                    and layer.metadata.get(META_KEY, {}).get("class_names") == classes
                    and undo_history_can_be_emptied(layer)
                )
            if not (shown and same):
                break
            reused.append(layer)
        return reused

    def load_case(self, case_id: str) -> bool:
        """Show the case: for organ projects its image, each annotator's labels, the
        consensus and the disagreement map; for spine projects its series, each reader's
        points and the grade cells, disputed first (the first one shown)."""
        if self.project is not None and task_content(self.project) == "grades":
            return self._load_spine_case(case_id)
        from .._napari.layers import image_layer_data, labels_layer_data

        project = self.project
        try:
            volume = self._read_image(case_id)
            inline = volume.array.size <= self.inline_hd95_voxels
            index = ReviewIndex(project, case_id)
            review = review_case(project, case_id, distances=inline, index=index)
            later = not inline and not index.is_kept(case_id, review.versions, True)
            masks = self._read_masks(case_id, review.versions)
            names = review.masks.classes
            consensus, disagreement = vote_and_disagreement(list(masks.values()))
            to_add = [image_layer_data(volume, f"{case_id} image")]
            for who, labels in masks.items():
                to_add.append(labels_layer_data(labels, volume, names, name=who))
            # a copy: the lead's edits of the layer are found by comparing with the vote
            to_add.append(labels_layer_data(consensus.copy(), volume, names, name="consensus"))
            levels = [f"{k} differ" for k in range(1, len(masks))]
            colors = {
                n: DISAGREEMENT_COLORS[min(i, len(DISAGREEMENT_COLORS) - 1)]
                for i, n in enumerate(levels)
            }
            to_add.append(
                labels_layer_data(disagreement, volume, levels, colors, name="disagreement")
            )
            final = current_final(project, case_id)
            if final is not None:  # what was decided, to compare with the readers'
                just = self._final_composed
                decided = just[1] if just and just[0] == final.id else project.read_mask(final)
                to_add.append(labels_layer_data(decided, volume, names, name=f"final v{final.id}"))
        except REPORTED as exc:
            self._error(exc)
            return False
        reused = self._reusable_layers(to_add)
        self.close_case(keep=reused)
        self.review, self.masks, self.consensus = review, masks, consensus
        self._volume = volume
        self._hd95_for = case_id if later else None
        self._show_notes(review)
        self._paint_decided = False
        for i, (data, kwargs, kind) in enumerate(to_add):
            if i < len(reused):  # the open case's layer shows the next case's array
                layer = reused[i]
                show_in_layer(layer, data, kwargs)
                layer.visible = True
                if kind != "image":  # the last case's strokes must not be undone here
                    empty_undo_history(layer)
                self.layers.append(layer)
            elif kind == "image":
                self.layers.append(self.viewer.add_layer(ShownSliceImage(data, **kwargs)))
            else:  # the lead's brush paints the voxels drawn, on a tilted series too
                self.layers.append(self.viewer.add_layer(ShownSliceLabels(data, **kwargs)))
        self.viewer.layers.selection.active = self.layers[-1]  # as adding it would
        for layer in self.layers[1 : 1 + len(masks)]:
            layer.visible = False  # annotators off; consensus and disagreement on
        self.consensus_layer = self.layers[1 + len(masks)]
        if final is not None:
            self.layers[-1].visible = False
        self.viewer.reset_view()  # the whole image, whatever the previous case's zoom
        self.display_combo.show_on(self.layers[0], volume)
        self._fill_table(review)
        self._show_final_decisions(review)
        kept = self._restore_choices(case_id)
        painted, stale = self._restore_paint(case_id)
        decided = (
            f" Final version {final.id} by {final.annotator} (layer 'final v{final.id}')."
            if final is not None
            else ""
        )
        if review.history:  # the last decision, also when it was a reopen
            decided += f" Last decision: {describe_decision(review.history[-1])}."
        message = (
            f"{case_id}: {len(review.annotators)} annotators, "
            f"{review.masks.total_disputed_ml:.1f} ml labelled differently.{decided} "
            "Paint on the consensus layer to correct it: Finalize keeps the edits of every "
            "class taken from the consensus."
        )
        self._updating = True
        self.table.setCurrentCell(0, 0)  # the most disputed class
        self._updating = False
        shown = self.go_to_class(self.table.item(0, 0).data(CLASS_ROLE), report=False)
        if self._hd95_for:
            shown += HD95_PENDING_NOTE
        self._read_next_ahead(case_id)
        (self._error if stale else self._info)(f"{message}{kept}{painted} {shown}")
        self._start_hd95()
        return True

    def go_to_class(self, name: str, report: bool = True) -> str:
        """Show the slice where the annotators disagree most about a class (the slice
        axis napari shows, i.e. axial for a CT); returns what is shown, for the status."""
        m = self.review.masks
        value = m.classes.index(name) + 1
        layer = self.consensus_layer
        axes = [int(a) for a in layer.metadata[META_KEY]["axes"]]
        world_axis = int(self.viewer.dims.not_displayed[0]) if self.viewer.dims.ndisplay == 2 else 0
        stored_axis = axes[world_axis]
        if self._disputes is None:  # where the readers differ, found once per case
            self._disputes = Disputes(list(self.masks.values()))
        found = self._disputes.most_disputed_slice(stored_axis, value)
        pairs = ", ".join(f"{p} {d:.3f}" for p, d in m.dice[name].items())
        if found is None:
            text = f"{name}: the annotators agree on every voxel (Dice {pairs})."
        else:
            index, voxels, stored_index = found  # the disputed voxels' centre in the slice
            data_index = [stored_index[a] for a in axes]  # the layer's data is transposed
            # the slice napari draws at a world position along the slice axis (on a tilted
            # CT not the one the world position of the disputed voxels falls in)
            position = slice_world_position(data_to_world_matrix(layer), data_index, world_axis)
            self.viewer.dims.set_point(world_axis, position)
            count = layer.data.shape[world_axis]
            text = (
                f"{name}: {m.disputed_ml[name]:.1f} ml labelled differently; shown: slice "
                f"{index + 1} of {count}, where most of it is ({voxels} voxels). Dice {pairs}."
            )
        if report:
            self._info(text)
        return text

    def _show_final_decisions(self, review: CaseReview) -> None:
        """Set each row's choice to what the current final version took (a final case
        opens showing the adjudication, not the defaults)."""
        if review.final_version is None:
            return
        decided = final_decisions(self.project.version(review.final_version))
        for key, source in decided.items():
            combo = self.choices.get(key)
            if combo is not None and combo.findText(source) >= 0:
                combo.setCurrentIndex(combo.findText(source))
            elif combo is not None:
                combo.setToolTip(f"final version {review.final_version}: {source}")

    def _load_spine_case(self, case_id: str) -> bool:
        project = self.project
        try:
            opinions = load_opinions(project, annotator_versions(project, case_id))
            review = review_case(project, case_id, opinions=opinions)
            cells = cell_opinions(opinions, case_id)
            loaded, missing = load_study_series(project, case_id, self.viewer, skip=self.layers)
        except REPORTED as exc:
            self._error(exc)
            return False
        readers = [*review.annotators, CONSENSUS]
        shown, points = self._reusable(loaded, readers)
        self.close_case(keep=[s.layer for s in shown.values()] + list(points.values()))
        self.review, self.cells = review, cells
        self._show_notes(review)
        self._updating = True
        try:
            if shown:
                self.series = show_in_place(shown, loaded)
            else:
                self.series = add_series_layers(self.viewer, loaded)
            self.layers = [s.layer for s in self.series.values() if s.owned]
            for who in readers:
                layer = points.get(who)
                if layer is None:
                    layer = self._add_reader_points(case_id, who)
                else:
                    self._reuse_reader_points(layer, case_id, who)
                self.reader_points[who] = layer
                self.layers.append(layer)
            for series in self.series.values():
                callback = self._visibility_watcher(series)
                series.layer.events.visible.connect(callback)
                self._watched.append((series.layer.events.visible, callback))
        finally:
            self._updating = False
        self._fill_table(review)
        self._show_final_decisions(review)  # a final case: what the lead took per cell
        kept = self._restore_choices(case_id)
        disputed = sum(c.disputed for c in cells)
        self.shown_text = ""
        if self.table.rowCount():
            self.table.setCurrentCell(0, 0)  # the first disputed cell, or the first cell
            self.viewer.reset_view()
        if self.shown_series is None and points:  # nothing shown: reused layers as new
            for layer in self.reader_points.values():
                layer.affine = np.eye(4)
                layer.data = np.empty((0, 3))
                layer.features = pd.DataFrame({"cell": [], "grade": [], "label": []}, dtype=object)
        final = f" Final version {review.final_version}." if review.final_version else ""
        message = (
            f"{case_id}: {len(review.annotators)} readers, {disputed} disputed cell(s) "
            f"listed first.{final}{kept} {self.shown_text}"
        )
        if missing:
            self._error(message + " Not shown: " + "; ".join(missing))
        else:
            self._info(message)
        return True

    def reader_color(self, who: str) -> str:
        """The colour of a reader's points (white for the consensus)."""
        if who == CONSENSUS or self.review is None:
            return CONSENSUS_COLOR
        return READER_COLORS[self.review.annotators.index(who) % len(READER_COLORS)]

    def _reusable(
        self, loaded: list[StudySeries], readers: list[str]
    ) -> tuple[dict[str, StudySeries], dict[str, object]]:
        """The open study's series whose image layers can show ``loaded`` (none unless all
        can, see :func:`same_series`) and the readers' Points layers that can be kept
        (all or none: the same readers in the same order, so names, colours and order
        come out as a fresh open makes them). Only when the dock's layers are the last
        in the viewer, in the order it added them, as a fresh open leaves them."""
        own = list(self.layers)
        ours_last = own and list(self.viewer.layers)[-len(own) :] == own
        if (
            self.review is None
            or self.masks
            or not ours_last
            or not same_series(self.viewer, self.series, loaded)
        ):
            return {}, {}
        if list(self.reader_points) != readers:
            return dict(self.series), {}
        return dict(self.series), dict(self.reader_points)

    def _reuse_reader_points(self, layer, case_id: str, who: str) -> None:
        """A reader's Points layer of the last study, for this one: named for it, nothing
        selected, panning (its points follow the series shown, :meth:`_show_points_on`)."""
        layer.name = f"{case_id} {who} points"
        layer.selected_data = set()
        layer.mode = "pan_zoom"

    def _add_reader_points(self, case_id: str, who: str):
        """An empty Points layer for one reader's (or the consensus') points; it follows
        the series shown (:meth:`_show_points_on`)."""
        consensus = who == CONSENSUS
        # hovering a point (its label) works on the slice drawn, also on an angled block
        return self.viewer.add_layer(
            ShownSlicePoints(
                np.empty((0, 3)),
                ndim=3,
                name=f"{case_id} {who} points",
                features=pd.DataFrame({"cell": [], "grade": [], "label": []}, dtype=object),
                face_color=self.reader_color(who),
                border_color="black",
                border_width=0.1,
                symbol="ring" if consensus else "disc",
                size=8.0 if consensus else 4.5,
                text=POINT_TEXT if consensus else None,
                units=("mm", "mm", "mm"),
            )
        )

    def _visibility_watcher(self, series: StudySeries):
        def callback(event) -> None:
            if not self._updating and series.layer.visible:
                self._show_points_on(series)  # the lead turned a series on by hand

        return callback

    def _show_points_on(self, series: StudySeries) -> None:
        """Put each reader's (and the consensus') points on ``series`` into their layers."""
        self.shown_series = series
        self._updating = True
        try:
            for who, layer in self.reader_points.items():
                rows, data = [], []
                for cell in self.cells:
                    point = cell.consensus_point if who == CONSENSUS else cell.points.get(who)
                    if point is None or series_holding(self.series, point) is not series:
                        continue
                    try:
                        data.append(series.to_data(point))
                    except ValueError:  # an instance the series lacks: nowhere to draw it
                        continue
                    grade = cell.consensus_grade if who == CONSENSUS else cell.grades[who]
                    label = point_label(cell.condition, cell.level, series)
                    rows.append((cell.key, grade or "not graded", label))
                layer.affine = series.affine
                layer.data = np.reshape(data, (-1, 3))
                layer.features = pd.DataFrame(
                    rows, columns=["cell", "grade", "label"], dtype=object
                )
                layer.face_color = self.reader_color(who)
        finally:
            self._updating = False

    def go_to(self, key: str) -> StudySeries | None:
        """Show a grade cell: the series and slice of its consensus point (else a
        reader's; with no point, where it is read) with the readers' points there."""
        cell = next(c for c in self.cells if c.key == key)
        point = cell.focus_point()
        series = series_holding(self.series, point) if point is not None else None
        index = None
        if series is not None:
            try:
                index = series.to_data(point)
            except ValueError:
                series = None
        if series is None:
            at_level = [p for c in self.cells if c.level == cell.level for p in c.points.values()]
            series, index = reading_place(self.series, cell.condition, cell.level, at_level)
        if series is None:
            return None
        # the points first: moving them to another series changes the viewer's range,
        # which moved the slider off the slice show_series puts it on
        self._show_points_on(series)
        self._updating = True
        try:
            show_series(self.viewer, self.series, series, index)
        finally:
            self._updating = False
        self.shown_text = f"Shown: {series.description}. {cell.summary(self._series_name)}"
        self._info(self.shown_text)
        return series

    def _series_name(self, point) -> str:
        """The shown name of a point's series (RSNA's points name it by series_id)."""
        series = series_holding(self.series, point)
        return series.description if series is not None else point.series

    def _row_changed(self, row: int, *_) -> None:
        if self._updating or row < 0:
            return
        item = self.table.item(row, 0)
        if item is None:
            return
        if self.cells and item.data(CELL_KEY_ROLE):
            self.go_to(item.data(CELL_KEY_ROLE))
        elif self.masks and item.data(CLASS_ROLE):
            self.go_to_class(item.data(CLASS_ROLE))

    def cell_rows(self) -> list[str]:
        """The grade cells' keys in table order (spine cases)."""
        return [self.table.item(r, 0).data(CELL_KEY_ROLE) for r in range(self.table.rowCount())]

    # -- table --------------------------------------------------------------------------
    def _fill_table(self, review: CaseReview) -> None:
        self._updating = True  # no navigation while rows are rebuilt
        try:
            if review.masks is not None:
                self._fill_class_table(review)
            else:
                self._fill_grade_table(review)
        finally:
            self._updating = False
        self.table.resizeColumnsToContents()

    def _fill_class_table(self, review: CaseReview) -> None:
        """One row per class, the most disputed first (lowest pairwise Dice; classes nobody
        labelled last): the lead's choice, the volume labelled differently, and per pair
        Dice, HD95 (mm) and volume difference (ml)."""
        m = review.masks
        pending = self._hd95_for == review.case_id  # computed in the background
        pairs = [
            f"{a}|{b}" for i, a in enumerate(review.annotators) for b in review.annotators[i + 1 :]
        ]
        header = [
            "class",
            "take",
            "disputed ml",
            *(f"Dice {p}" for p in pairs),
            *(f"HD95 {p}" for p in pairs),
            *(f"ΔV ml {p}" for p in pairs),
        ]
        self._reset_table(header, len(m.classes))
        options = [CONSENSUS, STAPLE, *review.annotators]
        order = sorted(
            enumerate(m.classes),
            key=lambda ic: (
                not any(v > 0 for v in m.volume_ml[ic[1]].values()),
                min(m.dice[ic[1]].values(), default=1.0),
                ic[0],
            ),
        )
        for r, (_, name) in enumerate(order):
            values = (
                [_fmt(m.disputed_ml[name], 2)]
                + [_fmt(m.dice[name][p]) for p in pairs]
                + [HD95_PENDING if pending else _fmt(m.hd95[name][p], 1) for p in pairs]
                + [_fmt(m.volume_diff_ml[name][p], 2) for p in pairs]
            )
            item = QTableWidgetItem(name)
            item.setData(CLASS_ROLE, name)
            volumes = ", ".join(f"{who} {ml:.2f} ml" for who, ml in m.volume_ml[name].items())
            item.setToolTip(f"{name}: {volumes}; select to see where they differ most")
            self.table.setItem(r, 0, item)
            self._add_choice(r, 1, name, options)
            for c, text in enumerate(values, start=2):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self._cap_width(len(header))

    def class_rows(self) -> list[str]:
        """The classes in table order (organ cases), most disputed first."""
        return [self.table.item(r, 0).data(CLASS_ROLE) for r in range(self.table.rowCount())]

    def _cap_width(self, columns: int) -> None:
        """Ask for the table's width up to :data:`TABLE_MAX_MIN_WIDTH`; beyond, it scrolls."""
        self.table.resizeColumnsToContents()
        width = sum(self.table.columnWidth(c) for c in range(columns))
        self.table.setMinimumWidth(min(width + 24, TABLE_MAX_MIN_WIDTH))

    def _fill_grade_table(self, review: CaseReview) -> None:
        """One row per grade cell, disputed first: the lead's choice, then who said what
        (in grade colours, short names, the full grade and the reader's point in the
        tooltip) and the consensus."""
        readers = review.annotators
        header = ["cell", "take", *readers, CONSENSUS]
        self._reset_table(header, len(self.cells))
        for c, who in enumerate([*readers, CONSENSUS], start=2):
            self.table.horizontalHeaderItem(c).setIcon(
                _dot_icon(self.reader_color(who), ring=who == CONSENSUS)
            )
        options = [CONSENSUS, *readers, *GRADES]
        bold = QFont(self.table.font())
        bold.setBold(True)
        for r, cell in enumerate(self.cells):
            name = QTableWidgetItem(f"{LEVEL_DISPLAY[cell.level]} {CONDITION_TAGS[cell.condition]}")
            name.setData(CELL_KEY_ROLE, cell.key)
            name.setToolTip(cell.summary(self._series_name))
            if cell.disputed:  # marked on the cell's name: no column to spend on it
                name.setFont(bold)
                name.setBackground(QBrush(QColor(DISPUTED_COLOR)))
                name.setForeground(QBrush(QColor("white")))
                name.setToolTip(
                    f"disputed: readers are {cell.spread} grade(s) apart\n"
                    + cell.summary(self._series_name)
                )
            self.table.setItem(r, 0, name)
            self._add_choice(r, 1, cell.key, options)
            said = [(who, cell.grades[who], cell.points.get(who)) for who in readers]
            said.append((CONSENSUS, cell.consensus_grade, cell.consensus_point))
            tie = _tied(cell)
            for c, (who, grade, point) in enumerate(said, start=2):
                item = QTableWidgetItem(GRADE_SHORT.get(grade, grade) if grade else "-")
                if grade is not None:
                    item.setBackground(QBrush(QColor(GRADE_COLORS[grade])))
                    item.setForeground(QBrush(QColor("white")))
                where = (
                    f"point: {self._series_name(point)}, instance {point.instance}, "
                    f"x {point.x:.1f}, y {point.y:.1f}"
                    if point is not None
                    else "no point"
                )
                tip = f"{who}: {grade or 'not graded'}\n{where}"
                if who == CONSENSUS and tie:
                    item.setText(item.text() + "?")
                    tip = (
                        f"consensus: {grade} only because the readers are tied ({tie}); a "
                        "tie goes to the milder grade. Choose a reader or a grade.\n" + where
                    )
                item.setToolTip(tip)
                self.table.setItem(r, c, item)
        self._cap_width(len(header))

    def _reset_table(self, header: list[str], rows: int) -> None:
        self.choices = {}
        self.all_choice.clear()
        self.table.clear()
        self.table.setColumnCount(len(header))
        self.table.setHorizontalHeaderLabels(header)
        self.table.setRowCount(rows)

    def _add_choice(self, row: int, column: int, key: str, options: list[str]) -> None:
        if not self.all_choice.count():  # a blank first: the rows may differ
            self.all_choice.addItems(["", *options])
        combo = QComboBox()
        combo.addItems(options)
        self.table.setCellWidget(row, column, combo)
        self.choices[key] = combo

    def choose(self, key: str, source: str) -> None:
        """Set the source of a class or grade cell (what the row's combo box shows)."""
        combo = self.choices[key]
        index = combo.findText(source)
        if index < 0:
            raise ValueError(f"{source!r} is not a choice for {key!r}")
        combo.setCurrentIndex(index)

    def take_all(self, source: str) -> None:
        """Set every row's source (e.g. one reader's whole label); rows can then differ."""
        if not source:
            return
        for key in self.choices:
            self.choose(key, source)
        self._info(f"every row takes {source}; change the rows that should not.")

    def decisions(self) -> dict[str, str]:
        return {key: combo.currentText() for key, combo in self.choices.items()}

    def edited_consensus(self) -> np.ndarray:
        """The consensus layer as the lead left it, back in the stored (z, y, x) order."""
        axes = self.consensus_layer.metadata[META_KEY]["axes"]
        return np.asarray(self.consensus_layer.data).transpose(np.argsort(axes))

    # -- actions ------------------------------------------------------------------------
    def _lead(self) -> str:
        lead = self.lead_edit.text().strip()
        if not lead:
            self.opener.show_form(True)  # the Lead field, if the box was one line
            raise ProjectError("enter the lead's name first (it is recorded with decisions).")
        return lead

    def finalize(self) -> LabelVersion | None:
        if self.review is None:
            self._error("open a case first.")
            return None
        case_id = self.review.case_id
        try:
            before = current_final(self.project, case_id)
            lead = self._lead()
            decisions, painted = self.decisions(), None
            if self.consensus_layer is not None:
                painted = self.edited_consensus()
                decisions = keep_consensus_edits(
                    decisions, self.review.masks.classes, self.consensus, painted, case_id
                )
            latest_versions = annotator_versions(self.project, case_id)
            unseen = _unseen_versions(self.review.versions, latest_versions)
            if unseen:
                self._show_again_unseen(case_id, unseen)
                return None
            latest = self._versions_key(latest_versions)
            checked = self._shown_versions() if self.masks else None
            shown = self.masks if latest == checked else None  # else read from the files
            composed = []
            version = finalize(
                self.project,
                case_id,
                lead,
                decisions,
                painted=painted,
                opinions=shown,
                # the vote of exactly those maps, counted when the case opened
                consensus=self.consensus if shown is not None else None,
                on_composed=composed.append,
            )
        except REPORTED as exc:
            self._error(exc)
            return None
        self._decided(case_id)
        self.refresh_cases()
        self._masks_checked = checked  # shown again at once: no stroke in between
        # the final layer shows the map just composed, not the same map read back
        self._final_composed = (version.id, composed[0]) if composed else None
        try:
            self.load_case(case_id)
        finally:
            self._masks_checked = None
            self._final_composed = None
        if before is not None and before.id == version.id:
            self._info(f"{case_id}: already final as decided (version {version.id}); nothing new.")
        else:
            self._info(f"{case_id}: final version {version.id} stored.")
        return version

    def _show_again_unseen(self, case_id: str, unseen: str) -> None:
        """A reader submitted since the case was shown: finalizing now would decide on
        labels the lead has not seen. Show the case again (the lead's choices and paint
        kept as far as they fit the new labels) and say why nothing was stored."""
        self.load_case(case_id)
        shown = self.status.text()  # what opening it again found (e.g. paint not applied)
        self._error(
            f"{case_id}: {unseen} since you opened the case, so nothing was finalized. The "
            f"case now shows it: check it, then Finalize again. ({shown})"
        )

    def _decided(self, case_id: str) -> None:
        """Finalized or reopened: no choices or paint of the case are left to keep."""
        self._left_choices.pop(case_id, None)
        self._left_paint.pop(case_id, None)
        self._opened_with = self.decisions()
        self._paint_decided = True
        self.apply_earlier_button.setEnabled(False)

    def reopen(self) -> bool:
        if self.review is None:
            self._error("open a case first.")
            return False
        case_id = self.review.case_id
        try:
            reopen(self.project, case_id, self._lead(), self.reason_edit.text())
        except REPORTED as exc:
            self._error(exc)
            return False
        self._decided(case_id)
        self.refresh_cases()
        self.load_case(case_id)
        self._info(f"{case_id}: reopened for annotation.")
        return True


def _unseen_versions(shown: dict, latest: dict) -> str:
    """What the readers stored since ``shown`` (reader -> version shown) was read, against
    ``latest`` (reader -> their version now), in words; "" when nothing."""
    changes = [
        f"{who} submitted version {version.id}"
        for who, version in latest.items()
        if who not in shown or shown[who].id != version.id
    ]
    return "; ".join(changes)
