"""The docks' Project box: the open form, then one line with Change… once a project is open."""

from __future__ import annotations

import pytest

from .conftest import make_two_reader_project

pytestmark = pytest.mark.qt

annotator = pytest.importorskip("napari_atlas_annotate._qt.annotator")


def _shows_form(dock) -> bool:
    form, summary = dock.opener.form.isVisibleTo(dock), dock.opener.summary.isVisibleTo(dock)
    assert form != summary
    return form


def test_an_open_project_takes_one_line_and_change_brings_the_form_back(
    make_napari_viewer, organ_project, tmp_path
):
    viewer = make_napari_viewer()
    dock = annotator.make_annotator_dock(viewer)
    assert _shows_form(dock)
    assert not dock.open_project(tmp_path / "nothing", "alice")  # a bad folder: form stays
    assert _shows_form(dock)
    assert dock.open_project(organ_project.folder, "alice")
    assert not _shows_form(dock)
    assert dock.opener.line.text() == f"{organ_project.folder.name} · alice"
    assert str(organ_project.folder) in dock.opener.line.toolTip()
    dock.opener.change_button.click()
    assert _shows_form(dock) and dock.folder_edit.text() == str(organ_project.folder)
    dock.annotator_edit.setText("bob")
    dock.open_button.click()
    assert dock.annotator == "bob" and dock.opener.line.text().endswith("· bob")
    assert not _shows_form(dock)


def test_the_review_dock_keeps_the_lead_field_until_the_lead_is_named(make_napari_viewer, tmp_path):
    from napari_atlas_annotate._qt.review import ReviewDock

    project, _ = make_two_reader_project(tmp_path)
    project.close()
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer)
    assert dock.open_project(str(tmp_path / "proj"))
    assert _shows_form(dock)  # no lead yet: the Lead field stays in view
    assert dock.load_case("ct0") and dock.finalize() is None
    assert "lead's name" in dock.last_error
    assert _shows_form(dock)
    dock.lead_edit.setText("dr_wu")
    assert dock.open_project(str(tmp_path / "proj"))
    assert not _shows_form(dock) and dock.opener.line.text() == "proj · dr_wu"
    dock.opener.change_button.click()
    dock.opener.show_form(False)  # folded again, the name since emptied
    dock.lead_edit.setText("")
    assert not _shows_form(dock) and dock.finalize() is None
    assert _shows_form(dock) and "lead's name" in dock.last_error
