"""The annotator dock's helper-model panel in a real napari viewer (Xvfb): proposing,
training and exporting run in a worker thread while the radiologist keeps painting."""

from __future__ import annotations

import importlib
import sys
import threading
import types

import numpy as np
import pytest

from napari_atlas_annotate._napari.layers import data_to_world_matrix
from napari_atlas_annotate.project import Project

pytestmark = pytest.mark.qt

annotator = pytest.importorskip("napari_atlas_annotate._qt.annotator")
model_panel = pytest.importorskip("napari_atlas_annotate._qt.model_panel")

WAIT_MS = 30_000


@pytest.fixture
def rounds(monkeypatch):
    """``napari_atlas_annotate.rounds``; until it lands, a stand-in with its signatures
    that calls the same core (proposals.propose_cases, training.round.train_round)."""
    try:
        return importlib.import_module("napari_atlas_annotate.rounds")
    except ImportError:
        pass
    from napari_atlas_annotate.models.proposals import propose_cases
    from napari_atlas_annotate.training.round import train_round

    shim = types.ModuleType("napari_atlas_annotate.rounds")

    def propose(project, case_ids=None, *, device="auto", progress=None, cancel=None):
        return propose_cases(project, case_ids, device, progress, cancel)

    def retrain(project, *, device="auto", epochs=None, progress=None, cancel=None):
        return train_round(project, device, epochs, progress, cancel)

    shim.propose, shim.retrain = propose, retrain
    monkeypatch.setitem(sys.modules, "napari_atlas_annotate.rounds", shim)
    return shim


@pytest.fixture
def gate(monkeypatch, rounds):
    """Hold the real ``rounds.propose`` at its first cancel check (inside the model's
    sliding window, before anything is stored) until released, so the test acts while the
    job is certainly in flight."""
    reached, release = threading.Event(), threading.Event()
    real = rounds.propose

    def propose(project, case_ids=None, *, device="auto", progress=None, cancel=None):
        def held() -> bool:
            reached.set()
            release.wait(WAIT_MS / 1000)
            return cancel()

        return real(project, case_ids, device=device, progress=progress, cancel=held)

    monkeypatch.setattr(rounds, "propose", propose)
    yield types.SimpleNamespace(reached=reached, release=release)
    release.set()  # never leave a worker waiting after a failed test


def _dock(make_napari_viewer, organ_project, name="alice"):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, name)
    assert dock.last_error is None and dock.case_id == "ct000"
    return viewer, dock, dock.model_panel


def _proposal_ids(folder, case_id):
    with Project(folder) as project:
        return [v.id for v in project.versions(case_id, kinds=("proposal",))]


def test_paint_while_proposing_keeps_the_edit_and_announces_the_proposal(
    make_napari_viewer, organ_project, gate, qtbot
):
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    layer = dock.labels_layer
    assert panel.propose_current()
    assert panel.task.running
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)  # inside the model's inference

    # One job at a time: the buttons are off, Cancel is on, a second start is refused.
    assert not panel.propose_all_button.isEnabled() and not panel.train_button.isEnabled()
    assert not panel.export_button.isEnabled() and panel.task.cancel_button.isEnabled()
    assert not panel.propose(None)
    assert "still running" in dock.last_error

    # Painting works meanwhile, and the stroke is in the project's edit log at once.
    dock.select_class(1)
    before = int(layer.data[6, 20, 20])
    with layer.block_history():
        layer.paint((6, 20, 20), 1)
    qtbot.wait(50)
    assert layer.data[6, 20, 20] == 1 != before
    with Project(organ_project.folder) as project:
        logged = project.events("ct000", "alice")
    assert logged and logged[-1].tool == "paint"
    assert panel.task.running  # the edit was logged while the job was still in flight
    assert _proposal_ids(organ_project.folder, "ct000") == [organ_project.proposal_ids["ct000"]]

    gate.release.set()
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert panel.task.error is None, panel.task.error
    ids = _proposal_ids(organ_project.folder, "ct000")
    assert len(ids) == 2 and [p.case_id for p in panel.last_proposals] == ["ct000"]
    # Unsubmitted work is never replaced: the painted voxel stays, the user is told.
    assert layer in viewer.layers and dock.labels_layer is layer
    assert layer.data[6, 20, 20] == 1
    assert panel.proposal_waiting == "ct000"
    assert "new proposal for ct000 is available" in dock.status.text()
    assert panel.propose_all_button.isEnabled() and not panel.task.cancel_button.isEnabled()
    # ... and survive a restart: the restored work stays on the proposal it was made on.
    with Project(organ_project.folder) as project:
        base, restored, pending = project.restore_mask("ct000", "alice")
    assert base.id == organ_project.proposal_ids["ct000"] and pending
    np.testing.assert_array_equal(restored, layer.data)


def test_propose_reloads_an_untouched_case(make_napari_viewer, organ_project, rounds, qtbot):
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    panel.device_combo.setCurrentText("cpu")
    assert panel.propose_current()
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert panel.task.error is None, panel.task.error
    with Project(organ_project.folder) as project:
        latest = project.latest_version("ct000", kinds=("proposal",))
        assert latest.id != organ_project.proposal_ids["ct000"]
        np.testing.assert_array_equal(dock.labels_layer.data, project.read_mask(latest))
        assert project.case("ct000").uncertainty == pytest.approx(
            panel.last_proposals[0].uncertainty
        )
    assert dock.base.id == latest.id and "reloaded" in dock.status.text()
    assert "organs-starter" in panel.model_label.text()


def test_cancel_stops_the_job_and_stores_nothing(make_napari_viewer, organ_project, gate, qtbot):
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    shown = np.array(dock.labels_layer.data)
    assert panel.propose_current()
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
    qtbot.mouseClick(panel.task.cancel_button, _left())
    assert panel.task.cancel_requested() and not panel.task.cancel_button.isEnabled()
    gate.release.set()
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)

    from napari_atlas_annotate.models.inference import InferenceCancelled

    assert isinstance(panel.task.error, InferenceCancelled)
    assert "cancelled" in dock.status.text() and "cancelled" in panel.task.message.text()
    assert _proposal_ids(organ_project.folder, "ct000") == [organ_project.proposal_ids["ct000"]]
    np.testing.assert_array_equal(dock.labels_layer.data, shown)
    assert panel.propose_case_button.isEnabled()


def test_cancel_training_keeps_the_active_model(make_napari_viewer, organ_project, rounds, qtbot):
    with Project(organ_project.folder) as project:  # one submitted label to train on
        project.submit_mask("ct001", "bob", organ_project.proposals["ct001"], None)
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    panel.device_combo.setCurrentText("cpu")
    model_before = panel.model_label.text()
    assert panel.train(epochs=50)
    panel.task.cancel()
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)

    from napari_atlas_annotate.models.registry import active_record, list_rounds
    from napari_atlas_annotate.training.organs import TrainingCancelled

    assert isinstance(panel.task.error, TrainingCancelled), panel.task.error
    assert "cancelled" in dock.status.text()
    # the message is about the model, not about a case being proposed
    assert "active model is unchanged" in dock.status.text()
    assert "case in progress" not in dock.status.text()
    with Project(organ_project.folder) as project:
        active = active_record(project)
        assert active is None or active.version == "organs-starter"
        assert list_rounds(project)[-1]["metrics"]["status"] == "cancelled"
        models = project.folder / "models"
        left = sorted(p.name for p in models.iterdir()) if models.exists() else []
        assert left in ([], ["organs-starter"])  # no half-made round model
    assert "cancelled" in panel.model_label.text() and model_before.startswith("Model:")


def test_worker_errors_are_reported_not_raised(
    make_napari_viewer, organ_project, rounds, monkeypatch, qtbot
):
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)

    def broken(project, case_ids=None, **kwargs):
        raise RuntimeError("the model file is damaged")

    monkeypatch.setattr(rounds, "propose", broken)
    assert panel.propose(None)
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert "the model file is damaged" in dock.last_error
    assert viewer.layers and panel.propose_all_button.isEnabled()

    # A device this machine does not have: the core's clear error, in the dock.
    import torch

    if not torch.cuda.is_available():
        monkeypatch.undo()
        panel.device_combo.setCurrentText("cuda")
        assert panel.propose_current()
        qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
        assert "CUDA" in dock.last_error


def test_a_case_that_fails_to_load_does_not_hide_the_others(
    make_napari_viewer, organ_project, rounds, qtbot
):
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    panel.device_combo.setCurrentText("cpu")
    organ_project.images["ct001"].unlink()  # the file went away after the case was added
    assert panel.propose(None)
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert "ct001" in dock.last_error and "could not be proposed" in dock.last_error
    # ct000 was proposed all the same, and the open case shows its new proposal
    assert [p.case_id for p in panel.last_proposals] == ["ct000"]
    with Project(organ_project.folder) as project:
        latest = project.latest_version("ct000", kinds=("proposal",))
    assert latest.id != organ_project.proposal_ids["ct000"] and dock.base.id == latest.id
    assert panel.propose_all_button.isEnabled()


def test_export_button_writes_an_export(
    make_napari_viewer, organ_project, monkeypatch, tmp_path, qtbot
):
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    dock.submit()  # ct000 corrected (as proposed) by alice
    out = tmp_path / "out"
    asked = []

    def ask(self):
        asked.append([self.format_combo.itemText(i) for i in range(self.format_combo.count())])
        return ("abdomenatlas", "corrected", str(out))

    monkeypatch.setattr(model_panel.ExportDialog, "ask", ask)
    qtbot.mouseClick(panel.export_button, _left())
    assert "rsna" not in asked[0] and "abdomenatlas" in asked[0]
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert panel.task.error is None, panel.task.error
    result = panel.last_export
    assert result.cases == ["ct000"] and [s.case_id for s in result.skipped] == ["ct001"]
    assert result.manifest.is_file() and str(result.root).startswith(str(out))
    assert (result.root / "ct000" / "combined_labels.nii.gz").is_file()
    assert "exported 1 case(s)" in dock.status.text()

    # A second export into the same, now non-empty, folder: refused, reported, kept.
    before = sorted(p.name for p in out.rglob("*"))
    assert panel.export("abdomenatlas", "corrected", out)
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert panel.task.error is not None and "Exporting abdomenatlas failed" in dock.last_error
    assert sorted(p.name for p in out.rglob("*")) == before
    assert not panel.export("abdomenatlas", "final", "  ")
    assert "output folder" in dock.last_error


def test_uncertainty_layer_lies_over_the_image(make_napari_viewer, organ_project, rounds, qtbot):
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    assert panel.show_uncertainty() is None  # the test proposal was imported without one
    assert "no uncertainty map" in dock.last_error

    assert panel.propose_current()
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    layer = panel.show_uncertainty()
    assert layer is not None and layer in viewer.layers
    data = np.asarray(layer.data)
    assert data.dtype == np.float32 and 0 <= data.min() and data.max() <= 1
    # Same world box as the image, within one voxel of the (coarser) uncertainty grid.
    image_box, unc_box = _world_box(dock.image_layer), _world_box(layer)
    voxel = np.abs(data_to_world_matrix(layer)[:3, :3]).max(axis=1)
    assert np.all(np.abs(image_box - unc_box) <= voxel + 1e-6), (image_box, unc_box, voxel)
    # The labels stay on top and active so painting carries on.
    layers = list(viewer.layers)
    assert layers.index(dock.labels_layer) > layers.index(layer)
    assert viewer.layers.selection.active is dock.labels_layer
    # It goes away with the case.
    dock.step_case(+1)
    assert layer not in viewer.layers


def _world_box(layer) -> np.ndarray:
    """(2, 3) world min/max of the outer faces of the layer's voxels."""
    shape = np.asarray(layer.data.shape)
    corners = np.array(np.meshgrid(*[(-0.5, n - 0.5) for n in shape], indexing="ij"))
    corners = corners.reshape(3, -1).T
    world = np.array([layer.data_to_world(c) for c in corners])
    return np.stack([world.min(axis=0), world.max(axis=0)])


def _left():
    from qtpy.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_closing_the_viewer_stops_a_running_job(make_napari_viewer, organ_project, qtbot):
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    started, ended = threading.Event(), threading.Event()
    seen = {}

    def job(progress, cancel):  # stands in for a training round: checks cancel per batch
        started.set()
        try:
            for _ in range(WAIT_MS // 10):
                if cancel():
                    seen["cancelled"] = True
                    return None
                threading.Event().wait(0.01)
            return None
        finally:
            ended.set()

    panel.task.start("Training a new round", job)
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    viewer.close()
    # The job was told to stop and its thread is done before the window is gone: no
    # worker is left to report to deleted widgets (which aborts the process at exit).
    assert ended.is_set() and seen.get("cancelled")
    assert not panel.task.running


def test_proposing_again_with_the_same_model_announces_nothing_new(
    make_napari_viewer, organ_project, rounds, qtbot
):
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    assert panel.propose_current()  # the starter's proposal replaces the test's one
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert panel.task.error is None, panel.task.error
    with dock.labels_layer.block_history():
        dock.labels_layer.paint((6, 20, 20), 1)  # unsubmitted work
    ids = _proposal_ids(organ_project.folder, "ct000")
    assert panel.propose_current()  # same model, same image: the same proposal
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert panel.task.error is None, panel.task.error
    assert _proposal_ids(organ_project.folder, "ct000") == ids and panel.last_proposals[0].unchanged
    # No 'new proposal is available, use Reset to proposal' for a proposal that is not new.
    assert "new proposal" not in dock.status.text() and panel.proposal_waiting is None
    assert "same as its stored proposal" in dock.status.text()
    assert dock.labels_layer.data[6, 20, 20] == 1


def test_the_open_case_can_be_proposed_and_its_uncertainty_shown_at_once(
    make_napari_viewer, organ_project, qtbot
):
    # opening the project opens its first case: the buttons that act on the open case
    # must be on then, and after Submit opens the next one, not only after a list refresh
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    assert panel.propose_case_button.isEnabled() and panel.uncertainty_button.isEnabled()
    assert dock.submit()
    assert dock.case_id is not None and dock.case_id != "ct000"
    assert panel.propose_case_button.isEnabled() and panel.uncertainty_button.isEnabled()
    dock.close_case()
    dock.model_panel.refresh()
    assert not panel.propose_case_button.isEnabled()


def test_export_dialog_greys_out_the_labels_choice_for_a_submission(qtbot):
    # rsna-submission writes the grader's latest proposals; final/corrected plays no part
    dialog = model_panel.ExportDialog(["rsna", "rsna-submission"])
    qtbot.addWidget(dialog)
    assert dialog.status_combo.isEnabled()
    dialog.format_combo.setCurrentText("rsna-submission")
    assert not dialog.status_combo.isEnabled()
    assert "proposal" in dialog.status_combo.toolTip()
    dialog.format_combo.setCurrentText("rsna")
    assert dialog.status_combo.isEnabled() and "final" in dialog.status_combo.toolTip()


def test_train_while_another_window_trains_is_refused_in_the_dock(
    make_napari_viewer, organ_project, rounds, qtbot
):
    # `atlas-annotate train` in a terminal (here: the lock held) while the radiologist
    # clicks Train: the dock says why, the viewer stays usable, nothing is recorded
    from napari_atlas_annotate.models.registry import list_rounds
    from napari_atlas_annotate.training.round_lock import training_round

    with Project(organ_project.folder) as project:
        project.submit_mask("ct001", "bob", organ_project.proposals["ct001"], None)
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    panel.device_combo.setCurrentText("cpu")
    with Project(organ_project.folder) as other, training_round(other):
        assert panel.train(epochs=1)
        qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
        assert "another training round is running" in dock.last_error
        assert panel.train_button.isEnabled() and viewer.layers
        assert len(list_rounds(other)) == 1  # only the other window's round


def test_an_export_into_an_earlier_one_is_replaced_from_the_dock(
    make_napari_viewer, organ_project, monkeypatch, tmp_path, qtbot
):
    """The core's refusal says 'pass --overwrite', a flag the dock has no field for: the
    dialog offers it as a box, and the refusal names that box."""
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    dock.submit()  # ct000 corrected by alice
    out = tmp_path / "out"
    assert panel.export("abdomenatlas", "corrected", out)
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    first = panel.last_export

    assert panel.export("abdomenatlas", "corrected", out)
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert "--overwrite is the 'Replace an earlier export' box" in dock.last_error
    # and a refusal that names --status says where that is in the dialog
    assert panel.export("abdomenatlas", "final", tmp_path / "final")
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert "--status corrected" in dock.last_error
    assert "--status is the 'Labels' choice" in dock.last_error

    # the dialog's box asks for the replacement, and the export replaces the earlier one
    def ask(self):
        assert self.overwrite_check.text() == "Replace an earlier export"
        self.folder_edit.setText(str(out))
        self.status_combo.setCurrentText("corrected")
        self.overwrite_check.setChecked(True)
        self.accept()
        return model_panel.ExportDialog.answer(self)

    monkeypatch.setattr(model_panel.ExportDialog, "ask", ask)
    dock.last_error = None
    qtbot.mouseClick(panel.export_button, _left())
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert panel.task.error is None and dock.last_error is None, dock.last_error
    assert panel.last_export is not first and panel.last_export.cases == ["ct000"]
    assert (out / "ct000" / "combined_labels.nii.gz").is_file()


def test_the_export_dialog_adds_the_readers_notes_when_ticked(
    make_napari_viewer, organ_project, monkeypatch, tmp_path, qtbot
):
    import csv

    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    dock.note_field.setText("liver dome cut off at the top")
    dock.submit()  # ct000 corrected by alice, with the note
    out = tmp_path / "out"

    def ask(self):
        assert self.notes_check.text() == model_panel.NOTES_BOX
        assert not self.notes_check.isChecked()  # free text: off unless asked
        self.folder_edit.setText(str(out))
        self.status_combo.setCurrentText("corrected")
        self.notes_check.setChecked(True)
        return model_panel.ExportDialog.answer(self)

    monkeypatch.setattr(model_panel.ExportDialog, "ask", ask)
    qtbot.mouseClick(panel.export_button, _left())
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert panel.task.error is None, panel.task.error
    with open(out / "notes.csv", newline="", encoding="utf-8") as fh:
        [row] = list(csv.DictReader(fh))
    assert (row["case"], row["annotator"]) == ("ct000", "alice")
    assert row["note"] == "liver dome cut off at the top"


def test_propose_all_with_nothing_to_propose_says_why(
    make_napari_viewer, organ_project, rounds, qtbot
):
    # it said "Proposed 0 case(s)." and nothing else
    viewer, dock, panel = _dock(make_napari_viewer, organ_project)
    panel.device_combo.setCurrentText("cpu")
    assert panel.propose(None)  # every case not final without this model's proposal
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert panel.last_proposals
    assert panel.propose(None)  # now each has one
    qtbot.waitUntil(lambda: not panel.task.running, timeout=WAIT_MS)
    assert panel.last_proposals == []
    text = dock.status.text()
    assert text.startswith("Nothing to propose") and "Propose this case" in text
