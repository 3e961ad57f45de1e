"""Reading the next case's image in the background while the current one is annotated.

A radiologist spends minutes on a case; reading the next CT (a 512x512x300 ``.nii.gz``
takes about a second, mostly gzip; a DICOM series of 300 files about as long, mostly
pydicom) can happen meanwhile, so *Submit and next* shows it at once.
:class:`ImagePrefetch` reads one image ahead in a daemon thread and hands it over only
if it is still what a fresh read would give: the same path, series and stack, and the
files unchanged since (a NIfTI file's size and modification time; for a DICOM path the
list of files a scan reads under it, each with its size and modification time, so a
file changed, added or removed anywhere under it counts). Anything else (another case
asked for, a read that failed, a file replaced meanwhile) gives None, and the caller
reads as usual, with its usual error messages.

NIfTI files and DICOM series (without a ``stack``) are read ahead. A NIfTI read is gzip
inflation and array copies, which let go of Python's GIL; a DICOM read is pydicom's
header parsing, which hands the GIL over every 5 ms (``sys.getswitchinterval``), and
the pixel decoding, which holds it for 27-30 ms a JPEG 2000 / JPEG-LS slice. Either way
the viewer keeps painting: the longest pause of its thread while a 300x512x512 series
was read ahead was 28 ms, uncompressed or JPEG 2000 (``bench/read_ahead.py``).

Warnings belong to the moment the case is opened, not to the background read, which
warns of nothing:

* the project's own warnings (files skipped, uneven spacing, no patient geometry, ...)
  are not raised by the background read at all: it reads the headers
  (:meth:`.dicom_scan.HeaderScan.read`) and decodes the pixels, and :meth:`take`, in
  the caller's thread, groups and checks the headers with the same code as a fresh
  read (:func:`.dicom_scan.scan_dicom` with ``read=``, :func:`.dicom.plan_series`),
  which warns then, exactly as a fresh read does;
* other libraries' warnings (pydicom's on a header value it finds invalid, nibabel's)
  pass the warning filters in the read's thread and are then kept, not shown: a hook on
  :func:`warnings._showwarnmsg` (which ``warnings.catch_warnings`` in other threads
  leaves alone, unlike ``showwarning``) keeps those of read-ahead threads; :meth:`take`
  warns of them again in the caller's thread, with the same text, category, file and
  line, in the order a fresh read would give them. They pass the filters as these stand
  while the read runs, and a read not taken drops them (the fresh read warns anew).

A DICOM series that the checks in :meth:`take` refuse gives None after their warnings,
and the caller's fresh read warns again before its error, as a failed read already does
(the dock's first read and ``Project.load_image``).

One image is held at a time (the next case's: about the size of the CT, e.g. 150 MB,
and for DICOM its files' headers, about 30 KB each).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..volume import Volume
from . import is_nifti_path, load_nifti
from .errors import VolumeLoadError
from .folder_walk import file_stamps

#: The steps of a DICOM read whose warnings a fresh read gives at different moments: the
#: header scan (before the scan's own warnings), the image records (before the geometry
#: warnings), the pixels (last).
_STEPS = ("headers", "frames", "pixels")


# -- other libraries' warnings in a read-ahead thread --------------------------------------
_local = threading.local()  # .caught: where the warnings of this thread's read go
_hook_lock = threading.Lock()
_shown: Any = None  # warnings' own _showwarnmsg: shows the warnings of every other thread


def _show_or_keep(msg: warnings.WarningMessage) -> None:
    """``warnings._showwarnmsg`` while reads ahead are made: a warning that passed the
    filters in a read-ahead thread is kept for :meth:`ImagePrefetch.take`; any other is
    shown as usual."""
    caught = getattr(_local, "caught", None)
    if caught is None:
        _shown(msg)
    else:
        caught.append(msg)


def _hook_warnings() -> bool:
    """Put :func:`_show_or_keep` in place (once); False where this Python has no
    ``warnings._showwarnmsg`` to hook (nothing is read ahead then)."""
    global _shown
    with _hook_lock:
        if _shown is None:
            current = getattr(warnings, "_showwarnmsg", None)
            if not callable(current):
                return False
            _shown, warnings._showwarnmsg = current, _show_or_keep
        return warnings._showwarnmsg is _show_or_keep


@contextmanager
def _kept(caught: list) -> Iterator[None]:
    """The warnings this thread's code shows meanwhile go to ``caught`` instead."""
    _local.caught = caught
    try:
        yield
    finally:
        _local.caught = None


def _warn_again(caught: list) -> None:
    """Warn of warnings kept by a read ahead, in the caller's thread, as they were."""
    for msg in caught:
        warnings.warn_explicit(
            msg.message, msg.category, msg.filename, msg.lineno, source=msg.source
        )
    caught.clear()


# -- what "unchanged" means ----------------------------------------------------------------
def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _files_stamp(files: list) -> tuple | None:
    """:func:`.folder_walk.file_stamps`, or None if a file cannot be looked at."""
    try:
        return tuple(file_stamps(files))
    except OSError:
        return None


def _series_stamp(path: Path) -> tuple | None:
    """:func:`_files_stamp` of the files a DICOM scan of ``path`` reads."""
    from .dicom_scan import candidate_files

    try:
        return _files_stamp(candidate_files(path))
    except OSError:
        return None


# -- the reads -----------------------------------------------------------------------------
@dataclass
class _Read:
    key: str
    source: tuple[str, str | None, int | None]
    stamp: Any
    dicom: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    volume: Volume | None = None  # a NIfTI file's image
    series: tuple | None = None  # a DICOM series' (HeaderScan, SeriesInfo, frames, pixels)
    warned: dict[str, list] = field(default_factory=lambda: {step: [] for step in _STEPS})


def _likely_z_order(frames: list) -> list[int]:
    """The order :func:`.dicom_geometry.stack_frames` most likely gives (by position along
    the first image's normal), guessed without its checks, which may warn: the pixels
    are decoded in it, and put in the checked order when taken if the guess was wrong."""
    if any(f.position is None or f.orientation is None for f in frames):
        return list(range(len(frames)))
    orientation = np.asarray(frames[0].orientation, float)
    normal = np.cross(orientation[:3], orientation[3:])
    along = np.array([np.dot(f.position, normal) for f in frames])
    return [int(i) for i in np.argsort(along, kind="stable")]


def _read_series(read: _Read, path: Path, series: str | None) -> None:
    """In the background: a DICOM series' headers and pixels, warning of nothing."""
    from .dicom import select_series
    from .dicom_frames import frames_of_series
    from .dicom_pixels import read_pixels
    from .dicom_scan import HeaderScan, candidate_files

    with _kept(read.warned["headers"]):
        files = candidate_files(path)
        read.stamp = _files_stamp(files)  # before reading: a file changed later differs
        scan = HeaderScan().read(files)
    with _kept(read.warned["frames"]):
        info = select_series(scan.series(warn=False), path, series)
        frames = frames_of_series(info.headers, info.files)
    with _kept(read.warned["pixels"]):
        decoded = [frames[i] for i in _likely_z_order(frames)]
        read.series = (scan, info, frames, (decoded, read_pixels(decoded)))


def _series_volume(read: _Read, path: Path, series: str | None) -> Volume:
    """In the caller's thread: the series read ahead as :func:`.dicom.load_dicom` reads
    it, with the same warnings in the same order (raises as it does too)."""
    from .dicom import plan_series, scan_dicom, select_series

    scan, listed, frames, decoded = read.series
    read.series = None  # handed over once
    _warn_again(read.warned["headers"])
    found = scan_dicom(path, label_maps_expected=True, read=scan)
    info = select_series(found, path, series)
    if info.series_uid != listed.series_uid or list(info.files) != list(listed.files):
        frames = None  # not the series whose images were listed: listed again
    _warn_again(read.warned["frames"])
    volume = plan_series(info, path, frames=frames).read(decoded=decoded)
    _warn_again(read.warned["pixels"])
    return volume


class ImagePrefetch:
    """One image read ahead in a background thread.

    Examples
    --------
    >>> ahead = ImagePrefetch()                                  # doctest: +SKIP
    >>> ahead.start("ct001", "/data/ct001.nii.gz")                # after opening ct000
    >>> volume = ahead.take("ct001", "/data/ct001.nii.gz")        # None: read it yourself
    """

    def __init__(self) -> None:
        self._read: _Read | None = None
        self._lock = threading.Lock()

    @staticmethod
    def can_read_ahead(path: str | Path, series: str | None = None, stack=None) -> bool:
        """True for the images read ahead: a NIfTI file (no series or stack), or a DICOM
        file or folder (a series of it, but not one stack of a series of several)."""
        path = Path(path)
        if is_nifti_path(path):
            return series is None and stack in (None, 1) and path.is_file()
        return stack is None and path.exists()

    def start(self, key: str, path: str | Path, series: str | None = None, stack=None) -> bool:
        """Read ``path`` for ``key`` in the background (forgetting any earlier read).

        Returns False, and reads nothing, for an image that is not read ahead
        (:meth:`can_read_ahead`) or that is already being read for ``key``.
        """
        path = Path(path)
        source = (str(path), series, None if stack is None else int(stack))
        with self._lock:
            current = self._read
            if current is not None and current.key == key and current.source == source:
                return False
            self._read = None
        if not self.can_read_ahead(path, series, stack) or not _hook_warnings():
            return False
        dicom = not is_nifti_path(path)
        read = _Read(key, source, None if dicom else _stamp(path), dicom)

        def run() -> None:
            try:
                if dicom:
                    _read_series(read, path, series)
                else:
                    with _kept(read.warned["pixels"]):
                        read.volume = load_nifti(path)
            except Exception:  # the caller reads it again and reports the error
                read.volume = read.series = None
            finally:
                read.done.set()

        with self._lock:
            self._read = read
        threading.Thread(target=run, name=f"read ahead {key}", daemon=True).start()
        return True

    def take(
        self, key: str, path: str | Path, series: str | None = None, stack=None
    ) -> Volume | None:
        """The image read ahead for ``key``, if it is ``path`` (``series``, ``stack``) as
        the files are now; waits for a read still under way. None otherwise. The image is
        handed over once: the next call for ``key`` gives None.

        The warnings the read would have given are given here, in the caller's thread
        (see the module's description); a DICOM series that a fresh read refuses (its
        geometry is checked here) gives None too.
        """
        with self._lock:
            read, self._read = self._read, None
        path = Path(path)
        source = (str(path), series, None if stack is None else int(stack))
        if read is None or read.key != key or read.source != source:
            return None
        read.done.wait()
        if not read.dicom:
            if read.volume is None or _stamp(path) != read.stamp:
                return None
            _warn_again(read.warned["pixels"])
            return read.volume
        if read.series is None or read.stamp is None or _series_stamp(path) != read.stamp:
            return None
        try:
            return _series_volume(read, path, series)
        except VolumeLoadError:  # the caller reads it again and reports the error
            return None

    def pending(self) -> str | None:
        """The key being read or held, if any."""
        read = self._read
        return None if read is None else read.key

    def clear(self) -> None:
        """Forget what was read ahead (a thread under way finishes and is dropped)."""
        with self._lock:
            self._read = None
