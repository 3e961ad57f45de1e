"""A case's history: versions with their edits and voxel changes, and the audit trail."""

import numpy as np
import pytest

from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import EditEvent, ImageRef, Project, ProjectError
from napari_atlas_annotate.project.edit_log import diff_labels
from napari_atlas_annotate.project.history import case_history
from napari_atlas_annotate.volume import Volume

LIVER, SPLEEN = 5, 8


@pytest.fixture
def project(tmp_path):
    image = Volume(np.zeros((6, 16, 16), np.int16), np.diag([0.8, 0.8, 2.0, 1.0]), "CT")
    save_nifti(image, tmp_path / "ct.nii.gz")
    p = Project.create(tmp_path / "proj", task="organs")
    p.add_case("ct", [ImageRef(str(tmp_path / "ct.nii.gz"))])
    yield p
    p.close()


def _paint(project, labels, reader, base, box, value, seconds):
    before = labels.copy()
    labels[box] = value
    project.log_event(
        EditEvent(
            "ct",
            reader,
            "paint" if value else "erase",
            class_id=value or None,
            base_version_id=base.id,
            diff=diff_labels(before, labels),
            active_seconds=seconds,
        )
    )


def test_each_version_says_what_went_into_it(project):
    proposal = np.zeros((6, 16, 16), np.uint8)
    proposal[1:4, 2:8, 2:8] = LIVER
    proposal[1:3, 10:14, 10:14] = SPLEEN
    v1 = project.save_mask_version("ct", proposal, kind="proposal", model_version="m-1")
    labels = proposal.copy()
    _paint(project, labels, "alice", v1, np.s_[4, 2:8, 2:8], LIVER, 3.0)  # +36 liver
    _paint(project, labels, "alice", v1, np.s_[1:3, 10:12, 10:14], 0, 2.0)  # -16 spleen
    _paint(project, proposal.copy(), "bob", v1, np.s_[0, 0, 0], LIVER, 1.0)  # bob's edit
    v2 = project.submit_mask("ct", "alice", labels, v1, note="spleen tip was fat")
    second = labels.copy()
    _paint(project, second, "alice", v2, np.s_[5, 2:8, 2:8], LIVER, 4.0)  # +36 liver
    v3 = project.submit_mask("ct", "alice", second, v2)

    history, audit = case_history(project, "ct")
    assert [h.version.id for h in history] == [v1.id, v2.id, v3.id]
    first, corrected, again = history
    assert first.edits == 0 and first.changed_voxels is None
    assert first.classes == {"liver": 108, "spleen": 32}
    assert corrected.edits == 2 and corrected.active_seconds == 5.0
    assert corrected.tools == {"paint": 1, "erase": 1}
    assert corrected.changed_voxels == 52
    assert corrected.class_changes == {"liver": (36, 0), "spleen": (0, 16)}
    assert corrected.to_dict()["note"] == "spleen tip was fat"
    # only the edits after alice's previous version go into her next one
    assert again.edits == 1 and again.active_seconds == 4.0
    assert again.class_changes == {"liver": (36, 0)} and again.changed_voxels == 36
    assert [a["action"] for a in audit] == ["submit", "submit"]
    assert audit[0]["actor"] == "alice" and audit[0]["detail"] == {"version": v2.id}
    assert again.to_dict()["at"].endswith("+00:00")


def test_an_unknown_case_is_named(project):
    with pytest.raises(ProjectError, match="ct"):
        case_history(project, "nope")
