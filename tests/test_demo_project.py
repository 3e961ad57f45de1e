"""The demo campaign: two real projects with the starter models' proposals on every case."""

from __future__ import annotations

import json
import math

import pytest

from napari_atlas_annotate.demo_project import (
    DemoError,
    build_demo_project,
    demo_cases,
)
from napari_atlas_annotate.project import Project

N_CT, N_MRI = 2, 2


def _snapshot(folder):
    with Project(folder) as project:
        cases = sorted(c.id for c in project.cases())
        versions = [(v.case_id, v.kind, v.model_version, v.sha256) for v in project.versions()]
    return cases, versions


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    projects = build_demo_project(out, seed=0, n_ct=N_CT, n_mri=N_MRI, progress=lines.append)
    return out, projects, lines


def test_both_projects_have_every_phantom_case_with_truth(demo):
    _, projects, lines = demo
    manifest = json.loads(projects.manifest.read_text())
    assert manifest["site"] == 1  # a site the starter models were not trained on
    for folder, task, n in ((projects.organs, "organs", N_CT), (projects.spine, "spine", N_MRI)):
        with Project(folder) as project:
            assert project.task == task
            cases = project.cases()
            assert len(cases) == n
            expected = {e["id"] for e in manifest["cases"] if e["task"] == task}
            assert {c.id for c in cases} == expected
            for case in cases:
                key = "label" if task == "organs" else "grades"
                assert project.resolve(case.truth[key]).exists()
    assert any("proposing" in line for line in lines)


def test_every_case_has_a_proposal_naming_its_model(demo):
    _, projects, _ = demo
    for folder, content in ((projects.organs, "mask"), (projects.spine, "grades")):
        with Project(folder) as project:
            for case in project.cases():
                [version] = project.versions(case.id, kinds=("proposal",))
                assert version.content == content
                assert version.model_version == f"{project.task}-starter"
                assert case.uncertainty is not None and 0 <= case.uncertainty <= 1


def test_queue_is_ordered_by_uncertainty(demo):
    _, projects, _ = demo
    for folder in (projects.organs, projects.spine):
        with Project(folder) as project:
            values = [c.uncertainty for c in project.queue()]
        assert values == sorted(values, reverse=True)


def test_rerun_reuses_the_folder(demo):
    out, projects, _ = demo
    before = [_snapshot(projects.organs), _snapshot(projects.spine)]
    manifest_mtime = projects.manifest.stat().st_mtime_ns
    lines: list[str] = []
    again = build_demo_project(out, seed=0, n_ct=N_CT, n_mri=N_MRI, progress=lines.append)
    assert again == projects
    assert [_snapshot(projects.organs), _snapshot(projects.spine)] == before
    assert projects.manifest.stat().st_mtime_ns == manifest_mtime
    assert not any("proposing" in line for line in lines)


def test_demo_cases_score_proposals_against_truth(demo):
    _, projects, _ = demo
    rows = demo_cases(projects.organs, projects.spine)
    organs = [r for r in rows if r["task"] == "organs"]
    spine = [r for r in rows if r["task"] == "spine"]
    assert len(organs) == N_CT and len(spine) == N_MRI
    for row in organs:
        assert 0.5 < row["proposal_mean_dice"] < 1.0  # good, yet something to correct
    for row in spine:
        assert math.isfinite(row["rsna_score"]) and row["rsna_score"] >= 0
    with Project(projects.organs) as project:
        assert [r["id"] for r in organs] == [c.id for c in project.queue()]


def test_other_settings_on_the_same_folder_are_refused(demo):
    out, _, _ = demo
    with pytest.raises(DemoError, match=r"seed 0 \(asked 5\)"):
        build_demo_project(out, seed=5, n_ct=N_CT, n_mri=N_MRI, progress=None)


def test_a_folder_that_is_not_a_demo_is_refused(tmp_path):
    Project.create(tmp_path / "organs", task="organs").close()
    with pytest.raises(DemoError, match="not a demo folder"):
        build_demo_project(tmp_path, n_ct=1, n_mri=0, progress=None)
