"""The helper-model panel of the annotator dock: propose, retrain, uncertainty, export.

Each button is one call into the core, run off the GUI thread by
:class:`~napari_atlas_annotate._qt.background.BackgroundTask`, so the radiologist keeps
painting while the model works:

- *Propose this case* / *Propose all cases*: :func:`napari_atlas_annotate.rounds.propose`;
- *Train new round*: :func:`napari_atlas_annotate.rounds.retrain`;
- *Export…*: :func:`napari_atlas_annotate.export.export_project` (format, status, folder,
  whether to replace an earlier export there);
- *Show uncertainty*: the open case's uncertainty map (saved next to its latest proposal,
  see :func:`napari_atlas_annotate.models.proposals.uncertainty_path`) as an Image layer
  placed by its own affine, so it lies exactly over the image.

One job at a time (the buttons are disabled while one runs; *Cancel* stops it at the core's
next check). Each job opens its own :class:`~napari_atlas_annotate.project.Project` on the
project folder and closes it at the end: the dock's connection stays on the GUI thread,
where the edit log writes every stroke.

When a proposal run has made a new proposal for the open case, the case is reloaded only
if the annotator has no unsubmitted edits on it; otherwise they are told that a new
proposal is available (their work is never replaced).
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..project import Project, ProjectError
from .background import BackgroundTask, JobRefused

if TYPE_CHECKING:
    from .annotator import AnnotatorDock

#: Device choices offered (``models.devices.DEVICE_CHOICES``).
DEVICES = ("auto", "cpu", "cuda")
#: The Export dialog's box for ``export --overwrite``.
OVERWRITE_BOX = "Replace an earlier export"
#: The Export dialog's box for ``export --with-notes``.
NOTES_BOX = "Readers' notes (notes.csv)"
#: ``atlas-annotate export`` options the core's messages name, and the dialog's fields.
EXPORT_FIELDS = {
    "--overwrite": f"the '{OVERWRITE_BOX}' box",
    "--with-notes": f"the '{NOTES_BOX}' box",
    "--status": "the 'Labels' choice",
    "--out": "the 'Output folder'",
}


# -- jobs: plain functions run in the worker thread, each with its own Project ------------
def propose_job(folder, case_ids, device, *, progress, cancel):
    """``rounds.propose`` on a project opened (and closed) in the calling thread."""
    rounds = importlib.import_module("napari_atlas_annotate.rounds")
    with Project(folder) as project:
        return rounds.propose(project, case_ids, device=device, progress=progress, cancel=cancel)


def retrain_job(folder, device, epochs, *, progress, cancel):
    """``rounds.retrain`` on a project opened (and closed) in the calling thread."""
    rounds = importlib.import_module("napari_atlas_annotate.rounds")
    with Project(folder) as project:
        return rounds.retrain(
            project, device=device, epochs=epochs, progress=progress, cancel=cancel
        )


def export_job(
    folder, fmt, out_dir, status, *, progress, cancel, overwrite=False, with_notes=False
):
    """``export_project`` on a project opened (and closed) in the calling thread.

    Export has no cancel hook; it stages its output and publishes it atomically, so
    a cancelled export is simply not reported (Cancel is refused for it).
    """
    from ..export import export_project

    with Project(folder) as project:
        return export_project(
            project,
            fmt,
            out_dir,
            status=status,
            progress=progress,
            overwrite=overwrite,
            with_notes=with_notes,
        )


def _cancel_errors() -> tuple[type[BaseException], ...]:
    """The core's 'stopped because cancel() said so' errors (imported lazily)."""
    from ..models.inference import InferenceCancelled
    from ..training.organs import TrainingCancelled

    return (InferenceCancelled, TrainingCancelled)


# -- the export form ----------------------------------------------------------------------
class ExportDialog(QDialog):
    """Format, status and output folder for an export."""

    def __init__(self, formats: list[str], parent: QWidget | None = None) -> None:
        from ..export import STATUSES

        super().__init__(parent)
        self.setWindowTitle("Export labels")
        form = QFormLayout(self)
        self.format_combo = QComboBox()
        self.format_combo.addItems(formats)
        form.addRow("Format", self.format_combo)
        self.status_combo = QComboBox()
        self.status_combo.addItems(list(STATUSES))
        form.addRow("Labels", self.status_combo)
        self.format_combo.currentTextChanged.connect(self._format_changed)
        self._format_changed(self.format_combo.currentText())
        self.folder_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit)
        row.addWidget(browse)
        form.addRow("Output folder", row)
        self.overwrite_check = QCheckBox(OVERWRITE_BOX)
        self.overwrite_check.setToolTip(
            "Replace the export already in this folder (a folder with its provenance.json); "
            "any other folder, the project and its images are never replaced."
        )
        form.addRow(self.overwrite_check)
        self.notes_check = QCheckBox(NOTES_BOX)
        self.notes_check.setToolTip(
            "Also write what the readers noted with the labels they submitted (free text; a "
            "note holding a patient identifier of the source DICOM stops the export)."
        )
        form.addRow(self.notes_check)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _format_changed(self, fmt: str) -> None:
        from ..export import rsna_submission

        # a submission is the grader's latest proposals: the labels' status plays no part
        proposals = fmt == rsna_submission.FORMAT
        self.status_combo.setEnabled(not proposals)
        if proposals:
            self.status_combo.setToolTip("rsna-submission writes each study's latest proposal.")
        else:
            self.status_combo.setToolTip(
                "final: the lead's final version of each case; corrected: final, else the "
                "latest corrected version (cases with neither are skipped); any: corrected, "
                "else the model's proposal, marked unreviewed in provenance.json."
            )

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to folder")
        if folder:
            self.folder_edit.setText(folder)

    def ask(self) -> tuple[str, str, str, bool, bool] | None:
        """Show the form; :meth:`answer` or None when cancelled."""
        if self.exec() != QDialog.DialogCode.Accepted:
            return None
        return self.answer()

    def answer(self) -> tuple[str, str, str, bool, bool]:
        """``(format, status, folder, overwrite, with_notes)`` as filled in."""
        return (
            self.format_combo.currentText(),
            self.status_combo.currentText(),
            self.folder_edit.text().strip(),
            self.overwrite_check.isChecked(),
            self.notes_check.isChecked(),
        )


# -- the panel -----------------------------------------------------------------------------
class ModelPanel(QGroupBox):
    """Helper-model controls embedded in the :class:`AnnotatorDock`.

    Parameters
    ----------
    dock
        The annotator dock; the panel reads its project, annotator and open case and
        reports through its status line.
    """

    def __init__(self, dock: AnnotatorDock) -> None:
        super().__init__("Helper model")
        self.dock = dock
        self.uncertainty_layer = None
        self.last_proposals: list = []
        self.last_round: Any = None
        self.last_export: Any = None
        self.proposal_waiting: str | None = None

        layout = QVBoxLayout(self)
        self.model_label = QLabel("No project open.")
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)

        device = QHBoxLayout()
        device.addWidget(QLabel("Device"))
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICES))
        self.device_combo.setToolTip("auto: CUDA when this torch build sees a GPU, else CPU.")
        device.addWidget(self.device_combo, 1)
        layout.addLayout(device)

        propose = QHBoxLayout()
        self.propose_case_button = QPushButton("Propose this case")
        self.propose_case_button.clicked.connect(self.propose_current)
        self.propose_all_button = QPushButton("Propose all cases")
        self.propose_all_button.clicked.connect(lambda: self.propose(None))
        self.propose_all_button.setToolTip(
            "Propose every case not final that has no proposal from the active model yet "
            "(after a promoted round: all of them)."
        )
        propose.addWidget(self.propose_case_button)
        propose.addWidget(self.propose_all_button)
        layout.addLayout(propose)

        more = QHBoxLayout()
        self.train_button = QPushButton("Train new round")
        self.train_button.clicked.connect(lambda: self.train())
        self.uncertainty_button = QPushButton("Show uncertainty")
        self.uncertainty_button.clicked.connect(self.show_uncertainty)
        more.addWidget(self.train_button)
        more.addWidget(self.uncertainty_button)
        layout.addLayout(more)

        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._export_clicked)
        layout.addWidget(self.export_button)

        self.task = BackgroundTask(self, viewer=dock.viewer)  # closing the viewer stops it
        self.task.running_changed.connect(lambda _running: self._update_buttons())
        # the progress row shows only while a job runs (napari's activity dock keeps the
        # history): idle, its height goes to the class list on short screens
        self.task.setVisible(False)
        self.task.running_changed.connect(self.task.setVisible)
        layout.addWidget(self.task)
        self._update_buttons()

    # -- state ------------------------------------------------------------------------------
    @property
    def project(self) -> Project | None:
        return self.dock.project

    @property
    def device(self) -> str:
        return self.device_combo.currentText()

    def _update_buttons(self) -> None:
        idle = not self.task.running
        has_project = self.project is not None
        organs = has_project and self.project.task == "organs"
        for button in (self.propose_all_button, self.train_button, self.export_button):
            button.setEnabled(idle and has_project)
        self.propose_case_button.setEnabled(idle and self.dock.case_id is not None)
        self.uncertainty_button.setEnabled(organs and self.dock.case_id is not None)
        self.device_combo.setEnabled(idle)

    def project_changed(self) -> None:
        """The dock opened a project (or a case): refresh the model line and the buttons."""
        self.refresh()

    def refresh(self) -> None:
        """Show the active model version and the last round's outcome."""
        self._update_buttons()
        project = self.project
        if project is None:
            self.model_label.setText("No project open.")
            return
        self.model_label.setText(model_summary(project))

    # -- messages ---------------------------------------------------------------------------
    def _error(self, message) -> None:
        self.dock._error(message)

    def _info(self, message: str) -> None:
        self.dock._info(message)
        try:
            from napari.utils.notifications import show_info

            show_info(message)
        except Exception:  # a courtesy; the dock shows the message
            pass

    def _start(self, name: str, job, on_result, **kwargs) -> bool:
        try:
            if self.project is None:
                raise ProjectError("open a project first.")
            self.task.start(
                name,
                job,
                on_result=on_result,
                on_error=lambda exc: self._failed(name, exc),
                on_cancelled=lambda exc: self._cancelled(name, exc),
                cancelled_by=_cancel_errors(),
                **kwargs,
            )
        except (ProjectError, JobRefused) as exc:
            self._error(exc)
            return False
        self.dock._info(f"{name}… (you can keep working; Cancel stops it)")
        return True

    def _failed(self, name: str, exc: BaseException) -> None:
        from ..models.proposals import ProposalBatchError

        if isinstance(exc, ProposalBatchError) and exc.proposals:
            # the batch went on past the cases that failed: show what was proposed first
            self._proposed(exc.proposals)
        message = f"{name} failed: {exc}"
        # the core speaks the command line's language: name the dialog's fields too
        fields = [f"{flag} is {field}" for flag, field in EXPORT_FIELDS.items() if flag in str(exc)]
        if name.startswith("Exporting") and fields:
            message += f" (In the Export dialog, {'; '.join(fields)}.)"
        self._error(message)
        self.refresh()

    def _cancelled(self, name: str, exc: BaseException) -> None:
        from ..training.organs import TrainingCancelled

        if isinstance(exc, TrainingCancelled):
            kept = "no new model was kept; the active model is unchanged"
        else:
            kept = "nothing was changed for the case in progress"
        self._info(f"{name}: cancelled; {kept}.")
        self.refresh()

    # -- propose ----------------------------------------------------------------------------
    def propose_current(self) -> bool:
        """Propose the case open in the dock."""
        if self.dock.case_id is None:
            self._error("open a case first.")
            return False
        return self.propose([self.dock.case_id])

    def propose(self, case_ids: list[str] | None) -> bool:
        """Propose ``case_ids`` (None: every case) in the background."""
        if self.project is None:
            self._error("open a project first.")
            return False
        folder, device = self.project.folder, self.device
        what = "all cases" if case_ids is None else ", ".join(case_ids)
        return self._start(
            f"Proposing {what}",
            lambda progress, cancel: propose_job(
                folder, case_ids, device, progress=progress, cancel=cancel
            ),
            self._proposed,
        )

    def _proposed(self, proposals) -> None:
        self.last_proposals = list(proposals or [])
        if not self.last_proposals:
            self._info(
                "Nothing to propose: every case not final already has a proposal from the "
                "active model. 'Propose this case' proposes the open case again; "
                "'atlas-annotate propose PROJECT --all' proposes every case again."
            )
            return
        ids = [p.case_id for p in self.last_proposals]
        message = f"Proposed {len(ids)} case(s)"
        if self.last_proposals and hasattr(self.last_proposals[0], "model_version"):
            message += f" with {self.last_proposals[0].model_version}"
        message += "."
        for p in self.last_proposals:  # organ proposals say what to check
            if getattr(p, "warning", ""):
                message += f" {p.case_id}: {p.warning}"
        dock = self.dock
        current = dock.case_id
        mine = [p for p in self.last_proposals if p.case_id == current]
        if mine and getattr(mine[0], "unchanged", False):
            # the model proposed exactly its stored proposal: nothing new to take or reload
            message += (
                f" {current}: the model proposed the same as its stored proposal "
                f"(version {mine[0].version_id}); nothing new to take."
            )
            dock.refresh_cases()
        elif current is not None and current in ids:
            if self._has_pending_edits():
                self.proposal_waiting = current
                message += (
                    f" A new proposal for {current} is available; your unsubmitted edits were "
                    "kept. Submit them, or use 'Reset to proposal' to take the new one."
                )
                dock.refresh_cases()
            else:
                dock.load_case(current)
                message += f" {current} reloaded with its new proposal."
        else:
            dock.refresh_cases()
        self.refresh()
        self._info(message)

    def _has_pending_edits(self) -> bool:
        """Whether the annotator has unsubmitted edits on the open case."""
        dock = self.dock
        if dock.hook is not None:
            dock.hook.flush()
            return bool(dock.project.pending_events(dock.case_id, dock.annotator, dock.base))
        session = getattr(dock.grade_sheet, "session", None)
        return bool(session is not None and session.pending)

    # -- train ------------------------------------------------------------------------------
    def train(self, epochs: int | None = None) -> bool:
        """Train a new round on the submitted labels in the background."""
        if self.project is None:
            self._error("open a project first.")
            return False
        folder, device = self.project.folder, self.device
        return self._start(
            "Training a new round",
            lambda progress, cancel: retrain_job(
                folder, device, epochs, progress=progress, cancel=cancel
            ),
            self._trained,
        )

    def _trained(self, result) -> None:
        self.last_round = result
        self.refresh()
        rounds = importlib.import_module("napari_atlas_annotate.rounds")
        folder = str(self.project.folder) if self.project is not None else None
        self._info(rounds.describe_round(result, folder))

    # -- export -----------------------------------------------------------------------------
    def _export_clicked(self) -> None:
        from ..export import FORMATS

        if self.project is None:
            self._error("open a project first.")
            return
        formats = [f for f, task in FORMATS.items() if task == self.project.task]
        answer = ExportDialog(formats, self).ask()
        if answer is not None:
            self.export(*answer)

    def export(
        self,
        fmt: str,
        status: str,
        out_dir: str | Path,
        overwrite: bool = False,
        with_notes: bool = False,
    ) -> bool:
        """Export the project's ``status`` labels as ``fmt`` to ``out_dir`` in the background
        (``overwrite``: replace an earlier export there; ``with_notes``: the readers' notes
        as well)."""
        if not str(out_dir).strip():
            self._error("choose an output folder for the export.")
            return False
        if self.project is None:
            self._error("open a project first.")
            return False
        folder = self.project.folder
        started = self._start(
            f"Exporting {fmt}",
            lambda progress, cancel: export_job(
                folder,
                fmt,
                Path(out_dir),
                status,
                progress=progress,
                cancel=cancel,
                overwrite=overwrite,
                with_notes=with_notes,
            ),
            self._exported,
        )
        if started:
            self.task.cancel_button.setEnabled(False)  # export stages and publishes atomically
        return started

    def _exported(self, result) -> None:
        self.last_export = result
        self._info(result.summary())

    # -- uncertainty --------------------------------------------------------------------------
    def show_uncertainty(self):
        """Add the open case's uncertainty map (latest proposal) over its image.

        Returns the layer, or None (with the reason shown) when there is none.
        """
        from .._napari.layers import image_layer_data
        from .._napari.shown_slice import ShownSliceImage
        from ..io import load_nifti
        from ..models.proposals import uncertainty_path
        from .annotator import REPORTED

        dock = self.dock
        try:
            if dock.project is None or dock.case_id is None:
                raise ProjectError("open a case first.")
            proposal = dock.project.latest_version(dock.case_id, kinds=("proposal",))
            if proposal is None:
                raise ProjectError(
                    f"case {dock.case_id} has no proposal yet; press 'Propose this case'."
                )
            path = uncertainty_path(dock.project, proposal)
            if not path.exists():
                raise ProjectError(
                    f"case {dock.case_id}: proposal version {proposal.id} has no uncertainty "
                    f"map ({path.name} is missing); propose the case again to make one."
                )
            volume = load_nifti(path)
            data, kwargs, _ = image_layer_data(
                volume, f"{dock.case_id} uncertainty (v{proposal.id})"
            )
        except REPORTED as exc:
            self._error(exc)
            return None
        if self.uncertainty_layer is not None and self.uncertainty_layer in dock.viewer.layers:
            dock.viewer.layers.remove(self.uncertainty_layer)
        kwargs.update(
            contrast_limits=(0.0, 1.0),
            colormap="inferno",
            blending="additive",
            opacity=0.6,
        )
        layer = dock.viewer.add_layer(ShownSliceImage(data, **kwargs))
        # keep the labels on top so painting stays where the radiologist expects it
        if dock.labels_layer is not None and dock.labels_layer in dock.viewer.layers:
            layers = dock.viewer.layers
            layers.move(layers.index(layer), layers.index(dock.labels_layer))
            layers.selection.active = dock.labels_layer
        dock._extra_layers.append(layer)  # removed with the case
        self.uncertainty_layer = layer
        dock._info(
            f"{dock.case_id}: uncertainty of proposal {proposal.id} shown (0 sure - 1 unsure)."
        )
        return layer


# -- summaries (plain text, no Qt) ------------------------------------------------------------
def model_summary(project: Project) -> str:
    """'Model: <version> (round N)' plus the last finished round's outcome."""
    from ..models.registry import active_record, list_rounds

    try:
        record = active_record(project)
        rounds = list_rounds(project)
    except Exception as exc:  # an old project without the tables: say so, do not crash
        return f"Model registry not readable: {exc}"
    if record is None:
        text = "Model: none yet (the packaged starter is installed on the first proposal)."
    else:
        where = f"round {record.round}" if record.round is not None else "registered"
        text = f"Model: {record.version} ({where})"
    finished = [r for r in rounds if r.get("finished_at")]
    if finished:
        last = finished[-1]
        metrics = last.get("metrics") or {}
        status = metrics.get("status", "finished")
        line = f"Last round {last['id']}: {status}"
        dice = metrics.get("mean_dice")
        if _number(dice):
            line += f", Dice {dice:.3f}"
            old = metrics.get("previous_mean_dice")
            if _number(old):
                line += f" (previous {old:.3f})"
        score = metrics.get("rsna_score_new")
        if _number(score):  # spine rounds: the RSNA score, lower is better
            line += f", RSNA score {score:.3f}"
            old = metrics.get("rsna_score_old")
            if _number(old):
                line += f" (previous {old:.3f})"
        text += "\n" + line
    return text


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
