import json

import numpy as np
import pytest

from napari_atlas_annotate.io.nifti import load_nifti
from napari_atlas_annotate.models import registry
from napari_atlas_annotate.models.bundle import (
    WEIGHTS_PATH,
    ModelBundle,
    ModelBundleError,
    ModelMismatchError,
    build_network,
)
from napari_atlas_annotate.models.proposals import propose_cases, uncertainty_path
from napari_atlas_annotate.project import Project, ProjectError

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_starter_is_installed_and_active(organ_project):
    assert registry.list_models(organ_project) == []
    bundle = registry.active_model(organ_project)
    assert bundle.version == "organs-starter"
    assert bundle.folder == organ_project.folder / "models" / "organs-starter"
    records = registry.list_models(organ_project)
    assert [(r.version, r.active, r.round) for r in records] == [("organs-starter", True, 0)]


def test_register_rollback_and_list(organ_project, tmp_path):
    registry.active_model(organ_project)
    other = registry.model_folder(organ_project, "organs-round7")
    _copy_with_version(organ_project.folder / "models" / "organs-starter", other, "organs-round7")
    registry.register_model(organ_project, other, round_number=7, activate=True)
    assert registry.active_model(organ_project).version == "organs-round7"
    registry.rollback(organ_project, "organs-starter")
    assert registry.active_model(organ_project).version == "organs-starter"
    assert [r.active for r in registry.list_models(organ_project)] == [True, False]
    with pytest.raises(ProjectError, match="organs-round7"):
        registry.rollback(organ_project, "organs-round99")
    with pytest.raises(ProjectError, match="already registered"):
        registry.register_model(organ_project, other)


def test_model_for_other_classes_is_refused(organ_project):
    registry.active_model(organ_project)
    folder = organ_project.folder / "models" / "organs-starter"
    meta_path = folder / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = ["liver", "spleen"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError, match="'spleen'.*'aorta'|'aorta'.*'spleen'"):
        registry.active_model(organ_project)


def test_register_checks_classes_and_weights_first(organ_project, tmp_path):
    # a model that cannot be used in this project is refused when registered, not at the
    # first proposal after someone activated it
    registry.active_model(organ_project)
    starter = organ_project.folder / "models" / "organs-starter"
    other = tmp_path / "other-classes"
    _copy_with_version(starter, other, "other-classes")
    meta_path = other / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = ["liver", "spleen"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError, match="'spleen'.*'aorta'|'aorta'.*'spleen'"):
        registry.register_model(organ_project, other)
    broken = tmp_path / "broken"
    _copy_with_version(starter, broken, "broken")
    weights = broken / WEIGHTS_PATH
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelBundleError, match="unreadable"):
        registry.register_model(organ_project, broken)
    with pytest.raises(ModelBundleError, match="no such model folder"):
        registry.register_model(organ_project, tmp_path / "nothing-here")
    assert [r.version for r in registry.list_models(organ_project)] == ["organs-starter"]


def test_rollback_refuses_a_model_whose_weights_were_damaged(organ_project, tmp_path):
    registry.active_model(organ_project)
    other = registry.model_folder(organ_project, "organs-round7")
    _copy_with_version(organ_project.folder / "models" / "organs-starter", other, "organs-round7")
    registry.register_model(organ_project, other, round_number=7)
    weights = other / WEIGHTS_PATH
    weights.write_bytes(weights.read_bytes()[:100])  # an interrupted copy, a full disk
    with pytest.raises(ModelBundleError, match="unreadable"):
        registry.rollback(organ_project, "organs-round7")
    assert registry.active_record(organ_project).version == "organs-starter"


def test_own_checkpoint_becomes_a_model_version(organ_project, tmp_path):
    import torch

    active = registry.active_model(organ_project)
    torch.manual_seed(7)
    mine = active.build_network()
    path = tmp_path / "mine.pt"
    torch.save(mine.state_dict(), path)
    record = registry.import_checkpoint(organ_project, path, version="organs-mine")
    assert (record.version, record.active, record.round) == ("organs-mine", False, None)
    bundle = ModelBundle.load(organ_project.resolve(record.path))
    assert bundle.folder == organ_project.folder / "models" / "organs-mine"
    assert bundle.classes == organ_project.classes
    assert bundle.architecture == active.architecture and bundle.spacing == active.spacing
    assert bundle.metadata["preprocessing"] == active.metadata["preprocessing"]
    imported = bundle.metadata["training"]["imported_from"]
    assert imported["path"] == str(path.resolve()) and len(imported["sha256"]) == 64
    assert bundle.metadata["parent_version"] == "organs-starter"
    loaded = bundle.load_network()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in mine.state_dict().items())
    registry.rollback(organ_project, "organs-mine")
    (result,) = propose_cases(organ_project, ["c0"], device="cpu", save_uncertainty=False)
    assert result.model_version == "organs-mine"
    with pytest.raises(ProjectError, match="already registered"):
        registry.import_checkpoint(organ_project, path, version="organs-mine")
    # the default name comes from the file
    assert registry.import_checkpoint(organ_project, path).version == "organs-import-mine"


def test_checkpoint_for_other_classes_or_architecture_is_refused(organ_project, tmp_path):
    import torch

    active = registry.active_model(organ_project)
    fewer = tmp_path / "three_organs.pt"
    torch.save(build_network(active.architecture, 3).state_dict(), fewer)
    with pytest.raises(ModelMismatchError) as err:
        registry.import_checkpoint(organ_project, fewer)
    text = str(err.value)
    assert str(fewer) in text and "4 output channels (3 classes and background)" in text
    assert "9 classes" in text
    wider = tmp_path / "wider.pt"
    arch = {"name": "UNet", "kwargs": {"channels": [8, 16, 32], "strides": [2, 2]}}
    torch.save(build_network(arch, 9).state_dict(), wider)
    with pytest.raises(ModelMismatchError) as err:
        registry.import_checkpoint(organ_project, wider)
    assert str(wider) in str(err.value) and active.describe_architecture() in str(err.value)
    assert [r.version for r in registry.list_models(organ_project)] == ["organs-starter"]
    assert sorted(p.name for p in (organ_project.folder / "models").iterdir()) == ["organs-starter"]


def test_spine_projects_take_grader_folders_not_checkpoints(tmp_path):
    with Project.create(tmp_path / "spine", task="spine") as project:
        with pytest.raises(ProjectError, match="grader"):
            registry.import_checkpoint(project, tmp_path / "grader.pt")


def test_proposals_store_model_version_uncertainty_and_queue(organ_project):
    results = propose_cases(organ_project, device="cpu")
    assert [r.case_id for r in results] == ["c0", "c1", "c2"]
    for r in results:
        version = organ_project.version(r.version_id)
        assert version.kind == "proposal" and version.model_version == "organs-starter"
        mask = organ_project.read_mask(version)
        assert mask.dtype == np.uint8 and mask.shape == organ_project.grid(r.case_id)[0]
        assert organ_project.case(r.case_id).uncertainty == pytest.approx(r.uncertainty)
        umap = load_nifti(uncertainty_path(organ_project, version))
        assert umap.array.min() >= 0 and umap.array.max() <= 1
        image = organ_project.load_image(r.case_id)
        # the map's grid covers the image: its corners lie within half a model voxel
        corners = np.array([[0, 0, 0], np.array(umap.shape) - 1])
        world = umap.index_to_world(corners)
        extent = image.index_to_world(np.array([[0, 0, 0], np.array(image.shape) - 1]))
        half = np.max(umap.spacing)
        assert np.all(world.min(0) >= extent.min(0) - half)
        assert np.all(world.max(0) <= extent.max(0) + half)
    ordered = sorted(results, key=lambda r: -r.uncertainty)
    assert [c.id for c in organ_project.queue()] == [r.case_id for r in ordered]


def test_unknown_case_is_refused_before_work(organ_project):
    with pytest.raises(ProjectError, match="nope"):
        propose_cases(organ_project, ["c0", "nope"], device="cpu")


def test_spine_project_is_refused(tmp_path):
    with Project.create(tmp_path / "spine", task="spine") as project:
        with pytest.raises(ProjectError, match="organs"):
            propose_cases(project, device="cpu")


def _copy_with_version(src, dst, version):
    import shutil

    shutil.copytree(src, dst)
    meta_path = dst / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["version"] = version
    meta_path.write_text(json.dumps(meta))


def test_a_batch_stopped_while_storing_a_proposal_redoes_that_case(organ_project, monkeypatch):
    # Killed between the version and its score, a case kept the model's proposal without
    # its uncertainty (listed last in the most-doubtful-first queue) or map, and a plain
    # rerun never came back to it.
    from napari_atlas_annotate.models.proposals import cases_needing_proposal

    real = organ_project.set_uncertainty

    def stopped(case_id, *args, **kwargs):
        if case_id == "c1":
            raise KeyboardInterrupt  # the process ends while the case's score is stored
        return real(case_id, *args, **kwargs)

    monkeypatch.setattr(organ_project, "set_uncertainty", stopped)
    with pytest.raises(KeyboardInterrupt):
        propose_cases(organ_project, device="cpu")
    monkeypatch.setattr(organ_project, "set_uncertainty", real)
    assert organ_project.latest_version("c1", kinds=("proposal",)) is None
    assert cases_needing_proposal(organ_project, "organs-starter") == ["c1", "c2"]
    (again, _) = propose_cases(organ_project, ["c1", "c2"], device="cpu")
    version = organ_project.version(again.version_id)
    assert organ_project.case("c1").uncertainty == pytest.approx(again.uncertainty)
    assert uncertainty_path(organ_project, version).exists()
    assert again.uncertainty_path == str(
        uncertainty_path(organ_project, version).relative_to(organ_project.folder)
    )


def test_a_model_folder_from_elsewhere_is_copied_in_under_a_name_of_its_own(
    organ_project, tmp_path
):
    # Registered in place with its own round number and verdict: another project's
    # organs-round1 took this project's round 1 (rollback 1 activated it, and this
    # project's first round then failed after training), and editing or deleting the
    # original changed or broke proposals recorded as made by it.
    import shutil

    registry.active_model(organ_project)
    elsewhere = tmp_path / "other_project_round1"
    _copy_with_version(
        organ_project.folder / "models" / "organs-starter", elsewhere, "organs-round1"
    )
    meta = json.loads((elsewhere / "configs" / "metadata.json").read_text())
    meta.update(round=1, metrics={"status": "kept previous", "mean_dice": 0.5})
    (elsewhere / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ProjectError, match="organs-round1 is how this project names"):
        registry.import_model_folder(organ_project, elsewhere)
    record = registry.import_model_folder(organ_project, elsewhere, version="organs-theirs")
    assert (record.version, record.round, record.metrics, record.active) == (
        "organs-theirs",
        None,
        {},
        False,
    )
    copied = organ_project.folder / "models" / "organs-theirs"
    stored = json.loads((copied / "configs" / "metadata.json").read_text())
    assert stored["version"] == "organs-theirs" and stored["round"] is None
    assert stored["imported_from"]["path"] == str(elsewhere.resolve())
    assert stored["imported_from"]["metrics"]["mean_dice"] == 0.5
    shutil.rmtree(elsewhere)  # the original goes: the project's copy still proposes
    registry.rollback(organ_project, "organs-theirs")
    (result,) = propose_cases(organ_project, ["c0"], device="cpu", save_uncertainty=False)
    assert result.model_version == "organs-theirs"


def test_a_model_folder_that_cannot_propose_is_refused_when_registered(organ_project, tmp_path):
    # it registered, rollback activated it, and every proposal then failed: KeyError 'window'
    registry.active_model(organ_project)
    broken = tmp_path / "no_window"
    _copy_with_version(organ_project.folder / "models" / "organs-starter", broken, "organs-x")
    meta = json.loads((broken / "configs" / "metadata.json").read_text())
    meta["preprocessing"] = {}
    (broken / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError, match="cannot propose .*KeyError"):
        registry.import_model_folder(organ_project, broken)
    assert [r.version for r in registry.list_models(organ_project)] == ["organs-starter"]
    assert not (organ_project.folder / "models" / "organs-x").exists()
