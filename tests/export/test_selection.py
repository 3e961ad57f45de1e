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
