"""A target the export cannot write, and an export killed half-way: one actionable error
line (no traceback), nothing half-written left behind, an earlier export untouched."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.export import ExportError, export_project, nifti_writer, staging
from napari_atlas_annotate.export import project_export as pe
from napari_atlas_annotate.project import Project


def _export(folder, out, fmt="monai", **kw):
    with Project(folder) as project:
        return export_project(project, fmt, out, status="final", **kw)


def test_out_under_a_file_is_one_error_line(organ_project, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code = main(
        ["export", str(organ_project[0]), "--format", "monai", "--out", str(tmp_path / "afile/sub")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "afile" in err and "is a file" in err and "--out" in err


def test_unwritable_target_names_it_and_what_to_do(organ_project, tmp_path, monkeypatch):
    # as root chmod 555 does not stop writes; a read-only mount reports EROFS like this
    def refuse(parent, prefix, suffix=""):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(parent))

    monkeypatch.setattr(staging, "staging_folder", refuse)
    with pytest.raises(ExportError) as info:
        _export(organ_project[0], tmp_path / "ro" / "out")
    text = str(info.value)
    assert str(tmp_path / "ro") in text and "Read-only file system" in text
    assert "nothing was written" in text and "--out" in text


def test_disk_full_mid_export_leaves_the_earlier_export_and_no_stage(
    organ_project, tmp_path, monkeypatch
):
    out = tmp_path / "exp"
    _export(organ_project[0], out, fmt="nnunet")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    real = nifti_writer.write_nifti
    calls = []

    def full(*args, **kw):
        calls.append(1)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[2]))
        return real(*args, **kw)

    monkeypatch.setattr(nifti_writer, "write_nifti", full)
    for module in (pe.nnunet, pe.abdomenatlas, pe.monai_datalist):
        if hasattr(module, "write_nifti"):
            monkeypatch.setattr(module, "write_nifti", full)
    with pytest.raises(ExportError, match="No space left on device") as info:
        _export(organ_project[0], out, fmt="nnunet", overwrite=True)
    assert "nothing was written" in str(info.value)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


_KILLED_EXPORT = """
import sys, time
from napari_atlas_annotate.export import export_project, project_export as pe
from napari_atlas_annotate.project import Project
real = pe._export_into
def slow(*a, **kw):
    result = real(*a, **kw)
    print("staged", flush=True)
    time.sleep(60)
    return result
pe._export_into = slow
with Project(sys.argv[1]) as project:
    export_project(project, "monai", sys.argv[2], status="final")
"""


def _kill_mid_export(folder, out):
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_EXPORT, str(folder), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "staged"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_killed_export_leaves_no_dataset_and_the_next_one_clears_its_stage(
    organ_project, tmp_path
):
    out = tmp_path / "exp"
    _kill_mid_export(organ_project[0], out)
    left = list(tmp_path.iterdir())
    assert not out.exists() and len(left) == 1 and left[0].name.endswith(".partial")
    result = _export(organ_project[0], out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
    assert any("interrupted" in note for note in result.notes)


def test_a_running_export_stage_is_not_cleared(organ_project, tmp_path):
    """Two exports to one target at once: the second never deletes the first's stage."""
    out = tmp_path / "exp"
    script = _KILLED_EXPORT.replace("time.sleep(60)", "time.sleep(30)")
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(organ_project[0]), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "staged"
        stage = next(tmp_path.iterdir())
        _export(organ_project[0], tmp_path / "other")
        _export(organ_project[0], out)
        time.sleep(0.1)
        assert stage.is_dir()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_failed_export_leaves_no_folder_it_made(organ_project, tmp_path, monkeypatch):
    """nnU-Net's --out (nnUNet_raw) is made for the dataset; a failed export removes it
    again, so "nothing was written" holds."""

    def fail(*args, **kw):
        raise ExportError("case x: image missing")

    monkeypatch.setattr(pe, "_export_into", fail)
    with pytest.raises(ExportError, match="image missing"):
        _export(organ_project[0], tmp_path / "raw" / "nnUNet_raw", fmt="nnunet")
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _the_earlier_export_comes_back(folder, out, aside) -> None:
    """An export moved aside as ``aside`` by an overwrite killed before the new one was in:
    the next export puts it back, and so refuses to replace it without --overwrite."""
    _export(folder, out)
    os.replace(out, aside)
    with pytest.raises(ExportError, match="--overwrite"):
        _export(folder, out)
    assert (out / "provenance.json").is_file() and not aside.exists()


def test_an_overwrite_killed_between_its_renames_gets_the_earlier_export_back(
    organ_project, tmp_path
):
    """``--overwrite`` moves the old export aside, renames the new one in, then deletes the
    old: killed after the first rename, the next export puts the old one back (and so
    refuses to replace it without --overwrite); killed while deleting, the rest goes."""
    out, aside = tmp_path / "exp", tmp_path / f".exp.old-{_dead_pid()}"
    _the_earlier_export_comes_back(organ_project[0], out, aside)

    aside.mkdir()
    (aside / "half-deleted.nii.gz").write_bytes(b"x")
    result = _export(organ_project[0], out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
    assert any(aside.name in note for note in result.notes)


class _LockHolder:
    """Another process holding an export's ``flock`` on ``folder`` (as an export on another
    machine sharing the disk would; there its process id means nothing here)."""

    def __init__(self, folder):
        code = (
            "import fcntl, os, sys\n"
            f"fd = os.open({str(folder)!r}, os.O_RDONLY)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def test_an_aside_folder_another_export_holds_is_left_alone(organ_project, tmp_path):
    out = tmp_path / "exp"
    _export(organ_project[0], out)
    aside = tmp_path / f".exp.old-{_dead_pid()}-0a1b2c3d"  # its pid is no one's here
    aside.mkdir()
    (aside / "being-deleted.nii.gz").write_bytes(b"x")
    holder = _LockHolder(aside)
    try:
        _export(organ_project[0], out, overwrite=True)
        assert (aside / "being-deleted.nii.gz").is_file()
    finally:
        holder.release()
    # once its export has gone, the next export finishes the job
    result = _export(organ_project[0], out, overwrite=True)
    assert not aside.exists() and any(aside.name in note for note in result.notes)


def test_an_unlocked_aside_folder_is_recovered_whatever_pid_it_names(organ_project, tmp_path):
    # a killed export on another machine whose process id happens to be alive here
    out, aside = tmp_path / "exp", tmp_path / f".exp.old-{os.getppid()}"
    _the_earlier_export_comes_back(organ_project[0], out, aside)


def test_a_target_another_export_is_replacing_is_refused_and_kept(organ_project, tmp_path):
    out = tmp_path / "exp"
    _export(organ_project[0], out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    holder = _LockHolder(out)
    try:
        with pytest.raises(ExportError, match="another export is replacing"):
            _export(organ_project[0], out, overwrite=True)
    finally:
        holder.release()
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
    _export(organ_project[0], out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def test_ctrl_c_is_one_line_and_leaves_nothing(organ_project, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(pe, "_export_into", interrupted)
    out = tmp_path / "raw"
    code = main(["export", str(organ_project[0]), "--format", "nnunet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("atlas-annotate export: interrupted")
    assert "nothing was written" in err and list(tmp_path.iterdir()) == []


def test_a_target_filled_while_exporting_is_not_replaced_without_overwrite(
    organ_project, tmp_path, monkeypatch
):
    """Another export (or a user) fills the target while this one runs: without
    --overwrite this one must not replace it."""
    out = tmp_path / "exp"
    real = pe._export_into

    def meanwhile(*args, **kw):
        result = real(*args, **kw)
        out.mkdir()
        (out / "theirs.txt").write_text("kept")
        return result

    monkeypatch.setattr(pe, "_export_into", meanwhile)
    with pytest.raises(ExportError, match="--overwrite"):
        _export(organ_project[0], out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]
