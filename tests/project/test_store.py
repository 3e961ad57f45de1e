import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import (
    EditEvent,
    ImageRef,
    Project,
    ProjectError,
    diff_labels,
    replay,
)
from napari_atlas_annotate.volume import Volume


def _image(tmp_path, name="ct.nii.gz", shape=(8, 16, 16)):
    affine = np.array([[0, 0, -0.8, 10], [0, -0.7, 0, 20], [2.5, 0, 0, -30], [0, 0, 0, 1.0]])
    vol = Volume(np.arange(np.prod(shape), dtype=np.int16).reshape(shape), affine, "CT")
    path = tmp_path / name
    save_nifti(vol, path)
    return path, vol


@pytest.fixture
def project(tmp_path):
    p = Project.create(tmp_path / "proj", task="organs")
    for i in range(3):
        path, _ = _image(tmp_path, f"ct{i}.nii.gz")
        p.add_case(f"case{i}", [ImageRef(str(path))])
    yield p
    p.close()


def test_create_open_and_bad_folder(tmp_path, project):
    assert project.classes[4] == "liver" and len(project.classes) == 9
    assert [c.id for c in project.cases()] == ["case0", "case1", "case2"]
    with pytest.raises(ProjectError, match="not an annotation project"):
        Project(tmp_path)
    with pytest.raises(ProjectError, match="already a project"):
        Project.create(project.folder, task="organs")
    with pytest.raises(ProjectError, match="task must be one of"):
        Project.create(tmp_path / "x", task="lungs")
    assert project.config.label_tolerance == 0  # annotators correct every voxel


def test_label_tolerance_is_kept_and_checked(tmp_path):
    with Project.create(tmp_path / "p", task="organs", label_tolerance=1):
        pass
    with Project(tmp_path / "p") as reopened:
        assert reopened.config.label_tolerance == 1
    with pytest.raises(ProjectError, match="label_tolerance must be a whole number"):
        Project.create(tmp_path / "q", task="organs", label_tolerance=-1)
    config = tmp_path / "p" / "project.json"
    config.write_text(config.read_text().replace('"label_tolerance": 1', '"label_tolerance": 1.5'))
    with pytest.raises(ProjectError, match=r"project.json: label_tolerance must be"):
        Project(tmp_path / "p")


def test_versions_are_immutable_files_on_the_image_grid(project):
    img = project.load_image("case0")
    labels = np.zeros(img.shape, np.uint8)
    labels[2:4, 3:9, 5:7] = 5
    v1 = project.save_mask_version("case0", labels, kind="proposal", model_version="r0")
    labels[0, 0, 0] = 1
    v2 = project.save_mask_version("case0", labels, kind="corrected", annotator="ann")
    assert v1.path != v2.path and v1.sha256 != v2.sha256
    from napari_atlas_annotate.io import load_volume

    back = load_volume(project.folder / v1.path)
    assert back.same_grid(img)
    assert (back.array == 5).sum() == 2 * 6 * 2
    assert project.latest_version("case0").id == v2.id
    assert project.latest_version("case0", kinds=("proposal",)).model_version == "r0"


def test_wrong_shape_or_class_saves_nothing(project):
    with pytest.raises(ProjectError, match="does not match image shape"):
        project.save_mask_version("case0", np.zeros((2, 2, 2), np.uint8), kind="proposal")
    shape, _ = project.grid("case0")
    bad = np.full(shape, 12, np.uint8)
    with pytest.raises(ProjectError, match="exceeds"):
        project.save_mask_version("case0", bad, kind="proposal")
    assert project.versions("case0") == []
    assert not (project.folder / "labels").exists()


def test_missing_image_gives_clear_error(tmp_path, project):
    (tmp_path / "ct1.nii.gz").unlink()
    with pytest.raises(ProjectError, match="missing .moved or deleted"):
        project.load_image("case1")


def test_edit_log_restore_and_submit_replay(project):
    shape, _ = project.grid("case0")
    proposal = np.zeros(shape, np.uint8)
    proposal[2:6, 4:12, 4:12] = 5
    base = project.save_mask_version("case0", proposal, kind="proposal")
    labels = proposal.copy()
    for k in range(5):
        before = labels.copy()
        labels[k, k : k + 3, 2:6] = k % 3 + 1
        project.log_event(
            EditEvent(
                "case0",
                "ann",
                "paint",
                class_id=k % 3 + 1,
                base_version_id=base.id,
                diff=diff_labels(before, labels),
                active_seconds=1.5,
            )
        )
    assert project.case_state("case0", "ann") == "in_progress"
    # A new process would restore the unsubmitted work from the log.
    base2, restored, pending = project.restore_mask("case0", "ann")
    assert base2.id == base.id and len(pending) == 5
    np.testing.assert_array_equal(restored, labels)
    v = project.submit_mask("case0", "ann", labels, base)
    assert project.case_state("case0", "ann") == "submitted"
    events = project.events("case0", "ann", base_version_id=base.id, up_to_id=v.last_event_id)
    np.testing.assert_array_equal(replay(project.read_mask(base), events), project.read_mask(v))
    # After submit the working base is the annotator's own version, with nothing pending.
    b3, again, pending = project.restore_mask("case0", "ann")
    assert b3.id == v.id and pending == []
    np.testing.assert_array_equal(again, labels)
    status = project.status()
    entry = status["cases"][0]["annotators"]["ann"]
    assert entry == {"state": "submitted", "versions": 1, "edits": 5, "seconds": 7.5}
    json.dumps(status)


def test_queue_orders_by_uncertainty(project):
    project.set_uncertainty("case2", 0.9)
    project.set_uncertainty("case1", 0.1)
    assert [c.id for c in project.queue()] == ["case2", "case1", "case0"]


WORKER = """
import sys
import numpy as np
from napari_atlas_annotate.project import EditEvent, Project, diff_labels

folder, case_id, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
p = Project(folder)
shape, _ = p.grid(case_id)
labels = np.zeros(shape, np.uint8)
for k in range(n):
    before = labels.copy()
    labels[k % shape[0], k % shape[1], :] = 1 + k % 3
    p.log_event(EditEvent(case_id, name, "paint", class_id=1, diff=diff_labels(before, labels)))
p.submit_mask(case_id, name, labels, None)
p.close()
"""


def test_two_processes_lose_nothing(project):
    script = project.folder.parent / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(project.folder), case, name, "60"])
        for case, name in (("case0", "alice"), ("case1", "bob"))
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(project.events("case0", "alice")) == 60
    assert len(project.events("case1", "bob")) == 60
    for case, name in (("case0", "alice"), ("case1", "bob")):
        v = project.latest_version(case, annotator=name)
        np.testing.assert_array_equal(
            replay(np.zeros(project.grid(case)[0], np.uint8), project.events(case, name)),
            project.read_mask(v),
        )
    conn = sqlite3.connect(project.folder / "project.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
