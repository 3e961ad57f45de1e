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


def test_a_label_versions_grid_is_its_images_without_reading_the_image(tmp_path, project):
    """From the label file's header: the review's voxel sizes and volumes, without loading
    a 512x512x300 CT per case. A DICOM series' grid too (a tilted axis here)."""
    from napari_atlas_annotate.io.dicom_writer import write_dicom_series

    image = project.load_image("case0")
    labels = np.zeros(image.shape, np.uint8)
    version = project.save_mask_version("case0", labels, kind="corrected", annotator="ann")
    shape, affine = project.mask_grid(version)
    assert shape == image.shape
    np.testing.assert_allclose(affine, image.affine, atol=1e-5)

    c, s = np.cos(0.3), np.sin(0.3)  # an oblique series, turned about one axis
    tilted = np.eye(4)
    tilted[:3, :3] = np.column_stack([(-2.5 * s, 2.5 * c, 0), (0.7 * c, 0.7 * s, 0), (0, 0, 0.8)])
    tilted[:3, 3] = (-30, 20, 10)
    series = Volume(np.zeros((6, 12, 10), np.int16), tilted, "CT")
    write_dicom_series(series, tmp_path / "dicom", modality="CT")
    project.add_case("dicom", [ImageRef(str(tmp_path / "dicom"))])
    loaded = project.load_image("dicom")
    version = project.save_mask_version(
        "dicom", np.zeros(loaded.shape, np.uint8), kind="corrected", annotator="ann"
    )
    shape, affine = project.mask_grid(version)
    assert shape == loaded.shape
    np.testing.assert_allclose(affine, loaded.affine, atol=1e-4)


def test_wrong_shape_or_class_saves_nothing(project):
    with pytest.raises(ProjectError, match="does not match image shape"):
        project.save_mask_version("case0", np.zeros((2, 2, 2), np.uint8), kind="proposal")
    shape, _ = project.grid("case0")
    bad = np.full(shape, 12, np.uint8)
    with pytest.raises(ProjectError, match="exceeds"):
        project.save_mask_version("case0", bad, kind="proposal")
    assert project.versions("case0") == []
    assert not (project.folder / "labels").exists()


@pytest.mark.parametrize("how", ["moved", "deleted"])
def test_a_project_moved_or_deleted_while_open_stores_nothing(tmp_path, project, how):
    # The open database connection kept working: a submit reported success, wrote the
    # label into a re-created old folder, and (moved) left the database naming a file
    # that is not there.
    import shutil

    shape, _ = project.grid("case0")
    labels = np.zeros(shape, np.uint8)
    project.save_mask_version("case0", labels, kind="proposal")  # still in place: fine
    folder = project.folder
    if how == "moved":
        folder.rename(tmp_path / "elsewhere")
    else:
        shutil.rmtree(folder)
    labels[1, 2, 3] = 5
    with pytest.raises(ProjectError, match=f"{folder}: the project was moved or deleted"):
        project.save_mask_version("case0", labels, kind="corrected", annotator="a")
    assert not folder.exists()
    if how == "moved":
        with Project(tmp_path / "elsewhere") as moved:
            assert [v.kind for v in moved.versions("case0")] == ["proposal"]


def test_missing_image_gives_clear_error(tmp_path, project):
    (tmp_path / "ct1.nii.gz").unlink()
    with pytest.raises(ProjectError, match="missing .moved or deleted") as info:
        project.load_image("case1")
    # there is no command that removes a case: the message says what can be done
    message = str(info.value)
    assert "remove the case" not in message
    assert f"image {tmp_path / 'ct1.nii.gz'} is missing" in message
    assert "put the image back there and try again" in message


def test_unreadable_image_names_the_case_the_reason_and_the_file(tmp_path, project):
    path = tmp_path / "ct2.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut short, as by an interrupted copy
    with pytest.raises(ProjectError) as info:
        project.load_image("case2")
    message = str(info.value)
    assert message.startswith("case case2: ") and "truncated" in message
    assert f"reads the case from {path}: fix or replace the image there" in message


def test_unknown_case_lists_the_known_ones(project):
    with pytest.raises(ProjectError) as info:
        project.case("case9")
    assert "no case 'case9'" in str(info.value)
    assert "(cases: case0, case1, case2)" in str(info.value)


def test_many_cases_list_only_some(tmp_path):
    with Project.create(tmp_path / "many", task="organs") as many:
        path, _ = _image(tmp_path)
        for i in range(25):
            many.add_case(f"c{i:02d}", [ImageRef(str(path))])
        with pytest.raises(ProjectError) as info:
            many.case("nope")
    message = str(info.value)
    assert "c00, c01" in message and "c24" not in message and "25 in all" in message


def test_same_proposal_from_the_same_model_is_stored_once(project):
    shape, _ = project.grid("case0")
    labels = np.zeros(shape, np.uint8)
    labels[1:3, 2:6, 2:6] = 5
    first = project.save_mask_version("case0", labels, kind="proposal", model_version="m1")
    again = project.save_mask_version("case0", labels, kind="proposal", model_version="m1")
    assert again.id == first.id and len(project.versions("case0")) == 1
    # another model's identical label is its own proposal
    other = project.save_mask_version("case0", labels, kind="proposal", model_version="m2")
    assert other.id != first.id
    # m1 again: m2's proposal is the latest now, so m1's is stored anew and becomes latest
    back = project.save_mask_version("case0", labels, kind="proposal", model_version="m1")
    assert back.id not in (first.id, other.id)
    assert project.latest_version("case0", kinds=("proposal",)).id == back.id
    # a changed label is a new version; annotators' identical submissions are all kept
    labels[0, 0, 0] = 1
    assert (
        project.save_mask_version("case0", labels, kind="proposal", model_version="m1").id > back.id
    )
    a = project.save_mask_version("case0", labels, kind="corrected", annotator="ann")
    b = project.save_mask_version("case0", labels, kind="corrected", annotator="ann")
    assert a.id != b.id


def test_queue_can_leave_out_final_cases(project):
    project.set_uncertainty("case1", 0.5)
    shape, _ = project.grid("case1")
    project.save_mask_version("case1", np.zeros(shape, np.uint8), kind="final", annotator="lead")
    assert [c.id for c in project.queue()] == ["case1", "case0", "case2"]
    assert [c.id for c in project.queue(include_final=False)] == ["case0", "case2"]


def test_imported_labels_and_leads_in_status(project):
    shape, _ = project.grid("case0")
    project.ensure_annotator("ann")
    project.ensure_annotator("kim")
    project.ensure_annotator("lead", role="lead")
    project.save_mask_version("case0", np.zeros(shape, np.uint8), kind="imported", annotator="kim")
    assert project.case_state("case0", "kim") == "imported"
    assert project.case_state("case0", "ann") == "new"
    project.save_mask_version("case1", np.ones(shape, np.uint8), kind="final", annotator="lead")
    cases = {c["id"]: c["annotators"] for c in project.status()["cases"]}
    assert cases["case0"]["kim"]["state"] == "imported"
    assert cases["case0"]["kim"]["versions"] == 1
    # annotators are listed on every case, the lead only where they finalized
    assert sorted(cases["case0"]) == sorted(cases["case2"]) == ["ann", "kim"]
    assert sorted(cases["case1"]) == ["ann", "kim", "lead"]
    assert cases["case1"]["lead"] == {
        "role": "lead",
        "state": "final",
        "versions": 1,
        "edits": 0,
        "seconds": 0.0,
    }


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
    assert entry == {
        "role": "annotator",
        "state": "submitted",
        "versions": 1,
        "edits": 5,
        "seconds": 7.5,
    }
    json.dumps(status)


def _stroke(project, labels, base, z, value):
    """Paint one slice row of ``labels`` (in place) and log it as ann's edit on ``base``."""
    before = labels.copy()
    labels[z, 1:4, 1:4] = value
    project.log_event(
        EditEvent(
            "case0",
            "ann",
            "paint",
            class_id=value,
            base_version_id=base.id,
            diff=diff_labels(before, labels),
        )
    )


def test_strokes_of_a_second_window_on_the_older_version_are_not_hidden(project):
    shape, _ = project.grid("case0")
    proposal = project.save_mask_version("case0", np.zeros(shape, np.uint8), kind="proposal")
    first, second = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)  # two windows
    _stroke(project, first, proposal, 0, 5)
    submitted = project.submit_mask("case0", "ann", first, proposal)  # window 1 submits
    _stroke(project, second, proposal, 3, 8)  # window 2 still shows the proposal
    assert project.case_state("case0", "ann") == "in_progress"
    base, restored, pending = project.restore_mask("case0", "ann")
    assert base.id == submitted.id and [e.base_version_id for e in pending] == [proposal.id]
    expected = first.copy()
    expected[3, 1:4, 1:4] = 8  # window 2's stroke on top of window 1's submitted label
    np.testing.assert_array_equal(restored, expected)
    # submitting the restored label folds it in: nothing pending afterwards
    project.submit_mask("case0", "ann", restored, base)
    assert project.restore_mask("case0", "ann")[2] == []
    assert project.case_state("case0", "ann") == "submitted"


def test_strokes_on_a_blank_label_survive_a_later_proposal(project):
    # painting began before any proposal existed; a background propose run then stores
    # one: reopening shows the painting on the blank label, not the proposal
    shape, _ = project.grid("case0")
    labels = np.zeros(shape, np.uint8)
    before = labels.copy()
    labels[1, 1:4, 1:4] = 2
    project.log_event(
        EditEvent("case0", "ann", "paint", class_id=2, diff=diff_labels(before, labels))
    )
    project.save_mask_version("case0", np.full(shape, 1, np.uint8), kind="proposal")
    base, restored, pending = project.restore_mask("case0", "ann")
    assert base is None and len(pending) == 1
    np.testing.assert_array_equal(restored, labels)
    # someone who has not painted starts from the proposal
    assert project.restore_mask("case0", "other")[0].kind == "proposal"


def test_queue_orders_by_uncertainty(project):
    project.set_uncertainty("case2", 0.9)
    project.set_uncertainty("case1", 0.1)
    assert [c.id for c in project.queue()] == ["case2", "case1", "case0"]


def _edit(project, case_id, who, base, tool="paint"):
    """Log one edit (no voxels) by ``who`` on ``base`` (a version, or None: a blank label)."""
    base_id = base.id if base is not None else None
    return project.log_event(EditEvent(case_id, who, tool, class_id=1, base_version_id=base_id))


def test_states_of_every_case_at_once_agree_with_case_state(tmp_path):
    # status() and queue_states() read every case in a few queries; case_state() asks
    # per case and person: on a project with every situation they must say the same
    path, _ = _image(tmp_path)
    project = Project.create(tmp_path / "proj", task="organs", classes=["liver"])
    for name in ("ann", "kim", "newbie"):
        project.ensure_annotator(name)
    project.ensure_annotator("lead", role="lead")
    for i in range(9):
        project.add_case(f"case{i}", [ImageRef(str(path))])
    shape, _ = project.grid("case0")
    zeros, ones = np.zeros(shape, np.uint8), np.ones(shape, np.uint8)

    def propose(case_id, labels=zeros, model="m1"):
        return project.save_mask_version(case_id, labels, kind="proposal", model_version=model)

    p0 = propose("case0")  # ann edits the proposal; kim submits it unchanged
    _edit(project, "case0", "ann", p0)
    project.submit_mask("case0", "kim", zeros, p0)
    _edit(project, "case1", "kim", None)  # kim paints a blank label, then a proposal comes
    p1 = propose("case1")
    _edit(project, "case1", "ann", p1)  # ann submits, then a second window edits p1
    project.submit_mask("case1", "ann", ones, p1)
    _edit(project, "case1", "ann", p1)
    p2 = propose("case2")  # ann submitted, the lead finalized
    project.submit_mask("case2", "ann", ones, p2)
    project.save_mask_version("case2", ones, kind="final", annotator="lead")
    p3 = propose("case3")  # finalized, then reopened by the lead
    own = project.submit_mask("case3", "ann", ones, p3)
    final = project.save_mask_version("case3", ones, kind="final", annotator="lead")
    project.record_audit("case3", "lead", "reopen", final_version=final.id)
    _edit(project, "case3", "ann", own)  # ann works on their own version again
    project.save_mask_version("case4", ones, kind="imported", annotator="kim")
    _edit(project, "case4", "ann", None, tool="grade")  # a grade edit is not a mask edit
    p5 = propose("case5")  # ann submits, edits their own version, submits again
    v5 = project.submit_mask("case5", "ann", ones, p5)
    _edit(project, "case5", "ann", v5)
    project.submit_mask("case5", "ann", zeros, v5)
    propose("case5", ones, "m2")  # a newer proposal: ann stays on their own version
    _edit(project, "case5", "kim", p5)  # kim's strokes on the older proposal are pending
    p6 = propose("case6")  # the lead finalized twice; the latest is reopened
    project.save_mask_version("case6", zeros, kind="final", annotator="lead")
    last = project.save_mask_version("case6", ones, kind="final", annotator="lead")
    project.record_audit("case6", "lead", "reopen", final_version=last.id)
    project.submit_mask("case6", "kim", ones, p6)
    project.save_mask_version("case7", ones, kind="imported", annotator="ann")
    _edit(project, "case7", "ann", None)  # edits on a blank label after an import
    project.set_uncertainty("case3", 0.7)
    project.set_uncertainty("case5", 0.2)

    queue = project.queue()
    status = project.status()
    assert [c["id"] for c in status["cases"]] == [c.id for c in queue]
    seen = set()
    for name in ("ann", "kim", "newbie", "lead"):
        expected = [(c.id, c.uncertainty, project.case_state(c.id, name)) for c in queue]
        assert project.queue_states(name) == expected
        seen |= {state for _, _, state in expected}
    for case in status["cases"]:
        assert case["final"] == (project.current_final(case["id"]) is not None)
        for name, entry in case["annotators"].items():
            assert entry["state"] == project.case_state(case["id"], name), (case["id"], name)
    assert seen == {"new", "in_progress", "submitted", "imported", "final", "reopened"}
    todo = [c.id for c in queue if project.current_final(c.id) is None]
    assert [c.id for c in project.queue(include_final=False)] == todo
    assert "case2" not in todo and "case3" in todo
    project.close()


def test_an_existing_project_gets_the_new_indices_on_open(project):
    folder = project.folder
    project.close()
    db = sqlite3.connect(folder / "project.sqlite")
    for index in ("audit_case", "events_standing"):  # as made before these existed
        db.execute(f"DROP INDEX {index}")
    db.commit()
    db.close()
    with Project(folder) as reopened:
        names = {r[0] for r in reopened._db.execute("SELECT name FROM sqlite_master")}
        assert {"audit_case", "events_standing"} <= names
        assert [c.id for c in reopened.queue()] == ["case0", "case1", "case2"]


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


def test_remove_a_case_nobody_labelled_keeps_its_files_and_history(tmp_path, project):
    proposal = np.zeros((8, 16, 16), np.uint8)
    proposal[2:5, 4:9, 4:9] = 5
    version = project.save_mask_version("case1", proposal, kind="proposal", model_version="m1")
    stored = project.folder / version.path
    assert project.removal_blockers("case1") == []

    moved = project.remove_case("case1", "lead", "wrong series (a scout)")
    assert [c.id for c in project.cases()] == ["case0", "case2"]
    with pytest.raises(ProjectError, match="no case 'case1'"):
        project.case("case1")
    # the proposal's file moved, byte for byte, and the audit trail says who, why, where
    assert not stored.exists()
    (kept,) = moved.glob("*.nii.gz")
    assert kept.read_bytes() and kept.name == stored.name
    (record,) = [a for a in project.audit_trail("case1") if a["action"] == "remove"]
    assert record["actor"] == "lead" and record["detail"]["reason"] == "wrong series (a scout)"
    assert record["detail"]["moved_to"] == str(moved.relative_to(project.folder))
    assert record["detail"]["images"][0].endswith("ct1.nii.gz")
    # the same image can be added again (a fresh case)
    path, _ = _image(tmp_path, "ct1.nii.gz")
    project.add_case("case1", [ImageRef(str(path))])
    assert project.versions("case1") == []


def test_a_case_with_work_people_made_is_never_removed(tmp_path, project):
    labels = np.zeros((8, 16, 16), np.uint8)
    project.save_mask_version("case0", labels, kind="imported", annotator="dr_kim")
    event = EditEvent("case2", "ann", "paint", 5, diff_labels(labels, labels + 1))
    project.log_event(event)
    for case_id, what in (
        ("case0", "1 imported version(s) by dr_kim"),
        ("case2", "edit(s) by ann"),
    ):
        with pytest.raises(ProjectError, match="holds work people made") as info:
            project.remove_case(case_id, "lead", "duplicate")
        assert what in str(info.value)
        assert project.case(case_id).id == case_id
    with pytest.raises(ProjectError, match="reason is required"):
        project.remove_case("case1", "lead", " ")
    assert len(project.cases()) == 3


def test_a_damaged_or_missing_label_file_names_the_case_version_and_what_to_do(project):
    img = project.load_image("case1")
    proposal = project.save_mask_version(
        "case1", np.zeros(img.shape, np.uint8), kind="proposal", model_version="r0"
    )
    corrected = project.save_mask_version(
        "case1", np.ones(img.shape, np.uint8), kind="corrected", annotator="ann"
    )
    path = project.folder / proposal.path
    path.write_bytes(path.read_bytes()[:40])  # truncated, as by a full disk or a bad copy
    with pytest.raises(ProjectError) as damaged:
        project.read_mask(proposal)
    message = str(damaged.value)
    assert "case case1" in message and f"v{proposal.id}" in message and "proposal" in message
    assert str(path) in message and "propose" in message and "backup" in message
    (project.folder / corrected.path).unlink()
    with pytest.raises(ProjectError) as missing:
        project.read_mask(corrected)
    message = str(missing.value)
    assert "case case1" in message and "corrected by ann" in message and "missing" in message
    assert "backup" in message


def test_a_label_file_replaced_by_one_of_another_shape_is_named(tmp_path, project):
    # history, review, export and train each failed in their own words ("operands could not
    # be broadcast", "the image changed since labelling. Re-add the case"), naming no file
    import nibabel as nib

    shape, _ = project.grid("case1")
    first = project.save_mask_version("case1", np.zeros(shape, np.uint8), kind="proposal")
    labels = np.zeros(shape, np.uint8)
    labels[1, 2, 3] = 5
    mine = project.save_mask_version("case1", labels, kind="corrected", annotator="ann")
    path = project.folder / mine.path
    nib.save(nib.Nifti1Image(np.ones((3, 4, 5), np.uint8), np.eye(4)), path)
    with Project(project.folder) as fresh:  # no image grid known: the other file's header
        with pytest.raises(ProjectError, match="replaced since it was stored") as caught:
            fresh.read_mask(mine)
        assert str(path) in str(caught.value) and "backup" in str(caught.value)
        np.testing.assert_array_equal(fresh.read_mask(first), 0)  # the intact file reads


def test_storing_the_same_labels_again_rewrites_a_damaged_file(project):
    img = project.load_image("case2")
    labels = np.zeros(img.shape, np.uint8)
    labels[1:3, 2:6, 2:6] = 4
    first = project.save_mask_version("case2", labels, kind="proposal", model_version="r0")
    path = project.folder / first.path
    path.write_bytes(path.read_bytes()[:40])
    again = project.save_mask_version("case2", labels, kind="proposal", model_version="r0")
    assert again.id == first.id  # the same proposal, stored once
    np.testing.assert_array_equal(project.read_mask(again), labels)


def test_a_note_not_yet_submitted_is_kept_per_reader_and_blocks_removal(tmp_path, project):
    assert project.note_draft("case0", "alice") is None
    project.save_note_draft("case0", "alice", "left kidney removed")
    project.save_note_draft("case0", "bob", "")  # an empty note takes back a submitted one
    project.save_note_draft("case0", "alice", "left kidney removed (nephrectomy)")
    with Project(project.folder) as other:  # committed: another process sees it
        assert other.note_draft("case0", "alice") == "left kidney removed (nephrectomy)"
        assert other.note_draft("case0", "bob") == ""
        assert other.note_draft("case1", "alice") is None
    assert project.removal_blockers("case0") == [
        "a note not yet submitted by alice",
        "a note not yet submitted by bob",
    ]
    project.discard_note_draft("case0", "alice")
    project.discard_note_draft("case0", "alice")  # twice is fine
    assert project.note_draft("case0", "alice") is None
    assert project.note_draft("case0", "bob") == ""


def test_a_damaged_database_is_named_with_what_to_do(tmp_path, project):
    """A truncated project.sqlite (a copy cut short, a full disk) is said as such, not as
    sqlite's traceback; the label files are left alone."""
    database = project.folder / "project.sqlite"
    project.close()
    database.write_bytes(database.read_bytes()[:500])
    with pytest.raises(ProjectError, match="the project database is damaged") as caught:
        Project(project.folder)
    assert str(database) in str(caught.value) and "backup" in str(caught.value)
    database.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ProjectError, match="damaged .file is not a database"):
        Project(project.folder)


def test_a_database_that_cannot_be_written_for_a_full_disk_is_not_called_damaged(
    tmp_path, monkeypatch
):
    # "the project database is damaged ... put back project.sqlite from a backup": on a
    # full disk, whose advice lost recent work
    import sqlite3

    from napari_atlas_annotate.project import database

    def full(path):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(database, "_connect", full)
    with pytest.raises(ProjectError, match="probably full") as caught:
        Project.create(tmp_path / "p", task="organs")
    message = str(caught.value)
    assert "damaged" not in message and "backup" not in message and "free space" in message


def test_a_used_project_whose_database_is_gone_is_refused(tmp_path, project):
    # it was made again, empty: "0 case(s)", and add and propose went on in it
    shape, _ = project.grid("case0")
    project.save_mask_version("case0", np.zeros(shape, np.uint8), kind="proposal")
    project.close()
    (project.folder / "project.sqlite").unlink()
    with pytest.raises(ProjectError, match="database .* is missing") as caught:
        Project(project.folder)
    assert "backup" in str(caught.value)
    assert not (project.folder / "project.sqlite").exists()


def test_a_project_never_used_gets_its_database_when_opened(tmp_path):
    # an init stopped between writing project.json and the database
    Project.create(tmp_path / "p", task="organs").close()
    (tmp_path / "p" / "project.sqlite").unlink()
    with Project(tmp_path / "p") as project:
        assert project.cases() == []
