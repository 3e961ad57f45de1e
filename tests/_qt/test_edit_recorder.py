"""The napari hook on a display-less ViewerModel: every change of a Labels layer is one
logged edit, the log replays to the layer bit for bit, and a SIGKILL loses at most the
stroke in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from napari_atlas_annotate.corrections import EditRecorder, fill_between_slices
from napari_atlas_annotate.project import Project, replay

napari_components = pytest.importorskip("napari.components")

from napari_atlas_annotate._qt.edit_recorder import LabelsEditHook  # noqa: E402


def _open(project: Project, case_id: str, annotator: str = "ann", axes=(0, 1, 2)):
    base, labels, _ = project.restore_mask(case_id, annotator)
    viewer = napari_components.ViewerModel()
    layer = viewer.add_labels(np.array(labels).transpose(axes))
    recorder = EditRecorder(project, case_id, annotator, labels, base.id)
    return viewer, layer, LabelsEditHook(layer, recorder, axes=axes), base


def test_paint_fill_erase_undo_redo_are_logged_and_replay(organ_project):
    project = organ_project.open()
    viewer, layer, hook, base = _open(project, "ct000")
    layer.brush_size = 3
    layer.mode = "paint"
    with layer.block_history():  # what a mouse stroke does
        layer.paint((2, 20, 20), 1)
        layer.paint((2, 21, 22), 1)
    layer.mode = "fill"
    layer.fill((6, 2, 2), 2)  # background of slice 6 (2D fill) -> gall bladder
    layer.mode = "erase"
    layer.paint((6, 5, 5), 0)
    layer.undo()
    layer.undo()
    layer.redo()
    viewer.dims.set_point(0, 9)  # a slice change is not an edit
    hook.apply_labels(fill_between_slices(layer.data, 2), "interpolate", 2)
    hook.flush()
    tools = [e.tool for e in project.events("ct000", "ann")]
    assert tools == ["paint", "fill", "erase", "undo", "undo", "redo"]  # interpolate: no-op
    assert [e.class_id for e in hook.events[:3]] == [1, 2, 0]
    with layer.block_history():
        layer.paint((8, 20, 20), 1)
    assert hook.apply_labels(fill_between_slices(layer.data, 1), "interpolate", 1) > 0
    layer.undo()  # one napari step takes the whole accelerator back
    layer.redo()
    hook.flush()
    events = project.events("ct000", "ann")
    assert [e.tool for e in events][-4:] == ["paint", "interpolate", "undo", "redo"]
    assert all(e.diff.n_changed < 200 for e in events if e.tool == "paint")
    np.testing.assert_array_equal(replay(organ_project.proposals["ct000"], events), layer.data)
    _, restored, _ = project.restore_mask("ct000", "ann")
    np.testing.assert_array_equal(restored, layer.data)


def test_without_naparis_private_undo_stacks_every_edit_is_still_logged(organ_project, monkeypatch):
    # The hook reads napari's private undo/redo stacks to tell an undo from a slice change
    # (napari 0.9 says they may go in 0.10). Without them it compares the whole volume:
    # undo and redo are logged as "undo/redo", a slice change logs nothing, and the log
    # still replays to the layer.
    monkeypatch.setattr(LabelsEditHook, "_stack_lengths", lambda self: None)
    project = organ_project.open()
    viewer, layer, hook, base = _open(project, "ct000")
    layer.brush_size = 3
    layer.mode = "paint"
    with layer.block_history():
        layer.paint((2, 20, 20), 1)
    layer.mode = "fill"
    layer.fill((6, 2, 2), 2)
    layer.undo()
    viewer.dims.set_point(0, 9)  # a slice change is not an edit
    layer.redo()
    hook.flush()
    events = project.events("ct000", "ann")
    assert [e.tool for e in events] == ["paint", "fill", "undo/redo", "undo/redo"]
    assert [e.class_id for e in events] == [1, 2, None, None]
    np.testing.assert_array_equal(replay(organ_project.proposals["ct000"], events), layer.data)


def test_a_reset_is_logged_as_a_reset_of_several_classes_not_a_paint_of_the_selected_one(
    organ_project,
):
    project = organ_project.open()
    viewer, layer, hook, base = _open(project, "ct000")
    proposal = organ_project.proposals["ct000"]
    layer.mode = "paint"
    layer.brush_size = 3
    for value, at in ((1, (2, 20, 20)), (5, (6, 30, 30)), (2, (9, 10, 10))):
        with layer.block_history():
            layer.paint(at, value)
    layer.selected_label = 5  # the class selected when Reset is pressed
    edited = np.array(layer.data)
    assert hook.apply_labels(proposal.copy(), "reset", None, version=base.id) > 0
    hook.flush()
    reset = project.events("ct000", "ann")[-1]
    assert reset.tool == "reset" and reset.class_id is None
    changed = edited != proposal
    touched = set(np.unique(edited[changed])) | set(np.unique(proposal[changed]))
    assert reset.detail == {"version": base.id, "classes": sorted(int(c) for c in touched - {0})}
    assert len(reset.detail["classes"]) > 1
    # the log reads back and replays as before
    np.testing.assert_array_equal(replay(proposal, project.events("ct000", "ann")), proposal)
    # an accelerator of one class still logs that class, whatever is selected
    with layer.block_history():
        layer.paint((8, 20, 20), 1)
    with layer.block_history():
        layer.paint((2, 20, 20), 1)
    assert hook.apply_labels(fill_between_slices(layer.data, 1), "interpolate", 1) > 0
    hook.flush()
    interpolate = project.events("ct000", "ann")[-1]
    assert (interpolate.tool, interpolate.class_id) == ("interpolate", 1)
    assert "classes" not in interpolate.detail


def test_transposed_layer_is_logged_in_volume_order(organ_project):
    project = organ_project.open()
    axes = (2, 0, 1)  # layer shows (x, z, y), as for a sagittal series
    _, layer, hook, _ = _open(project, "ct001", axes=axes)
    layer.brush_size = 1
    with layer.block_history():
        layer.paint((30, 3, 25), 4)
    layer.undo()
    layer.redo()
    events = project.events("ct001", "ann")
    assert events[0].diff.bbox == ((3, 4), (25, 26), (30, 31))
    volume_labels = np.asarray(layer.data).transpose(np.argsort(axes))
    assert volume_labels[3, 25, 30] == 4
    np.testing.assert_array_equal(replay(organ_project.proposals["ct001"], events), volume_labels)


_WORKER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from napari.components import ViewerModel
    from napari_atlas_annotate.corrections import EditRecorder
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate._qt.edit_recorder import LabelsEditHook

    project = Project(sys.argv[1])
    base, labels, _ = project.restore_mask("ct000", "ann")
    layer = ViewerModel().add_labels(labels.copy())
    hook = LabelsEditHook(layer, EditRecorder(project, "ct000", "ann", labels, base.id))
    layer.brush_size = 3
    layer.mode = "paint"
    for i in range(10_000):
        z, y, x, value = {strokes}(i)
        if i % 2:
            layer.paint((z, y, x), value)  # programmatic: logged at the next event
        else:
            with layer.block_history():  # a mouse stroke: logged when it ends
                layer.paint((z, y, x), value)
        print(i, flush=True)
    """
)


#: The worker's i-th brush dab: (z, y, x, class); the test replays the same sequence.
STROKE = "(lambda i: (i % 12, 5 + (7 * i) % 30, 5 + (11 * i) % 30, 1 + i % 9))"
_stroke = eval(STROKE)


def test_sigkill_loses_at_most_the_last_stroke(organ_project, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(strokes=STROKE))
    child = subprocess.Popen(
        [sys.executable, str(script), str(organ_project.folder)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    done = -1
    deadline = time.monotonic() + 60
    try:
        while done < 25 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            done = int(line.split()[0])
        os.kill(child.pid, signal.SIGKILL)  # mid-work: it keeps painting until now
    finally:
        child.wait(timeout=30)
    # The worker may have run ahead of our reading: what it printed before dying is
    # still in the pipe. The last complete line is the last stroke it finished.
    rest = child.stdout.read()
    complete = rest.split("\n")[:-1]  # a line cut by the kill has no newline yet
    for line in complete:
        if line.strip().isdigit():
            done = int(line)
    child.stdout.close()
    assert done >= 25, "the worker did not start painting"
    assert child.returncode == -signal.SIGKILL

    project = organ_project.open()
    assert project.integrity_check() == "ok"
    _, restored, pending = project.restore_mask("ct000", "ann")
    # Reproduce the worker's strokes: the restored label must be the state after all
    # strokes it reported, give or take the one in flight.
    layer = napari_components.ViewerModel().add_labels(organ_project.proposals["ct000"].copy())
    layer.brush_size = 3
    layer.mode = "paint"
    states = {}
    for i in range(done + 3):
        z, y, x, value = _stroke(i)
        layer.paint((z, y, x), value)
        states[i] = np.array(layer.data)
    matches = [i for i, state in states.items() if np.array_equal(state, restored)]
    assert matches, f"the restored label is not any state the worker went through ({done=})"
    assert done - 1 <= max(matches) <= done + 2, f"{done=} {matches=}"
    assert pending and all(e.tool == "paint" for e in pending)
