"""npe2 sample data: deterministic phantoms from :mod:`napari_atlas_annotate.phantoms`.

The phantom generator is imported only when a sample is opened.
"""

from __future__ import annotations

from .layers import LayerDataTuple, image_layer_data, labels_layer_data

#: Seed of the sample phantoms: the same pixels on every machine and every run.
SAMPLE_SEED = 0


def ct_abdomen_phantom() -> list[LayerDataTuple]:
    """Synthetic abdominal CT with its nine-organ ground truth as a Labels layer."""
    from ..phantoms import CLASSES, make_ct_phantom

    image, labels, _info = make_ct_phantom(SAMPLE_SEED)
    return [
        image_layer_data(image, "CT phantom"),
        labels_layer_data(labels, image, CLASSES, name="CT phantom truth"),
    ]


def lumbar_mri_phantom() -> list[LayerDataTuple]:
    """Synthetic lumbar MRI study: Sagittal T1, Sagittal T2/STIR and Axial T2 layers."""
    from ..phantoms import make_spine_phantom

    case = make_spine_phantom(SAMPLE_SEED)
    return [image_layer_data(volume, description) for description, volume in case.series.items()]
