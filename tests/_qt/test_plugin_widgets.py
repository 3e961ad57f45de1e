"""The docks open from napari's Plugins menu through the npe2 manifest."""

import pytest

pytestmark = pytest.mark.qt


@pytest.mark.parametrize(
    ("display_name", "class_name"),
    [("Annotator", "AnnotatorDock"), ("Review (lead)", "ReviewDock")],
)
def test_dock_opens_from_manifest(make_napari_viewer, display_name, class_name):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-atlas-annotate", display_name)
    assert type(widget).__name__ == class_name
    assert widget.parent() is not None
