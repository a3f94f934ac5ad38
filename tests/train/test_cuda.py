"""On CUDA the trainer uses bfloat16 autocast and channels-last; both keep float32 weights and finite curves."""

import math

import numpy as np
import pytest
import torch

from skiplab.data import write_batch_file
from skiplab.train import TrainConfig, train


def tiny_cifar(root, n=64):
    folder = root / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        write_batch_file(folder / name, rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n))
    return folder


@pytest.mark.gpu
def test_cuda_run_uses_amp_and_channels_last(tmp_path):
    cfg = TrainConfig(model="resnet8", data="cifar10", data_root=str(tiny_cifar(tmp_path)), epochs=2, device="cuda")
    result = train(cfg, run_dir=tmp_path / "run")
    assert result.status == "completed" and len(result.epochs) == 2
    assert all(math.isfinite(e.train_loss) and math.isfinite(e.test_loss) for e in result.epochs)
    model = result.model
    assert next(model.parameters()).is_cuda and next(model.parameters()).dtype == torch.float32
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    # the checkpoint is written from the CUDA run and resumes
    resumed = train(cfg.replace(epochs=3), run_dir=tmp_path / "run", resume=True)
    assert resumed.resumed_from == 2 and len(resumed.epochs) == 3


@pytest.mark.gpu
def test_cuda_amp_is_bfloat16_inside_the_step():
    from skiplab.train.loop import train_step
    from skiplab.train.models import build_model

    model = build_model("resnet8", (3, 32, 32), 10).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    model.fc.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x = torch.randn(8, 3, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,), device="cuda")
    loss, _, gnorm = train_step(model, opt, x, y, torch.autocast("cuda", dtype=torch.bfloat16))
    assert seen == [torch.bfloat16] and loss.dtype == torch.float32 and torch.isfinite(gnorm)
