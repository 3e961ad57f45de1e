"""The propose / train / models commands, through the real ``atlas-annotate`` entry point."""

import json
import shlex

import pytest

from napari_atlas_annotate.cli import main
from napari_atlas_annotate.models import registry
from napari_atlas_annotate.training.annotator import correct_toward_truth

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_propose_train_list_rollback(organ_project, capsys, monkeypatch):
    folder = str(organ_project.folder)
    assert main(["propose", folder, "--cases", "c0", "c1", "c2", "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["case_id"] for p in out["proposals"]] == ["c0", "c1", "c2"]
    assert sorted(out["queue"]) == ["c0", "c1", "c2"]
    for p in out["proposals"]:
        base = organ_project.version(p["version_id"])
        correct_toward_truth(
            organ_project, p["case_id"], "sim", organ_project.truths[p["case_id"]], base
        )

    from napari_atlas_annotate.training import round as round_module
    from napari_atlas_annotate.training.organs import TrainSettings

    fast = TrainSettings(epochs=1, iterations_per_epoch=2, batch_size=1, patch_size=(8, 16, 16))
    monkeypatch.setattr(round_module, "TrainSettings", lambda: fast)
    assert main(["train", folder, "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model_version"] == f"organs-round{result['round']}"

    assert main(["models", folder, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["version"] for m in listed] == ["organs-starter", result["model_version"]]
    assert main(["models", folder]) == 0
    trained = [ln for ln in capsys.readouterr().out.splitlines() if result["model_version"] in ln]
    assert len(trained) == 1
    assert "held-out Dice" in trained[0] and "voxels to edit" in trained[0]
    assert "(previous " in trained[0]
    verdict = "; promoted at round" if result["promoted"] else "; not promoted at round"
    assert verdict in trained[0]
    assert main(["models", folder, "--rollback", result["model_version"]]) == 0
    assert result["model_version"] in capsys.readouterr().out
    assert registry.active_model(organ_project).version == result["model_version"]
    assert main(["models", folder, "--rollback", "organs-starter"]) == 0
    assert registry.active_model(organ_project).version == "organs-starter"

    # the plain-text verdict: scores on the held-out cases, and for a kept model the
    # command that activates it anyway, which works as printed
    # annotators who leave borders a voxel off: the held-out Dice says it allowed for that
    assert main(["train", folder, "--device", "cpu", "--label-tolerance", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert "held-out case" in line and "voxels to edit per case" in line
    assert "Dice off the label borders (+-2 voxels)" in line
    second = registry.active_record(organ_project).version
    latest = registry.list_models(organ_project)[-1]
    assert latest.metrics["label_tolerance"] == 1
    assert main(["models", folder]) == 0
    listed = [ln for ln in capsys.readouterr().out.splitlines() if latest.version in ln]
    assert "held-out Dice off the label borders (+-2 voxels)" in listed[0]
    if "--rollback" in line:
        command = shlex.split(line.split("To use the new model anyway: atlas-annotate ")[1])
        assert main(command) == 0
        assert registry.active_model(organ_project).version != second
    else:
        assert "promoted (now active)" in line and second != "organs-starter"


def test_command_errors_are_clean(organ_project, capsys):
    folder = str(organ_project.folder)
    assert main(["models", folder, "--rollback", "organs-round42"]) == 2
    assert "no model version 'organs-round42'" in capsys.readouterr().err
    assert main(["train", folder, "--device", "cpu"]) == 2
    assert "no submitted labels" in capsys.readouterr().err
    assert main(["propose", folder, "--cases", "zzz"]) == 2
    assert "zzz" in capsys.readouterr().err
