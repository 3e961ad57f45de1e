"""The lead's review dock in a real viewer (Qt, Xvfb): open a two-annotator case, pick a
source per class, finalize, check the stored final label; reopen."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_atlas_annotate._napari.layers import DISPLAY_FROM_RAS
from napari_atlas_annotate._qt.review import ReviewDock
from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.phantoms.ct import make_ct_phantom
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.review.adjudication import current_final

pytestmark = pytest.mark.qt
LIVER, SPLEEN = 5, 8


@pytest.fixture
def two_reader_project(tmp_path):
    project = Project.create(tmp_path / "proj", task="organs", classes=list(ABDOMEN_ATLAS_CLASSES))
    masks = {}
    for seed in range(2):
        image, label, _ = make_ct_phantom(seed, shape=(16, 40, 40))
        case_id = f"ct{seed}"
        project.add_case(case_id, [ImageRef(str(save_nifti(image, tmp_path / f"{case_id}.nii")))])
        alice = label.array.astype(np.uint8)
        bob = alice.copy()
        bob[ndimage.binary_dilation(alice == LIVER) & (alice == 0)] = LIVER  # bigger liver
        if seed == 1:
            bob[alice == SPLEEN] = 0  # and no spleen: the most disputed case
        project.save_mask_version(case_id, alice, kind="imported", annotator="alice")
        project.save_mask_version(case_id, bob, kind="imported", annotator="bob")
        masks[case_id] = {"alice": alice, "bob": bob, "image": image}
    yield project, masks
    project.close()


def test_review_dock_pick_per_class_and_finalize(make_napari_viewer, two_reader_project):
    project, masks = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    viewer.window.add_dock_widget(dock, name="Review")
    assert dock.case_ids() == ["ct1", "ct0"], dock.last_error

    assert dock.load_case("ct0"), dock.last_error
    names = [layer.name for layer in viewer.layers]
    assert names == ["ct0 image", "alice", "bob", "consensus", "disagreement"]
    image_affine = viewer.layers["ct0 image"].affine.affine_matrix
    expected_affine = DISPLAY_FROM_RAS @ masks["ct0"]["image"].affine
    for layer in viewer.layers:  # everything overlays the image exactly
        np.testing.assert_allclose(layer.affine.affine_matrix, image_affine)
    np.testing.assert_allclose(image_affine, expected_affine)
    alice, bob = masks["ct0"]["alice"], masks["ct0"]["bob"]
    # Disagreement map: exactly where the two differ (data is displayed as stored here).
    shown = viewer.layers["disagreement"].metadata["atlas_annotate"]["axes"]
    disagreement = np.asarray(viewer.layers["disagreement"].data).transpose(np.argsort(shown))
    np.testing.assert_array_equal(disagreement, (alice != bob).astype(np.uint8))

    assert dock.table.rowCount() == len(ABDOMEN_ATLAS_CLASSES)
    liver_row = ABDOMEN_ATLAS_CLASSES.index("liver")
    assert float(dock.table.item(liver_row, 1).text()) < 1.0  # Dice alice|bob
    assert dock.table.item(0, 1).text() == "1.000"  # aorta identical

    dock.choose("liver", "bob")
    dock.choose("spleen", "alice")
    version = dock.finalize()
    assert version is not None, dock.last_error
    stored = project.read_mask(version)
    np.testing.assert_array_equal(stored == LIVER, bob == LIVER)
    np.testing.assert_array_equal(stored[bob != LIVER], alice[bob != LIVER])  # the rest
    assert current_final(project, "ct0").id == version.id
    assert "FINAL" in dock.case_list.item(dock.case_ids().index("ct0")).text()
    dock.choose("liver", "bob")
    dock.choose("spleen", "alice")
    assert dock.finalize().id == version.id  # a second click stores nothing new
    assert "already final as decided" in dock.status.text()
    assert len(project.versions("ct0", kinds=("final",))) == 1

    dock.reason_edit.setText("liver border unclear")
    assert dock.reopen(), dock.last_error
    assert current_final(project, "ct0") is None
    assert [r["action"] for r in project.audit_trail("ct0")] == ["finalize", "reopen"]


def test_review_dock_reports_errors(make_napari_viewer, two_reader_project):
    project, _ = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="")
    assert dock.load_case("ct1")
    assert dock.finalize() is None and "lead's name" in dock.last_error
    dock.lead_edit.setText("lead")
    assert not dock.reopen() and "reason is required" in dock.last_error
    dock.reason_edit.setText("why not")
    assert not dock.reopen() and "not final" in dock.last_error
    assert not dock.load_case("missing") and "no case 'missing'" in dock.last_error
    assert [layer.name for layer in viewer.layers][0] == "ct1 image"  # previous case kept


def test_review_dock_opens_a_case_on_click(make_napari_viewer, two_reader_project):
    project, _ = two_reader_project
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, project, lead="lead")
    item = dock.case_list.item(dock.case_ids().index("ct0"))
    dock.case_list.itemClicked.emit(item)  # a single click, as in the annotator dock
    assert dock.review is not None and dock.review.case_id == "ct0", dock.last_error
    assert "ct0 image" in [layer.name for layer in viewer.layers]
