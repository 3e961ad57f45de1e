"""The radiologist's annotation dock for organ (and spine) projects.

A thin skin over the core: the project (:class:`~napari_atlas_annotate.project.Project`)
knows the cases, their states and versions and restores unsubmitted work; the corrections
(:mod:`napari_atlas_annotate.corrections`) compute every accelerator; the
:class:`~napari_atlas_annotate._qt.edit_recorder.LabelsEditHook` logs every change. The
dock only shows what they return and turns clicks into one call each.

What the radiologist gets:

- the case queue (most uncertain first) with their own state per case
  (new / in_progress / submitted / final), Previous / Next;
- the case's image and their working label (base version plus replay of every logged but
  unsubmitted edit, so a crash loses at most the stroke in flight), with fixed class
  colours;
- the class list (keys 1-9 pick a class; the napari mode keys E, P, F, L, Z still pick
  erase, paint, fill, pick and pan/zoom; the class picked stays picked on the next case),
  each class's volume in ml beside its name, kept current edit by edit; brush size and a
  2D/3D brush; *3 views* puts coronal and sagittal views beside the main
  one (:mod:`.orthogonal_views`, with napari-orthogonal-views installed), where painting,
  undo and G work and are logged as in the main view;
- the CT window (Abdomen, Liver, Lung, Bone, or Custom: what the layer's contrast slider
  was set to), kept from case to case; an image that is not a CT keeps its own range;
- accelerators, each one undoable step in napari (Ctrl-Z) and one logged edit:
  *Fill between slices* (interpolates the current class across the slices skipped along
  the slice axis), *Remove small islands* and *Keep largest component* (current class),
  *Reset to proposal* (every class; logged as a reset, not as a paint of one class). A
  tool with nothing to do changes nothing, logs nothing, makes no undo step and says why
  (``Keep largest component: nothing changed; the liver is already one piece.``);
- *Paint only inside window*: while ticked, each paint stroke keeps only the voxels whose
  image intensity lies in [low, high] (Slicer's "editable intensity range"): brush roughly
  over the liver with a liver window and fat or bone under the brush stays unpainted. The
  stroke and its clean-up are one undo step;
- *Submit*: stores the label as the annotator's corrected version and opens the next case
  (Ctrl+Enter; Ctrl+PageDown / Ctrl+PageUp step through the queue without submitting).

Moving to another case shows it in the same image and labels layers (napari's undo stack
emptied, the view reset to the middle slice): at CT sizes that is half a second faster
than removing the two layers and adding two. A case's images are read through
:class:`~napari_atlas_annotate.stacks.CaseImages` (a DICOM folder is scanned once per case)
and its label is stored on the grid of the image shown, without reading it again.

Errors (missing image, a label not on the image grid, a folder that is not a project)
are shown in the dock and as a napari notification; the viewer stays up and nothing saved
is changed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QEvent, Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .._napari.layers import (
    META_KEY,
    WORLD_AXIS_LABELS,
    empty_undo_history,
    removing_layers,
    show_in_layer,
    tilt_degrees,
    undo_history_can_be_emptied,
)
from .._napari.shown_slice import ShownSliceImage, ShownSliceLabels
from ..corrections import (
    EditRecorder,
    fill_between_slices,
    keep_largest_component,
    remove_small_islands,
    threshold_paint,
    why_fill_unchanged,
    why_islands_unchanged,
    why_largest_unchanged,
)
from ..corrections.class_volumes import ClassVolumes
from ..corrections.other_windows import check_no_unseen_work
from ..corrections.region_grow import grow_from_voxel
from ..io.prefetch import ImagePrefetch
from ..project import LabelVersion, Project, ProjectError, replay
from ..stacks import CaseImages
from . import orthogonal_views
from .class_list import ClassList
from .ct_window_picker import CTWindowPicker
from .dock_keys import bind_dock_keys
from .edit_recorder import LabelsEditHook
from .model_panel import ModelPanel
from .note_field import NoteField, note_changed
from .project_opener import ProjectOpener
from .scrolling import scrolling_layout
from .status_messages import StatusMessages

if TYPE_CHECKING:
    import napari.viewer

#: A grid turned further than this against the view is pointed out when its case opens.
TILT_NOTED_DEGREES = 1.0

#: Seconds after a case opens during which a clicked or keyed Submit is not taken: about
#: a double click's interval, far less than any look at a case.
SUBMIT_GUARD_S = 0.6

#: Errors the dock reports instead of raising (domain errors, bad files, I/O).
REPORTED = (ProjectError, ValueError, OSError, KeyError, IndexError)


class AnnotatorDock(StatusMessages, QWidget):
    """Dock widget: open a project as an annotator, work through its cases.

    Parameters
    ----------
    viewer
        The napari viewer.
    project
        A :class:`Project` or its folder; ``None`` shows the open form.
    annotator
        The annotator's name (required with ``project``).
    """

    def __init__(
        self,
        viewer: napari.viewer.Viewer,
        project: Project | str | Path | None = None,
        annotator: str | None = None,
    ) -> None:
        super().__init__()
        self.viewer = viewer
        self.project: Project | None = None
        self.annotator: str | None = None
        self.case_id: str | None = None
        self.base: LabelVersion | None = None
        self.volume = None  # the open case's image (its grid is the label's)
        self.image_layer = None
        self.labels_layer = None
        self.hook: LabelsEditHook | None = None
        self.volumes: ClassVolumes | None = None  # each class's ml in the open case's label
        self.grade_sheet = None
        self._grade_sheet_missing = False
        self._seen_event_id: int | None = None
        self._resubmitted = False
        # when a Submit clicked or keyed may first be taken (time.monotonic()): just after
        # a case opens, a double click's second half or a held Ctrl+Enter would submit a
        # case nobody has looked at
        self._submit_guard_until = 0.0
        self._extra_layers: list = []
        self._class = 1  # the class painted: kept from case to case
        self._states: dict[str, str] = {}  # case id -> state, as of the last refresh
        self._listed: list[tuple[str, str]] = []  # (case id, text) of each row of the list
        self.last_error: str | None = None
        self.read_ahead = ImagePrefetch()  # the next case's CT, read while this one is worked
        self._build()
        self._bind_keys()
        if project is not None:
            self.open_project(project, annotator or "")

    def _bind_keys(self) -> None:
        """Keys for what a radiologist does on every case (none of them is napari's):
        Ctrl+Enter submits and opens the next case, Ctrl+PageDown / Ctrl+PageUp step
        through the queue without submitting, G grows the class from the voxel under the
        mouse and Shift+G takes back the part of it that looks like that voxel (a leak);
        only while a case is open."""

        def with_case(action):
            def run() -> None:
                if self.case_id is not None and self.submit_button.isEnabled():
                    action()

            return run

        bind_dock_keys(
            self.viewer,
            self,
            {
                "Control-Enter": with_case(self.submit_from_user),
                "Control-PageDown": with_case(lambda: self.step_case(+1)),
                "Control-PageUp": with_case(lambda: self.step_case(-1)),
                "G": with_case(self.grow_at_cursor),
                "Shift-G": with_case(lambda: self.grow_at_cursor(erase=True)),
            },
        )

    # -- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        layout = scrolling_layout(self)

        self.opener = ProjectOpener(
            "Annotator",
            "Open project",
            lambda: self.open_project(self.folder_edit.text(), self.annotator_edit.text()),
            "Open annotation project",
        )
        self.folder_field, self.open_button = self.opener.folder_field, self.opener.open_button
        self.folder_edit, self.annotator_edit = self.folder_field.edit, self.opener.name_edit
        layout.addWidget(self.opener)

        cases = QGroupBox("Cases (most uncertain first)")
        box = QVBoxLayout(cases)
        self.case_list = QListWidget()
        self.case_list.setUniformItemSizes(True)  # one line each: no per-row layout
        self.case_list.itemActivated.connect(self._case_reopened)
        self.case_list.itemClicked.connect(self._case_activated)
        # three rows at least; on a short screen the classes keep their room first
        rows = 3 * self.case_list.fontMetrics().lineSpacing() + 2 * self.case_list.frameWidth()
        self.case_list.setMinimumHeight(rows + 4)
        box.addWidget(self.case_list)
        nav = QHBoxLayout()
        self.prev_button = QPushButton("◀ Previous")
        self.prev_button.clicked.connect(lambda: self.step_case(-1))
        self.next_button = QPushButton("Next ▶")
        self.next_button.clicked.connect(lambda: self.step_case(+1))
        nav.addWidget(self.prev_button)
        nav.addWidget(self.next_button)
        box.addLayout(nav)
        layout.addWidget(cases)

        self.organ_box = QGroupBox("Classes (keys 1-9)")
        organ = QVBoxLayout(self.organ_box)
        self.class_list = ClassList([], self.select_class)
        organ.addWidget(self.class_list)
        brush = QHBoxLayout()
        brush.addWidget(QLabel("Brush"))
        self.brush_spin = QSpinBox()
        self.brush_spin.setRange(1, 200)
        self.brush_spin.setValue(10)
        self.brush_spin.valueChanged.connect(self._set_brush_size)
        brush.addWidget(self.brush_spin)
        self.brush_3d = QCheckBox("3D brush")
        self.brush_3d.toggled.connect(self._set_brush_3d)
        brush.addWidget(self.brush_3d)
        self.three_views = orthogonal_views.checkbox(
            "Coronal and sagittal views beside the axial one: paint, fill, undo and G work "
            "in each, and every edit is logged as in the main view.",
            self.show_three_views,
        )
        brush.addWidget(self.three_views)
        organ.addLayout(brush)

        display = QHBoxLayout()
        display.addWidget(QLabel("CT window"))
        self.display_combo = CTWindowPicker()  # kept from case to case
        display.addWidget(self.display_combo, 1)
        organ.addLayout(display)

        window = QHBoxLayout()
        self.window_check = QCheckBox("Paint only inside window")
        self.window_check.setToolTip(
            "Each paint stroke keeps only voxels whose intensity is in the range set here "
            "(its own range, not the CT window the image is shown with)."
        )
        window.addWidget(self.window_check)
        self.window_lo = QDoubleSpinBox()
        self.window_hi = QDoubleSpinBox()
        for spin, value in ((self.window_lo, 40.0), (self.window_hi, 200.0)):
            spin.setRange(-5000.0, 30000.0)
            spin.setDecimals(0)
            spin.setValue(value)
            spin.setToolTip("Painted voxels must lie in this range (HU for a CT).")
        window.addWidget(self.window_lo)
        window.addWidget(QLabel("to"))  # its own range, in words: not the CT window above
        window.addWidget(self.window_hi)
        window.addWidget(QLabel("HU"))
        organ.addLayout(window)

        buttons = [
            ("Fill between slices", self.fill_between_slices),
            ("Keep largest component", self.keep_largest_component),
            ("Reset to proposal", self.reset_to_proposal),
        ]
        for text, slot in buttons:
            button = QPushButton(text)
            button.clicked.connect(slot)
            organ.addWidget(button)
            setattr(self, _button_name(text), button)
        islands = QHBoxLayout()
        self.remove_islands_button = QPushButton("Remove islands <")
        self.remove_islands_button.clicked.connect(self.remove_small_islands)
        islands.addWidget(self.remove_islands_button)
        self.island_spin = QSpinBox()
        self.island_spin.setRange(1, 10_000_000)
        self.island_spin.setValue(50)
        self.island_spin.setSuffix(" voxels")
        islands.addWidget(self.island_spin)
        organ.addLayout(islands)
        grow = QHBoxLayout()
        grow_label = QLabel("Grow: G, Shift+G")
        grow.addWidget(grow_label)
        self.grow_tolerance = QSpinBox()
        self.grow_tolerance.setRange(1, 2000)
        self.grow_tolerance.setValue(60)
        self.grow_tolerance.setPrefix("\u00b1 ")
        self.grow_radius = QSpinBox()
        self.grow_radius.setRange(2, 500)
        self.grow_radius.setValue(30)
        self.grow_radius.setSuffix(" mm")
        for widget in (grow_label, self.grow_tolerance, self.grow_radius):
            widget.setToolTip(
                "Point at a missed part of the organ and press G: the picked class grows "
                "from that voxel into connected unlabelled voxels whose intensity is within "
                "the tolerance of it (HU for a CT), no further than the radius, nor "
                "through a bridge or rim thinner than 2 mm into a neighbour that looks "
                "alike. Other classes are never taken. Shift+G over a leak of the class "
                "(into bowel, fat) takes back the voxels of the class connected to it that "
                "look like it. Each is one Ctrl-Z step."
            )
            if widget is not grow_label:
                grow.addWidget(widget)
        organ.addLayout(grow)
        layout.addWidget(self.organ_box)

        self.grade_box = QGroupBox("Grade sheet")
        self.grade_layout = QVBoxLayout(self.grade_box)
        self.grade_box.setVisible(False)
        layout.addWidget(self.grade_box)

        self.model_panel = ModelPanel(self)  # propose / train / export in the background
        layout.addWidget(self.model_panel)

        self.lead_message = QLabel()  # the lead's last decision on the open case, if any
        self.lead_message.setWordWrap(True)
        self.lead_message.setStyleSheet("color:#e0a040;")
        self.lead_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lead_message.setVisible(False)
        layout.addWidget(self.lead_message)
        self.final_button = QPushButton("Show the final")  # a final organ case: compare
        self.final_button.setCheckable(True)
        self.final_button.setToolTip(
            "the lead's final labels of this case as a layer over yours, to see what the "
            "adjudication changed (shown only; your labels stay the ones you paint)"
        )
        self.final_button.toggled.connect(self.show_final)
        self.final_button.setVisible(False)
        layout.addWidget(self.final_button)
        self.final_layer = None
        self.note_field = NoteField()
        layout.addWidget(self.note_field)
        self.submit_button = QPushButton("Submit and next case")
        self.submit_button.clicked.connect(self.submit_from_user)
        layout.addWidget(self.submit_button)
        self.status = QLabel(
            "Open a project to start (make one with 'atlas-annotate init', or try "
            "'atlas-annotate demo')."
        )
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._enable(False)

    def _enable(self, on: bool) -> None:
        for widget in (
            self.organ_box,
            self.note_field,
            self.submit_button,
            self.prev_button,
            self.next_button,
        ):
            widget.setEnabled(on)

    def event(self, event) -> bool:  # Qt API
        # napari's close button on a dock takes the widget out of the window (its parent
        # becomes None) without closing it: the case's layers stayed, still logged, and a
        # dock opened again added a second set beside them
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self._taken_out()
        return super().event(event)

    def _taken_out(self) -> None:
        """The dock left the window: log what is pending and take its case's layers out
        (what was logged comes back when the case is opened again)."""
        if self.case_id is None:
            return
        if self.grade_sheet is not None:
            self.grade_sheet.close_case()
        self.close_case()
        self.read_ahead.clear()

    # -- project ------------------------------------------------------------------------
    def open_project(self, project: Project | str | Path, annotator: str) -> bool:
        """Open ``project`` as ``annotator`` and load their first case of the queue."""
        try:
            if not isinstance(project, Project):
                if not str(project).strip():
                    raise ProjectError("choose a project folder first.")
                if not annotator.strip():
                    raise ProjectError("type your name in Annotator first.")
                project = Project(project)
            project.ensure_annotator(annotator.strip())
        except REPORTED as exc:
            self._error(exc)
            return False
        self.close_case()
        self.read_ahead.clear()
        self.project, self.annotator = project, annotator.strip()
        self._rebind_grade_sheet()
        self.opener.opened(project.folder, self.annotator, project.task)
        spine = project.task == "spine"
        self.organ_box.setVisible(not spine)
        self.note_field.setVisible(not spine)  # the grade sheet has its own
        self.class_list.set_classes(project.classes)
        self._enable(True)
        self.refresh_cases()
        queue = self.case_ids()
        if not queue:
            self._info(f"{project.folder}: no cases yet. Add some with 'atlas-annotate add'.")
            return True
        todo = self._to_do(queue)
        opened, failed = self._open_first(todo or queue, refresh=False)  # just listed
        if opened is None:
            self._error(
                "none of the cases could be opened: "
                + " ".join(failed)
                + " Fix the image files, then pick a case in the list."
            )
        elif failed:
            self._error(
                f"Opened {opened}; skipped cases that could not be opened: " + " ".join(failed)
            )
        return True

    def _open_first(
        self, candidates: list[str], *, refresh: bool = True
    ) -> tuple[str | None, list[str]]:
        """Open the first of ``candidates`` that can be opened (``refresh``: as
        :meth:`load_case`).

        A case whose image is missing or broken must not block the queue: it is skipped
        and its reason kept.

        Returns
        -------
        opened, failed
            The case opened (None when none could be) and one message per case skipped.
        """
        failed: list[str] = []
        for case_id in candidates:
            if self.load_case(case_id, refresh=refresh):
                return case_id, failed
            failed.append(self.last_error or f"case {case_id} could not be opened.")
        return None, failed

    def _state(self, case_id: str) -> str:
        return self.project.case_state(case_id, self.annotator)

    def refresh_cases(self) -> None:
        """Rebuild the case list with this annotator's state of each case.

        The states are read for every case at once (:meth:`Project.queue_states`) and
        kept for picking the next case to do. When the queue holds the same cases in the
        same order as the list shows (after a submit, on opening a case), only the rows
        whose text changed are rewritten; otherwise the list is filled anew with its
        repainting off. A project of 20,000 cases lists in a fraction of a second.
        """
        if self.project is None:
            self.case_list.clear()
            self._states, self._listed = {}, []
            return
        rows = self.project.queue_states(self.annotator)
        self._states = {case_id: state for case_id, _, state in rows}
        listed = [
            (case_id, f"{case_id}  [{state}]" + ("" if u is None else f"  u={u:.2f}"))
            for case_id, u, state in rows
        ]
        self.case_list.setUpdatesEnabled(False)
        try:
            if [c for c, _ in listed] == [c for c, _ in self._listed]:
                for row, (old, new) in enumerate(zip(self._listed, listed, strict=True)):
                    if old[1] != new[1]:
                        self.case_list.item(row).setText(new[1])
            else:
                self.case_list.clear()
                for case_id, text in listed:
                    item = QListWidgetItem(text)
                    item.setData(Qt.ItemDataRole.UserRole, case_id)
                    self.case_list.addItem(item)
        finally:
            self.case_list.setUpdatesEnabled(True)
        self._listed = listed
        self._show_current()
        self.model_panel.refresh()

    def _show_current(self) -> None:
        """Make the open case the list's current row (none when no case is open)."""
        ids = self.case_ids()
        self.case_list.setCurrentRow(ids.index(self.case_id) if self.case_id in ids else -1)

    def _listed_again(self, refresh: bool) -> None:
        """After opening a case: read the list again, or only show the case current (and
        the helper panel's buttons for it, which a list refresh also updates)."""
        if refresh:
            self.refresh_cases()
        else:
            self._show_current()
            self.model_panel.refresh()

    def case_ids(self) -> list[str]:
        """The cases of the list, in queue order."""
        return [case_id for case_id, _ in self._listed]

    def _to_do(self, case_ids: list[str]) -> list[str]:
        """The cases of ``case_ids`` still to do (new or in progress), as of the last
        :meth:`refresh_cases`."""
        return [c for c in case_ids if self._states.get(c) in ("new", "in_progress")]

    def _case_activated(self, item: QListWidgetItem) -> None:
        case_id = item.data(Qt.ItemDataRole.UserRole)
        if case_id != self.case_id:
            self.load_case(case_id)

    def _case_reopened(self, item: QListWidgetItem) -> None:
        """Double-click / Enter: open the case, or reload it from the project if open."""
        self.load_case(item.data(Qt.ItemDataRole.UserRole))

    def step_case(self, step: int) -> None:
        """Open the previous (-1) or next (+1) case of the queue."""
        ids = self.case_ids()
        if not ids:
            return
        index = ids.index(self.case_id) + step if self.case_id in ids else 0
        if 0 <= index < len(ids):
            self.load_case(ids[index])
        else:
            end = "last" if step > 0 else "first"
            self._info(f"{self.case_id} is the {end} case of the queue.")

    # -- cases --------------------------------------------------------------------------
    def close_case(self, *, keep: tuple = ()) -> None:
        """Log anything pending and take the case's layers out of the viewer (but the
        layers in ``keep``, which the next case is shown in).

        The layers go in one batch: napari cleans its canvas (a full garbage collection,
        a quarter of a second with a CT in memory) once per batch, not once per layer.
        """
        self.display_combo.release()
        if self.hook is not None:
            try:
                self.hook.flush()
            except REPORTED as exc:
                self._error(exc)
            self.hook.disconnect()
            self.hook.layer.events.paint.disconnect(self._constrain_stroke)
        gone = [
            layer
            for layer in (self.labels_layer, self.image_layer, *self._extra_layers)
            if layer is not None and layer in self.viewer.layers and layer not in keep
        ]
        if gone:
            with removing_layers(self.viewer):
                for layer in gone:
                    self.viewer.layers.remove(layer)
        self._extra_layers = []
        self.final_layer = None
        self._uncheck_final_button()
        self.final_button.setVisible(False)
        self.hook = self.labels_layer = self.image_layer = self.volumes = None
        self.case_id = self.base = self.volume = None
        self.class_list.show_volumes(None)
        self.lead_message.setVisible(False)
        self.note_field.closed()

    def load_case(self, case_id: str, *, refresh: bool = True) -> bool:
        """Show ``case_id``: its image and the annotator's working label (or grade sheet).

        Nothing is changed in the viewer when the case cannot be opened; the reason is
        shown instead. The case list is read again (:meth:`refresh_cases`: others may have
        worked meanwhile) unless ``refresh`` is False, when it was just read (opening the
        project, after a submit) and only the opened case is made current in it.
        """
        from .._napari.layers import image_layer_data, labels_layer_data

        project = self.project
        if project is None:
            self._error("open a project first.")
            return False
        if project.task == "spine" and self._grade_sheet_widget() is not None:
            return self._load_spine_case(case_id, refresh)
        try:
            images = CaseImages(project, case_id)  # a DICOM folder is scanned once a case
            volume = self._read_ahead_image(case_id, images.images[0]) or images.load(0)
            if project.task == "spine":  # no grade sheet widget: show the series at least
                extra = [images.load(i) for i in range(1, len(images.images))]
                image = image_layer_data(volume)
                extra_data = [image_layer_data(v) for v in extra]
            else:
                base, labels, pending = self._restore(case_id, volume.shape)
                if tuple(labels.shape) != tuple(volume.shape):
                    raise ProjectError(
                        f"case {case_id}: the stored label (version "
                        f"{base.id if base else '-'}) has shape {labels.shape} but the image "
                        f"now has shape {volume.shape}; was the image replaced? Nothing was "
                        "changed. Put the original image back or re-import the label."
                    )
                labels = np.ascontiguousarray(labels)
                if labels.dtype != np.uint8 and len(project.classes) < 256:
                    labels = labels.astype(np.uint8)
                image = image_layer_data(volume)
                label_data = labels_layer_data(
                    labels, volume, project.classes, name=f"{case_id} labels"
                )
        except REPORTED as exc:
            self._error(exc)
            return False

        reused = None if project.task == "spine" else self._reusable_layers(image, label_data)
        self.close_case(keep=reused or ())
        self.case_id, self.volume = case_id, volume
        data, kwargs, _ = image
        kwargs = {**kwargs, "name": f"{case_id} image"}
        if reused:
            self.image_layer, self.labels_layer = reused
            show_in_layer(self.image_layer, data, kwargs)
        else:
            self.image_layer = self.viewer.add_layer(ShownSliceImage(data, **kwargs))
        self.display_combo.show_on(self.image_layer, volume)
        self.viewer.dims.axis_labels = WORLD_AXIS_LABELS  # the slider runs foot to head: S
        if project.task == "spine":
            for d, kw, _ in extra_data:
                self._extra_layers.append(
                    self.viewer.add_layer(ShownSliceImage(d, **kw, visible=False))
                )
            self.grade_box.setVisible(True)
            self._info(f"{case_id}: shown without a grade sheet (widget not available).")
        else:
            self._show_labels(case_id, label_data, labels, base, pending)
        if reused and set(self.viewer.layers) == set(reused):
            self.viewer.reset_view()  # as napari does for the first layer: whole image, middle
            self.viewer.dims.current_step = [(n - 1) // 2 for n in self.viewer.dims.nsteps]
        self._show_lead_message(case_id)
        self._listed_again(refresh)
        self._submit_guard_until = time.monotonic() + SUBMIT_GUARD_S
        if project.task != "spine":
            self._read_next_ahead(case_id)
        return True

    def _show_lead_message(self, case_id: str | None) -> None:
        """The lead's last decision on the case: a reopened case shows who reopened it,
        when and why (until it is final again); a final case what the final took from
        whom (the annotator's feedback: e.g. "all: alice; liver: bob")."""
        from ..review.adjudication import decision_history, describe_decision

        history = decision_history(self.project, case_id) if case_id is not None else []
        last = history[-1] if history else None
        reopened = last is not None and last["action"] == "reopen"
        self.lead_message.setStyleSheet(f"color:{'#e0a040' if reopened else '#8fc98f'};")
        self.lead_message.setText(f"{case_id}: {describe_decision(last)}" if last else "")
        self.lead_message.setVisible(last is not None)
        organs = self.project is not None and self.project.task != "spine"
        self.final_button.setVisible(organs and last is not None and not reopened)

    def _uncheck_final_button(self) -> None:
        """*Show the final* unchecked without its toggle running."""
        self.final_button.blockSignals(True)
        self.final_button.setChecked(False)
        self.final_button.blockSignals(False)

    def show_final(self, shown: bool = True) -> bool:
        """Show (or take away) the open case's current final labels as a layer over the
        annotator's own, which stays the layer painted on; what the final changed is then
        in view. Returns whether the final is shown."""
        from .._napari.layers import labels_layer_data
        from ..review.adjudication import current_final

        if not shown:
            if self.final_layer is not None and self.final_layer in self.viewer.layers:
                self.viewer.layers.remove(self.final_layer)
                self._extra_layers.remove(self.final_layer)
            self.final_layer = None
            return False
        if self.final_layer is not None:
            return True
        try:
            final = current_final(self.project, self.case_id) if self.case_id else None
            if final is None:
                raise ProjectError(f"case {self.case_id} has no final labels (any more).")
            data, kwargs, _ = labels_layer_data(
                self.project.read_mask(final),
                self.volume,
                self.project.classes,
                name=f"final v{final.id} by {final.annotator}",
            )
        except REPORTED as exc:
            self._error(exc)
            self._uncheck_final_button()
            return False
        self.final_layer = self.viewer.add_layer(
            ShownSliceLabels(data, **{**kwargs, "opacity": 0.5})
        )
        self.final_layer.editable = False  # a view of the lead's labels, not a place to paint
        self._extra_layers.append(self.final_layer)
        if self.labels_layer is not None:  # strokes still go to the annotator's labels
            self.viewer.layers.selection.active = self.labels_layer
        self._info(
            f"{self.case_id}: final v{final.id} by {final.annotator} shown over your labels "
            f"(layer '{self.final_layer.name}'); hide it with the same button."
        )
        return True

    def _read_ahead_image(self, case_id: str, ref):
        """The case's first image (``ref``) if it was read ahead and is unchanged, else None."""
        volume = self.read_ahead.take(
            case_id, self.project.resolve(ref.path), ref.series, ref.stack
        )
        if volume is not None:
            self.project.remember_grid(case_id, volume)
        return volume

    def next_case_to_open(self) -> str | None:
        """What *Submit and next* opens after the open case: the next case still to do
        in the queue (else the next in the list, what *Next* opens)."""
        ids = self.case_ids()
        if self.case_id not in ids:
            return None
        i = ids.index(self.case_id)
        todo = self._to_do(ids[i + 1 :] + ids[:i])
        if todo:
            return todo[0]
        return ids[i + 1] if i + 1 < len(ids) else None

    def _read_next_ahead(self, case_id: str) -> None:
        """Start reading the next case's image in the background (NIfTI files and DICOM
        series; :class:`~napari_atlas_annotate.io.prefetch.ImagePrefetch`)."""
        upcoming = self.next_case_to_open()
        if upcoming is None or upcoming == case_id:
            self.read_ahead.clear()
            return
        try:
            ref = self.project.case(upcoming).images[0]
            self.read_ahead.start(upcoming, self.project.resolve(ref.path), ref.series, ref.stack)
        except REPORTED:  # a case without images: it says so when it is opened
            self.read_ahead.clear()

    def _reusable_layers(self, image: tuple, label_data: tuple) -> tuple | None:
        """The open case's image and labels layers, when the next case can be shown in them.

        Removing two layers and adding two costs napari half a second at CT sizes (a
        garbage collection, new canvas nodes); putting the next case's arrays into the
        same layers costs a few hundredths. They are reused when the arrays have the same
        dtypes and dimensions and the labels the same classes, and when napari's undo
        stack of the layer can be emptied (the last case's strokes must not be undone on
        the next one); otherwise None: the layers are replaced.
        """
        image_layer, labels_layer = self.image_layer, self.labels_layer
        if image_layer is None or labels_layer is None:
            return None
        if not all(layer in self.viewer.layers for layer in (image_layer, labels_layer)):
            return None
        if not undo_history_can_be_emptied(labels_layer):
            return None
        same = all(
            layer.data.dtype == new[0].dtype and layer.data.ndim == new[0].ndim
            for layer, new in ((image_layer, image), (labels_layer, label_data))
        )
        classes = label_data[1]["metadata"][META_KEY].get("class_names")
        shown = labels_layer.metadata.get(META_KEY, {}).get("class_names")
        return (image_layer, labels_layer) if same and classes == shown else None

    def _restore(
        self, case_id: str, shape: tuple[int, ...]
    ) -> tuple[LabelVersion | None, np.ndarray, list]:
        """``project.restore_mask`` for a case whose image (of ``shape``) is loaded.

        A case with no version yet starts from an empty label of the image's shape; asking
        the project for it would read the image again for its grid (the image was read
        through :class:`CaseImages`, not ``project.load_image``, which remembers it).
        """
        project = self.project
        if project.working_base(case_id, self.annotator) is not None:
            return project.restore_mask(case_id, self.annotator)
        pending = project.pending_events(case_id, self.annotator, None)
        return None, replay(np.zeros(shape, np.uint8), pending), pending

    def _show_labels(self, case_id, label_data, labels, base, pending) -> None:
        data, kwargs, _ = label_data
        axes = kwargs["metadata"]["atlas_annotate"]["axes"]
        self.base = base
        self.note_field.show_note_of(base, self.annotator, case_id, self.project)
        # the log as this window found it: later edits not made here come from elsewhere
        self._seen_event_id = self.project.last_event_id(case_id, self.annotator)
        if self.labels_layer is not None:  # the last case's layer, reused
            layer = self.labels_layer
            show_in_layer(layer, data, kwargs)
            empty_undo_history(layer)  # napari keeps the undo stack when the data is replaced
        else:
            # napari's brush paints the full inverse transform of the mouse's point, which on
            # a tilted series is not the slice drawn: this layer paints the voxels drawn
            self.labels_layer = layer = self.viewer.add_layer(ShownSliceLabels(data, **kwargs))
            layer.events.selected_label.connect(self._class_picked)
            for key in range(1, min(9, len(self.project.classes)) + 1):
                layer.bind_key(str(key), _select_key(self, key), overwrite=True)
        recorder = EditRecorder(
            self.project, case_id, self.annotator, labels, base.id if base else None
        )
        self.hook = LabelsEditHook(
            layer, recorder, axes=axes, on_error=self._error, on_logged=self._volumes_moved
        )
        self.volumes = ClassVolumes(labels, float(np.prod(self.volume.spacing)) / 1000.0)
        self.class_list.show_volumes(self.volumes)
        layer.events.paint.connect(self._constrain_stroke)  # after the hook logs the stroke
        layer.brush_size = self.brush_spin.value()
        layer.n_edit_dimensions = 3 if self.brush_3d.isChecked() else 2
        layer.mode = "paint"
        self.select_class(max(1, min(self._class, len(self.project.classes))))
        self.viewer.layers.selection.active = layer
        source = f"version {base.id} ({base.kind})" if base else "empty label"
        restored = f", {len(pending)} unsubmitted edits restored" if pending else ""
        message = f"{case_id}: {source}{restored}. State: {self._state(case_id)}."
        tilt = tilt_degrees(kwargs["affine"])
        if tilt > TILT_NOTED_DEGREES:
            message += (
                f" This series is tilted {tilt:.0f}\u00b0 against the view: each slice is "
                "drawn flat, as acquired, and the brush paints the voxels drawn under it."
            )
        self._info(message)

    def _grade_sheet_widget(self):
        """The embedded spine grade sheet, made on first use; None when not available."""
        if self.grade_sheet is None and not self._grade_sheet_missing:
            try:
                from .grade_sheet import GradeSheetWidget
            except ImportError:
                self._grade_sheet_missing = True
                self.grade_layout.addWidget(
                    QLabel("The grade sheet widget is not available in this build.")
                )
                return None
            self.grade_sheet = GradeSheetWidget(self.viewer, self.project, self.annotator)
            # the dock's "Submit and next case" submits the sheet: a second submit button
            # beside it ("Submit grades", for the sheet on its own) only asked which to use
            self.grade_sheet.submit_button.setVisible(False)
            self.grade_layout.addWidget(self.grade_sheet)
        return self.grade_sheet

    def _rebind_grade_sheet(self) -> None:
        """Point the embedded grade sheet at the project and annotator just opened.

        The sheet is made once per dock; without this a second project (or the same one
        under another name) opened with *Change…* would keep grading, and storing grades,
        in the first one under the first name.
        """
        self.grade_box.setVisible(False)  # shown again when a spine case opens
        if self.grade_sheet is None:
            return
        self.grade_sheet.close_case()
        self.grade_sheet.project, self.grade_sheet.annotator = self.project, self.annotator

    def _load_spine_case(self, case_id: str, refresh: bool = True) -> bool:
        """The grade sheet shows the study's series and the annotator's restored sheet."""
        self.grade_box.setVisible(True)
        try:
            ok = self.grade_sheet.load_case(case_id)
        except REPORTED as exc:
            self._error(exc)
            return False
        if not ok:
            self.last_error = f"case {case_id} could not be opened (see the grade sheet)."
            return False
        self.close_case()
        self.case_id = case_id
        self._show_lead_message(case_id)
        self._listed_again(refresh)
        self._submit_guard_until = time.monotonic() + SUBMIT_GUARD_S
        self._info(f"{case_id}: state {self._state(case_id)}. Grade the sheet, then Submit.")
        return True

    # -- class and brush ----------------------------------------------------------------
    def select_class(self, value: int) -> None:
        """Make label ``value`` the one painted (keys 1-9 and the class list call this);
        it stays picked on the next case."""
        if int(value) > 0:
            self._class = int(value)
        if self.labels_layer is not None:
            self.labels_layer.selected_label = int(value)
        self.class_list.show_selected(int(value))

    def _class_picked(self, event=None) -> None:
        """The layer's label changed (the dock, napari's label control, the picker)."""
        if self.labels_layer is not None:
            value = int(self.labels_layer.selected_label)
            if value > 0:
                self._class = value
            self.class_list.show_selected(value)

    def current_class(self) -> int:
        if self.labels_layer is None:
            raise ProjectError("no case is open.")
        value = int(self.labels_layer.selected_label)
        if value < 1:
            raise ProjectError("pick a class (1-9 or the class list) first.")
        return value

    def _set_brush_size(self, value: int) -> None:
        if self.labels_layer is not None:
            self.labels_layer.brush_size = value

    def _set_brush_3d(self, on: bool) -> None:
        if self.labels_layer is not None:
            self.labels_layer.n_edit_dimensions = 3 if on else 2

    def slice_axis(self) -> int:
        """Layer data axis the viewer steps through (the axis 'between slices' runs along)."""
        not_displayed = list(self.viewer.dims.not_displayed)
        return int(not_displayed[0]) if not_displayed else 0

    # -- accelerators (each: one core call, one undoable napari step, one logged edit) ----
    def _accelerate(self, title: str, tool: str, compute, why_unchanged, **detail) -> int | None:
        """Run ``compute(labels, class)`` on the current class and write the result as one
        undoable step logged as ``tool``. When it changes nothing, nothing is written or
        logged and the status line says why (``why_unchanged(labels, class, name)``)."""
        try:
            if self.hook is None:
                raise ProjectError("open a case first.")
            class_id = self.current_class()
            data = np.asarray(self.labels_layer.data)
            new = compute(data, class_id)
            n = self.hook.apply_labels(new, tool, class_id, **detail)
            if n == 0:
                name = self._class_name(class_id)
                self._info(f"{title}: nothing changed; {why_unchanged(data, class_id, name)}.")
                return 0
        except REPORTED as exc:
            self._error(exc)
            return None
        self._info(f"{title}: {n:,} voxels changed (Ctrl-Z undoes it).")
        return n

    def _class_name(self, class_id: int) -> str:
        classes = self.project.classes
        return classes[class_id - 1] if 0 < class_id <= len(classes) else f"label {class_id}"

    def fill_between_slices(self) -> int | None:
        axis = self.slice_axis()
        return self._accelerate(
            "Fill between slices",
            "interpolate",
            lambda data, c: fill_between_slices(data, c, axis=axis),
            lambda data, c, name: why_fill_unchanged(data, c, name, axis=axis),
            axis=axis,
        )

    def remove_small_islands(self) -> int | None:
        n = self.island_spin.value()
        return self._accelerate(
            "Remove islands",
            "remove_islands",
            lambda data, c: remove_small_islands(data, c, n),
            lambda data, c, name: why_islands_unchanged(data, c, name, n),
            min_voxels=n,
        )

    def keep_largest_component(self) -> int | None:
        return self._accelerate(
            "Keep largest component", "keep_largest", keep_largest_component, why_largest_unchanged
        )

    def grow_at_cursor(self, erase: bool = False) -> int | None:
        """Key G: grow the picked class from the voxel under the mouse (Shift+G,
        ``erase``: take back its part that looks like that voxel) with
        :func:`~napari_atlas_annotate.corrections.region_grow.grow_from_voxel`, one
        undoable step logged as ``grow`` (``take_back``). Returns the voxels changed, None
        on an error."""
        title = "Take back" if erase else "Grow"
        try:
            if self.hook is None:
                raise ProjectError("open a case first.")
            # the view the mouse is over: the main one, or a coronal / sagittal view
            view, layer = orthogonal_views.pointed_view(self.viewer, self.labels_layer)
            if view.dims.ndisplay == 3:
                raise ProjectError(
                    "grow points at a voxel in the 2D view: switch the 3D view off (Ctrl+Y)."
                )
            class_id = self.current_class()
            self._check_grow_in_sight()
            # the voxel drawn under the mouse (the layer maps a tilted series' points there)
            seed = tuple(int(v) for v in np.round(layer.world_to_data(view.cursor.position)))
            linear = np.asarray(layer.affine.affine_matrix, float)[:-1, :-1]
            spacing = np.linalg.norm(linear, axis=0) * np.asarray(layer.scale, float)
            tolerance, radius = self.grow_tolerance.value(), self.grow_radius.value()
            growth = grow_from_voxel(
                np.asarray(layer.data),
                np.asarray(self.image_layer.data),
                seed,
                class_id,
                spacing,
                tolerance,
                radius,
                self.project.classes,
                erase=erase,
            )
            if growth.changed == 0:
                self._info(f"{title}: nothing changed; {growth.why_nothing}.")
                return 0
            # the class already labelled around the pointed voxel: a seed unlike it (the
            # mouse on fat beside the liver) grows another tissue, which the status says
            around = np.asarray(layer.data[growth.region]) == class_id
            typical = None
            if not erase and around.any():
                crop = np.asarray(self.image_layer.data[growth.region])
                typical = float(np.median(crop[around]))
            n = self.hook.apply_labels(
                growth.labels,
                "take_back" if erase else "grow",
                class_id,
                region=growth.region,
                seed=list(seed),
                tolerance=tolerance,
                radius_mm=radius,
            )
        except REPORTED as exc:
            self._error(exc)
            return None
        done = "taken back from" if erase else "added to"
        name = self._class_name(class_id)
        ml = n * float(np.prod(spacing)) / 1000.0
        unlike = ""
        if typical is not None and abs(typical - growth.reference) > tolerance:
            unlike = (
                f" Check it: the {name} labelled around it is about {typical:.0f}; was the "
                f"mouse on the {name}?"
            )
        self._info(
            f"{title}: {n:,} voxels {done} the {name} ({ml:.1f} ml, like "
            f"{growth.reference:.0f} \u00b1 {tolerance}, within {radius} mm; Ctrl-Z undoes "
            f"it).{unlike}"
        )
        return n

    def _volumes_moved(self, event) -> None:
        """An edit was logged: the class list's volumes move by its diff."""
        if event.diff is not None and self.volumes is not None:
            self.volumes.apply(event.diff)
            self.class_list.show_volumes(self.volumes)

    def show_three_views(self, shown: bool = True) -> None:
        """Show (or hide) coronal and sagittal views beside the main one
        (:mod:`.orthogonal_views`); a missing plugin is reported, not raised."""
        try:
            orthogonal_views.set_shown(self.viewer, shown, self._log_paint_in_view)
        except ImportError as exc:
            self._error(exc)

    def _log_paint_in_view(self, layer, event) -> None:
        """A stroke in a coronal or sagittal view on ``layer``'s data: logged by the open
        case's edit recorder and kept inside the paint window, as the main view's strokes
        are."""
        if self.hook is not None and self.hook.layer is layer:
            self.hook.log_paint(event)
            self._constrain_stroke(event)

    def _check_grow_in_sight(self) -> None:
        """Refuse a grow of the open case while other images or labels are shown over it
        (the review dock's case in the same viewer): G would edit a case out of sight."""
        from napari.layers import Image, Labels

        layers = list(self.viewer.layers)
        own = [self.labels_layer, self.image_layer, *self._extra_layers]
        over = [
            other.name
            for other in layers[layers.index(self.labels_layer) + 1 :]
            if other.visible
            and isinstance(other, Image | Labels)
            and not any(other is mine for mine in own)
        ]
        if over:
            shown = ", ".join(f"'{name}'" for name in over[:4]) + (", ..." if len(over) > 4 else "")
            raise ProjectError(
                f"G grows in {self.case_id} labels, but other layers cover {self.case_id} "
                f"({shown}; e.g. the review dock's case): hide them, or close the review "
                "dock, and point again."
            )

    def reset_to_proposal(self) -> int | None:
        """Put the latest proposal back: one undoable step, logged as ``reset`` with no
        class (it restores every class; the classes it changed are in the event's
        ``detail["classes"]``). Nothing is written or logged when nothing differs."""
        try:
            if self.hook is None:
                raise ProjectError("open a case first.")
            proposal = self.project.latest_version(self.case_id, kinds=("proposal",))
            if proposal is None:
                raise ProjectError(f"case {self.case_id} has no proposal to reset to.")
            labels = self.project.read_mask(proposal)
            n = self.hook.apply_labels(
                self.hook.to_layer_order(labels), "reset", None, version=proposal.id
            )
        except REPORTED as exc:
            self._error(exc)
            return None
        if n == 0:
            self._info(
                f"Reset to proposal: nothing changed; the labels already match proposal "
                f"{proposal.id}."
            )
        else:
            self._info(f"Reset to proposal {proposal.id}: {n:,} voxels changed (Ctrl-Z undoes it).")
        return n

    def _constrain_stroke(self, event=None) -> None:
        """'Paint only inside window': schedule trimming the stroke just painted.

        napari is still inside its paint notification here (editing the layer now would
        corrupt its undo stack), so the trim runs from the Qt event loop right after.
        """
        hook = self.hook
        if (
            hook is None
            or not self.window_check.isChecked()
            or hook._override is not None
            or str(self.labels_layer.mode) != "paint"
        ):
            return
        stroke = hook.events[-1] if hook.events else None
        if stroke is not None and stroke.tool == "paint" and stroke.class_id:
            QTimer.singleShot(0, lambda: self._trim_stroke(hook, stroke))

    def _trim_stroke(self, hook: LabelsEditHook, stroke) -> int:
        """Revert the voxels of ``stroke`` outside the window; merge with its undo step."""
        if hook is not self.hook or not hook.events or hook.events[-1] is not stroke:
            return 0  # the case changed or another edit came in between: leave it
        try:
            diff, class_id = stroke.diff, int(stroke.class_id)
            lo, hi = self.window_lo.value(), self.window_hi.value()
            box = diff.slices
            current = hook.current_labels()[box]
            before = np.array(current, copy=True)
            before[diff.changed] = diff.old
            painted = np.zeros(diff.changed.shape, bool)
            painted[diff.changed] = diff.new == class_id
            image = np.asarray(self.image_layer.data).transpose(np.argsort(hook.axes))[box]
            trimmed = threshold_paint(before, image, painted, class_id, lo, hi)
            trimmed[~painted] = current[~painted]
            n = hook.apply_labels(
                hook.to_layer_order(trimmed),
                "threshold_paint",
                class_id,
                region=hook.volume_box_to_layer(box),
                lo=lo,
                hi=hi,
            )
            if n:
                hook.merge_last_undo_steps()
        except REPORTED as exc:
            self._error(exc)
            return 0
        return n

    # -- submit -------------------------------------------------------------------------
    def _already_submitted(self, labels: np.ndarray) -> bool:
        """Whether ``labels`` is exactly this annotator's own latest submitted version.

        Submitting it again would store a duplicate version (and count as another
        submission); an unchanged *proposal* is still stored: accepting it is a decision.
        """
        base = self.base
        self._resubmitted = (
            base is not None
            and base.kind == "corrected"
            and base.annotator == self.annotator
            and not self.project.pending_events(self.case_id, self.annotator, base)
            and np.array_equal(self.project.read_mask(base), labels)
        )
        return self._resubmitted

    def _check_single_session(self) -> None:
        """Refuse to submit over work this window has not seen (a second window as the
        same annotator: :func:`~..corrections.other_windows.check_no_unseen_work`)."""
        check_no_unseen_work(
            self.project,
            self.case_id,
            self.annotator,
            own_events={e.id for e in self.hook.events},
            seen_event_id=self._seen_event_id,
            base=self.base,
            holder="this window's label",
            reopen=f"double-click {self.case_id} in the case list here to reload it",
        )

    def submit_from_user(self) -> LabelVersion | None:
        """The Submit button and Ctrl+Enter: :meth:`submit`, unless the case opened
        less than :data:`SUBMIT_GUARD_S` ago.

        A double click on *Submit and next case* sends its second click to the case the
        first one opened; a held Ctrl+Enter repeats. Either would store a case nobody has
        looked at, so a Submit that soon is not taken (and a repeat extends the wait).
        """
        now = time.monotonic()
        if self.case_id is not None and now < self._submit_guard_until:
            self._submit_guard_until = now + SUBMIT_GUARD_S
            self._info(
                f"{self.case_id} has just opened: that Submit was not taken (a double click "
                "or a held key?). Look at the case, then Submit again."
            )
            return None
        return self.submit()

    def submit(self) -> LabelVersion | None:
        """Store the working label (or grade sheet) as a new version; open the next case.

        A label identical to the annotator's own latest version (nothing changed since
        they submitted it) is not stored again; the next case opens all the same.
        """
        self._resubmitted = False
        try:
            if self.case_id is None:
                raise ProjectError("open a case first.")
            if self.project.task == "spine":
                if self.grade_sheet is None:
                    raise ProjectError("the grade sheet widget is not available.")
                session = getattr(self.grade_sheet, "session", None)
                before = session.base if session is not None else None
                version = self.grade_sheet.submit()
                if version is None:
                    return None  # the grade sheet said why
                self._resubmitted = before is not None and version.id == before.id
            else:
                self.hook.flush()
                self._check_single_session()
                # a view: nothing edits the layer until the version is stored (the recorder
                # keeps its own copy); a CT label is 80 MB
                labels = self.hook.current_labels()
                note = self.note_field.note()
                if self._already_submitted(labels) and not note_changed(self.base, note):
                    version = self.base  # nothing new: no duplicate version
                else:
                    self._resubmitted = False
                    version = self.project.submit_mask(  # on the grid of the image shown
                        self.case_id,
                        self.annotator,
                        labels,
                        self.base,
                        reference=self.volume,
                        note=note,
                    )
                    self.hook.recorder.rebase(labels, version.id)
                    self.base = version
                    self._seen_event_id = version.last_event_id
                self.note_field.submitted()
        except REPORTED as exc:
            self._error(exc)
            return None
        done = self.case_id
        self.refresh_cases()
        ids = self.case_ids()
        after = ids[ids.index(done) + 1 :] + ids[: ids.index(done)]
        todo = self._to_do(after)
        message = f"{done}: submitted as version {version.id}."
        if self._resubmitted:
            message = f"{done}: no changes since your version {version.id}; nothing stored."
        if not todo:
            self._info(f"{message} All cases submitted.")
            return version
        opened, failed = self._open_first(todo, refresh=False)  # just listed
        if opened is None:
            self._error(
                f"{message} The next cases could not be opened, so {done} stays open: "
                + " ".join(failed)
            )
        elif failed:
            self._error(f"{message} Now {opened}; skipped: " + " ".join(failed))
        else:
            self._info(f"{message} Now {opened}.")
        return version


def _button_name(text: str) -> str:
    return "_".join(text.lower().split()) + "_button"


def _select_key(dock: AnnotatorDock, value: int):
    def select(layer):
        dock.select_class(value)

    select.__name__ = f"select_class_{value}"
    select.__doc__ = f"Paint class {value}."
    return select


def make_annotator_dock(napari_viewer: napari.viewer.Viewer) -> AnnotatorDock:
    """npe2 widget factory: the dock for the current viewer, with its open form.

    napari passes the viewer to a parameter named ``napari_viewer``; the project folder
    and annotator name are asked for in the dock's own form.
    """
    return AnnotatorDock(napari_viewer)


def add_annotator_dock(
    viewer: Any, project: Project | str | Path | None = None, annotator: str | None = None
) -> AnnotatorDock:
    """Dock an :class:`AnnotatorDock` on the right of ``viewer`` and return it."""
    dock = AnnotatorDock(viewer, project, annotator)
    viewer.window.add_dock_widget(dock, name="Atlas annotate", area="right")
    return dock
