"""What a stored organ proposal tells the user to check (``CaseProposal.warning``)."""

import numpy as np

from napari_atlas_annotate.models.proposals import _proposal_warning
from napari_atlas_annotate.volume import Volume


def _ct(lowest: float) -> Volume:
    array = np.full((4, 8, 8), 40.0, np.float32)
    array[:, 0] = lowest  # the air in front of the body, or where it would be
    return Volume(array, np.eye(4), "CT")


def test_a_proposal_says_when_the_image_is_not_in_hu_or_nothing_was_labelled():
    labels = np.zeros((4, 8, 8), np.uint8)
    assert _proposal_warning(_ct(0.0), labels).startswith(
        "the image has no voxel below -500 HU (the lowest is 0)"
    )
    assert _proposal_warning(_ct(-1024.0), labels) == (
        "the model labelled no organ: check that the image is an abdominal CT, in HU."
    )
    labels[2, 4, 4] = 5
    assert _proposal_warning(_ct(-1024.0), labels) == ""
