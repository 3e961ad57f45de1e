"""The lumbar grader's networks: a level-heatmap UNet and one crop classifier per group.

:class:`GraderNet` is a plain ``torch.nn.Module`` holding

* ``locator``: a MONAI 2D UNet mapping a mid-sagittal Sagittal T2 slab (3 planes as
  channels) to 5 heatmaps, one per disc level (l1_l2 .. l5_s1);
* ``classifiers``: a MONAI ``Classifier`` per condition group (``spinal``,
  ``foraminal``, ``subarticular``) mapping a 2.5D crop around a level to 3 logits
  (Normal/Mild, Moderate, Severe);

and a JSON-serialisable ``config`` (view sizes, pixel sizes, the mean point offsets of each
condition from its level) that travels in the bundle's ``configs/metadata.json``. The
weights are a plain ``state_dict`` so ``torch.load(weights_only=True)`` can read them.
"""

from __future__ import annotations

import copy

import torch
from monai.networks.nets import Classifier, UNet

from ..spine_grades import CONDITIONS, LEVELS

#: Condition group of each condition (the metric's groups; one classifier each).
GROUP_OF: dict[str, str] = {
    "spinal_canal_stenosis": "spinal",
    "left_neural_foraminal_narrowing": "foraminal",
    "right_neural_foraminal_narrowing": "foraminal",
    "left_subarticular_stenosis": "subarticular",
    "right_subarticular_stenosis": "subarticular",
}

#: Series and canonical view each group is graded on.
GROUP_SERIES: dict[str, tuple[str, str]] = {
    "spinal": ("Sagittal T2/STIR", "sagittal"),
    "foraminal": ("Sagittal T1", "sagittal"),
    "subarticular": ("Axial T2", "axial"),
}

#: +1 for the patient's left (and the midline), -1 for the right: crops are mirrored so
#: left and right share one classifier.
LATERAL_OF: dict[str, int] = {c: (-1 if c.startswith("right_") else 1) for c in CONDITIONS}

#: Default configuration of a new grader (millimetres and pixels).
DEFAULT_CONFIG: dict = {
    "locator": {"shape": [128, 128], "pixel_mm": 2.0, "slab_mm": [-3.0, 0.0, 3.0]},
    "crop": {"shape": [32, 32], "pixel_mm": 1.0, "slab_mm": [-2.0, 0.0, 2.0]},
    # Mean RAS offset (mm) of each condition's point from the spinal canal point of the
    # same level; fitted from training points (zeros until then).
    "offsets": {c: {lv: [0.0, 0.0, 0.0] for lv in LEVELS} for c in CONDITIONS},
    # Share of the training prior mixed into every prediction (a probability floor).
    "prior_mix": 0.03,
    # Mean RAS offset of the spinal canal points from the Sagittal T2 volume centre.
    "midline_offset": [0.0, 0.0, 0.0],
}


def _classifier(crop_shape: tuple[int, int], n_planes: int) -> torch.nn.Module:
    return Classifier(
        in_shape=(n_planes, *crop_shape),
        classes=3,
        channels=(16, 32, 64),
        strides=(2, 2, 2),
        num_res_units=1,
        dropout=0.1,
    )


class GraderNet(torch.nn.Module):
    """Level locator + per-group grade classifiers of the lumbar grader.

    Parameters
    ----------
    config
        Overrides of :data:`DEFAULT_CONFIG` (merged one level deep).
    """

    def __init__(self, config: dict | None = None) -> None:
        super().__init__()
        cfg = copy.deepcopy(DEFAULT_CONFIG)
        for key, value in (config or {}).items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **copy.deepcopy(value)}
            else:
                cfg[key] = copy.deepcopy(value)
        self.config = cfg
        loc = cfg["locator"]
        self.locator = UNet(
            spatial_dims=2,
            in_channels=len(loc["slab_mm"]),
            out_channels=len(LEVELS),
            channels=(16, 32, 64, 128),
            strides=(2, 2, 2),
            num_res_units=1,
        )
        crop = cfg["crop"]
        self.classifiers = torch.nn.ModuleDict(
            {g: _classifier(tuple(crop["shape"]), len(crop["slab_mm"])) for g in GROUP_SERIES}
        )

    def locate(self, slab: torch.Tensor) -> torch.Tensor:
        """Level heatmap logits ``(B, 5, H, W)`` of mid-sagittal slabs ``(B, planes, H, W)``."""
        return self.locator(slab)

    def classify(self, group: str, crops: torch.Tensor) -> torch.Tensor:
        """Grade logits ``(B, 3)`` of crops ``(B, planes, h, w)`` of one condition group."""
        return self.classifiers[group](crops)
