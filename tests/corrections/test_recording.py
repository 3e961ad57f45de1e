"""EditRecorder: shadow copy + diff + one committed event per change."""

import numpy as np
import pytest

from napari_atlas_annotate.corrections import ActiveClock, EditRecorder
from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import ImageRef, Project, replay
from napari_atlas_annotate.volume import Volume


@pytest.fixture
def project(tmp_path):
    save_nifti(Volume(np.zeros((4, 6, 6), np.int16), np.eye(4)), tmp_path / "ct.nii.gz")
    project = Project.create(tmp_path / "p", task="organs")
    project.add_case("c", [ImageRef(str(tmp_path / "ct.nii.gz"))])
    yield project
    project.close()


def _ticks(*values):
    return iter(values).__next__


def test_record_logs_each_change_and_replays(project):
    base = np.zeros((4, 6, 6), np.uint8)
    base[1, 1:3, 1:3] = 5
    version = project.save_mask_version("c", base, kind="proposal")
    clock = ActiveClock(idle_cap=60, now=_ticks(0.0, 4.0, 300.0, 301.5))
    recorder = EditRecorder(project, "c", "ann", base, version.id, clock=clock)
    labels = base.copy()
    labels[2, 0:2, 0:2] = 3
    first = recorder.record(labels, "paint", 3, region=((2, 3), (0, 2), (0, 2)))
    labels[1, 1:3, 1:3] = 0
    second = recorder.record(labels, "erase", 0)
    assert recorder.record(labels, "paint", 3) is None  # nothing new
    assert (first.diff.n_changed, second.diff.n_changed) == (4, 4)
    assert [first.active_seconds, second.active_seconds] == [4.0, 60.0]  # idle capped
    logged = project.events("c", "ann")
    assert [e.tool for e in logged] == ["paint", "erase"]
    assert [e.base_version_id for e in logged] == [version.id, version.id]
    np.testing.assert_array_equal(replay(base, logged), labels)
    np.testing.assert_array_equal(recorder.shadow, labels)
    _, restored, pending = project.restore_mask("c", "ann")
    np.testing.assert_array_equal(restored, labels)
    assert len(pending) == 2


def test_failed_commit_is_logged_with_the_next_edit(project):
    base = np.zeros((4, 6, 6), np.uint8)
    recorder = EditRecorder(project, "c", "ann", base, None)
    real_log = project.log_event
    calls = []

    def flaky(event):
        calls.append(event.tool)
        if len(calls) == 1:
            raise OSError("disk full")
        return real_log(event)

    project.log_event = flaky
    labels = base.copy()
    labels[0, 0, 0] = 1
    with pytest.raises(OSError):
        recorder.record(labels, "paint", 1, region=((0, 1), (0, 1), (0, 1)))
    labels[3, 5, 5] = 2
    event = recorder.record(labels, "paint", 2, region=((3, 4), (5, 6), (5, 6)))
    assert event.diff.n_changed == 2  # the lost stroke came along (whole-volume compare)
    np.testing.assert_array_equal(replay(base, project.events("c", "ann")), labels)


def test_shape_change_is_refused(project):
    recorder = EditRecorder(project, "c", "ann", np.zeros((4, 6, 6), np.uint8), None)
    with pytest.raises(ValueError, match="case c: labels now have shape"):
        recorder.record(np.zeros((4, 6, 7), np.uint8), "paint", 1)
    assert project.events("c") == []


def test_rebase_starts_from_the_submitted_version(project):
    base = np.zeros((4, 6, 6), np.uint8)
    recorder = EditRecorder(project, "c", "ann", base, None)
    labels = base.copy()
    labels[0, 0, 0] = 1
    recorder.record(labels, "paint", 1)
    version = project.submit_mask("c", "ann", labels, None)
    recorder.rebase(labels, version.id)
    labels[1, 1, 1] = 2
    event = recorder.record(labels, "paint", 2)
    assert event.base_version_id == version.id and event.diff.n_changed == 1
    base_now, restored, pending = project.restore_mask("c", "ann")
    assert base_now.id == version.id and len(pending) == 1
    np.testing.assert_array_equal(restored, labels)
