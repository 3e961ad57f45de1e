"""Where a model runs: device choice, mixed precision and CPU threads."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def select_device(device: str = "auto") -> torch.device:
    """``'auto'`` (CUDA when available, else CPU), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.

    Raises
    ------
    ValueError
        When CUDA is asked for but not available, or the name is not a device.
    """
    import torch

    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} asked for, but this torch build sees no CUDA GPU "
                f"(torch {torch.__version__}). Use --device cpu or --device auto."
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {device!r}: use one of {', '.join(DEVICE_CHOICES)}")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type on ``device``: bf16 where the GPU has it, else fp16; None on CPU."""
    import torch

    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device):
    """bf16 autocast on GPUs that support it (fp16 otherwise); a no-op on CPU."""
    import torch

    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def grad_scaler(device: torch.device):
    """A loss scaler for training under :func:`autocast`: active only for fp16.

    fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range and CPU
    training runs in fp32, so there the scaler passes the loss and the step straight through.
    """
    import torch

    return torch.amp.GradScaler("cuda", enabled=autocast_dtype(device) == torch.float16)


def set_cpu_threads(threads: int | None) -> None:
    """Limit torch's intra-op CPU threads (process-wide) when ``threads`` is given."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))
