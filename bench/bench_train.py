"""Training throughput of CIFAR ResNet-20 and ResNet-56 (3x32x32, batch 128) against a plainly written reference.

The reference below is the same network (He et al. 2015, CIFAR ResNet with
option A shortcuts) written the straightforward way, NCHW tensors and a
textbook training step. skiplab's side is `cifar_resnet` trained by
`skiplab.train.train_step` in the memory format the trainer picks
(channels-last for images of 16x16 and up), in float32 and, where the CPU
computes bfloat16 natively (AMX, AVX512-BF16), with `cpu_bf16` autocast. Both run in the same process,
one step of each in turn, so that load from other processes hits both
alike; the ratio of the fastest steps is what counts (the 2-core machine is
shared and absolute numbers are noisy; the ratio of medians is reported
too). Achieved GFLOP/s (FLOPs of one forward+backward counted by
`FlopCounterMode`) is set against the peak float32 matmul rate measured in
the same run. Last, the wall time of the default degradation experiment.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from skiplab import experiments as exp
from skiplab.nn import cifar_resnet
from skiplab.train import TrainConfig, train_step
from skiplab.train.device import autocast_for, cpu_has_native_bf16, use_channels_last

BATCH = 128


# ---------------------------------------------------------------- the plainly written reference


class RefBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x
        if self.stride != 1 or self.pad:
            short = x[:, :, :: self.stride, :: self.stride]
            short = F.pad(short, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + short)


class RefResNet(nn.Module):
    def __init__(self, depth):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for i, w in enumerate((16, 32, 64)):
            for j in range(n):
                layers.append(RefBlock(cin, w, 2 if i > 0 and j == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layers(F.relu(self.bn(self.conv(x))))
        return self.fc(x.mean((2, 3)))


def ref_step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


# ---------------------------------------------------------------- measurement


def peak_matmul_gflops(n: int = 2048, reps: int = 10, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def step_flops(model, x, y) -> int:
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def throughput(depth: int, rounds: int) -> dict:
    torch.manual_seed(0)
    x, y = torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))
    ref = RefResNet(depth)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in cifar_resnet(depth).parameters())
    flops = step_flops(ref, x, y)
    channels_last = use_channels_last_for_cifar()
    x_ours = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    steps = {"reference": lambda: ref_step(ref, opt_ref, x, y)}
    # skiplab's step as the trainer runs it: float32, and bfloat16 autocast where the CPU has it (cpu_bf16).
    precisions = {"skiplab": None}
    if cpu_has_native_bf16():
        precisions["skiplab_bf16"] = autocast_for(TrainConfig(cpu_bf16=True), torch.device("cpu"))
    for name, autocast in precisions.items():
        torch.manual_seed(0)
        model = cifar_resnet(depth)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        steps[name] = lambda m=model, o=opt, a=autocast: train_step(m, o, x_ours, y, a() if a else None)
    for _ in range(2):  # warm-up: allocator, oneDNN primitive caches
        for fn in steps.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    # One step of each in turn: a burst of load from other processes lands on both alike.
    for _ in range(rounds):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    # The fastest step of each is the least disturbed by other processes; the medians are reported beside.
    ref_s, ref_med = min(times["reference"]), statistics.median(times["reference"])
    out = {
        "reference_images_per_s": round(BATCH / ref_s, 1),
        "goal_ratio": 1.3,
        "channels_last": channels_last,
        "gflop_per_step": round(flops / 1e9, 2),
        "reference_gflops": round(flops / ref_s / 1e9, 1),
        "steps_timed_each": rounds,
    }
    for name in precisions:
        best, med = min(times[name]), statistics.median(times[name])
        out |= {
            f"{name}_images_per_s": round(BATCH / best, 1),
            f"{name}_ratio": round(ref_s / best, 3),
            f"{name}_ratio_of_medians": round(ref_med / med, 3),
            f"{name}_gflops": round(flops / best / 1e9, 1),
        }
    return out


def use_channels_last_for_cifar() -> bool:
    return use_channels_last(TrainConfig(), torch.device("cpu"), (3, 32, 32))


def run() -> dict:
    out: dict = {"threads": torch.get_num_threads()}
    bf16 = cpu_has_native_bf16()
    peaks = {"float32": [peak_matmul_gflops()], "bfloat16": [peak_matmul_gflops(dtype=torch.bfloat16)] if bf16 else []}
    results = {f"resnet{depth}": throughput(depth, rounds) for depth, rounds in ((20, 10), (56, 5))}
    # Measured again after: a burst of load during one measurement must not make the share look better.
    peaks["float32"].append(peak_matmul_gflops())
    if bf16:
        peaks["bfloat16"].append(peak_matmul_gflops(dtype=torch.bfloat16))
    peak, peak_bf16 = max(peaks["float32"]), max(peaks["bfloat16"], default=None)
    out["peak_matmul_gflops"] = round(peak, 1)
    out["peak_matmul_gflops_bf16"] = round(peak_bf16, 1) if bf16 else None
    out["peak_matmul_gflops_runs"] = {k: [round(v, 1) for v in vs] for k, vs in peaks.items()}
    for name, r in results.items():
        # Each precision against the best peak matmul rate of that precision measured in this run.
        r["skiplab_fraction_of_peak"] = round(r["skiplab_gflops"] / peak, 3)
        if bf16:
            r["skiplab_bf16_fraction_of_bf16_peak"] = round(r["skiplab_bf16_gflops"] / peak_bf16, 3)
        out[name] = r
    t0 = time.perf_counter()
    deg = exp.degradation()
    out["degradation_default"] = {
        "wall_s": round(time.perf_counter() - t0, 1),
        "goal_s": 60,
        "runs": len(deg.runs),
        "verdict": deg.verdict,
    }
    return out
