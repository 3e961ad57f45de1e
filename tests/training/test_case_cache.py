"""Prepared training cases kept on disk between rounds, memory-mapped while training."""

import os

import numpy as np
import pytest

from napari_atlas_annotate.models.proposals import propose_cases
from napari_atlas_annotate.models.registry import active_model
from napari_atlas_annotate.training.annotator import correct_toward_truth
from napari_atlas_annotate.training.case_cache import CACHE_FOLDER, CaseCache
from napari_atlas_annotate.training.dataset import project_cases, training_versions

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def corrected(organ_project):
    """c0 and c1 proposed and corrected to their truth by annotator 'sim'."""
    for r in propose_cases(organ_project, ["c0", "c1"], device="cpu", save_uncertainty=False):
        base = organ_project.version(r.version_id)
        correct_toward_truth(organ_project, r.case_id, "sim", organ_project.truths[r.case_id], base)
    return organ_project


def _same(a, b):
    assert a.case_id == b.case_id
    for name in ("image", "labels", "corrected"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_cached_cases_equal_fresh_ones_and_are_read_from_disk_next_round(corrected):
    project = corrected
    bundle, versions = active_model(project), training_versions(project)
    fresh = project_cases(project, bundle, versions)
    cache = CaseCache(project)
    first = project_cases(project, bundle, versions, cache=cache)
    assert (cache.hits, cache.misses) == (0, 2)
    again = CaseCache(project)
    second = project_cases(project, bundle, versions, cache=again)
    assert (again.hits, again.misses) == (2, 0)
    for a, b, c in zip(fresh, first, second, strict=True):
        _same(a, b)
        _same(a, c)
    # memory-mapped, read-only: training cannot change what the next round reads
    assert isinstance(second[0].image, np.memmap) and not second[0].image.flags.writeable
    assert len(list((project.folder / CACHE_FOLDER).iterdir())) == 2


def test_a_new_label_version_or_a_changed_image_is_prepared_again(corrected):
    project = corrected
    bundle = active_model(project)
    project_cases(project, bundle, training_versions(project), cache=CaseCache(project))
    # a lead finalises c0 with one more voxel of liver: a new version, a new entry
    labels = project.read_mask(training_versions(project)["c0"]).copy()
    labels[0, 0, 0] = 5
    project.save_mask_version("c0", labels, kind="final", annotator="lead")
    image = project.resolve(project.case("c1").images[0].path)
    os.utime(image, ns=(1, 1))  # c1's image file replaced (its time changed)
    cache = CaseCache(project)
    cases = project_cases(project, bundle, training_versions(project), cache=cache)
    assert (cache.hits, cache.misses) == (0, 2)
    for a, b in zip(project_cases(project, bundle, training_versions(project)), cases, strict=True):
        _same(a, b)  # the final version's labels, not the stored corrected ones
    assert cache.prune() == 2  # the two superseded entries
    assert len(list((project.folder / CACHE_FOLDER).iterdir())) == 2


def test_a_damaged_entry_is_prepared_again(corrected):
    project = corrected
    bundle, versions = active_model(project), training_versions(project)
    fresh = project_cases(project, bundle, versions)
    project_cases(project, bundle, versions, cache=CaseCache(project))
    for entry in (project.folder / CACHE_FOLDER).iterdir():
        (entry / "labels.npy").write_bytes(b"\x93NUMPY")  # cut short
    cache = CaseCache(project)
    cases = project_cases(project, bundle, versions, cache=cache)
    assert cache.misses == 2
    for a, b in zip(fresh, cases, strict=True):
        _same(a, b)


def test_a_training_round_uses_the_cache_and_keeps_only_its_cases(corrected, monkeypatch):
    from napari_atlas_annotate.training import round as round_module
    from napari_atlas_annotate.training.organs import TrainSettings

    project = corrected
    fast = TrainSettings(epochs=1, iterations_per_epoch=2, batch_size=1, patch_size=(8, 16, 16))
    stale = project.folder / CACHE_FOLDER / ("0" * 32)
    stale.mkdir(parents=True)
    result = round_module.train_round(project, "cpu", settings=fast)
    entries = sorted(p.name for p in (project.folder / CACHE_FOLDER).iterdir())
    assert len(entries) == len(result.train_cases) and stale.name not in entries
