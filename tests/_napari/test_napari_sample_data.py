"""The two npe2 sample-data entries load into a viewer with the right layers."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_atlas_annotate._napari.layers import data_to_world_matrix, volume_from_layer

PLUGIN = "napari-atlas-annotate"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning"),
]


@pytest.fixture(autouse=True)
def discovered_plugins():
    """napari discovers plugins when a Qt viewer starts; a bare ViewerModel needs this."""
    from npe2 import PluginManager

    PluginManager.instance().discover()


def test_ct_abdomen_phantom_sample():
    from napari_atlas_annotate.phantoms import CLASSES

    viewer = ViewerModel()
    viewer.open_sample(PLUGIN, "ct_abdomen")
    image, labels = viewer.layers
    assert (image._type_string, labels._type_string) == ("image", "labels")
    np.testing.assert_allclose(data_to_world_matrix(image), data_to_world_matrix(labels))
    assert image.data.shape == labels.data.shape
    assert list(labels.features["class"][1:]) == list(CLASSES)
    present = set(np.unique(labels.data).tolist()) - {0}
    assert present and present <= set(range(1, len(CLASSES) + 1))
    assert volume_from_layer(labels).same_grid(volume_from_layer(image))


def test_lumbar_mri_phantom_sample():
    viewer = ViewerModel()
    viewer.open_sample(PLUGIN, "lumbar_mri")
    assert [layer.name for layer in viewer.layers] == [
        "Sagittal T1",
        "Sagittal T2/STIR",
        "Axial T2",
    ]
    for layer in viewer.layers:
        assert layer._type_string == "image"
        low, high = layer.contrast_limits
        assert high > low
        # napari slices along data axes: each must run (mostly) along its world axis
        linear = layer.affine.affine_matrix[:3, :3]
        assert np.argmax(np.abs(linear), axis=0).tolist() == [0, 1, 2]
