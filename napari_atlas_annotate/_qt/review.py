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
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..project import LabelVersion, Project, ProjectError
from ..review.adjudication import CONSENSUS, STAPLE, current_final, finalize, reopen
from ..review.cases import CaseReview, load_masks, mask_consensus, mask_disagreement, review_case
from ..review.cases import review_project as _review_project
from ..spine_grades import GRADES
from .status_messages import StatusMessages

REPORTED = (ProjectError, ValueError, OSError, KeyError, IndexError)

#: Colours of the disagreement map: 1 annotator differs (amber), 2 (orange), 3+ (red).
DISAGREEMENT_COLORS = [(255, 210, 0), (255, 120, 0), (230, 20, 20)]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


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
    """

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
        self.last_error: str | None = None
        self._build()
        self.lead_edit.setText(lead)
        if project is not None:
            self.open_project(project)

    # -- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        opener = QGroupBox("Project")
        form = QFormLayout(opener)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("project folder")
        form.addRow("Folder", self.folder_edit)
        self.lead_edit = QLineEdit()
        self.lead_edit.setPlaceholderText("lead's name")
        form.addRow("Lead", self.lead_edit)
        open_button = QPushButton("Open for review")
        open_button.clicked.connect(lambda: self.open_project(self.folder_edit.text()))
        form.addRow(open_button)
        layout.addWidget(opener)

        cases = QGroupBox("Cases (most disputed first)")
        box = QVBoxLayout(cases)
        self.case_list = QListWidget()
        # a click opens the case, as in the annotator dock; double-click / Enter reloads it
        self.case_list.itemActivated.connect(lambda item: self.load_case(item.data(256)))
        self.case_list.itemClicked.connect(self._case_clicked)
        box.addWidget(self.case_list)
        layout.addWidget(cases)

        self.table_box = QGroupBox("Agreement and decisions")
        tbox = QVBoxLayout(self.table_box)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
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
        layout.addLayout(actions)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

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
        self.project = project
        self.folder_edit.setText(str(project.folder))
        return self.refresh_cases()

    def refresh_cases(self) -> bool:
        """Rank the project's cases by disagreement and list them."""
        try:
            reviews, skipped = _review_project(self.project)
        except REPORTED as exc:
            self._error(exc)
            return False
        self.case_list.clear()
        for r in reviews:
            final = "  FINAL" if r.final_version else ""
            item = QListWidgetItem(
                f"{r.case_id}   disagreement {r.disagreement:.3f}   "
                f"[{', '.join(r.annotators)}]{final}"
            )
            item.setData(256, r.case_id)
            self.case_list.addItem(item)
        self._info(
            f"{len(reviews)} case(s) to review"
            + (f", {len(skipped)} with fewer than two annotators" if skipped else "")
        )
        return True

    def _case_clicked(self, item: QListWidgetItem) -> None:
        case_id = item.data(256)
        if self.review is None or self.review.case_id != case_id:
            self.load_case(case_id)

    def case_ids(self) -> list[str]:
        return [self.case_list.item(i).data(256) for i in range(self.case_list.count())]

    def close_case(self) -> None:
        for layer in self.layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.layers, self.review = [], None

    def load_case(self, case_id: str) -> bool:
        """Show the case's image, each annotator's labels, consensus and disagreement."""
        from .._napari.layers import image_layer_data, labels_layer_data

        project = self.project
        try:
            review = review_case(project, case_id)
            volume = project.load_image(case_id)
            to_add = [image_layer_data(volume, f"{case_id} image")]
            if review.masks is not None:
                masks = load_masks(project, review.versions)
                names = review.masks.classes
                for who, labels in masks.items():
                    to_add.append(labels_layer_data(labels, volume, names, name=who))
                to_add.append(
                    labels_layer_data(
                        mask_consensus(masks, "majority"), volume, names, name="consensus"
                    )
                )
                levels = [f"{k} differ" for k in range(1, len(masks))]
                colors = {
                    n: DISAGREEMENT_COLORS[min(i, len(DISAGREEMENT_COLORS) - 1)]
                    for i, n in enumerate(levels)
                }
                to_add.append(
                    labels_layer_data(
                        mask_disagreement(masks), volume, levels, colors, name="disagreement"
                    )
                )
        except REPORTED as exc:
            self._error(exc)
            return False
        self.close_case()
        self.review = review
        for data, kwargs, kind in to_add:
            add = self.viewer.add_image if kind == "image" else self.viewer.add_labels
            self.layers.append(add(data, **kwargs))
        for layer in self.layers[1:-2]:
            layer.visible = False  # annotators off; consensus and disagreement on
        self._fill_table(review)
        final = f" Final version {review.final_version}." if review.final_version else ""
        self._info(f"{case_id}: {len(review.annotators)} annotators.{final}")
        return True

    # -- table --------------------------------------------------------------------------
    def _fill_table(self, review: CaseReview) -> None:
        pairs = [
            f"{a}|{b}" for i, a in enumerate(review.annotators) for b in review.annotators[i + 1 :]
        ]
        self.choices = {}
        if review.masks is not None:
            m = review.masks
            header = [
                "class",
                *(f"Dice {p}" for p in pairs),
                *(f"HD95 {p}" for p in pairs),
                *(f"ΔV ml {p}" for p in pairs),
                "take",
            ]
            rows = [
                (
                    name,
                    [_fmt(m.dice[name][p]) for p in pairs]
                    + [_fmt(m.hd95[name][p], 1) for p in pairs]
                    + [_fmt(m.volume_diff_ml[name][p], 2) for p in pairs],
                )
                for name in m.classes
            ]
            options = [CONSENSUS, STAPLE, *review.annotators]
        else:
            g = review.grades
            header = ["cell", *review.annotators, "take"]
            rows = [
                (cell, [str(said[who] or "-") for who in review.annotators])
                for cell, said in g.cells.items()
            ]
            options = [CONSENSUS, *review.annotators, *GRADES]
        self.table.clear()
        self.table.setColumnCount(len(header))
        self.table.setHorizontalHeaderLabels(header)
        self.table.setRowCount(len(rows))
        for r, (key, values) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(key))
            for c, text in enumerate(values, start=1):
                self.table.setItem(r, c, QTableWidgetItem(text))
            combo = QComboBox()
            combo.addItems(options)
            self.table.setCellWidget(r, len(header) - 1, combo)
            self.choices[key] = combo
        self.table.resizeColumnsToContents()

    def choose(self, key: str, source: str) -> None:
        """Set the source of a class or grade cell (what the row's combo box shows)."""
        combo = self.choices[key]
        index = combo.findText(source)
        if index < 0:
            raise ValueError(f"{source!r} is not a choice for {key!r}")
        combo.setCurrentIndex(index)

    def decisions(self) -> dict[str, str]:
        return {key: combo.currentText() for key, combo in self.choices.items()}

    # -- actions ------------------------------------------------------------------------
    def _lead(self) -> str:
        lead = self.lead_edit.text().strip()
        if not lead:
            raise ProjectError("enter the lead's name first (it is recorded with decisions).")
        return lead

    def finalize(self) -> LabelVersion | None:
        if self.review is None:
            self._error("open a case first.")
            return None
        case_id = self.review.case_id
        try:
            before = current_final(self.project, case_id)
            version = finalize(self.project, case_id, self._lead(), self.decisions())
        except REPORTED as exc:
            self._error(exc)
            return None
        self.refresh_cases()
        self.load_case(case_id)
        if before is not None and before.id == version.id:
            self._info(f"{case_id}: already final as decided (version {version.id}); nothing new.")
        else:
            self._info(f"{case_id}: final version {version.id} stored.")
        return version

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
        self.refresh_cases()
        self.load_case(case_id)
        self._info(f"{case_id}: reopened for annotation.")
        return True
