"""The propose / train / models commands, through the real ``atlas-annotate`` entry point."""

import json
import pickle
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
    # each model's configs/metadata.json comes with it: what an ML engineer checks
    trained = listed[1]
    assert trained["folder"] == str(registry.model_folder(organ_project, trained["version"]))
    meta = trained["metadata"]
    assert meta["classes"] == organ_project.classes and meta["architecture"]["name"] == "UNet"
    assert meta["training"]["cases"] == result["train_cases"]
    assert len(meta["training"]["label_snapshot"]) == 64 and meta["spacing"]
    assert meta["metrics"]["mean_dice"] == pytest.approx(result["dice_new"])
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
    captured = capsys.readouterr()
    line = captured.out.strip()
    # progress counts optimiser iterations (1 epoch of 2 here) and says so
    assert "training: iteration 2/2" in captured.err.splitlines()
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


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # as an interrupted copy leaves it


def test_propose_goes_on_past_a_case_that_fails_to_load(organ_project, capsys):
    folder = str(organ_project.folder)
    image = organ_project.resolve(organ_project.case("c1").images[0].path)
    _truncate(image)
    assert main(["propose", folder, "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    proposed = [ln.split(":")[0] for ln in captured.out.splitlines() if "proposal version" in ln]
    assert proposed == ["c0", "c2"]  # the case after the broken one was proposed too
    failure = [ln for ln in captured.err.splitlines() if ln.strip().startswith("case c1:")]
    assert len(failure) == 1 and "truncated" in failure[0]
    assert f"reads the case from {image}: fix or replace the image there" in failure[0]
    assert "1 case could not be proposed (2 were)" in captured.err
    assert {v.case_id for v in organ_project.versions(kinds=("proposal",))} == {"c0", "c2"}

    assert main(["propose", folder, "--device", "cpu", "--all", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [p["case_id"] for p in out["proposals"]] == ["c0", "c2"]
    assert [f["case_id"] for f in out["failures"]] == ["c1"]
    assert "truncated" in out["failures"][0]["error"]


def test_propose_case_lists_repeats_and_the_queue(organ_project, capsys):
    folder = str(organ_project.folder)
    assert main(["propose", folder, "--device", "cpu", "--cases", "c0,c2"]) == 0
    first = capsys.readouterr().out
    assert [ln.split(":")[0] for ln in first.splitlines() if "proposal" in ln] == ["c0", "c2"]
    n_versions = len(organ_project.versions())
    # the same model on the same cases: nothing new is stored, and it says so
    assert main(["propose", folder, "--device", "cpu", "--cases", "c0,", "c2"]) == 0
    again = [ln for ln in capsys.readouterr().out.splitlines() if "proposal version" in ln]
    assert len(again) == 2 and all("unchanged" in ln for ln in again)
    assert len(organ_project.versions()) == n_versions
    # a final case leaves the queue of cases to annotate
    organ_project.save_mask_version(
        "c2", organ_project.truths["c2"], kind="final", annotator="lead"
    )
    assert main(["propose", folder, "--device", "cpu", "--cases", "c1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["proposals"][0]["unchanged"] is False and out["failures"] == []
    assert sorted(out["queue"]) == ["c0", "c1"]
    assert main(["propose", folder, "--device", "cpu", "--cases", "c1"]) == 0
    queue = capsys.readouterr().out.splitlines()[-1]
    assert "1 final case left out" in queue and "c2" not in queue.split(":")[1]

    assert main(["propose", folder, "--cases", "c9"]) == 2
    assert "no case 'c9'" in (err := capsys.readouterr().err) and "(cases: c0, c1, c2)" in err


def test_propose_by_default_takes_the_cases_still_to_annotate(organ_project, capsys):
    folder = str(organ_project.folder)
    assert main(["propose", folder, "--device", "cpu", "--cases", "c1"]) == 0  # a stopped batch
    organ_project.save_mask_version(
        "c2", organ_project.truths["c2"], kind="final", annotator="lead"
    )
    capsys.readouterr()
    assert main(["propose", folder, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    # c1 has the active model's proposal, c2 is final: only c0 is left
    assert [ln.split(":")[0] for ln in out.splitlines() if "proposal version" in ln] == ["c0"]
    assert main(["propose", folder, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "nothing to propose: every case not final has a proposal from organs-starter" in out
    assert main(["propose", folder, "--device", "cpu", "--all", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["case_id"] for p in out["proposals"]] == ["c0", "c1", "c2"]
    assert [p["unchanged"] for p in out["proposals"]] == [True, True, False]
    assert main(["propose", folder, "--cases", "c0", "--all"]) == 2
    assert "give one of them" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--epochs", "0"],
        ["train", "--threads", "0"],
        ["train", "--max-minutes", "0"],
        ["train", "--max-minutes", "-2.5"],
        ["train", "--label-tolerance", "-1"],
        ["propose", "--threads", "0"],
    ],
)
def test_non_positive_numbers_are_refused(organ_project, capsys, args):
    command, option, value = args
    with pytest.raises(SystemExit) as exit_:
        main([command, str(organ_project.folder), "--device", "cpu", option, value])
    assert exit_.value.code == 2
    assert f"argument {option}: must be" in capsys.readouterr().err
    assert registry.list_rounds(organ_project) == []
    assert organ_project.versions() == []


def test_models_tell_the_rounds_verdict_from_a_rollback(organ_project, tiny_bundle, capsys):
    folder = str(organ_project.folder)
    registry.install_starter(organ_project)
    kept = {"status": "kept previous", "mean_dice": 0.93, "previous_mean_dice": 0.94}
    registry.register_model(organ_project, tiny_bundle, round_number=1, metrics=kept)
    assert main(["models", folder]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if "tiny-0" in ln][0]
    assert line.startswith("  tiny-0") and line.endswith("; not promoted at round 1")
    assert main(["models", folder, "--rollback", "1"]) == 0  # a round number
    assert "tiny-0" in capsys.readouterr().out
    assert registry.active_record(organ_project).version == "tiny-0"
    assert main(["models", folder]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if "tiny-0" in ln][0]
    assert line.startswith("* tiny-0")
    assert line.endswith("; not promoted at round 1; active by rollback")
    assert main(["models", folder, "--rollback", "0"]) == 0
    assert registry.active_record(organ_project).version == "organs-starter"
    assert main(["models", folder, "--rollback", "5"]) == 2
    err = capsys.readouterr().err
    assert "no model from round 5" in err and "0=organs-starter, 1=tiny-0" in err


def test_models_register_a_checkpoint_or_say_in_one_line_why_not(organ_project, tmp_path, capsys):
    import torch

    from napari_atlas_annotate.models.bundle import build_network

    folder = str(organ_project.folder)
    active = registry.active_model(organ_project)
    good = tmp_path / "mine.pt"
    torch.save(active.build_network().state_dict(), good)
    assert main(["models", folder, "--register", str(good), "--version", "organs-mine"]) == 0
    out = capsys.readouterr().out
    assert "registered organs-mine" in out and "--rollback organs-mine" in out
    assert main(["models", folder, "--rollback", "organs-mine"]) == 0
    assert capsys.readouterr().out.strip().endswith("is now organs-mine (registered, no round)")
    assert main(["models", folder]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if "organs-mine" in ln][0]
    assert line.startswith("* organs-mine") and "round=-" in line and "None" not in line

    fewer = tmp_path / "three_organs.pt"
    torch.save(build_network(active.architecture, 3).state_dict(), fewer)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    hostile = tmp_path / "plain_pickle.pt"
    hostile.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    whole = tmp_path / "whole_module.pt"
    torch.save(active.build_network(), whole)
    no_metadata = tmp_path / "bundle_without_metadata"
    (no_metadata / "models").mkdir(parents=True)
    (no_metadata / "models" / "model.pt").write_bytes(good.read_bytes())
    cases = {
        fewer: "3 classes and background",
        truncated: "unreadable",
        whole: "state_dict()",
        hostile: "not plain weights",
        tmp_path / "missing.pt": "no such",
        no_metadata: "configs/metadata.json",
    }
    for path, why in cases.items():
        assert main(["models", folder, "--register", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("atlas-annotate models: error: ") and err.count("\n") == 1
        assert str(path) in err and why in err
        assert len(err) < 600  # one readable line, not a torch error report
    assert "retrain" not in main_err_for(fewer, folder, capsys)  # the advice fits a file
    assert [r.version for r in registry.list_models(organ_project)] == [
        "organs-starter",
        "organs-mine",
    ]
    assert main(["models", folder, "--version", "x"]) == 2
    assert "--version names a model given with --register PATH" in capsys.readouterr().err
    assert main(["models", folder, "--register", str(no_metadata), "--version", "x"]) == 2
    assert str(no_metadata) in capsys.readouterr().err
    assert main(["models", folder, "--register", str(tmp_path / "gone.pt"), "--version", "x"])
    assert "gone.pt: no such file or folder" in capsys.readouterr().err


def main_err_for(path, folder, capsys):
    assert main(["models", folder, "--register", str(path)]) == 2
    return capsys.readouterr().err


def test_a_killed_training_run_leaves_the_project_usable(organ_project, capsys):
    import os
    import signal
    import subprocess
    import sys

    from napari_atlas_annotate.models.proposals import propose_cases

    for r in propose_cases(organ_project, device="cpu", save_uncertainty=False):
        base = organ_project.version(r.version_id)
        correct_toward_truth(organ_project, r.case_id, "sim", organ_project.truths[r.case_id], base)
    folder = str(organ_project.folder)
    command = [sys.executable, "-m", "napari_atlas_annotate.cli", "train", folder]
    command += ["--device", "cpu", "--threads", "1", "--epochs", "200"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env) as child:
        for line in child.stderr:
            if line.startswith("training: iteration"):
                child.send_signal(signal.SIGKILL)  # a crash: no handler runs
                break
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert registry.active_record(organ_project).version == "organs-starter"
    assert [r.version for r in registry.list_models(organ_project)] == ["organs-starter"]
    assert sorted(p.name for p in (organ_project.folder / "models").iterdir()) == ["organs-starter"]
    assert registry.list_rounds(organ_project)[-1]["finished_at"] is None
    # the project works on: the next round numbers on, proposals come from the starter
    assert registry.start_round(organ_project) == 2
    (again,) = propose_cases(organ_project, ["c0"], device="cpu", save_uncertainty=False)
    assert again.model_version == "organs-starter"


def test_propose_warns_about_a_ct_that_is_not_in_hu(tmp_path, small_phantom, capsys):
    """A CT stored without its rescale intercept (air at 0, every voxel 1024 too bright)
    gets organs in the wrong places from the packaged starter: said, not only stored."""
    from dataclasses import replace

    from napari_atlas_annotate.io.nifti import save_nifti
    from napari_atlas_annotate.project import ImageRef, Project

    image, _ = small_phantom
    project = Project.create(tmp_path / "project", task="organs")
    shifted = replace(image, array=image.array.astype("float32") + 1024)
    for case_id, volume in [("ct", image), ("raw", shifted)]:
        save_nifti(volume, tmp_path / f"{case_id}.nii.gz")
        project.add_case(case_id, [ImageRef(str(tmp_path / f"{case_id}.nii.gz"), "CT")])
    project.close()
    assert main(["propose", str(tmp_path / "project"), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "warning: raw: the image has no voxel below -500 HU (the lowest is 0)" in err
    assert "warning: ct:" not in err


def test_scores_of_a_round_without_held_out_cases_are_not_called_held_out():
    # a spine round validated on its one training study listed "held-out RSNA score"
    from napari_atlas_annotate.commands.models import _scores

    scores = {"rsna_score_new": 0.055, "rsna_score_old": 0.095}
    assert _scores({**scores, "holdout_cases": ["s1"]}).startswith(" held-out RSNA score 0.055")
    text = _scores({**scores, "holdout_cases": []})
    assert text.startswith(" on its training cases, RSNA score 0.055") and "held-out" not in text


def test_models_json_covers_rollback(organ_project, capsys):
    # --json was ignored with --rollback and --register: plain text came out
    from napari_atlas_annotate.cli import main
    from napari_atlas_annotate.models import registry

    registry.active_model(organ_project)
    assert main(["models", str(organ_project.folder), "--rollback", "0", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["active"]["version"] == "organs-starter" and done["active"]["active"]
    assert "classes" in done["active"]["metadata"]
