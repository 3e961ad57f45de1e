"""Which version each case exports, and what a skipped case or an empty export tells the
user to do: every command it prints runs as printed."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.export.selection import nothing_to_export, select_versions
from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.volume import Volume


@pytest.fixture
def proposed_only(tmp_path) -> Project:
    """An organs project whose one case has only a model proposal."""
    project = Project.create(tmp_path / "proj", task="organs")
    image = Volume(np.zeros((4, 6, 6), np.int16), np.eye(4), modality="CT")
    project.add_case("ct0", [ImageRef(str(save_nifti(image, tmp_path / "ct0.nii.gz")), "CT")])
    project.save_mask_version("ct0", np.zeros((4, 6, 6), np.uint8), kind="proposal")
    return project


def test_a_skipped_case_names_the_open_command_with_its_required_annotator(proposed_only):
    """`atlas-annotate open PROJECT` without --annotator is refused by the CLI (it is
    required), so the hint must name it."""
    chosen, [skipped] = select_versions(proposed_only, "final")
    assert chosen == [] and skipped.case_id == "ct0"
    assert f"`atlas-annotate open {proposed_only.folder} --annotator NAME`" in skipped.hint


def test_nothing_to_export_names_the_open_command_with_its_required_annotator(proposed_only):
    message = str(nothing_to_export(proposed_only, "corrected"))
    assert f"`atlas-annotate open {proposed_only.folder} --annotator NAME`" in message


def test_a_case_with_only_a_proposal_says_status_any_exports_it(proposed_only):
    _, [skipped] = select_versions(proposed_only, "corrected")
    assert skipped.hint.endswith("or export the proposal as it is with --status any")
    message = str(nothing_to_export(proposed_only, "corrected"))
    assert "use --status any: provenance.json marks them as unreviewed" in message
    [chosen], _ = select_versions(proposed_only, "any")
    assert chosen.version.kind == "proposal"


def test_a_case_without_a_proposal_names_the_propose_command(tmp_path):
    project = Project.create(tmp_path / "proj", task="organs")
    image = Volume(np.zeros((4, 6, 6), np.int16), np.eye(4), modality="CT")
    project.add_case("ct0", [ImageRef(str(save_nifti(image, tmp_path / "ct0.nii.gz")), "CT")])
    _, [skipped] = select_versions(project, "any")
    assert skipped.reason == "no final, corrected, imported or proposed mask version"
    assert f"`atlas-annotate propose {project.folder} --cases ct0`" in skipped.hint
    message = str(nothing_to_export(project, "any"))
    assert "not even a model proposal" in message
    assert f"`atlas-annotate propose {project.folder}`" in message


def test_many_skipped_cases_are_summed_up_per_reason(tmp_path):
    """A big project exporting its few final cases: one line per reason with the first ids
    and one case's hint, not a line per case; the provenance file lists each."""
    import json

    from napari_atlas_annotate.export import export_project
    from napari_atlas_annotate.export.project_export import SKIPPED_LISTED
    from napari_atlas_annotate.review import finalize

    project = Project.create(tmp_path / "proj", task="organs", classes=["liver"])
    image = Volume(np.zeros((4, 6, 6), np.int16), np.eye(4), modality="CT")
    path = str(save_nifti(image, tmp_path / "ct.nii.gz"))
    labels = np.zeros((4, 6, 6), np.uint8)
    labels[1:3, 2:4, 2:4] = 1
    n = SKIPPED_LISTED + 2
    for i in range(n + 1):
        project.add_case(f"ct{i:02d}", [ImageRef(path, "CT")])
        if i % 2:
            project.save_mask_version(f"ct{i:02d}", labels, kind="proposal")
    project.save_mask_version("ct00", labels, kind="corrected", annotator="ann")
    finalize(project, "ct00", "lead", {"all": "ann"})
    result = export_project(project, "monai", tmp_path / "out", status="final")
    lines = result.summary().splitlines()
    assert result.cases == ["ct00"] and len(result.skipped) == n
    skipped = [line for line in lines if line.startswith("skipped")]
    odd = [f"ct{i:02d}" for i in range(1, n + 1, 2)]
    even = [f"ct{i:02d}" for i in range(2, n + 1, 2)]
    assert skipped == [
        f"skipped {len(odd)} case(s), no final mask version (only a model proposal): "
        f"{', '.join(odd[:5])} and {len(odd) - 5} more",
        f"skipped {len(even)} case(s), no final mask version (not labelled or proposed yet): "
        f"{', '.join(even[:5])} and {len(even) - 5} more",
    ]
    hint = lines[lines.index(skipped[0]) + 1]
    assert hint.startswith("  e.g. ct01: it has only a model proposal: an annotator corrects")
    assert lines[lines.index(skipped[1]) + 1].startswith("  e.g. ct02: it has nothing yet")
    assert lines[lines.index(skipped[1]) + 2] == f"(each skipped case and why: {result.manifest})"
    listed = json.loads(result.manifest.read_text())["skipped"]
    assert [s["case_id"] for s in listed] == [f"ct{i:02d}" for i in range(1, n + 1)]
    project.close()
