import json

import numpy as np
import pytest

from napari_atlas_annotate.io.nifti import load_nifti
from napari_atlas_annotate.models import registry
from napari_atlas_annotate.models.bundle import ModelMismatchError
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
