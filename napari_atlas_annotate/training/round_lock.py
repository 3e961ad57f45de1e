"""One training round at a time per project, and clean-up after a round that was killed.

Two rounds trained at once on one project (the dock's *Train new round* while
``atlas-annotate train`` runs in a terminal, or two terminals) would fine-tune the same
parent and race to promote. :func:`training_round` holds an exclusive ``flock`` on
``PROJECT/.training.lock`` for the whole round, so a second one is refused at once with a
clear error. The operating system drops the lock when the process ends, however it ends
(``kill -9``, a closed terminal, a crash), so a stale lock never blocks anyone.

Holding the lock also means no other round is running, so a round row left unfinished in
the project belongs to a process that died. Taking the lock closes such rounds as failed
("stopped before it finished") and deletes the model folders they wrote but never
registered (a model is written before it is validated), so nothing half-judged lingers in
``PROJECT/models/``. ``status`` uses :func:`training_running` to say whether an unfinished
round is running now or was stopped.

On a system without ``fcntl`` (Windows) rounds are not locked and nothing is cleaned.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..io.file_locks import CAN_LOCK, try_flock
from ..models.registry import finish_round, list_models, list_rounds, model_folder, start_round
from ..project import Project, ProjectError

LOCK_NAME = ".training.lock"

#: What a round whose process died without finishing it is recorded with.
STOPPED_ERROR = "stopped before it finished: the training process ended (killed, closed or crashed)"


def lock_path(project: Project) -> Path:
    return project.folder / LOCK_NAME


def training_running(project: Project) -> bool:
    """True while a training round holds this project's lock (in any process)."""
    if not CAN_LOCK:  # pragma: no cover - Windows
        return False
    path = lock_path(project)
    if not path.exists():
        return False
    try:
        fd = try_flock(path, create=True)
    except OSError:
        return False
    if fd is None:
        return True
    os.close(fd)
    return False


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def close_stopped_rounds(project: Project) -> list[int]:
    """Record unfinished rounds as stopped and remove their unregistered model folders.

    A round whose process died after registering its model (and making it active, if it
    was promoted) but before closing the round is closed with that model and the verdict
    registered with it: the registry already acts on it, so the round says so.

    Call only while holding the training lock (then no unfinished round is running).
    Returns the round numbers closed.
    """
    registered = {m.version: m for m in list_models(project)}
    closed = []
    for row in list_rounds(project):
        if row.get("finished_at"):
            continue
        made = None
        for task in ("organs", "spine"):
            folder = model_folder(project, f"{task}-round{row['id']}")
            if folder.name in registered:
                made = registered[folder.name]
            elif folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
        if made is not None:
            finish_round(project, row["id"], made.version, made.metrics)
        else:
            finish_round(project, row["id"], None, {"status": "failed", "error": STOPPED_ERROR})
        closed.append(int(row["id"]))
    return closed


@contextmanager
def training_round(project: Project) -> Iterator[int]:
    """Hold the project's training lock and open a new round; yields its number.

    Raises
    ------
    ProjectError
        When another round is training on this project now (in this or another process).
    """
    if not CAN_LOCK:  # pragma: no cover - Windows
        yield start_round(project)
        return
    path = lock_path(project)
    try:
        fd = try_flock(path, create=True)
    except OSError as exc:
        raise ProjectError(
            f"{project.folder}: cannot create the training lock {path.name} ({exc}). "
            "Training needs write access to the project folder."
        ) from exc
    if fd is None:
        holder = _holder(path)
        raise ProjectError(
            f"{project.folder}: another training round is running on this project"
            f"{f' ({holder})' if holder else ''}. Wait for it to finish ('atlas-annotate "
            "status PROJECT' lists rounds), or stop it, then train again."
        )
    try:
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M")
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}, since {started}".encode())
        close_stopped_rounds(project)
        yield start_round(project)
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race)
