"""rounds.propose / rounds.retrain: one entry point for organ and spine projects, and the
propose / train / models commands of a spine project going through it."""

import json
import math
import shutil
import subprocess
import sys

import pytest
import torch

from napari_atlas_annotate import rounds
from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.cli import main
from napari_atlas_annotate.io.nifti import save_nifti
from napari_atlas_annotate.models import registry
from napari_atlas_annotate.models.bundle import ModelBundle, build_network, save_bundle
from napari_atlas_annotate.models.organ_model import organ_metadata
from napari_atlas_annotate.models.proposals import CaseProposal, ProposalBatchError
from napari_atlas_annotate.phantoms.ct import make_ct_phantom
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.training.round import RoundResult
from napari_atlas_annotate.training.spine_round import SpineRoundResult

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def manifest(spine_phantoms):
    return spine_phantoms(13)


@pytest.fixture
def spine_project(spine_project_from, manifest):
    return spine_project_from(manifest)


@pytest.fixture
def organ_project(tmp_path, monkeypatch):
    """Two small CT phantoms; the packaged starter is replaced by a tiny untrained UNet."""
    torch.manual_seed(0)
    meta = organ_metadata(
        "organs-starter",
        list(ABDOMEN_ATLAS_CLASSES),
        architecture={"name": "UNet", "kwargs": {"channels": [4, 8], "strides": [2]}},
        spacing=(6.0, 6.0, 6.0),
        roi_size=(16, 16, 16),
    )
    starter = save_bundle(
        tmp_path / "starter", build_network(meta["architecture"], len(meta["classes"])), meta
    )
    monkeypatch.setitem(registry.STARTERS, "organs", starter)
    project = Project.create(tmp_path / "organs", task="organs")
    truths = {}
    for i in range(2):
        image, label, _ = make_ct_phantom(30 + i, shape=(24, 48, 48), site=0)
        path = save_nifti(image, tmp_path / "data" / f"c{i}.nii.gz")
        project.add_case(f"c{i}", [ImageRef(str(path), "CT")])
        truths[f"c{i}"] = label.array
    project.truths = truths  # test convenience only
    yield project
    project.close()


def test_spine_project_goes_to_the_grader(spine_project, manifest, submit_spine_truths):
    seen = []
    proposals = rounds.propose(
        spine_project, device="cpu", progress=lambda d, t, m: seen.append((d, t))
    )
    assert len(proposals) == 3 and seen[-1] == (3, 3)
    assert all(isinstance(p, CaseProposal) for p in proposals)
    assert {p.model_version for p in proposals} == {"spine-starter"}
    assert all(spine_project.version(p.version_id).content == "grades" for p in proposals)
    submit_spine_truths(spine_project, manifest)
    result = rounds.retrain(spine_project, device="cpu", epochs=1)
    assert isinstance(result, SpineRoundResult) and isinstance(result, RoundResult)
    assert result.model_version == f"spine-round{result.round}"
    # 3 studies hold out 1: too few to judge a grader on, so it is registered, not promoted
    assert not result.promoted
    line = rounds.describe_round(result, str(spine_project.folder))
    assert "RSNA score" in line and result.model_version in line
    assert "held-out studies" in line
    assert f"models {spine_project.folder} --rollback {result.model_version}" in line
    assert "weak check" not in line  # refused for too few studies, not decided by them


def test_organ_project_goes_to_the_segmentation_model(organ_project, monkeypatch):
    proposals = rounds.propose(organ_project, device="cpu")
    assert [p.case_id for p in proposals] == ["c0", "c1"]
    assert {p.model_version for p in proposals} == {"organs-starter"}
    assert all(organ_project.version(p.version_id).content == "mask" for p in proposals)
    for cid, labels in organ_project.truths.items():
        organ_project.save_mask_version(cid, labels, kind="corrected", annotator="sim")

    from napari_atlas_annotate.training import round as round_module
    from napari_atlas_annotate.training.organs import TrainSettings

    fast = TrainSettings(iterations_per_epoch=2, batch_size=1, patch_size=(8, 16, 16))
    monkeypatch.setattr(round_module, "TrainSettings", lambda: fast)
    result = rounds.retrain(organ_project, device="cpu", epochs=1)
    assert type(result) is RoundResult
    assert result.model_version == f"organs-round{result.round}"
    meta = ModelBundle.load(registry.model_folder(organ_project, result.model_version)).metadata
    assert meta["training"]["settings"]["epochs"] == 1
    line = rounds.describe_round(result)
    assert "Dice" in line and "voxels to edit per case" in line
    assert math.isfinite(result.voxels_to_edit_new)


def _result(promoted: bool, holdout: int, **extra) -> RoundResult:
    return RoundResult(
        round=2,
        model_version="organs-round2",
        promoted=promoted,
        previous_version="organs-round1",
        dice_new=0.91,
        dice_old=0.88,
        dice_per_class={},
        train_cases=["a", "b", "c"],
        holdout_cases=[f"h{i}" for i in range(holdout)],
        seconds=12.0,
        **extra,
    )


def test_describe_round_gives_scores_weak_checks_and_the_override():
    kept = rounds.describe_round(
        _result(False, 1, voxels_to_edit_new=2349.0, voxels_to_edit_old=2131.0), "/data/p"
    )
    assert "1 held-out case: Dice 0.880 -> 0.910" in kept
    assert "voxels to edit per case 2131 -> 2349" in kept
    assert "kept organs-round1" in kept and "weak check" in kept
    assert "atlas-annotate models /data/p --rollback organs-round2" in kept

    tolerant = rounds.describe_round(_result(True, 4, label_tolerance=1))
    assert "4 held-out cases: Dice off the label borders (+-2 voxels) 0.880 -> 0.910" in tolerant

    promoted = rounds.describe_round(_result(True, 4))
    assert "4 held-out cases" in promoted and "promoted (now active)" in promoted
    assert "weak check" not in promoted and "--rollback" not in promoted
    assert "voxels to edit" not in promoted  # not measured (NaN): not printed
    assert promoted.endswith(")."), promoted  # a sentence, ended
    weak = rounds.describe_round(_result(True, 1))
    assert weak.endswith("a weak check."), weak


def test_round_result_json_has_no_nan():
    data = _result(True, 4).to_dict()
    assert data["voxels_to_edit_new"] is None and data["voxels_to_edit_old"] is None
    json.loads(json.dumps(data, allow_nan=False))


def test_rounds_imports_neither_torch_nor_a_gui():
    code = (
        "import sys, napari_atlas_annotate.rounds; "
        "print(sorted(m for m in ('torch', 'napari', 'qtpy', 'PyQt6') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_propose_train_models_on_a_spine_project(
    spine_project, manifest, capsys, submit_spine_truths
):
    folder = str(spine_project.folder)
    assert main(["propose", folder, "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ids = sorted(c.id for c in spine_project.cases())
    assert sorted(p["case_id"] for p in out["proposals"]) == ids
    assert sorted(out["queue"]) == ids
    assert main(["propose", folder, "--device", "cpu"]) == 0  # nothing stale: nothing done
    assert "queue" in capsys.readouterr().out
    assert len(spine_project.versions(kinds=("proposal",))) == 3

    assert main(["train", folder, "--device", "cpu", "--max-minutes", "1"]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert main(["train", folder, "--device", "cpu", "--epochs", "1"]) == 2
    assert "no submitted grade sheets" in capsys.readouterr().err
    submit_spine_truths(spine_project, manifest)
    assert main(["train", folder, "--device", "cpu", "--epochs", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model_version"] == f"spine-round{result['round']}"
    assert result["metrics"]["n_train"] + result["metrics"]["n_holdout"] == 3
    assert main(["models", folder]) == 0
    listing = capsys.readouterr().out
    assert "spine-starter" in listing and f"{result['model_version']}" in listing
    assert "held-out RSNA score" in listing
    other = "spine-starter" if result["promoted"] else result["model_version"]
    assert main(["models", folder, "--rollback", other]) == 0
    assert registry.active_record(spine_project).version == other


def test_spine_batch_goes_on_past_a_study_that_fails_to_load(
    spine_phantoms, spine_project_from, tmp_path, capsys
):
    source = spine_phantoms(13)
    copy = shutil.copytree(source.parent, tmp_path / "phantoms") / source.name
    project = spine_project_from(copy)
    ids = [c.id for c in project.cases()]
    broken = ids[1]
    series = project.resolve(project.case(broken).images[0].path)
    slices = sorted(series.glob("*.dcm"))
    slices[len(slices) // 2].unlink()  # a series with a slice missing
    with pytest.raises(ProposalBatchError) as info:
        rounds.propose(project, device="cpu")
    assert [p.case_id for p in info.value.proposals] == [ids[0], ids[2]]
    assert list(info.value.failures) == [broken]
    assert info.value.failures[broken].startswith(f"case {broken}: ")
    assert "missing" in info.value.failures[broken]
    assert f"reads the case from {series}" in info.value.failures[broken]
    # the CLI: the failed study is proposed again (it has no proposal), the others are not
    assert main(["propose", str(project.folder), "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert "proposal version" not in captured.out
    assert f"  case {broken}: " in captured.err and "(0 were)" in captured.err


def test_describe_round_of_a_past_round_knows_what_happened_since():
    kept = _result(False, 4)
    later = rounds.describe_round(kept, "/p", active_version="organs-round2")
    assert "kept organs-round1" in later and "was made active later (rollback)" in later
    assert "--rollback" not in later
    still = rounds.describe_round(kept, "/p", active_version="organs-round1")
    assert "atlas-annotate models /p --rollback organs-round2" in still
    replaced = rounds.describe_round(_result(True, 4), active_version="organs-round3")
    assert "promoted (no longer active: organs-round3 is)" in replaced
    current = rounds.describe_round(_result(True, 4), active_version="organs-round2")
    assert "promoted (now active)" in current
