"""The annotator dock's CT window: picked from the list or set with the contrast slider, it
stays from case to case; an image that is not a CT keeps its own display range."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate._napari.ct_windows import ABDOMEN, CT_WINDOWS
from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.volume import Volume

annotator = pytest.importorskip("napari_atlas_annotate._qt.annotator")


def _window(name):
    return next(w for w in CT_WINDOWS if w.name == name)


def test_a_picked_window_stays_on_the_next_case(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    assert tuple(dock.image_layer.contrast_limits) == ABDOMEN.limits
    assert dock.display_combo.currentText().startswith("Abdomen")

    lung = _window("Lung")
    dock.display_combo.setCurrentIndex(CT_WINDOWS.index(lung))
    dock.display_combo.activated.emit(CT_WINDOWS.index(lung))
    assert tuple(dock.image_layer.contrast_limits) == lung.limits

    first = dock.case_id
    dock.step_case(+1)
    assert dock.case_id != first
    assert tuple(dock.image_layer.contrast_limits) == lung.limits
    assert dock.display_combo.currentText() == lung.label


def test_a_window_set_with_the_slider_shows_as_custom_and_stays(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    dock.image_layer.contrast_limits = (-100.0, 250.0)  # as the layer's slider sets it
    assert dock.display_combo.currentText() == "Custom (W 350 L 75)"

    dock.step_case(+1)
    assert tuple(dock.image_layer.contrast_limits) == (-100.0, 250.0)
    # back to a named window, and to the custom one again from the list
    dock.display_combo.activated.emit(0)
    assert tuple(dock.image_layer.contrast_limits) == ABDOMEN.limits
    assert dock.display_combo.currentText() == ABDOMEN.label
    dock.display_combo.activated.emit(len(CT_WINDOWS))
    assert tuple(dock.image_layer.contrast_limits) == (-100.0, 250.0)


def test_an_image_that_is_not_ct_keeps_its_range_and_the_ct_window_comes_back(
    make_napari_viewer, tmp_path
):
    # an MR-like image (no air at -1000 HU) between two CTs
    rng = np.random.default_rng(0)
    project = Project.create(tmp_path / "p", task="organs")
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for case_id, values in (
        ("a_ct", rng.uniform(-1000, 400, (8, 16, 16))),
        ("b_mr", rng.uniform(0, 900, (8, 16, 16))),
        ("c_ct", rng.uniform(-1000, 400, (8, 16, 16))),
    ):
        path = tmp_path / f"{case_id}.nii.gz"
        save_nifti(Volume(values.astype(np.float32), affine), path)
        project.add_case(case_id, [ImageRef(str(path), "CT")])
    project.close()

    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, tmp_path / "p", "alice")
    assert dock.case_id == "a_ct"
    liver = _window("Liver")
    dock.display_combo.activated.emit(CT_WINDOWS.index(liver))

    assert dock.load_case("b_mr")
    low, high = dock.image_layer.contrast_limits
    assert (low, high) != liver.limits and 0 <= low < high <= 900
    assert not dock.display_combo.isEnabled()

    assert dock.load_case("c_ct")
    assert tuple(dock.image_layer.contrast_limits) == liver.limits
    assert dock.display_combo.isEnabled()
