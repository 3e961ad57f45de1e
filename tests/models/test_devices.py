"""Device choice and mixed precision (``models/devices.py``); GPU checks run where CUDA is."""

import pytest
import torch

from napari_atlas_annotate.models.devices import (
    autocast,
    autocast_dtype,
    grad_scaler,
    select_device,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cpu_runs_in_full_precision_without_loss_scaling():
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu) is None
    assert not grad_scaler(cpu).is_enabled()
    conv = torch.nn.Conv3d(1, 2, 3)
    with autocast(cpu):
        assert conv(torch.zeros(1, 1, 4, 4, 4)).dtype == torch.float32


@needs_cuda
def test_cuda_convolutions_run_in_half_precision_and_fp16_gets_a_scaler():
    gpu = select_device("cuda")
    dtype = autocast_dtype(gpu)
    assert dtype in (torch.bfloat16, torch.float16)
    conv = torch.nn.Conv3d(1, 2, 3).to(gpu)
    with autocast(gpu):
        assert conv(torch.zeros(1, 1, 4, 4, 4, device=gpu)).dtype == dtype
    assert grad_scaler(gpu).is_enabled() == (dtype == torch.float16)
