"""A spine project's retraining round: fine-tune the active grader on submitted sheets,
score old and new on held-out cases, promote only when the RSNA score drops."""

import json
from pathlib import Path

import pytest

from napari_atlas_annotate.models import registry
from napari_atlas_annotate.models.grader import grade_study, load_grader
from napari_atlas_annotate.models.proposals import cases_needing_proposal
from napari_atlas_annotate.models.rsna_metric import rsna_score
from napari_atlas_annotate.models.spine_proposals import load_spine_study, propose_spine_cases
from napari_atlas_annotate.project import Project, ProjectError
from napari_atlas_annotate.project.importing import import_labels
from napari_atlas_annotate.training.dataset import holdout_split
from napari_atlas_annotate.training.organs import TrainingCancelled
from napari_atlas_annotate.training.spine_round import (
    MIN_HOLDOUT_STUDIES,
    spine_training_versions,
    train_spine_round,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def manifest(spine_phantoms):
    return spine_phantoms(12)


@pytest.fixture
def spine_project(spine_project_from, manifest):
    return spine_project_from(manifest)


def test_round_records_model_and_promotes_honestly(spine_project, manifest, submit_spine_truths):
    propose_spine_cases(spine_project, device="cpu")
    truths = submit_spine_truths(spine_project, manifest)
    seen = []
    # min_holdout=1: this 3-study project holds out one study; the default would refuse
    # to judge on it (tested below), here the promotion rule itself is under test.
    result = train_spine_round(
        spine_project, "cpu", epochs=2, progress=lambda *a: seen.append(a), min_holdout=1
    )
    assert {"loading cases", "training"} <= {stage for *_, stage in seen}
    # validation counts held-out studies, one grader after the other (it counted the two
    # graders, "0/2 .. 2/2", right after the round said it held out 1 study)
    n = len(result.holdout_cases)
    old, new = (f"validating the {which} grader on held-out studies" for which in ("old", "new"))
    assert [row for row in seen if row[2].startswith("validating")] == [
        *((k, n, old) for k in range(n + 1)),
        *((k, n, new) for k in range(n + 1)),
    ]
    assert result.model_version == f"spine-round{result.round}"
    assert result.previous_version == "spine-starter"
    ids = sorted(truths)
    assert (result.train_cases, result.holdout_cases) == holdout_split(ids)
    assert result.train_cases and result.holdout_cases

    # The reported scores are the RSNA metric of each grader on the held-out truth.
    def score(folder):
        model = load_grader(folder)
        held = {c: truths[c] for c in result.holdout_cases}
        graded = {
            c: grade_study(load_spine_study(spine_project, c).series, model, "cpu")
            for c in result.holdout_cases
        }
        return rsna_score(held, graded)["score"]

    new_folder = registry.model_folder(spine_project, result.model_version)
    old_folder = registry.model_folder(spine_project, "spine-starter")
    assert result.rsna_score_new == pytest.approx(score(new_folder), rel=1e-6)
    assert result.rsna_score_old == pytest.approx(score(old_folder), rel=1e-6)
    assert result.promoted == (result.rsna_score_new < result.rsna_score_old)

    active = registry.active_record(spine_project).version
    assert active == (result.model_version if result.promoted else "spine-starter")
    (row,) = registry.list_rounds(spine_project)
    assert row["model_version"] == result.model_version and row["finished_at"]
    metrics = row["metrics"]
    assert metrics["rsna_score_old"] == pytest.approx(result.rsna_score_old)
    assert metrics["rsna_score_new"] == pytest.approx(result.rsna_score_new)
    assert metrics["promoted"] == result.promoted
    assert (metrics["n_train"], metrics["n_holdout"]) == (2, 1)
    record = registry.get_model(spine_project, result.model_version)
    assert record.round == result.round and record.active == result.promoted
    meta = json.loads((new_folder / "configs" / "metadata.json").read_text())
    assert meta["model_version"] == result.model_version and meta["round"] == result.round
    assert meta["parent_version"] == "spine-starter"
    assert meta["training"]["cases"] == result.train_cases
    assert len(meta["training"]["grades_snapshot"]) == 64
    assert result.training["n_locator_studies"] == 2  # truth points reached the locator
    assert json.loads(json.dumps(result.to_dict()))["round"] == result.round
    # A promoted grader makes every proposal stale; a kept one none.
    stale = cases_needing_proposal(spine_project, active)
    assert sorted(stale) == (ids if result.promoted else [])


def test_too_few_held_out_studies_never_promote(spine_project, manifest, submit_spine_truths):
    submit_spine_truths(spine_project, manifest)
    result = train_spine_round(spine_project, "cpu", epochs=1)
    assert len(result.holdout_cases) < MIN_HOLDOUT_STUDIES
    assert not result.promoted
    assert registry.active_record(spine_project).version == "spine-starter"
    assert registry.get_model(spine_project, result.model_version) is not None
    (row,) = registry.list_rounds(spine_project)
    assert row["metrics"]["status"].startswith("kept previous: 1 held-out studies")


def test_rsna_imported_points_are_mapped_to_the_grader_series(spine_project, manifest):
    root = Path(manifest).parent
    entries = json.loads(Path(manifest).read_text())["cases"]
    for entry in entries:  # like 'atlas-annotate import': points name series by number
        import_labels(
            spine_project,
            entry["id"],
            "rsna",
            root / entry["grades"],
            points=root / entry["points"],
        )
    result = train_spine_round(spine_project, "cpu", epochs=1)
    assert result.training["n_locator_studies"] == len(result.train_cases)


def test_final_sheet_counts_over_later_corrections(spine_project, manifest, spine_truths):
    truths = spine_truths(manifest)
    cid = sorted(truths)[0]
    spine_project.save_grades_version(cid, truths[cid], kind="corrected", annotator="a")
    final = spine_project.save_grades_version(cid, truths[cid], kind="final", annotator="lead")
    spine_project.save_grades_version(cid, truths[cid], kind="corrected", annotator="b")
    assert spine_training_versions(spine_project) == {cid: final}


def test_without_sheets_explains(spine_project):
    propose_spine_cases(spine_project, device="cpu")  # proposals are not training data
    with pytest.raises(ProjectError, match="no submitted grade sheets"):
        train_spine_round(spine_project, "cpu", epochs=1)
    assert registry.list_rounds(spine_project) == []


@pytest.mark.parametrize("stage", ["validating", "training"])
def test_cancelled_round_keeps_the_active_grader(
    spine_project, manifest, submit_spine_truths, stage
):
    submit_spine_truths(spine_project, manifest)
    calls = []

    def cancel():  # let loading (3 studies) pass, stop before the held-out study or training
        calls.append(1)
        return len(calls) > (3 if stage == "validating" else 4)

    with pytest.raises(TrainingCancelled):
        train_spine_round(spine_project, "cpu", epochs=2, cancel=cancel)
    (row,) = registry.list_rounds(spine_project)
    assert row["metrics"]["status"] == "cancelled" and row["model_version"] is None
    assert [m.version for m in registry.list_models(spine_project)] == ["spine-starter"]
    assert registry.active_record(spine_project).version == "spine-starter"


def test_a_single_graded_study_is_validated_on_and_the_progress_says_so(
    spine_project, manifest, spine_truths
):
    truths = spine_truths(manifest)
    cid = sorted(truths)[0]
    spine_project.save_grades_version(cid, truths[cid], kind="corrected", annotator="a")
    seen = []
    result = train_spine_round(spine_project, "cpu", epochs=1, progress=lambda *a: seen.append(a))
    assert result.holdout_cases == []
    stages = [stage for *_, stage in seen if stage.startswith("validating")]
    assert set(stages) == {
        f"validating the {which} grader on the training studies (none held out)"
        for which in ("old", "new")
    }


def test_organ_project_is_refused(tmp_path):
    with Project.create(tmp_path / "organs", task="organs") as organs:
        with pytest.raises(ProjectError, match="spine projects only"):
            train_spine_round(organs, "cpu")
