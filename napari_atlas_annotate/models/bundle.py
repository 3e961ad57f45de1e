"""MONAI-bundle-shaped model folders: ``configs/metadata.json`` + ``models/model.pt``.

A helper model is a folder that says everything needed to use it again::

    <version>/
      configs/metadata.json   task, classes, spacing, preprocessing, architecture (name +
                              kwargs), inference settings, training cases, label-snapshot
                              hash, metrics, round, parent version
      models/model.pt         the network's state_dict (``torch.save``)

Weights are always read with ``torch.load(weights_only=True)``: a model folder is data, and
loading it must never execute code. The network is rebuilt from its metadata
(``monai.networks.nets.<name>(**kwargs)``), so a checkpoint that does not fit its declared
architecture, or a model whose class list is not the project's, fails with an error that
names both sides.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io.atomic import staging_folder

if TYPE_CHECKING:
    import torch

METADATA_PATH = Path("configs") / "metadata.json"
WEIGHTS_PATH = Path("models") / "model.pt"
SCHEMA = "napari-atlas-annotate/model-bundle/1"
REQUIRED = ("version", "task", "classes", "spacing", "preprocessing", "architecture", "inference")


class ModelMismatchError(ValueError):
    """A model does not fit what it is used with (classes, architecture, task)."""


#: Metadata :func:`save_bundle` writes of the model's own making.
MADE_WHEN_SAVED = (
    "schema",
    "created_at",
    "monai_version",
    "pytorch_version",
    "network_data_format",
)


class ModelBundleError(ValueError):
    """A model folder is missing or unreadable."""


@dataclass
class ModelBundle:
    """A model folder and its metadata.

    Examples
    --------
    >>> bundle = ModelBundle.load("project/models/organs-round1")  # doctest: +SKIP
    >>> network = bundle.load_network("cpu")                       # doctest: +SKIP
    """

    folder: Path
    metadata: dict[str, Any]

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path) -> ModelBundle:
        folder = Path(folder)
        path = folder / METADATA_PATH
        if not folder.exists():
            raise ModelBundleError(
                f"{folder}: no such model folder. Give the folder that holds "
                f"{METADATA_PATH} and {WEIGHTS_PATH}."
            )
        if not path.exists():
            raise ModelBundleError(
                f"{folder}: not a model folder (no {METADATA_PATH}). A model folder holds "
                f"{METADATA_PATH} and {WEIGHTS_PATH}, as 'atlas-annotate train' writes them."
            )
        try:
            metadata = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelBundleError(f"{path}: unreadable model metadata ({exc}).") from exc
        missing = [k for k in REQUIRED if k not in metadata]
        if missing:
            raise ModelBundleError(
                f"{path}: model metadata lacks {', '.join(missing)}; it was not written by "
                "this tool (or is damaged). Retrain, or fill in the missing fields."
            )
        return cls(folder, metadata)

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def task(self) -> str:
        return str(self.metadata["task"])

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in self.metadata["spacing"])  # type: ignore[return-value]

    @property
    def window(self) -> tuple[float, float]:
        lo, hi = self.metadata["preprocessing"]["window"]
        return float(lo), float(hi)

    @property
    def roi_size(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.metadata["inference"]["roi_size"])  # type: ignore[return-value]

    @property
    def architecture(self) -> dict[str, Any]:
        return dict(self.metadata["architecture"])

    @property
    def weights_path(self) -> Path:
        return self.folder / WEIGHTS_PATH

    def derived_metadata(self, **fields: Any) -> dict[str, Any]:
        """Metadata for a model made from this one (fine-tuned, or weights read as this
        network): a copy of this recipe (classes, spacing, preprocessing, architecture,
        inference) with ``parent_version`` and ``fields`` set, and without what
        :func:`save_bundle` records of its own making (schema, created_at, the MONAI and
        PyTorch versions, network_data_format)."""
        metadata = copy.deepcopy(self.metadata)
        for key in MADE_WHEN_SAVED:
            metadata.pop(key, None)
        metadata.update(parent_version=self.version, **fields)
        return metadata

    def describe_architecture(self) -> str:
        arch = self.architecture
        kwargs = ", ".join(f"{k}={v}" for k, v in arch.get("kwargs", {}).items())
        return f"{arch['name']}({kwargs}) with {len(self.classes)} classes"

    def check_classes(self, classes: list[str], where: str) -> None:
        """Raise :class:`ModelMismatchError` unless the model predicts exactly ``classes``."""
        if list(classes) != self.classes:
            raise ModelMismatchError(
                f"model {self.version} ({self.folder}) predicts classes {self.classes}, but "
                f"{where} has classes {list(classes)}. Use a model trained for these classes "
                "(or roll back with 'atlas-annotate models PROJECT --rollback VERSION')."
            )

    # -- the network ---------------------------------------------------------------------
    def build_network(self) -> torch.nn.Module:
        """The untrained network the metadata describes."""
        return build_network(self.architecture, len(self.classes))

    def load_network(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The network with its weights (``weights_only=True``), in eval mode on ``device``."""

        network = self.build_network()
        if not self.weights_path.exists():
            raise ModelBundleError(f"{self.folder}: weights file {WEIGHTS_PATH} is missing.")
        state = read_weights(self.weights_path)
        load_state_checked(network, state, self.weights_path, self.describe_architecture())
        return network.to(device).eval()


def build_network(architecture: dict[str, Any], n_classes: int) -> torch.nn.Module:
    """``monai.networks.nets.<name>(spatial_dims=3, in_channels=1, out_channels=n+1, **kwargs)``."""
    from monai.networks import nets

    name = architecture.get("name", "")
    factory = getattr(nets, name, None)
    if factory is None or not callable(factory):
        raise ModelMismatchError(
            f"unknown network architecture {name!r}: expected a class of "
            "monai.networks.nets such as 'UNet', 'BasicUNet' or 'SegResNet'."
        )
    kwargs = dict(architecture.get("kwargs", {}))
    try:
        return factory(spatial_dims=3, in_channels=1, out_channels=n_classes + 1, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:  # MONAI refuses the settings
        raise ModelMismatchError(
            f"network architecture {name} with kwargs {kwargs} cannot be built ({exc}); "
            "give the settings monai.networks.nets." + name + " takes (spatial_dims, "
            "in_channels and out_channels are set from the classes)."
        ) from exc


def _looks_like_torch_file(path: Path) -> bool:
    """Whether ``path`` starts as torch.save writes: a zip archive, or a pickle (protocol 2+)."""
    with open(path, "rb") as stream:
        head = stream.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


#: How to save weights this tool can read.
SAVE_HINT = "save the network's weights with torch.save(model.state_dict(), path)"


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint's state dict, read with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path
        A file written by ``torch.save(model.state_dict(), path)``.

    Raises
    ------
    ModelBundleError
        In one line naming the file: missing, unreadable (truncated, not a torch file),
        holding pickled Python objects (a whole network, a custom class) that only running
        code could rebuild, or not a mapping of weight names to tensors (a training
        checkpoint that wraps the state dict in ``{'state_dict': ..., 'epoch': ...}``).
    """
    import pickle
    import re
    import warnings

    import torch

    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a weights file" if path.is_dir() else "not found"
        raise ModelBundleError(f"{path}: weights file {what}.")
    try:
        with warnings.catch_warnings():
            # a plain pickle (not torch's format): the error below says what to do
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if not found and not _looks_like_torch_file(path):
            # text or JSON whose bytes happen to be pickle opcodes: not pickled objects
            raise ModelBundleError(
                f"{path}: unreadable weights file (not a torch file: neither torch.save's "
                f"zip format nor a pickle). Copy it again, or {SAVE_HINT}."
            ) from None
        holds = f"a pickled {found.group(1)} object" if found else "pickled Python objects"
        raise ModelBundleError(
            f"{path}: holds {holds}, not plain weights; only tensors are read "
            f"(torch.load weights_only=True: loading a model never runs code). To use it, "
            f"{SAVE_HINT}."
        ) from None
    except Exception as exc:  # torch reports damaged files with many types
        if not _looks_like_torch_file(path):  # text, an image: torch says e.g. "101"
            raise ModelBundleError(
                f"{path}: unreadable weights file (not a torch file: neither torch.save's "
                f"zip format nor a pickle). Copy it again, or {SAVE_HINT}."
            ) from None
        text = str(exc).strip()
        # torch's first sentence says what failed; the rest is general advice
        reason = text.splitlines()[0].split(". ")[0].rstrip(".") if text else type(exc).__name__
        raise ModelBundleError(
            f"{path}: unreadable weights file (truncated, damaged or not a torch file: "
            f"{reason}). Copy it again, or {SAVE_HINT}."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        nested = [
            k
            for k, v in (state.items() if isinstance(state, dict) else ())
            if isinstance(v, dict) and v and all(isinstance(t, torch.Tensor) for t in v.values())
        ]
        inside = f"; its weights seem to be under {nested[0]!r}" if nested else ""
        raise ModelBundleError(
            f"{path}: not a state dict (a mapping of weight names to tensors){inside}. "
            f"To use it, {SAVE_HINT}."
        )
    return state


#: What to do about weights that do not fit their model folder's metadata.
REFIT_ADVICE = (
    "It was made for another architecture or class list; point at the model folder it "
    "came with, or retrain."
)


def load_state_checked(
    network: torch.nn.Module,
    state: dict,
    source: Path | str,
    described: str,
    advice: str = REFIT_ADVICE,
) -> None:
    """``load_state_dict(strict=True)`` with an error naming checkpoint and architecture
    (and ``advice``: what to do about it)."""
    own = network.state_dict()
    problems = []
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing:
        problems.append(f"{len(missing)} weights missing (e.g. {missing[0]})")
    if extra:
        problems.append(f"{len(extra)} unexpected weights (e.g. {extra[0]})")
    outputs = _output_channels(own), _output_channels(state)
    other_classes = not missing and not extra and outputs[0] != outputs[1]
    if other_classes:
        problems.append(
            f"its output layer has {outputs[1]} output channels ({outputs[1] - 1} classes "
            f"and background) but this model has {outputs[0]}"
        )
    for key, value in own.items():
        if other_classes:
            break
        if key in state and tuple(state[key].shape) != tuple(value.shape):
            problems.append(
                f"weight {key} has shape {tuple(state[key].shape)} in the checkpoint but "
                f"{tuple(value.shape)} in the network"
            )
            break
    if problems:
        raise ModelMismatchError(
            f"checkpoint {source} does not fit the architecture {described}: "
            + "; ".join(problems)
            + f". {advice}"
        )
    network.load_state_dict(state, strict=True)


def _output_channels(state: dict) -> int | None:
    """Channels of a segmentation network's last layer (its last tensor's first axis)."""
    if not state:
        return None
    last = list(state.values())[-1]
    return int(last.shape[0]) if getattr(last, "ndim", 0) else None


def save_bundle(folder: str | Path, network: torch.nn.Module, metadata: dict[str, Any]) -> Path:
    """Write a model folder atomically (a partly written folder is never visible).

    ``metadata`` gets the bookkeeping fields (schema, monai/pytorch versions, created_at,
    network_data_format) filled in when absent.
    """
    import monai
    import torch

    folder = Path(folder)
    if folder.exists():
        raise ModelBundleError(f"{folder}: model folder already exists; versions are immutable.")
    missing = [k for k in REQUIRED if k not in metadata]
    if missing:
        raise ModelBundleError(f"model metadata for {folder} lacks {', '.join(missing)}")
    meta = {
        "schema": SCHEMA,
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "created_at": time.time(),
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "hounsfield",
                    "num_channels": 1,
                    "spatial_shape": list(metadata["inference"]["roi_size"]),
                    "dtype": "float32",
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "num_channels": len(metadata["classes"]) + 1,
                    "dtype": "float32",
                    "channel_def": {
                        "0": "background",
                        **{str(i + 1): c for i, c in enumerate(metadata["classes"])},
                    },
                }
            },
        },
        **metadata,
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_folder(folder.parent, prefix=f".{folder.name}.")
    try:
        (tmp / METADATA_PATH).parent.mkdir(parents=True)
        (tmp / WEIGHTS_PATH).parent.mkdir(parents=True)
        state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
        torch.save(state, tmp / WEIGHTS_PATH)
        (tmp / METADATA_PATH).write_text(json.dumps(meta, indent=2))
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
