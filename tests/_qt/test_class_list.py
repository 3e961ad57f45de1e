"""The annotator dock's class list shows each class's volume, kept current edit by edit."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytestmark = pytest.mark.qt

annotator = pytest.importorskip("napari_atlas_annotate._qt.annotator")


def _shown_ml(dock) -> dict[int, float]:
    """Class value -> the ml its row shows."""
    shown = {}
    for row in range(dock.class_list.count()):
        text = dock.class_list.item(row).text()
        match = re.search(r"\(([\d,.]+) ml\)$", text)
        assert match, text
        shown[row + 1] = float(match.group(1).replace(",", ""))
    return shown


def _assert_recount(dock) -> None:
    """Every row shows the ml a fresh count of the label layer gives (to its rounding)."""
    voxel_ml = float(np.prod(dock.volume.spacing)) / 1000
    counts = np.bincount(np.asarray(dock.labels_layer.data).ravel(), minlength=10)
    for value, ml in _shown_ml(dock).items():
        expected = counts[value] * voxel_ml
        assert ml == pytest.approx(expected, abs=0.051 if expected < 10 else 0.51), value


def test_class_volumes_follow_strokes_undo_and_tools(make_napari_viewer, organ_project):
    viewer = make_napari_viewer()
    dock = annotator.add_annotator_dock(viewer, organ_project.folder, "alice")
    layer = dock.labels_layer
    _assert_recount(dock)
    assert _shown_ml(dock)[1] == 0.0  # the proposal missed the aorta
    dock.select_class(1)
    dock.brush_spin.setValue(3)
    with layer.block_history():
        layer.paint((2, 24, 20), 1)
    assert _shown_ml(dock)[1] > 0
    _assert_recount(dock)
    with layer.block_history():
        layer.paint((8, 24, 20), 1)
    assert dock.fill_between_slices() > 0
    _assert_recount(dock)
    layer.undo()
    _assert_recount(dock)
    dock.reset_to_proposal()
    _assert_recount(dock)
    assert _shown_ml(dock)[1] == 0.0
    dock.step_case(+1)  # the next case's own volumes
    assert dock.case_id == "ct001"
    _assert_recount(dock)
    dock.close_case()
    assert dock.class_list.item(4).text() == "5  liver"
