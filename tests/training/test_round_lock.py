"""One training round at a time per project; a killed round is cleaned up by the next one."""

import subprocess
import sys
import textwrap

import pytest

from napari_atlas_annotate.commands.status import round_line
from napari_atlas_annotate.models import registry
from napari_atlas_annotate.project import ProjectError
from napari_atlas_annotate.training.annotator import correct_toward_truth
from napari_atlas_annotate.training.organs import TrainSettings
from napari_atlas_annotate.training.round import train_round
from napari_atlas_annotate.training.round_lock import (
    STOPPED_ERROR,
    lock_path,
    training_round,
    training_running,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

FAST = TrainSettings(epochs=1, iterations_per_epoch=2, batch_size=1, patch_size=(8, 16, 16))

#: A training process that opens a round, writes its model folder (as a round does before
#: validating) and is then killed with SIGKILL: no Python clean-up runs.
KILLED_MID_ROUND = textwrap.dedent(
    """
    import os, signal, sys
    from napari_atlas_annotate.models.registry import model_folder
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.training.round_lock import training_round

    project = Project(sys.argv[1])
    with training_round(project) as round_id:
        folder = model_folder(project, f"organs-round{round_id}")
        (folder / "models").mkdir(parents=True)
        (folder / "models" / "model.pt").write_bytes(b"half-judged weights")
        os.kill(os.getpid(), signal.SIGKILL)
    """
)

#: A training round killed with SIGKILL right after it registered (and, promoted, made
#: active) its model, before it closed the round.
KILLED_AFTER_REGISTERING = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    import napari_atlas_annotate.training.round as round_module
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.training.organs import TrainSettings

    torch.set_num_threads(1)
    real = round_module.finish_round

    def killed(project, round_id, version, metrics):
        if version is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        real(project, round_id, version, metrics)

    round_module.finish_round = killed
    round_module._better = lambda new, old: True  # promoted
    settings = TrainSettings(epochs=1, iterations_per_epoch=2, batch_size=1, patch_size=(8, 16, 16))
    round_module.train_round(Project(sys.argv[1]), "cpu", settings=settings)
    """
)

#: Holds the project's training lock until its stdin closes (another window training).
HOLDS_THE_LOCK = textwrap.dedent(
    """
    import sys
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.training.round_lock import training_round

    project = Project(sys.argv[1])
    with training_round(project) as round_id:
        print(round_id, flush=True)
        sys.stdin.read()
    """
)


def _annotate_all(project):
    from napari_atlas_annotate.models.proposals import propose_cases

    for r in propose_cases(project, device="cpu", save_uncertainty=False):
        base = project.version(r.version_id)
        correct_toward_truth(project, r.case_id, "sim", project.truths[r.case_id], base)


def _model_folders(project):
    return sorted(p.name for p in (project.folder / "models").iterdir())


def test_a_killed_round_is_recorded_as_stopped_and_its_model_removed(organ_project):
    _annotate_all(organ_project)
    registry.active_model(organ_project)  # installs the starter, as a real project has
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_ROUND, str(organ_project.folder)], timeout=120
    )
    assert killed.returncode == -9
    (row,) = registry.list_rounds(organ_project)
    assert not row["finished_at"]
    assert _model_folders(organ_project) == ["organs-round1", "organs-starter"]
    # nobody trains now: status says the round was stopped, not that it may be running
    assert not training_running(organ_project)
    line = round_line(row, str(organ_project.folder), "organs-starter")
    assert "stopped before it finished" in line, line

    result = train_round(organ_project, "cpu", settings=FAST)

    assert result.round == 2
    first, second = registry.list_rounds(organ_project)
    assert first["finished_at"] and first["model_version"] is None
    assert first["metrics"] == {"status": "failed", "error": STOPPED_ERROR}
    assert second["model_version"] == "organs-round2"
    # the killed round's unjudged weights are gone; the new round's model is registered
    assert _model_folders(organ_project) == ["organs-round2", "organs-starter"]
    assert "stopped before it finished" in round_line(first, "p", "organs-starter")


def test_a_round_killed_after_registering_its_model_is_closed_with_it(organ_project):
    # The registry already had the round's model active, and the next round recorded the
    # round as failed, "the active model was left as it was".
    from napari_atlas_annotate.training.round_lock import close_stopped_rounds

    _annotate_all(organ_project)
    registry.active_model(organ_project)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_REGISTERING, str(organ_project.folder)], timeout=300
    )
    assert killed.returncode == -9
    (row,) = registry.list_rounds(organ_project)
    assert not row["finished_at"]
    assert registry.active_model(organ_project).version == "organs-round1"

    assert close_stopped_rounds(organ_project) == [1]

    (row,) = registry.list_rounds(organ_project)
    assert row["finished_at"] and row["model_version"] == "organs-round1"
    assert row["metrics"]["status"] == "promoted"
    assert _model_folders(organ_project) == ["organs-round1", "organs-starter"]
    line = round_line(row, "p", "organs-round1")
    assert "failed" not in line and "organs-round1" in line, line


def test_a_second_round_is_refused_while_another_process_trains(organ_project):
    _annotate_all(organ_project)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDS_THE_LOCK, str(organ_project.folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "1"
        assert training_running(organ_project)
        with pytest.raises(ProjectError, match="another training round is running") as err:
            train_round(organ_project, "cpu", settings=FAST)
        assert f"process {holder.pid}" in str(err.value)
        (row,) = registry.list_rounds(organ_project)  # the refused round added no row
        assert not row["finished_at"]
        line = round_line(row, "p", "organs-starter", running=True)
        assert "training now" in line, line
    finally:
        holder.kill()  # SIGKILL: the operating system releases the lock
        holder.wait(timeout=30)
    assert not training_running(organ_project)
    assert train_round(organ_project, "cpu", settings=FAST).round == 2


def test_a_round_in_the_same_process_holds_the_lock_too(organ_project):
    # the dock trains in a worker thread; a second Train from the same window is refused
    _annotate_all(organ_project)
    with training_round(organ_project) as round_id:
        assert round_id == 1 and training_running(organ_project)
        with pytest.raises(ProjectError, match="another training round is running"):
            train_round(organ_project, "cpu", settings=FAST)
    assert lock_path(organ_project).exists() and not training_running(organ_project)
