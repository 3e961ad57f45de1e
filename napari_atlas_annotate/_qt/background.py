"""Run one long core call (propose, train, export) off the GUI thread.

:class:`BackgroundTask` is a small widget -- a progress bar, a message and a *Cancel*
button -- around :func:`napari.qt.threading.create_worker`. The job is a plain core
function that takes the two callables every long core call in this package takes:

- ``progress(done, total, message)``: called from the worker thread; forwarded to the GUI
  thread through a queued Qt signal, where it moves the dock's bar and a napari progress
  bar (napari's activity dock);
- ``cancel() -> bool``: reads a flag that the *Cancel* button sets; the core checks it
  between batches / cases / iterations and raises its own ``...Cancelled`` error.

One job at a time: :meth:`BackgroundTask.start` refuses a second one while the first runs.

Closing the viewer (or quitting the application) while a job runs stops the job at its
next check and waits for it (:meth:`BackgroundTask.shutdown`): a worker thread left
running past the window would report to deleted widgets and abort the process when Python
exits, possibly halfway through writing a proposal or a model. With a ``viewer`` the job is
also listed in napari's running tasks, so closing the window asks first.
Whatever the worker raises is caught here and handed to ``on_error`` (or ``on_cancelled``
when it is one of the ``cancelled_by`` types, or when it came after *Cancel* was pressed);
nothing is re-raised into the Qt event loop, so a failing job never takes the viewer down.

The worker must not share the GUI's SQLite connection: open a separate
:class:`~napari_atlas_annotate.project.Project` inside the job and close it at the end.

Examples
--------
>>> task = BackgroundTask()                                       # doctest: +SKIP
>>> task.start("export", export_job, on_result=print, on_error=print)  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, QThreadPool, Signal
from qtpy.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

#: ``progress(done, total, message)`` as the core calls it.
Progress = Callable[[int, int, str], None]
#: ``cancel() -> bool`` as the core polls it.
CancelFlag = Callable[[], bool]


class JobRefused(RuntimeError):
    """Raised by :meth:`BackgroundTask.start` while another job is still running."""


class _Bridge(QObject):
    """Lives on the GUI thread; signals emitted from the worker arrive queued."""

    progressed = Signal(int, int, str)


class BackgroundTask(QWidget):
    """Progress bar, message and Cancel button for one background job at a time.

    Parameters
    ----------
    parent
        Parent widget.
    napari_progress
        Also show each job as a :class:`napari.utils.progress` bar (napari's activity
        dock).
    viewer
        The napari viewer whose window closing must stop the job (optional).

    Attributes
    ----------
    name
        Name of the running (or last) job.
    result, error
        What the last job returned / raised.
    """

    #: Emitted with ``True`` when a job starts and ``False`` when it has ended.
    running_changed = Signal(bool)

    #: How long closing the viewer waits for a job to reach its next cancel check.
    SHUTDOWN_WAIT_MS = 60_000

    def __init__(
        self, parent: QWidget | None = None, *, napari_progress: bool = True, viewer: Any = None
    ) -> None:
        super().__init__(parent)
        self._napari_progress = napari_progress
        self._viewer = viewer
        self._task_status = None
        self._worker = None
        self._done = threading.Event()
        self._flag = threading.Event()
        # Set when a report finds the widget deleted (viewer closed under a running job):
        # the job then stops at its next check instead of reporting to widgets that are gone.
        self._gone = threading.Event()
        self._pbar = None
        self._bridge = _Bridge(self)
        self._bridge.progressed.connect(self._on_progress)
        self.name: str | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.last_progress: tuple[int, int, str] | None = None

        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)  # shown while a job runs
        row.addWidget(self.bar, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)

    # -- state ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True from :meth:`start` until the job's end has been handled on the GUI thread."""
        return self._worker is not None

    def cancel_requested(self) -> bool:
        """The ``cancel()`` callable handed to the job (thread-safe)."""
        return self._flag.is_set()

    def cancel(self) -> None:
        """Ask the running job to stop; the core stops at its next check."""
        if self._worker is None:
            return
        self._flag.set()
        self.cancel_button.setEnabled(False)
        self.message.setText(f"{self.name}: cancelling…")

    # -- running --------------------------------------------------------------------------
    def start(
        self,
        name: str,
        job: Callable[..., Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_cancelled: Callable[[BaseException], None] | None = None,
        cancelled_by: tuple[type[BaseException], ...] = (),
    ):
        """Run ``job(progress=..., cancel=...)`` in a worker thread.

        Parameters
        ----------
        name
            Shown next to the bar ("Proposing 2 cases").
        job
            Called in the worker thread with keyword arguments ``progress`` and ``cancel``.
        on_result, on_error, on_cancelled
            Called on the GUI thread with the return value, the exception, or the
            cancellation exception.
        cancelled_by
            Exception types that mean "stopped because Cancel was pressed".

        Returns
        -------
        napari.qt.threading.FunctionWorker
            The started worker.

        Raises
        ------
        JobRefused
            While another job is running.
        """
        from napari.qt.threading import create_worker

        if self._worker is not None:
            raise JobRefused(
                f"'{self.name}' is still running; wait for it to finish or cancel it first."
            )
        self._flag, self._done = threading.Event(), threading.Event()
        flag, gone, bridge, done = self._flag, self._gone, self._bridge, self._done
        self.name, self.result, self.error, self.last_progress = name, None, None, None

        def report(done: int, total: int, message: str = "") -> None:
            if gone.is_set():
                return
            try:
                bridge.progressed.emit(int(done), int(total), str(message))
            except RuntimeError:  # the widget was deleted under a running job
                gone.set()

        def cancel() -> bool:
            return flag.is_set() or gone.is_set()

        def run():
            try:
                return job(progress=report, cancel=cancel)
            finally:
                done.set()

        worker = create_worker(run, _start_thread=False, _ignore_errors=True)
        self._worker = worker
        handlers = (on_result, on_error, on_cancelled, cancelled_by)
        worker.returned.connect(lambda value: self._finish(value, None, handlers))
        worker.errored.connect(lambda exc: self._finish(None, exc, handlers))
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.bar.setTextVisible(True)
        self.message.setText(f"{name}…")
        self.cancel_button.setEnabled(True)
        self._open_napari_progress(name)
        self._register_task_status(name)
        self.running_changed.emit(True)
        worker.start()
        return worker

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the running job's thread has ended (for closing and for tests)."""
        worker = self._worker
        if worker is None:
            return True
        return worker.await_workers(timeout_ms) if hasattr(worker, "await_workers") else True

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Stop the running job for good (the viewer is closing) and wait for its thread.

        The job is cancelled at its next check; nothing is reported to the widgets any
        more (they are about to be deleted). Returns True when no job is left running.
        """
        worker = self._worker
        if worker is None:
            return True
        self._flag.set()
        self._gone.set()
        wait_ms = self.SHUTDOWN_WAIT_MS if timeout_ms is None else timeout_ms
        stopped = self._done.wait(wait_ms / 1000)
        if stopped:
            # let the worker thread finish emitting its last signals before Qt objects go
            QThreadPool.globalInstance().waitForDone(2000)
        self._worker = None
        self._close_napari_progress()
        self._update_task_status("CANCELLED")
        return stopped

    def _register_task_status(self, name: str) -> None:
        """List the job in napari's running tasks: closing the window asks, then cancels.

        napari (0.5+) keeps these on its window (a private API); without it, closing
        still stops the job through :meth:`shutdown` on application quit.
        """
        self._task_status = None
        register = getattr(getattr(self._viewer, "window", None), "_register_task_status", None)
        if register is None:
            return
        try:
            from napari.utils.task_status import Status

            self._task_status = register(
                "atlas-annotate", Status.BUSY, name, cancel_callback=self.shutdown
            )
        except Exception:  # a courtesy; the aboutToQuit hook still stops the job
            self._task_status = None

    def _update_task_status(self, status: str) -> None:
        if self._task_status is None:
            return
        task_id, self._task_status = self._task_status, None
        try:
            from napari.utils.task_status import Status

            self._viewer.window._update_task_status(task_id, Status[status])
        except Exception:  # the window may be gone already
            pass

    # -- GUI-thread slots -------------------------------------------------------------------
    def _on_progress(self, done: int, total: int, message: str) -> None:
        if self._worker is None:
            return  # a late report from a job that has already ended
        self.last_progress = (done, total, message)
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        text = f"{self.name}: {message}" if message else f"{self.name}"
        if total > 0:
            text += f" ({done}/{total})"
        if not self._flag.is_set():
            self.message.setText(text)
        pbar = self._pbar
        if pbar is not None:
            try:
                if total > 0 and pbar.total != total:
                    pbar.total = total
                if done != pbar.n:
                    pbar.update(done - pbar.n)
                if message:
                    pbar.set_description(f"{self.name}: {message}")
            except Exception:  # the activity dock is a courtesy; our own bar is the record
                pass

    def _finish(self, value, exc, handlers) -> None:
        on_result, on_error, on_cancelled, cancelled_by = handlers
        if self._gone.is_set():
            self._worker = None  # shut down with the viewer: the widgets may be deleted
            return
        cancelled = exc is not None and (
            isinstance(exc, cancelled_by) or (self._flag.is_set() and cancelled_by == ())
        )
        self._worker = None
        self._close_napari_progress()
        self.cancel_button.setEnabled(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if exc is None else 0)
        self.bar.setTextVisible(False)
        self.result, self.error = value, exc
        self._update_task_status(
            "COMPLETED" if exc is None else "CANCELLED" if cancelled else "FAILED"
        )
        if exc is None:
            self.message.setText(f"{self.name}: done.")
            callback, arg = on_result, value
        elif cancelled:
            self.message.setText(f"{self.name}: cancelled.")
            callback, arg = on_cancelled or on_error, exc
        else:
            self.message.setText(f"{self.name}: failed ({exc}).")
            callback, arg = on_error, exc
        try:
            if callback is not None:
                callback(arg)
        finally:  # the callback may have started the next job (the review dock chains them)
            self.running_changed.emit(self.running)

    def _open_napari_progress(self, name: str) -> None:
        self._pbar = None
        if not self._napari_progress:
            return
        try:
            from napari.utils import progress

            self._pbar = progress(total=0, desc=name)
        except Exception:  # pragma: no cover - napari without its activity dock
            self._pbar = None

    def _close_napari_progress(self) -> None:
        if self._pbar is not None:
            try:
                self._pbar.close()
            except Exception:  # pragma: no cover
                pass
            self._pbar = None
