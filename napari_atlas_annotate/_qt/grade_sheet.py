"""The lumbar grade sheet: 5 conditions x 5 levels, the study's series and the level points.

A thin skin over :class:`~napari_atlas_annotate.grade_editing.GradeSession`, which restores
the annotator's sheet (base version + logged edits), applies each change and logs it at
once. The widget shows:

- every series of the study as an image layer (Sagittal T2/STIR first and shown; a series
  is displayed in its own plane: sagittal slices with head up and anterior left, axial
  slices as a radiologist reads them);
- the level points as one Points layer per series (a point is drawn on the slice it was
  placed on, coloured by its cell's grade and labelled ``L4/L5 SCS`` beside it; on an axial
  slice a left or right condition's label sits on the patient's side of its point, so the
  L-SS and R-SS labels of a level do not run into each other);
- the sheet: rows are conditions, columns levels (RSNA names); a cell shows its grade and,
  when the helper model proposed grades, the model's probabilities (Normal/Mild, Moderate,
  Severe); a cell whose grade differs from the proposal is bold.

Controls: a click on a cell selects it and shows its point; a click on the selected cell
cycles its grade (Normal/Mild -> Moderate -> Severe); with the sheet focused, keys 1/2/3
set Normal/Mild, Moderate or Severe, Space cycles, Delete clears and the arrow keys move.
Selecting a cell shows the series and slice of its point. Dragging a point in the viewer
moves it (logged once, when the mouse is released); with a cell selected that has no point,
a point added in the viewer (Points layer, add mode) becomes that cell's point; deleting a
point removes it. *Submit* stores the sheet as the
annotator's corrected version.

Showing a study's series and a point's slice lives in module functions
(:func:`load_study_series`, :func:`add_series_layers`, :func:`series_holding`,
:func:`show_series`, :func:`reading_place`, :func:`point_label`) that the lead's review
dock uses too.

Errors (not a spine project, a missing series file, a point on a series the study lacks)
are shown in the widget and as a napari notification; the viewer stays up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import QEvent, QObject, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .._napari.layers import (
    META_KEY,
    WORLD_AXIS_LABELS,
    display_axes,
    image_layer_data,
    layer_affine,
    removing_layers,
    volume_from_layer,
)
from .._napari.shown_slice import ShownSliceImage, ShownSlicePoints, slice_world_position
from ..grade_editing import (
    GradeSession,
    index_to_point,
    instance_numbers,
    point_to_index,
)
from ..grade_sheet import LevelPoint
from ..project import LabelVersion, Project, ProjectError
from ..spine_grades import (
    CONDITION_DISPLAY,
    CONDITIONS,
    GRADES,
    LEVEL_DISPLAY,
    LEVELS,
    SERIES_FOR_CONDITION,
)
from ..stacks import CaseImages, stack_key
from .note_field import GRADES_EXAMPLE, NoteField
from .status_messages import StatusMessages
from .study_layers import same_series, show_in_place

#: Errors the widget reports instead of raising (domain errors, bad files, I/O).
REPORTED = (ProjectError, ValueError, OSError, KeyError, IndexError)

#: Series shown first, in order of preference.
PREFERRED_SERIES = ("Sagittal T2/STIR", "Sagittal T1")

#: Cell background per grade (colour-blind-safe green / amber / red, muted for a dark UI).
GRADE_COLORS: dict[str | None, str] = {
    "Normal/Mild": "#2f7d4a",
    "Moderate": "#d88a12",
    "Severe": "#c0392b",
    None: "#3b4048",
}

#: Short condition tags for point labels.
CONDITION_TAGS = {
    "spinal_canal_stenosis": "SCS",
    "left_neural_foraminal_narrowing": "L-NFN",
    "right_neural_foraminal_narrowing": "R-NFN",
    "left_subarticular_stenosis": "L-SS",
    "right_subarticular_stenosis": "R-SS",
}

#: Features of a point added in the viewer, before it is given a cell.
_NEW_POINT = {"condition": "", "level": "", "label": ""}

#: Smallest height of the sheet (px): the header and five rows of 44 px.
TABLE_MIN_HEIGHT = 250

_KEY_GRADES = {Qt.Key.Key_1: GRADES[0], Qt.Key.Key_2: GRADES[1], Qt.Key.Key_3: GRADES[2]}
_CLEAR_KEYS = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace, Qt.Key.Key_0)


def _two_lines(text: str) -> str:
    words = text.split()
    if len(words) < 2:
        return text
    half = max(1, len(words) - 1) if len(words) <= 3 else len(words) // 2
    return " ".join(words[:half]) + "\n" + " ".join(words[half:])


@dataclass
class StudySeries:
    """One series (or one stack of a series) of an open study as shown in the viewer."""

    description: str
    layer: Any  # napari Image layer
    axes: tuple[int, ...]
    affine: np.ndarray  # napari layer affine (data -> world)
    numbers: list[int]  # InstanceNumber of each z slice
    owned: bool  # added by this widget (removed when the case changes)
    points: Any = None  # napari Points layer
    aliases: frozenset[str] = frozenset()  # other names points may use for this series
    point_name: str = ""  # the name new points get (the series', for one of its stacks)

    def names(self, point: LevelPoint) -> bool:
        """Whether ``point.series`` names this series (description, SeriesInstanceUID,
        series number or folder name: RSNA's files name series by ``series_id``)."""
        return point.series == self.description or point.series in self.aliases

    def cells(self) -> list[tuple[str, str]]:
        """The (condition, level) of each row of the Points layer ('' for unassigned)."""
        if self.points is None:
            return []
        features = self.points.features
        return list(zip(features["condition"], features["level"], strict=True))

    def to_data(self, point: LevelPoint) -> np.ndarray:
        """Points-layer data coordinate of a level point (transposed like the image)."""
        return point_to_index(point, self.numbers)[list(self.axes)]

    def to_point(self, data: np.ndarray, name: str | None = None) -> LevelPoint:
        """Level point at a Points-layer data coordinate (series called ``name``)."""
        index = np.empty(3)
        index[list(self.axes)] = np.asarray(data, float)
        return index_to_point(name or self.point_name or self.description, index, self.numbers)

    def slice_world_axis(self) -> int:
        """World axis along which this series' slices are stacked."""
        return int(list(self.axes).index(0))

    def to_world(self, data: np.ndarray) -> np.ndarray:
        """World (display mm) position of a layer data coordinate."""
        return (self.affine @ np.append(np.asarray(data, float), 1.0))[:3]

    def shows_patient_right_on_the_left(self) -> bool:
        """Whether the patient's right is on the screen's left in this series' plane (an
        axial or coronal slice, read the radiologist's way); a sagittal slice has no
        left and right in plane."""
        horizontal = [a for a in range(3) if a != self.slice_world_axis()][-1]
        return WORLD_AXIS_LABELS[horizontal] == "L"  # world L runs to the screen's right


# -- a study's series in the viewer (shared with the lead's review dock) ----------------------
def _existing_layer(viewer, path: Path, series_uid: str | None, stack: int | None, skip=()):
    """An image layer of this series (and stack) already in the viewer (e.g. from the
    annotator dock), so the study is not shown twice. Layers in ``skip`` (a dock's own
    layers of the case it is closing) do not count."""
    for layer in viewer.layers:
        if any(layer is s for s in skip):
            continue
        grid = layer.metadata.get(META_KEY) if hasattr(layer, "metadata") else None
        if not grid or layer._type_string != "image":
            continue
        meta = grid.get("volume_metadata", {})
        same_file = Path(str(meta.get("source", ""))).resolve() == path.resolve()
        if same_file and (series_uid is None or meta.get("series_uid") == series_uid):
            if meta.get("stack") == stack:
                return layer
    return None


def load_study_series(
    project: Project, case_id: str, viewer: Any, skip=()
) -> tuple[list[StudySeries], list[str]]:
    """Read every series (each stack of a series acquired as several) of a spine case.

    An image already in the viewer (outside ``skip``) is reused; the others come back as
    ``(data, kwargs)`` in :attr:`StudySeries.layer` for :func:`add_series_layers`, so a
    case that cannot be read leaves the viewer as it was. Sagittal T2/STIR comes first.

    Returns
    -------
    loaded
        The series that could be read.
    missing
        ``"<series>: <why>"`` for each one that could not.

    Raises
    ------
    ProjectError
        When none could be read (the message says why for each).
    """
    case = project.case(case_id)
    loaded: list[StudySeries] = []
    missing: list[str] = []
    taken: set[str] = set()
    images = CaseImages(project, case_id)  # the stacks of a series read from one scan
    for i, ref in enumerate(case.images):
        layer = _existing_layer(viewer, project.resolve(ref.path), ref.series, ref.stack, skip)
        try:
            if layer is not None:
                volume = volume_from_layer(layer)
            else:
                volume = images.load(i)
        except REPORTED as exc:
            missing.append(f"{ref.description or ref.path}: {exc}")
            continue
        name = ref.description or str(volume.metadata.get("series_description") or "")
        name = name or f"series {i + 1}"
        point_name = name  # points on any stack of a series name the series
        name = stack_key(name, volume.metadata)
        while name in taken:
            name = f"{name} ({i + 1})"
        taken.add(name)
        axes = display_axes(volume.affine)
        owned = layer is None
        if owned:
            data, kwargs, _ = image_layer_data(volume, name=f"{case_id} {name}")
            layer = (data, kwargs)
        meta = volume.metadata
        aliases = {ref.description, ref.series, Path(ref.path).name}
        aliases |= {meta.get("series_uid"), meta.get("series_description")}
        if meta.get("series_number") is not None:
            aliases.add(str(meta["series_number"]))
        loaded.append(
            StudySeries(
                name,
                layer,
                axes,
                layer_affine(volume.affine, axes),
                instance_numbers(volume),
                owned,
                aliases=frozenset(str(a) for a in aliases if a),
                point_name=point_name,
            )
        )
    if not loaded:
        raise ProjectError(
            f"case {case_id}: none of its series could be loaded: " + "; ".join(missing)
        )
    order = {d: k for k, d in enumerate(PREFERRED_SERIES)}
    loaded.sort(key=lambda s: order.get(s.description, len(order)))
    return loaded, missing


def add_series_layers(viewer: Any, loaded: list[StudySeries]) -> dict[str, StudySeries]:
    """Add the image layers :func:`load_study_series` read; the series by name."""
    for series in loaded:
        if series.owned and isinstance(series.layer, tuple):
            data, kwargs = series.layer
            series.layer = viewer.add_layer(ShownSliceImage(data, **kwargs))
    return {series.description: series for series in loaded}


def series_holding(series: Mapping[str, StudySeries], point: LevelPoint) -> StudySeries | None:
    """The open series a point is on (by description first, then other names); of a
    series shown as several stacks, the stack holding the point's instance."""
    if point.series in series:
        named = [series[point.series]]
    else:
        named = [s for s in series.values() if s.names(point)]
    holding = [s for s in named if point.instance in s.numbers]
    return (holding or named or [None])[0]


def slice_position(series: StudySeries, index: np.ndarray) -> float:
    """The world position along the slice axis at which napari shows the slice of
    ``series`` through data ``index``.

    napari picks a layer's slice from the world position along the slice axis alone
    (the diagonal part of its world-to-data transform; the out-of-plane tilt is
    ignored), so for a block tilted against the world axes (an axial stack angled
    through a disc) the world position of ``index`` itself would show another slice,
    the further from the block's middle the more, and hide the point.
    """
    return slice_world_position(series.affine, np.asarray(index), series.slice_world_axis())


def show_series(
    viewer: Any,
    series: Mapping[str, StudySeries],
    shown: StudySeries,
    index: np.ndarray | None = None,
) -> None:
    """Show ``shown`` (and its points) alone, in its own plane, on the slice through
    ``index`` (layer data coordinates; default: the middle of the series)."""
    for other in series.values():
        other.layer.visible = other is shown
        if other.points is not None:
            other.points.visible = other is shown
    slice_axis = shown.slice_world_axis()
    order = (slice_axis, *[a for a in range(3) if a != slice_axis])
    viewer.dims.order = order
    if viewer.dims.ndim == 3:
        viewer.dims.axis_labels = WORLD_AXIS_LABELS
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.orientation2d = ("up" if order[1] == 0 else "down", "right")
    if index is None:
        index = (np.array(shown.layer.data.shape) - 1) / 2
    viewer.dims.set_point(slice_axis, slice_position(shown, index))
    viewer.layers.selection.active = shown.layer


def reading_place(
    series: Mapping[str, StudySeries],
    condition: str,
    level: str,
    points: Iterable[LevelPoint] = (),
) -> tuple[StudySeries | None, np.ndarray | None]:
    """Where a cell without a point is read: its condition's series (of a series acquired
    as several stacks, the stack through the level, found from ``points``, other points
    at that level) and the data index nearest those points (``None``: the middle).

    Falls back to the study's first series when it lacks the condition's series.
    """
    name = SERIES_FOR_CONDITION[condition]
    candidates = [s for s in series.values() if s.point_name == name]
    if not candidates:
        return next(iter(series.values()), None), None
    known = [
        shown.to_world(shown.to_data(point))
        for point in points
        if (shown := series_holding(series, point)) is not None and point.instance in shown.numbers
    ]
    if not known:
        return candidates[0], None
    target = np.mean(known, axis=0)

    def inside(candidate: StudySeries) -> tuple[np.ndarray, float]:
        """The target's data index clipped into the series, and how far (mm) it lies
        outside it."""
        index = (np.linalg.inv(candidate.affine) @ np.append(target, 1.0))[:3]
        clipped = np.clip(index, 0, np.array(candidate.layer.data.shape) - 1)
        return clipped, float(np.linalg.norm(candidate.to_world(clipped) - target))

    best = min(candidates, key=lambda s: inside(s)[1])
    return best, inside(best)[0]


# -- point labels -----------------------------------------------------------------------------
#: napari text settings of level point labels (the side comes with the label: see
#: :func:`placed_label`).
POINT_TEXT = {"string": "{label}", "color": "white", "size": 9, "anchor": "center"}


def placed_label(text: str, condition: str, series: StudySeries) -> str:
    """``text`` padded so that, centred on its point, it shows beside the point: on the
    patient's side for a left or right condition in a plane that shows both sides (on an
    axial slice the L-SS and R-SS points lie side by side, and labels drawn to the right
    of both ran into each other), else to the right.

    napari places every label of a layer with one anchor and offset, so the side is made
    with blanks on the other side (a blank is about a third of a character wide, and
    three per character leave a gap of about a character between point and text).
    """
    pad = " " * (3 * len(text))
    right_side = condition.startswith("right_") and series.shows_patient_right_on_the_left()
    return text + pad if right_side else pad + text


def point_label(condition: str, level: str, series: StudySeries) -> str:
    """A level point's label, ``"L4/L5 L-SS"``, placed by :func:`placed_label`."""
    return placed_label(f"{LEVEL_DISPLAY[level]} {CONDITION_TAGS[condition]}", condition, series)


def cell_text(grade: str | None, probs: list[float] | None) -> str:
    """A cell's text: ``'Moderate  (0.12/0.71/0.17)'`` (probabilities when proposed)."""
    text = grade or "not graded"
    if probs is not None:
        text += "  (" + "/".join(f"{p:.2f}" for p in probs) + ")"
    return text


#: Item data role holding ``{grade, probs, changed}`` for :class:`_CellPainter`.
CELL_ROLE = Qt.ItemDataRole.UserRole + 1


class _CellPainter(QStyledItemDelegate):
    """Paints a cell: grade colour, grade name, and the model's probabilities as numbers
    over a three-segment bar (Normal/Mild, Moderate, Severe); a white frame marks the
    current cell, bold text a grade changed from the proposal."""

    def paint(self, painter: QPainter, option, index) -> None:
        info = index.data(CELL_ROLE) or {}
        grade, probs = info.get("grade"), info.get("probs")
        rect = option.rect.adjusted(1, 1, -1, -1)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(rect, QColor(GRADE_COLORS.get(grade, GRADE_COLORS[None])))
        name = grade or "—"
        font = QFont(option.font)
        font.setBold(bool(info.get("changed")))
        while font.pointSizeF() > 6.5 and QFontMetrics(font).horizontalAdvance(name) > (
            rect.width() - 8
        ):
            font.setPointSizeF(font.pointSizeF() - 0.5)  # narrow docks: shrink, never clip
        painter.setFont(font)
        painter.setPen(QColor("white"))
        if probs is None:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, name)
        else:
            top = QRectF(rect.x(), rect.y(), rect.width(), rect.height() * 0.5)
            painter.drawText(
                top, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, name
            )
            small = QFont(option.font)
            small.setPointSizeF(max(6.0, small.pointSizeF() * 0.8))
            painter.setFont(small)
            painter.setPen(QColor(255, 255, 255, 220))
            # the bar at the bottom, the numbers between it and the name (rows are 44 px
            # in a squeezed dock: the numbers must not run under the bar)
            bar_height = 8 if rect.height() >= 52 else 6
            bar = QRectF(
                rect.x() + 6, rect.bottom() - bar_height - 3, rect.width() - 12, bar_height
            )
            middle = rect.y() + rect.height() * 0.5
            mid = QRectF(rect.x(), middle, rect.width(), bar.top() - middle)
            painter.drawText(
                mid, Qt.AlignmentFlag.AlignCenter, " ".join(f"{p:.2f}"[1:] for p in probs)
            )
            painter.fillRect(bar, QColor(20, 22, 26))
            inner = bar.adjusted(1, 1, -1, -1)
            x = inner.x()
            for g, p in zip(GRADES, probs, strict=False):
                w = inner.width() * float(p)
                color = QColor(GRADE_COLORS[g]).lighter(140)
                painter.fillRect(QRectF(x, inner.y(), w, inner.height()), color)
                x += w
        if option.state & QStyle.StateFlag.State_Selected:
            pen = QPen(QColor("white"))
            pen.setWidth(3)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
        painter.restore()


class _WrappedLabel(QLabel):
    """A word-wrapped label that asks for the height of its text at its width.

    A dock sizes its widget's layout without height-for-width, so a wrapped label counted
    one line short and, in a dock squeezed to its minimum, the rows above were drawn under
    the lines below them (the sheet's fifth row hid under the legend)."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setWordWrap(True)
        self._text_height = -1

    def minimumSizeHint(self):  # noqa: N802 - Qt API
        hint = super().minimumSizeHint()
        if self.width() > 0:
            hint.setHeight(max(hint.height(), self.heightForWidth(self.width())))
        return hint

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        height = self.heightForWidth(self.width())
        if height != self._text_height:  # another number of lines: lay out again
            self._text_height = height
            self.updateGeometry()


class _SheetKeys(QObject):
    """Keys 1/2/3, Space and Delete on the sheet (arrows stay with the table); on the
    table's viewport, notes whether a mouse press lands on the cell already selected."""

    def __init__(self, widget: GradeSheetWidget) -> None:
        super().__init__(widget)
        self.widget = widget

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.KeyPress:
            return self.widget._key(event.key())
        if event.type() == QEvent.Type.MouseButtonPress:
            table = self.widget.table
            pressed = table.indexAt(event.position().toPoint())
            self.widget._press_on_current = pressed.isValid() and pressed == table.currentIndex()
        return False


class GradeSheetWidget(StatusMessages, QWidget):
    """Grade a lumbar study: the 5x5 sheet, its series and level points, Submit.

    Parameters
    ----------
    viewer
        The napari viewer.
    project
        A spine :class:`~napari_atlas_annotate.project.Project` (or its folder).
    annotator
        Whose sheet this is; every change is logged under this name.
    """

    def __init__(self, viewer: Any, project: Project | str | Path, annotator: str) -> None:
        super().__init__()
        self.viewer = viewer
        self.project = project if isinstance(project, Project) else Project(project)
        self.annotator = annotator
        self.session: GradeSession | None = None
        self.case_id: str | None = None
        self.series: dict[str, StudySeries] = {}
        self.last_error: str | None = None
        self._updating = False  # set while the widget itself writes layers or the table
        self._dragging = False
        self._press_on_current = False  # the last mouse press was on the selected cell
        self._build()

    # -- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.title = _WrappedLabel("No case open.")
        layout.addWidget(self.title)

        self.table = QTableWidget(len(CONDITIONS), len(LEVELS))
        self.table.setHorizontalHeaderLabels([LEVEL_DISPLAY[lv] for lv in LEVELS])
        self.table.setVerticalHeaderLabels([_two_lines(CONDITION_DISPLAY[c]) for c in CONDITIONS])
        for row, condition in enumerate(CONDITIONS):
            self.table.verticalHeaderItem(row).setToolTip(CONDITION_DISPLAY[condition])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(True)
        self.table.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultAlignment(
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        )
        self.table.setItemDelegate(_CellPainter(self.table))
        self.table.setShowGrid(False)
        # rows of 44 px still show grade, probabilities and bar; a squeezed dock takes the
        # height from here rather than draw the labels below over the last row
        self.table.setMinimumSize(460, TABLE_MIN_HEIGHT)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.table.cellClicked.connect(self._cell_clicked)
        self.table.currentCellChanged.connect(self._current_changed)
        self._keys = _SheetKeys(self)
        self.table.installEventFilter(self._keys)
        self.table.viewport().installEventFilter(self._keys)
        layout.addWidget(self.table)

        legend = QHBoxLayout()
        for grade in GRADES:
            chip = QLabel(f" {grade} ")
            chip.setStyleSheet(
                f"background:{GRADE_COLORS[grade]}; color:white; border-radius:3px; padding:1px;"
            )
            legend.addWidget(chip)
        legend.addStretch(1)
        self.progress = QLabel("")
        legend.addWidget(self.progress)
        layout.addLayout(legend)

        hint = _WrappedLabel(
            "Click a cell to see its point, click it again to cycle its grade; 1/2/3 set "
            "Normal/Mild, Moderate, Severe; "
            "arrows move; Delete clears. Drag a point in the viewer to move it. "
            "Probabilities (N/M/S) are the helper model's."
        )
        hint.setStyleSheet("color:#9aa0a6; font-size:11px;")
        layout.addWidget(hint)

        self.status = _WrappedLabel("")
        layout.addWidget(self.status)

        self.note_field = NoteField(GRADES_EXAMPLE)
        self.note_field.setEnabled(False)
        layout.addWidget(self.note_field)

        self.submit_button = QPushButton("Submit grades")
        self.submit_button.setToolTip("Store this sheet as your corrected grade version.")
        self.submit_button.clicked.connect(self._submit_clicked)
        self.submit_button.setEnabled(False)
        layout.addWidget(self.submit_button)

    # -- case ---------------------------------------------------------------------------
    def load_case(self, case_id: str) -> bool:
        """Open ``case_id``: its series, the annotator's restored sheet and its points.

        Returns False (and shows why) when the case cannot be opened; the viewer and the
        previous case are then left as they were.
        """
        try:
            session = GradeSession.open(self.project, case_id, self.annotator)
            loaded, missing = self._load_series(case_id)
        except REPORTED as exc:
            self._error(exc)
            return False
        reuse = self._reusable(loaded)
        if not reuse:
            self.close_case()
        self.session, self.case_id = session, case_id
        try:
            if reuse:
                self._show_in_place(loaded)
            else:
                self._show_series(loaded)
            unplaced = self._add_points()
        except REPORTED as exc:  # never leave half a case in the viewer
            self.close_case()
            self._fill_table()
            self._error(f"case {case_id}: could not be shown: {exc}")
            return False
        self._fill_table()
        self.note_field.show_note_of(session.base, self.annotator, case_id, self.project)
        self.note_field.setEnabled(True)
        self.submit_button.setEnabled(True)
        self._update_title()
        messages = []
        if session.pending:
            messages.append(f"{len(session.pending)} unsubmitted edit(s) restored.")
        if missing:
            messages.append("Not shown: " + "; ".join(missing))
        if unplaced:
            messages.append(unplaced)
        if missing or unplaced:
            self._error(" ".join(messages))
        else:
            self._info(" ".join(messages) or f"{case_id}: grade the 25 cells, then Submit.")
        first = self._first_series()
        if first is not None:
            self._show(first)
            self.viewer.reset_view()
        self.table.setCurrentCell(-1, -1)
        return True

    def close_case(self) -> None:
        """Remove this widget's layers of the open case from the viewer."""
        gone = [
            layer
            for series in self.series.values()
            for layer in (series.points, series.layer if series.owned else None)
            if layer is not None and layer in self.viewer.layers
        ]
        if gone:
            with removing_layers(self.viewer):
                for layer in gone:
                    self.viewer.layers.remove(layer)
        self.series = {}
        self.session = self.case_id = None
        self.note_field.closed()
        self.note_field.setEnabled(False)
        self.submit_button.setEnabled(False)

    def _load_series(self, case_id: str) -> tuple[list[StudySeries], list[str]]:
        own = [s.layer for s in self.series.values() if s.owned]  # they go when it closes
        return load_study_series(self.project, case_id, self.viewer, skip=own)

    def _show_series(self, loaded: list[StudySeries]) -> None:
        self._updating = True
        try:
            self.series = add_series_layers(self.viewer, loaded)
        finally:
            self._updating = False

    def _reusable(self, loaded: list[StudySeries]) -> bool:
        """Whether the next study can be shown in the open study's layers: the same series
        (by name, in the same order), all of them this widget's own, each with its Points
        layer. Removing and adding six layers took about a second of the two a study took
        to open."""
        return same_series(self.viewer, self.series, loaded) and all(
            s.points is not None and s.points in self.viewer.layers for s in self.series.values()
        )

    def _show_in_place(self, loaded: list[StudySeries]) -> None:
        """Put the next study's series into the open study's image and Points layers."""
        self._updating = True
        try:
            self.series = show_in_place(self.series, loaded)
            for series in self.series.values():
                series.points.selected_data = set()
                series.points.mode = "pan_zoom"
        finally:
            self._updating = False

    def _series_of(self, point: LevelPoint) -> StudySeries | None:
        return series_holding(self.series, point)

    def _first_series(self) -> StudySeries | None:
        return next(iter(self.series.values()), None)

    # -- points -------------------------------------------------------------------------
    def _add_points(self) -> str:
        """One Points layer per series; returns a message about points not shown."""
        sheet = self.session.sheet
        elsewhere: list[str] = []
        per_series: dict[str, list[tuple[str, str]]] = {d: [] for d in self.series}
        for cell in sheet.cells():
            point = sheet.points.get(cell)
            if point is None:
                continue
            series = self._series_of(point)
            if series is None:
                elsewhere.append(f"{CONDITION_TAGS[cell[0]]} {LEVEL_DISPLAY[cell[1]]}")
                continue
            per_series[series.description].append(cell)
        bad: list[str] = []
        self._updating = True
        try:
            for description, series in self.series.items():
                cells = []
                data = []
                for cell in per_series[description]:
                    try:
                        data.append(series.to_data(sheet.points[cell]))
                        cells.append(cell)
                    except ValueError as exc:
                        bad.append(str(exc))
                data = np.reshape(data, (-1, 3))
                if series.points is None:
                    series.points = self._make_points_layer(series, data, cells)
                else:
                    self._refill_points_layer(series, data, cells)
        finally:
            self._updating = False
        parts = []
        if elsewhere:
            parts.append(
                f"{len(elsewhere)} point(s) are on series this study does not have "
                f"({', '.join(elsewhere)}); they are kept but not shown."
            )
        parts.extend(bad)
        return " ".join(parts)

    @staticmethod
    def _point_features(series: StudySeries, cells) -> pd.DataFrame:
        # object columns: an empty layer must still accept text defaults for added points
        return pd.DataFrame(
            {
                "condition": pd.Series([c for c, _ in cells], dtype=object),
                "level": pd.Series([lv for _, lv in cells], dtype=object),
                "label": pd.Series([point_label(c, lv, series) for c, lv in cells], dtype=object),
            }
        )

    def _refill_points_layer(self, series: StudySeries, data: np.ndarray, cells) -> None:
        """The next study's points in a series' Points layer kept from the last study."""
        layer = series.points
        layer.name = f"{self.case_id} {series.description} points"
        layer.affine = series.affine
        layer.data = data
        layer.features = self._point_features(series, cells)
        layer.feature_defaults = _NEW_POINT  # setting features resets the defaults
        layer.face_color = [self._point_color(cell) for cell in cells] or "white"
        layer.visible = False

    def _make_points_layer(self, series: StudySeries, data: np.ndarray, cells):
        features = self._point_features(series, cells)
        # a point added by a click lands on the slice drawn, also on an angled block
        layer = self.viewer.add_layer(
            ShownSlicePoints(
                data,
                ndim=3,
                affine=series.affine,
                name=f"{self.case_id} {series.description} points",
                features=features,
                feature_defaults=_NEW_POINT,
                face_color=[self._point_color(cell) for cell in cells] or "white",
                border_color="white",
                border_width=0.12,
                size=4.5,
                text=POINT_TEXT,
                units=("mm", "mm", "mm"),
                visible=False,
            )
        )
        # by name: the layer shows the same series of the next study when it is reused
        name = series.description
        layer.events.data.connect(lambda event: self._points_changed(self.series.get(name), event))
        layer.mouse_drag_callbacks.append(self._drag_then_sync(name))
        return layer

    def _point_color(self, cell) -> str:
        return GRADE_COLORS[self.session.sheet.grades.get(cell)]

    def _drag_then_sync(self, name: str):
        def callback(layer, event):
            self._dragging = True
            try:
                yield
                while event.type == "mouse_move":
                    yield
            finally:
                self._dragging = False
            self._sync_points(self.series.get(name))

        return callback

    def _points_changed(self, series: StudySeries | None, event) -> None:
        action = str(getattr(event, "action", ""))
        if self._updating or self._dragging or action not in ("added", "removed", "changed"):
            return
        self._sync_points(series)

    def _sync_points(self, series: StudySeries | None) -> None:
        """Log every difference between a series' Points layer and the sheet."""
        if self._updating or self.session is None or series is None or series.points is None:
            return
        layer, session = series.points, self.session
        try:
            conditions = list(layer.features["condition"])
            levels = list(layer.features["level"])
            present: dict[tuple[str, str], LevelPoint] = {}
            new_rows = []
            for row, (condition, level) in enumerate(zip(conditions, levels, strict=True)):
                if not condition or (condition, level) in present:
                    new_rows.append(row)  # added in the viewer (or a copy of a point)
                    continue
                old = session.sheet.points.get((condition, level))
                name = old.series if old is not None else None
                present[(condition, level)] = series.to_point(layer.data[row], name)
            for cell, point in present.items():
                session.set_point(*cell, point)
            for cell, point in list(session.sheet.points.items()):
                if self._series_of(point) is series and cell not in present:
                    session.set_point(*cell, None)
            if new_rows:
                self._assign_new_points(series, new_rows, present)
        except REPORTED as exc:
            self._error(exc)
        self._refresh_progress()

    def _assign_new_points(self, series: StudySeries, rows: list[int], present) -> None:
        """A point added in the viewer becomes the selected cell's point, if it has none."""
        layer, session = series.points, self.session
        cell = self._selected_cell()
        keep = None
        if cell is not None and cell not in session.sheet.points and cell not in present:
            keep = rows[-1]
            session.set_point(*cell, series.to_point(layer.data[keep]))
        drop = [r for r in rows if r != keep]
        self._updating = True
        try:
            if keep is not None:
                features = layer.features.copy()
                features.loc[keep, "condition"] = cell[0]
                features.loc[keep, "level"] = cell[1]
                features.loc[keep, "label"] = point_label(*cell, series)
                layer.features = features
                layer.feature_defaults = _NEW_POINT  # setting features resets the defaults
            if drop:
                layer.selected_data = set(drop)
                layer.remove_selected()
        finally:
            self._updating = False
        self._recolor_points(series)
        if keep is None:
            self._error(
                "Select a cell without a point first, then add its point (the point added "
                "was removed)."
            )
        else:
            self._info(f"Point placed for {CONDITION_DISPLAY[cell[0]]} {LEVEL_DISPLAY[cell[1]]}.")

    # -- table --------------------------------------------------------------------------
    def _fill_table(self) -> None:
        if self.session is None:
            self.table.clearContents()
            self.title.setText("No case open.")
            self._refresh_progress()
            return
        self._updating = True
        try:
            for row, condition in enumerate(CONDITIONS):
                for col, level in enumerate(LEVELS):
                    self._render_cell(row, col, condition, level)
        finally:
            self._updating = False
        self._refresh_progress()

    def _render_cell(self, row: int, col: int, condition: str, level: str) -> None:
        session = self.session
        grade = session.sheet.grades.get((condition, level))
        probs = session.probabilities(condition, level)
        proposed = session.proposal.grades.get((condition, level)) if session.proposal else None
        changed = session.proposal is not None and grade != proposed
        item = self.table.item(row, col)
        if item is None:
            item = QTableWidgetItem()
            self.table.setItem(row, col, item)
        item.setText(cell_text(grade, probs))
        item.setData(CELL_ROLE, {"grade": grade, "probs": probs, "changed": changed})
        tip = f"{CONDITION_DISPLAY[condition]} {LEVEL_DISPLAY[level]}: {grade or 'not graded'}"
        if probs is not None:
            tip += "\nmodel: " + ", ".join(
                f"{g} {p:.2f}" for g, p in zip(GRADES, probs, strict=False)
            )
        if changed:
            tip += f"\nchanged from the proposal ({proposed or 'not graded'})"
        point = session.sheet.points.get((condition, level))
        if point is not None:
            tip += (
                f"\npoint: {point.series}, instance {point.instance}, "
                f"x {point.x:.1f}, y {point.y:.1f}"
            )
        item.setToolTip(tip)

    def _refresh_cell(self, condition: str, level: str) -> None:
        self._render_cell(CONDITIONS.index(condition), LEVELS.index(level), condition, level)
        for series in self.series.values():
            if (condition, level) in series.cells():
                self._recolor_points(series)
        self._refresh_progress()

    def _recolor_points(self, series: StudySeries) -> None:
        cells = series.cells()
        if not cells:
            return
        self._updating = True
        try:
            series.points.face_color = [
                self._point_color(cell) if cell[0] else "white" for cell in cells
            ]
        finally:
            self._updating = False

    def _refresh_progress(self) -> None:
        if self.session is None:
            self.progress.setText("")
            return
        sheet = self.session.sheet
        graded = sum(sheet.grades.get(cell) is not None for cell in sheet.cells())
        text = f"{graded}/25 graded · {len(sheet.points)} points"
        if self.session.proposal is not None:
            changed = sum(
                sheet.grades.get(cell) != self.session.proposal.grades.get(cell)
                for cell in sheet.cells()
            )
            text += f" · {changed} changed"
        self.progress.setText(text)

    def _update_title(self) -> None:
        base = self.session.base
        if base is None:
            source = "no proposal (empty sheet)"
        elif base.kind == "proposal":
            source = f"proposal v{base.id}" + (
                f" (model {base.model_version})" if base.model_version else ""
            )
        else:
            source = f"{base.kind} v{base.id}" + (f" by {base.annotator}" if base.annotator else "")
        self.title.setText(f"<b>{self.case_id}</b> · {self.annotator} · base: {source}")

    def _selected_cell(self) -> tuple[str, str] | None:
        row, col = self.table.currentRow(), self.table.currentColumn()
        if row < 0 or col < 0:
            return None
        return CONDITIONS[row], LEVELS[col]

    def _cell_clicked(self, row: int, col: int) -> None:
        """A click on the selected cell cycles its grade; a click on another cell only
        selects it (and shows its point): looking at a level must not change its grade."""
        if self.session is None or not self._press_on_current:
            return
        self._apply(lambda c, lv: self.session.cycle_grade(c, lv), CONDITIONS[row], LEVELS[col])

    def _current_changed(self, row: int, col: int, *_) -> None:
        if self._updating or self.session is None or row < 0 or col < 0:
            return
        self.go_to(CONDITIONS[row], LEVELS[col])

    def _key(self, key) -> bool:
        cell = self._selected_cell()
        if self.session is None or cell is None:
            return False
        if key in _KEY_GRADES:
            grade = _KEY_GRADES[key]
            self._apply(lambda c, lv: self.session.set_grade(c, lv, grade), *cell)
            return True
        if key == Qt.Key.Key_Space:
            self._apply(lambda c, lv: self.session.cycle_grade(c, lv), *cell)
            return True
        if key in _CLEAR_KEYS:
            self._apply(lambda c, lv: self.session.set_grade(c, lv, None), *cell)
            return True
        return False

    def _apply(self, change, condition: str, level: str) -> None:
        try:
            change(condition, level)
        except REPORTED as exc:
            self._error(exc)
            return
        self._refresh_cell(condition, level)

    # -- navigation ---------------------------------------------------------------------
    def _show(self, series: StudySeries, index: np.ndarray | None = None) -> None:
        show_series(self.viewer, self.series, series, index)

    def go_to(self, condition: str, level: str) -> None:
        """Show the series and slice of a cell's point (or the series it is read on)."""
        point = self.session.sheet.points.get((condition, level)) if self.session else None
        series = self._series_of(point) if point is not None else None
        if series is None:
            self._show_unplaced(condition, level)
            return
        self._show(series, series.to_data(point))
        cells = series.cells()
        if (condition, level) in cells:
            layer = series.points
            layer.selected_data = {cells.index((condition, level))}
            self.viewer.layers.selection.active = layer
            layer.mode = "select"

    def _show_unplaced(self, condition: str, level: str) -> None:
        """Show where a cell without a point is read (:func:`reading_place`, from the
        sheet's other points at that level)."""
        sheet = self.session.sheet
        at_level = [p for (_, lv), p in sheet.points.items() if lv == level]
        series, index = reading_place(self.series, condition, level, at_level)
        if series is None:
            return
        self._show(series, index)
        if series.points is not None:  # ready for the point: napari's add key works at once
            self.viewer.layers.selection.active = series.points
        self._info(
            f"{CONDITION_DISPLAY[condition]} {LEVEL_DISPLAY[level]}: no point yet; shown "
            f"{series.description}. Press 2 (add points) and click where it is."
        )

    # -- submit -------------------------------------------------------------------------
    def submit(self) -> LabelVersion:
        """Store the sheet as the annotator's corrected grades version.

        Raises
        ------
        ProjectError
            When no case is open.
        """
        if self.session is None:
            raise ProjectError("open a case first.")
        for series in self.series.values():
            self._sync_points(series)  # a drag still in flight counts
        before = self.session.base
        version = self.session.submit(note=self.note_field.note())
        self.note_field.submitted()
        self._update_title()
        if before is not None and version.id == before.id:
            self._info(
                f"{self.case_id}: no changes since your version {version.id}; nothing stored."
            )
            return version
        missing = 25 - sum(g is not None for g in self.session.sheet.grades.values())
        note = f" ({missing} cell(s) not graded)" if missing else ""
        self._info(f"{self.case_id}: submitted as version {version.id}{note}.")
        return version

    def _submit_clicked(self) -> None:
        try:
            self.submit()
        except REPORTED as exc:
            self._error(exc)
