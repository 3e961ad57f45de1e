"""Editing a lumbar grade sheet with every change logged (GUI-free).

The grade-sheet counterpart of :mod:`napari_atlas_annotate.corrections.recording`: a
:class:`GradeSession` holds one annotator's working :class:`~.grade_sheet.GradeSheet` of one
case, applies grade and point changes to it and commits each one at once as an
:class:`~.project.EditEvent` (``tool="grade"`` with ``detail = {condition, level, old,
new}``, ``tool="point"`` with ``detail = {condition, level, old_point, new_point}``), so a
killed process loses nothing that was clicked.

Restoring is the same as for masks: the working base (the annotator's latest corrected
grades, else the latest final/proposal/imported grades) plus a replay of the logged events
no submitted version has folded in yet (:func:`replay_grades`). Submitting stores the sheet
as a ``corrected`` grades version whose ``last_event_id`` marks the events it contains.

The working sheet holds grades and points only: a proposal's probabilities are the
model's, not the annotator's, and stay on the proposal version (shown beside the grades
by the grade sheet widget, reachable from the submitted version through ``parent_id``).

Level points are RSNA-style ``(series, instance, x, y)``: the 1-based InstanceNumber of a
slice and the pixel column/row in it. :func:`point_to_index` and :func:`index_to_point`
convert them to and from a series' ``(z, y, x)`` voxel index, reading InstanceNumbers from
the DICOM headers when the series came from DICOM (slices are sorted by position, which
need not follow InstanceNumber).

Examples
--------
>>> sheet = GradeSheet()
>>> events = [EditEvent("c", "ann", "grade", detail={"condition": "spinal_canal_stenosis",
...     "level": "l4_l5", "old": None, "new": "Severe"})]
>>> replay_grades(sheet, events).grade("spinal_canal_stenosis", "l4_l5")
'Severe'
>>> sheet.grade("spinal_canal_stenosis", "l4_l5") is None
True
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .corrections.other_windows import check_no_unseen_work
from .corrections.recording import ActiveClock
from .grade_sheet import GradeSheet, LevelPoint
from .project import EditEvent, LabelVersion, Project, ProjectError, task_phrase
from .project.edit_log import GRADE_TOOL, POINT_TOOL
from .spine_grades import CONDITIONS, GRADES, LEVELS
from .volume import Volume

Cell = tuple[str, str]


# -- points ------------------------------------------------------------------------------
def point_to_dict(point: LevelPoint | None) -> dict | None:
    """JSON form of a level point (``None`` stays ``None``)."""
    if point is None:
        return None
    return {
        "series": point.series,
        "instance": int(point.instance),
        "x": float(point.x),
        "y": float(point.y),
    }


def point_from_dict(data: dict | None) -> LevelPoint | None:
    """Inverse of :func:`point_to_dict`."""
    if data is None:
        return None
    return LevelPoint(
        str(data["series"]), int(data["instance"]), float(data["x"]), float(data["y"])
    )


def instance_numbers(volume: Volume) -> list[int]:
    """The InstanceNumber of each z slice of ``volume`` (1-based).

    DICOM series are sorted by slice position, not InstanceNumber, so for a volume read
    from DICOM files the numbers are the ones the reader kept (``metadata
    ["instance_numbers"]``, in z order), else read from the headers (``metadata["files"]``,
    in z order). Anything else (NIfTI, headers without InstanceNumber, duplicates) numbers
    the slices ``1 .. nz`` in z order.
    """
    nz = volume.shape[0]
    files = volume.metadata.get("files") or []
    frames = volume.metadata.get("frame_numbers")
    if frames and any(f is not None for f in frames):
        numbers = [f if f is not None else k + 1 for k, f in enumerate(frames)]
        return [int(n) for n in numbers] if len(set(numbers)) == nz else list(range(1, nz + 1))
    kept = volume.metadata.get("instance_numbers")
    if kept is not None and len(kept) == nz and all(n is not None for n in kept):
        numbers = [int(n) for n in kept]  # no need to read every header again
        if len(set(numbers)) == nz:
            return numbers
    if len(files) != nz:
        return list(range(1, nz + 1))
    try:
        import pydicom

        numbers = []
        for path in files:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["InstanceNumber"])
            value = ds.get("InstanceNumber")
            if value is None:
                return list(range(1, nz + 1))
            numbers.append(int(value))
    except (OSError, ValueError, ImportError):
        return list(range(1, nz + 1))
    return numbers if len(set(numbers)) == nz else list(range(1, nz + 1))


def point_to_index(point: LevelPoint, numbers: Sequence[int]) -> np.ndarray:
    """``(z, y, x)`` voxel index of a level point on its series.

    Parameters
    ----------
    point
        The point; ``x`` is the pixel column and ``y`` the row of slice ``instance``.
    numbers
        InstanceNumber of each z slice of the series (:func:`instance_numbers`).

    Raises
    ------
    ValueError
        When the series has no slice with that InstanceNumber.
    """
    numbers = list(numbers)
    if point.instance not in numbers:
        raise ValueError(
            f"point on {point.series!r} refers to instance {point.instance}, but that series "
            f"has instances {min(numbers)}..{max(numbers)}; the point was not placed."
        )
    return np.array([numbers.index(point.instance), point.y, point.x], float)


def index_to_point(series: str, index: Sequence[float], numbers: Sequence[int]) -> LevelPoint:
    """Level point at a (continuous) ``(z, y, x)`` index of ``series``: the nearest slice."""
    numbers = list(numbers)
    z = int(np.clip(np.rint(index[0]), 0, len(numbers) - 1))
    return LevelPoint(series, int(numbers[z]), float(index[2]), float(index[1]))


# -- replay ------------------------------------------------------------------------------
def working_sheet(base: GradeSheet | None) -> GradeSheet:
    """The annotator's starting sheet from a base version: its grades and points, copied."""
    if base is None:
        return GradeSheet()
    return GradeSheet(grades=dict(base.grades), points=copy.deepcopy(base.points))


def apply_event(sheet: GradeSheet, event: EditEvent) -> None:
    """Apply one logged grade or point event to ``sheet`` in place (others are ignored)."""
    detail = event.detail or {}
    if event.tool == GRADE_TOOL:
        sheet.set_grade(detail["condition"], detail["level"], detail.get("new"))
    elif event.tool == POINT_TOOL:
        sheet.set_point(
            detail["condition"], detail["level"], point_from_dict(detail.get("new_point"))
        )


def replay_grades(sheet: GradeSheet, events: Iterable[EditEvent]) -> GradeSheet:
    """A copy of ``sheet`` with the grade and point events applied in order.

    Parameters
    ----------
    sheet
        The starting sheet (usually :func:`working_sheet` of the base version); unchanged.
    events
        Logged events; tools other than ``grade`` and ``point`` are skipped.
    """
    out = copy.deepcopy(sheet)
    for event in events:
        apply_event(out, event)
    return out


def latest_proposal(project: Project, case_id: str) -> GradeSheet | None:
    """The model's latest proposed grade sheet of a case (with probabilities), if any."""
    version = project.latest_version(case_id, kinds=("proposal",), content="grades")
    return project.read_grades(version) if version is not None else None


def restore_grade_sheet(
    project: Project, case_id: str, annotator: str
) -> tuple[LabelVersion | None, GradeSheet, list[EditEvent]]:
    """Base grades version, the working sheet with unsubmitted events replayed, those events."""
    base = project.working_base(case_id, annotator, content="grades")
    start = working_sheet(project.read_grades(base) if base is not None else None)
    pending = [
        e
        for e in project.pending_events(case_id, annotator, base)
        if e.tool in (GRADE_TOOL, POINT_TOOL)
    ]
    return base, replay_grades(start, pending), pending


def submit_grade_sheet(
    project: Project,
    case_id: str,
    annotator: str,
    sheet: GradeSheet,
    base: LabelVersion | None,
    note: str | None = None,
) -> LabelVersion:
    """Store ``sheet`` as the annotator's ``corrected`` grades version and audit it."""
    version = project.save_grades_version(
        case_id,
        sheet,
        kind="corrected",
        annotator=annotator,
        parent_id=base.id if base is not None else None,
        last_event_id=project.last_event_id(case_id, annotator),
        note=note,
    )
    project.record_audit(case_id, annotator, "submit", version=version.id, content="grades")
    return version


# -- the editing session -----------------------------------------------------------------
@dataclass
class GradeSession:
    """One annotator's working grade sheet of one case; every change is logged at once.

    Build it with :meth:`open` (restores unsubmitted work). Changes that change nothing
    are not logged.

    Attributes
    ----------
    sheet
        The working sheet (grades and points).
    base
        The version the logged events apply to.
    proposal
        The model's latest proposal (for its probabilities), or ``None``.
    pending
        Events logged since ``base`` (restored ones first).
    seen_event_id
        The annotator's last logged event of the case when the session opened: a later
        one this session did not log came from another window (see :meth:`submit`).
    """

    project: Project
    case_id: str
    annotator: str
    base: LabelVersion | None
    sheet: GradeSheet
    proposal: GradeSheet | None = None
    pending: list[EditEvent] = field(default_factory=list)
    clock: ActiveClock = field(default_factory=ActiveClock)
    seen_event_id: int | None = None

    @classmethod
    def open(cls, project: Project, case_id: str, annotator: str) -> GradeSession:
        """Restore ``annotator``'s sheet of ``case_id`` (base version + logged events).

        Raises
        ------
        ProjectError
            When the project is not a spine project or the case does not exist.
        """
        if project.task != "spine":
            raise ProjectError(
                f"project {project.folder} is {task_phrase(project.task)}; the grade sheet is "
                "for spine projects (create one with 'atlas-annotate init --task spine')."
            )
        project.case(case_id)
        project.ensure_annotator(annotator)
        base, sheet, pending = restore_grade_sheet(project, case_id, annotator)
        return cls(
            project,
            case_id,
            annotator,
            base,
            sheet,
            latest_proposal(project, case_id),
            pending,
            seen_event_id=project.last_event_id(case_id, annotator),
        )

    def _log(self, tool: str, detail: dict) -> EditEvent:
        event = EditEvent(
            case_id=self.case_id,
            annotator=self.annotator,
            tool=tool,
            detail=detail,
            active_seconds=self.clock.lap(),
            base_version_id=self.base.id if self.base is not None else None,
        )
        self.project.log_event(event)
        self.pending.append(event)
        return event

    def set_grade(self, condition: str, level: str, grade: str | None) -> EditEvent | None:
        """Set a cell's grade and log it; ``None`` when the grade was already that."""
        old = self.sheet.grade(condition, level)
        if grade is not None and grade not in GRADES:
            raise ValueError(f"grade must be one of {GRADES} or None, not {grade!r}")
        if old == grade:
            return None
        event = self._log(
            GRADE_TOOL, {"condition": condition, "level": level, "old": old, "new": grade}
        )
        self.sheet.set_grade(condition, level, grade)
        return event

    def cycle_grade(self, condition: str, level: str) -> str:
        """Next grade (Normal/Mild -> Moderate -> Severe -> Normal/Mild), logged."""
        current = self.sheet.grade(condition, level)
        nxt = GRADES[0] if current is None else GRADES[(GRADES.index(current) + 1) % len(GRADES)]
        self.set_grade(condition, level, nxt)
        return nxt

    def set_point(self, condition: str, level: str, point: LevelPoint | None) -> EditEvent | None:
        """Move, place (or with ``None`` remove) a cell's point and log it."""
        if condition not in CONDITIONS or level not in LEVELS:
            raise ValueError(f"unknown cell ({condition!r}, {level!r})")
        old = self.sheet.points.get((condition, level))
        if old == point:
            return None
        event = self._log(
            POINT_TOOL,
            {
                "condition": condition,
                "level": level,
                "old_point": point_to_dict(old),
                "new_point": point_to_dict(point),
            },
        )
        self.sheet.set_point(condition, level, point)
        return event

    def probabilities(self, condition: str, level: str) -> list[float] | None:
        """The proposal's probabilities of the cell (Normal/Mild, Moderate, Severe)."""
        if self.proposal is None:
            return None
        return self.proposal.probabilities.get((condition, level))

    def unchanged_since_submitted(self) -> bool:
        """Whether the sheet is the annotator's own submitted version, with no edit since
        (submitting it again would store a copy)."""
        base = self.base
        return (
            base is not None
            and base.kind == "corrected"
            and base.annotator == self.annotator
            and not self.pending
            and self.project.read_grades(base) == self.sheet
        )

    def check_single_session(self) -> None:
        """Refuse to submit over work this session has not seen (a second window as the
        same annotator: :func:`~.corrections.other_windows.check_no_unseen_work`)."""
        check_no_unseen_work(
            self.project,
            self.case_id,
            self.annotator,
            own_events={e.id for e in self.pending},
            seen_event_id=self.seen_event_id,
            base=self.base,
            holder="this sheet",
            reopen=f"open {self.case_id} again here",
            content="grades",
            tools=(GRADE_TOOL, POINT_TOOL),
        )

    def submit(self, note: str | None = None) -> LabelVersion:
        """Store the sheet as a corrected version; later edits apply to it.

        A sheet unchanged since the annotator submitted it, with the same ``note`` (for
        the lead), is not stored again: the submitted version is returned.

        Raises
        ------
        ProjectError
            When the same annotator changed the case from another window meanwhile
            (:meth:`check_single_session`); nothing is stored.
        """
        self.check_single_session()
        if self.unchanged_since_submitted() and self.base.note == note:
            return self.base
        version = submit_grade_sheet(
            self.project, self.case_id, self.annotator, self.sheet, self.base, note
        )
        self.base = version
        self.pending = []
        self.seen_event_id = version.last_event_id
        return version
