"""Viewer keys bound by docks (bind_dock_keys) in a real viewer: a key two open docks both
bind goes to the dock the user opened or worked in last, to the other one once that dock is
closed, and to none once both are closed."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.qt

dock_keys = pytest.importorskip("napari_atlas_annotate._qt.dock_keys")


def _press(viewer, qtbot, key: str, control: bool = True) -> None:
    from qtpy.QtCore import Qt

    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    modifier = Qt.KeyboardModifier.ControlModifier if control else Qt.KeyboardModifier.NoModifier
    qtbot.keyClick(canvas, getattr(Qt.Key, f"Key_{key}"), modifier)


def _dock(viewer, name: str, pressed: list[str], keys=("Control-PageDown",)):
    """A dock with a text field, added to the viewer, whose keys note ``name`` in ``pressed``."""
    from qtpy.QtWidgets import QLineEdit, QVBoxLayout, QWidget

    dock = QWidget()
    dock.field = QLineEdit(dock)
    QVBoxLayout(dock).addWidget(dock.field)
    dock_keys.bind_dock_keys(
        viewer, dock, {key: (lambda key=key: pressed.append(f"{name} {key}")) for key in keys}
    )
    viewer.window.add_dock_widget(dock, name=name)
    return dock


def test_a_closed_dock_keys_do_nothing(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    pressed: list[str] = []
    dock = _dock(viewer, "annotator", pressed)
    _press(viewer, qtbot, "PageDown")
    assert pressed == ["annotator Control-PageDown"]

    viewer.window.remove_dock_widget(dock)  # what the dock's close button does
    _press(viewer, qtbot, "PageDown")
    assert pressed == ["annotator Control-PageDown"]


def test_a_shared_key_goes_to_the_last_opened_dock_then_back(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    pressed: list[str] = []
    first = _dock(viewer, "annotator", pressed, ("Control-PageDown", "Control-Enter"))
    second = _dock(viewer, "review", pressed)
    _press(viewer, qtbot, "PageDown")
    _press(viewer, qtbot, "Return")  # a key only the first dock binds still reaches it
    assert pressed == ["review Control-PageDown", "annotator Control-Enter"]

    viewer.window.remove_dock_widget(second)
    _press(viewer, qtbot, "PageDown")
    assert pressed[-1] == "annotator Control-PageDown"  # not lost for good

    viewer.window.remove_dock_widget(first)
    _press(viewer, qtbot, "PageDown")
    assert len(pressed) == 3


def test_a_shared_key_goes_to_the_dock_worked_in_last(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    pressed: list[str] = []
    first = _dock(viewer, "annotator", pressed)
    second = _dock(viewer, "review", pressed)
    qtbot.waitExposed(viewer.window._qt_window)
    viewer.window._qt_window.activateWindow()

    first.field.setFocus()  # the user clicks into the annotator dock ...
    qtbot.waitUntil(first.field.hasFocus)
    _press(viewer, qtbot, "PageDown")  # ... then steps from the canvas
    assert pressed == ["annotator Control-PageDown"]

    second.field.setFocus()
    qtbot.waitUntil(second.field.hasFocus)
    _press(viewer, qtbot, "PageDown")
    assert pressed[-1] == "review Control-PageDown"


def test_a_dock_binding_its_keys_again_runs_once(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    pressed: list[str] = []
    dock = _dock(viewer, "annotator", pressed)
    dock_keys.bind_dock_keys(viewer, dock, {"Control-PageDown": lambda: pressed.append("again")})
    _press(viewer, qtbot, "PageDown")
    assert pressed == ["again"]


def test_the_annotator_and_review_docks_share_the_case_keys(make_napari_viewer, qtbot, tmp_path):
    """Both docks open in one viewer: Ctrl+PageDown steps the review dock (opened last),
    then, once the review dock is closed, the annotator dock again."""
    from napari_atlas_annotate._qt.annotator import add_annotator_dock
    from napari_atlas_annotate._qt.review import ReviewDock

    from .conftest import make_organ_project, make_two_reader_project

    organ = make_organ_project(tmp_path / "organ")
    two_readers, _ = make_two_reader_project(tmp_path / "review")
    try:
        viewer = make_napari_viewer()
        annotator = add_annotator_dock(viewer, organ.folder, "alice")
        first_case = annotator.case_id
        review = ReviewDock(viewer, two_readers, lead="lead")
        viewer.window.add_dock_widget(review, name="Review")
        assert review.load_case(review.case_ids()[0]), review.last_error

        _press(viewer, qtbot, "PageDown")
        assert review.review.case_id == review.case_ids()[1]
        assert annotator.case_id == first_case

        viewer.window.remove_dock_widget(review)
        _press(viewer, qtbot, "PageDown")
        assert annotator.case_id != first_case, annotator.last_error
    finally:
        two_readers.close()
