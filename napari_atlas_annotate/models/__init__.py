"""Helper models: networks, the inference engine and the model registry.

torch and MONAI are imported lazily inside the functions that need them, so importing this
package (e.g. for the registry's bookkeeping) stays cheap.
"""

from .bundle import ModelBundle, ModelBundleError, ModelMismatchError
from .model_grid import CANONICAL_AXES, ModelGrid

__all__ = [
    "CANONICAL_AXES",
    "ModelBundle",
    "ModelBundleError",
    "ModelGrid",
    "ModelMismatchError",
]
