"""The hidden folder an export is built in, and what goes wrong writing it.

An export is built in ``.<target>.<random>.partial`` beside its target and renamed into
place when complete (:mod:`.project_export`). While it is built, the export holds an
exclusive ``flock`` on that folder; a process that is killed (``kill -9``, a closed
terminal, a crashed machine) loses the lock, so the next export to the same target can
tell its folder from one another export is still writing, and deletes it instead of
leaving gigabytes of hidden files behind.

An ``OSError`` while preparing or writing the target (a file where a folder is needed, a
read-only disk, no permission, a full disk) becomes one :class:`.ExportError` line that
names the folder, says what went wrong and what to do; errors reading the project's own
files are not reworded.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path

from ..io.atomic import staging_folder
from ..io.file_locks import CAN_LOCK, try_flock
from .errors import ExportError

#: errors that are about the target disk whatever file they name
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


class Stage:
    """A locked staging folder for ``root``: ``Stage.open(root)``, then ``close()``."""

    def __init__(self, path: Path, fd: int | None, cleared: list[str], made: list[Path]) -> None:
        self.path = path
        self._fd = fd
        #: names of folders of interrupted exports to this target that were deleted
        self.cleared = cleared
        #: parent folders this export created, deepest first (removed again if it fails)
        self.made = made

    @classmethod
    def open(cls, root: Path) -> Stage:
        """Make ``root``'s parent, delete interrupted exports' stages of ``root`` and create
        and lock a new one. Raises :class:`ExportError` when the target cannot be written."""
        refuse_file_ancestor(root)
        made = [p for p in (root.parent, *root.parent.parents) if not p.exists()]
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            cleared = _clear_stale(root)
            for _ in range(5):
                path = staging_folder(root.parent, prefix=f".{root.name}.", suffix=".partial")
                fd = _lock(path)
                if fd is not False:
                    return cls(path, fd, cleared, made)
        except OSError as exc:
            _remove_empty(made)
            raise write_error(root, exc, about_target=True) from None
        raise ExportError(  # pragma: no cover - another process deleted five stages
            f"cannot write the export to {root}: its staging folder kept disappearing; "
            "is another program cleaning that folder? Choose another --out folder."
        )

    def discard(self) -> None:
        """Delete the stage and the parent folders made for it."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.close()
        _remove_empty(self.made)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def recover_replaced(root: Path) -> list[str]:
    """Finish what a killed ``--overwrite`` left: it moves the earlier export aside as
    ``.<root>.old-<pid>-<random>``, renames the new one in, then deletes the old one. Killed
    before the new one was in, the earlier export is put back; after, the rest is deleted.
    A folder another export still holds (its ``flock``, seen on every machine that shares
    the disk, where a process id means nothing) is left alone. Returns what was done, one
    line each."""
    if not root.parent.is_dir():
        return []
    done = []
    prefix = f".{root.name}.old-"
    for path in sorted(root.parent.iterdir()):
        if not (path.name.startswith(prefix) and path.is_dir()):
            continue
        fd = try_lock(path)
        if fd is None:  # the export that moved it aside is still running
            continue
        try:
            if not root.exists():
                os.replace(path, root)
                done.append(
                    f"put back the earlier export {root} that an interrupted export had "
                    f"moved aside as {path.name}"
                )
            else:
                shutil.rmtree(path)
                done.append(
                    f"deleted {path.name}, an earlier export an interrupted export to "
                    f"{root} was deleting"
                )
        except OSError as exc:
            raise write_error(root, exc, about_target=True) from None
        finally:
            os.close(fd)
    return done


def aside_name(root: Path) -> Path:
    """Where ``--overwrite`` moves the earlier export while the new one is renamed in."""
    return root.with_name(f".{root.name}.old-{os.getpid()}-{secrets.token_hex(4)}")


def try_lock(path: Path) -> int | None:
    """An open descriptor of folder ``path`` holding an exclusive ``flock``, or ``None``
    when another export holds one (or the folder is gone). Close it to release."""
    try:
        return try_flock(path)  # without flock (Windows): nothing to ask, take it
    except OSError:
        return None


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; stop at one something else was put in
        try:
            folder.rmdir()
        except OSError:
            return


def _stages_of(root: Path) -> list[Path]:
    prefix = f".{root.name}."
    return sorted(
        p
        for p in root.parent.iterdir()
        if p.name.startswith(prefix) and p.name.endswith(".partial") and p.is_dir()
    )


def _clear_stale(root: Path) -> list[str]:
    """Delete the stages of ``root`` no live export holds; returns their names."""
    if not CAN_LOCK:  # pragma: no cover - Windows: stale stages are left to the user
        return []
    cleared = []
    for path in _stages_of(root):
        fd = try_lock(path)
        if fd is None:  # a running export holds it
            continue
        try:
            shutil.rmtree(path)
            cleared.append(path.name)
        except OSError:
            pass
        finally:
            os.close(fd)
    return cleared


def _lock(path: Path) -> int | None | bool:
    """Lock a new stage; ``False`` if another export cleared it before the lock was taken
    (it was empty and unlocked for a moment), so a new one is needed."""
    if not CAN_LOCK:  # pragma: no cover - Windows
        return None
    try:
        fd = try_flock(path)
    except FileNotFoundError:
        return False
    if fd is None:
        return False
    try:
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)
    except OSError:
        os.close(fd)
        return False
    return fd


def refuse_file_ancestor(root: Path) -> None:
    """A file where the target or one of its parent folders should be: say which."""
    for path in (root, *root.parents):
        if path.exists():
            if not path.is_dir():
                where = "" if path == root else f", so {root} cannot be made inside it"
                raise ExportError(
                    f"{path} exists and is a file{where}; choose another --out folder."
                )
            return


def write_error(root: Path, exc: OSError, about_target: bool = False) -> ExportError | OSError:
    """``exc`` as one line saying the export to ``root`` failed, or ``exc`` itself when it is
    not about the target (reading a source image, say) and ``about_target`` is false."""
    name = exc.filename
    inside = name is not None and Path(os.path.abspath(name)).is_relative_to(
        Path(os.path.abspath(root.parent))
    )
    if not (about_target or inside or exc.errno in _DISK_ERRNOS):
        return exc
    reason = exc.strerror or str(exc)
    where = str(root.parent) if name is None else str(name)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        todo = "free space there or choose an --out folder on a disk with room for the export"
    else:
        todo = "choose an --out folder you can write to"
    return ExportError(
        f"cannot write the export to {root}: {reason} ({where}); nothing was written and an "
        f"earlier export there is unchanged. {todo[0].upper()}{todo[1:]}."
    )
