"""Turn editor changes into logged edit events (GUI-free).

:class:`EditRecorder` keeps a shadow copy of the label map as it was after the last
logged edit. When the editor reports a change (with the box it touched, if it knows),
the recorder diffs the shadow against the current labels inside that box, commits one
:class:`~napari_atlas_annotate.project.EditEvent` through :meth:`Project.log_event`
(durable at once, so a killed process loses at most the stroke in flight) and moves the
shadow forward. The napari hook in ``_qt/edit_recorder.py`` only translates layer events
into :meth:`EditRecorder.record` calls.

Examples
--------
>>> import numpy as np
>>> clock = ActiveClock(idle_cap=60.0, now=iter([0.0, 5.0, 500.0]).__next__)
>>> clock.lap(), clock.lap()
(5.0, 60.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..project.edit_log import BBox, EditEvent, diff_labels
from ..project.store import Project

#: Seconds without an edit after which the annotator is taken to be away: a gap longer
#: than this counts as this many seconds of work.
IDLE_CAP_SECONDS = 60.0


class ActiveClock:
    """Active annotation time between edits, with idle gaps capped.

    Parameters
    ----------
    idle_cap
        Longest gap (seconds) counted in full.
    now
        Clock (seconds); :func:`time.monotonic` by default.
    """

    def __init__(
        self, idle_cap: float = IDLE_CAP_SECONDS, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_cap = float(idle_cap)
        self._now = now
        self._last = now()

    def restart(self) -> None:
        """Start counting from now (a case was just opened)."""
        self._last = self._now()

    def lap(self) -> float:
        """Seconds since the previous lap (or restart), at most ``idle_cap``."""
        now = self._now()
        elapsed = max(0.0, now - self._last)
        self._last = now
        return min(elapsed, self.idle_cap)


class EditRecorder:
    """Logs each change of one annotator's working label map of one case.

    Parameters
    ----------
    project
        Where events are committed.
    case_id, annotator
        Whose work this is.
    labels
        The label map as loaded (base version plus replayed pending edits), indexed
        (z, y, x) on the case's image grid; copied as the shadow.
    base_version_id
        The version these edits apply to (``None`` when there is none yet).
    clock
        Active-time clock; a fresh :class:`ActiveClock` by default.

    Notes
    -----
    When a commit fails (disk full, database locked past its timeout) the shadow is not
    advanced and the next :meth:`record` compares the whole volume, so the edit is logged
    with the next one instead of being lost.
    """

    def __init__(
        self,
        project: Project,
        case_id: str,
        annotator: str,
        labels: np.ndarray,
        base_version_id: int | None,
        clock: ActiveClock | None = None,
    ) -> None:
        self.project = project
        self.case_id = case_id
        self.annotator = annotator
        self.base_version_id = base_version_id
        self.shadow = np.array(labels, copy=True)
        self.clock = clock or ActiveClock()
        self._stale = False

    def record(
        self,
        current: np.ndarray,
        tool: str,
        class_id: int | None = None,
        region: BBox | None = None,
        detail: dict | None = None,
    ) -> EditEvent | None:
        """Log the change from the shadow to ``current`` as one event.

        Parameters
        ----------
        current
            The label map now, (z, y, x) like the shadow (a view is fine).
        tool
            What the annotator did (``paint``, ``fill``, ``erase``, ``undo``,
            ``interpolate``...).
        class_id
            The label painted, if one.
        region
            Half-open ``((z0, z1), (y0, y1), (x0, x1))`` box known to contain every
            changed voxel; ``None`` compares the whole volume.
        detail
            Extra JSON-able facts (e.g. the threshold window).

        Returns
        -------
        EditEvent or None
            The committed event, or None when nothing changed.
        """
        if current.shape != self.shadow.shape:
            raise ValueError(
                f"case {self.case_id}: labels now have shape {current.shape} but the case "
                f"was opened with {self.shadow.shape}; the edit was not logged."
            )
        diff = diff_labels(self.shadow, current, None if self._stale else region)
        if diff is None:
            return None
        event = EditEvent(
            case_id=self.case_id,
            annotator=self.annotator,
            tool=tool,
            class_id=None if class_id is None else int(class_id),
            diff=diff,
            detail=dict(detail or {}),
            active_seconds=self.clock.lap(),
            base_version_id=self.base_version_id,
        )
        try:
            self.project.log_event(event)
        except Exception:
            self._stale = True
            raise
        diff.apply(self.shadow)
        self._stale = False
        return event

    def rebase(self, labels: np.ndarray, base_version_id: int | None) -> None:
        """Start over from ``labels`` on ``base_version_id`` (after a submit)."""
        self.shadow = np.array(labels, copy=True)
        self.base_version_id = base_version_id
        self._stale = False
