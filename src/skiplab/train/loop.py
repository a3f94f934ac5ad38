"""The training loop: SGD with momentum and weight decay, per-epoch metrics, checkpoints, resume, cancel.

`train(cfg)` trains one network on one data set and returns a `RunResult`
with a metrics row per epoch (training loss and error, held-out loss and
error, learning rate, gradient-norm summary, seconds). Reproducible: the
seed fixes the initial weights, the data order and the augmentation, and
every epoch draws its randomness from its own generator (seeded by seed and
epoch), so a run resumed from a checkpoint continues exactly as an
uninterrupted one would. A non-finite loss stops the run cleanly with
status `diverged`; `should_stop()` is polled before every batch, so a
cancelled run stops within one training step.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from skiplab.data import Dataset, load_dataset
from skiplab.provenance import git_revision, machine, versions
from skiplab.seeding import seeded
from skiplab.train import checkpoint, distributed
from skiplab.train.config import TrainConfig
from skiplab.train.models import build_model
from skiplab.train.schedule import lr_at

if TYPE_CHECKING:  # train writes to any store with RunStore's methods; experiments and the CLI open one
    from skiplab.store import RunStore

EVAL_BATCH = 1024  # held-out examples per forward pass (no gradients kept)


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based: metrics after this many epochs
    train_loss: float  # mean cross-entropy over the epoch's training batches (train mode)
    train_error: float  # share of training examples misclassified during the epoch
    test_loss: float  # held-out cross-entropy after the epoch (eval mode)
    test_error: float
    lr: float  # learning rate at the epoch's last step
    grad_norm_mean: float  # global L2 norm of the gradient, mean over the epoch's steps
    grad_norm_max: float
    grad_norm_min: float
    seconds: float  # wall time of the epoch (training and evaluation)
    images_per_s: float  # training throughput of this process

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str  # completed | stopped | diverged
    message: str
    config: dict
    epochs: list[EpochMetrics]
    seconds: float
    params: int
    data: dict
    versions: dict
    git_revision: str | None
    machine: dict = field(default_factory=dict)  # CPU, torch's CPU capability and threads (provenance.machine)
    resumed_from: int = 0  # epochs that came from a checkpoint
    rank: int = 0  # this process's rank under torchrun (0 otherwise): only rank 0 stores and checkpoints
    rank_checksums: list[str] = field(default_factory=list)  # SHA-256 of each rank's final weights (torchrun)
    model: nn.Module | None = field(default=None, repr=False, compare=False)  # the trained network, not serialised

    @property
    def best_train_loss(self) -> float | None:
        finite = [e.train_loss for e in self.epochs if math.isfinite(e.train_loss)]
        return min(finite) if finite else None

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "message": self.message,
            "config": self.config,
            "epochs": [e.to_dict() for e in self.epochs],
            "seconds": self.seconds,
            "params": self.params,
            "data": self.data,
            "versions": self.versions,
            "git_revision": self.git_revision,
            "machine": self.machine,
            "resumed_from": self.resumed_from,
            "rank": self.rank,
            "rank_checksums": self.rank_checksums,
            "best_train_loss": self.best_train_loss,
        }


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def use_channels_last(cfg: TrainConfig, device: torch.device, input_shape: tuple[int, ...]) -> bool:
    """NHWC for conv nets on CUDA, and on the CPU for images of 16x16 and up.

    Measured on the 2-core development CPU (bench/bench_train.py): channels-last trains CIFAR ResNet-20/56
    faster than NCHW, but slowed the 8x8 digits conv stacks (resconv8: 45 ms vs 31 ms a step).
    """
    if not cfg.channels_last or len(input_shape) != 3:
        return False
    return device.type == "cuda" or min(input_shape[1:]) >= 16


def weights_checksum(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as oneDNN reports it."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_for(cfg: TrainConfig, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """The mixed-precision context of a training step: bfloat16 on CUDA (amp) or on the CPU (cpu_bf16), or none.

    bfloat16 keeps float32's range, so no loss scaling is needed; weights,
    optimizer state and BatchNorm statistics stay float32. On a CPU without
    native bfloat16 the conversions would make it slower than float32, so
    cpu_bf16 is refused there.
    """
    if device.type == "cuda" and cfg.amp:
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and cfg.cpu_bf16:
        if not cpu_has_native_bf16():
            raise ValueError("cpu_bf16: this CPU has no native bfloat16 (AVX512-BF16 or AMX); train in float32")
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    autocast: contextlib.AbstractContextManager | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One SGD step; returns (loss, correct predictions, global gradient norm) as tensors (no host sync)."""
    with autocast or contextlib.nullcontext():
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    optimizer.step()
    return loss.detach(), (logits.argmax(1) == y).sum(), grad_norm


@torch.no_grad()
def evaluate(
    model: nn.Module, data: Dataset, device: torch.device, ctx: distributed.DistContext, channels_last: bool
) -> tuple[float, float]:
    """(mean loss, error) on the held-out split; under torchrun each rank takes a shard and the sums are reduced."""
    model.eval()
    idx = torch.arange(ctx.rank, len(data.y_test), ctx.world_size)
    totals = torch.zeros(3, dtype=torch.float64)
    for start in range(0, len(idx), EVAL_BATCH):
        b = idx[start : start + EVAL_BATCH]
        x = data.prepare(data.x_test[b]).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = data.y_test[b].to(device)
        logits = model(x).float()
        totals += torch.tensor(
            [F.cross_entropy(logits, y, reduction="sum").item(), (logits.argmax(1) != y).sum().item(), len(b)],
            dtype=torch.float64,
        )
    totals = distributed.all_reduce_sum(totals, ctx)
    model.train()
    return (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()


def _epoch_order(
    cfg: TrainConfig, epoch: int, n: int, ctx: distributed.DistContext
) -> tuple[torch.Tensor, torch.Generator]:
    """This rank's examples for `epoch`, in order, and the generator for its augmentation."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    # Every rank sees the same permutation and takes every world_size-th example: equal shards, equal step counts.
    usable = n - n % ctx.world_size
    return perm[:usable][ctx.rank :: ctx.world_size], g


@dataclass
class _EpochPass:
    """What one pass over the training shard leaves: summed loss, errors and count (over ranks), step norms."""

    sums: torch.Tensor  # float64 [loss·count, errors, count]
    grad_norms: list[torch.Tensor]
    lr: float  # at the last step
    examples: int  # this rank's examples
    status: str = "completed"  # or stopped | diverged
    message: str = ""


def _train_epoch(
    cfg: TrainConfig,
    epoch: int,
    data: Dataset,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    ctx: distributed.DistContext,
    device: torch.device,
    channels_last: bool,
    autocast: Callable[[], contextlib.AbstractContextManager],
    should_stop: Callable[[], bool] | None,
    on_step: Callable[[int, int], None] | None,
) -> _EpochPass:
    """One epoch of SGD steps on this rank's shard, stopping early on request or on a non-finite loss."""
    order, g = _epoch_order(cfg, epoch, len(data.y_train), ctx)
    per_rank = max(1, cfg.batch_size // ctx.world_size)
    batches = [order[i : i + per_rank] for i in range(0, len(order), per_rank)]
    # Drop a last batch of one example: BatchNorm cannot normalise a single example in training mode.
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches.pop()
    out = _EpochPass(torch.zeros(3, dtype=torch.float64), [], cfg.lr, len(order))
    for i, b in enumerate(batches):
        if should_stop is not None and should_stop():
            out.status, out.message = "stopped", f"stopped on request during epoch {epoch + 1}, step {i + 1}"
            return out
        out.lr = lr_at(cfg, epoch + i / len(batches))
        for group in optimizer.param_groups:
            group["lr"] = out.lr
        x = data.prepare(data.x_train[b], train=True, generator=g).to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = data.y_train[b].to(device, non_blocking=True)
        loss, correct, gnorm = train_step(net, optimizer, x, y, autocast())
        count = torch.tensor(float(len(b)), dtype=torch.float64)
        step = distributed.all_reduce_sum(
            torch.stack([loss.double().cpu() * count, count - correct.double().cpu(), count]), ctx
        )
        if not math.isfinite(step[0].item()):
            out.status = "diverged"
            out.message = (
                f"training loss became {step[0].item()} at epoch {epoch + 1}, step {i + 1} (lr {out.lr:.4g}); "
                "the run stopped there. Try a lower learning rate or a warm-up."
            )
            return out
        out.sums += step
        out.grad_norms.append(gnorm.detach().float().cpu())
        if on_step is not None:
            on_step(i + 1, len(batches))
    return out


def loss_of_first_batch(cfg: TrainConfig) -> dict:
    """The loss, logits norm and gradient norm of `cfg`'s first training step, before any update (float32, CPU).

    The same network (built under the seed), the same first batch and
    augmentation as `train`: the point where two machines start from
    bit-identical numbers, so their difference here is rounding alone.
    """
    data = load_dataset(cfg.data, seed=cfg.seed, root=cfg.data_root, held_out=cfg.held_out)
    with seeded(cfg.seed):
        model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.width).train()
    order, g = _epoch_order(cfg, 0, len(data.y_train), distributed.DistContext())
    b = order[: cfg.batch_size]
    x = data.prepare(data.x_train[b], train=True, generator=g)
    logits = model(x)
    loss = F.cross_entropy(logits, data.y_train[b])
    grads = torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
    return {
        "loss": loss.item(),
        "logits_norm": torch.linalg.vector_norm(logits).item(),
        "grad_norm": torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).item(),
    }


def _config_differences(saved: dict, cfg: TrainConfig) -> list[str]:
    now = cfg.to_dict()
    saved = TrainConfig.from_dict(saved).to_dict()  # fields added since the checkpoint take their defaults
    # The run's identity; threads and device may change between sessions, epochs may be extended.
    ignore = {"threads", "device", "epochs"}
    return [
        f"{k}: checkpoint {saved.get(k)!r} vs now {v!r}"
        for k, v in now.items()
        if k not in ignore and saved.get(k) != v
    ]


def train(
    cfg: TrainConfig,
    *,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    store: RunStore | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    run_id: str | None = None,
    name: str = "",
    on_step: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Train `cfg`'s model on its data; store each epoch in `store` and checkpoint into `run_dir` if given.

    resume: continue from the last checkpoint in `run_dir` (its config must match `cfg`, except epochs,
    threads and device). on_epoch(metrics) runs after every epoch; on_step(step, steps_per_epoch) after every
    batch (progress bars); should_stop() before every batch.
    """
    if resume and run_dir is None:
        raise ValueError("resume needs the run folder that holds the checkpoint (run_dir / --run-dir)")
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, on_epoch, should_stop, store, run_dir, resume, run_id, name, on_step)
    finally:
        torch.set_num_threads(old_threads)


def _train(cfg, on_epoch, should_stop, store, run_dir, resume, run_id, name, on_step) -> RunResult:
    t_start = time.perf_counter()
    device = resolve_device(cfg.device)
    autocast = autocast_for(cfg, device)  # before anything is stored: cpu_bf16 may be refused here
    data = load_dataset(cfg.data, seed=cfg.seed, root=cfg.data_root, held_out=cfg.held_out)
    if not resume and run_dir is not None and checkpoint.has_checkpoint(run_dir):
        raise ValueError(f"run folder {str(run_dir)!r} already holds a checkpoint: resume it or choose another folder")
    ckpt = checkpoint.load_checkpoint(run_dir) if resume else None
    if ckpt is not None:
        diff = _config_differences(ckpt.meta["config"], cfg)
        if diff:
            raise ValueError("the checkpoint was made with a different config: " + "; ".join(diff))
    ctx = distributed.init_from_env(device)
    try:
        with seeded(cfg.seed):  # weights from the seed alone, even while a probe runs in another thread
            model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.width)
        model = model.to(device)
        channels_last = use_channels_last(cfg, device, data.input_shape)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        history: list[EpochMetrics] = []
        if ckpt is not None:
            checkpoint.restore(ckpt, model, optimizer)
            history = [EpochMetrics(**m) for m in ckpt.meta["history"]][: ckpt.epoch]
            run_id = ckpt.meta["run_id"]
        run_id = run_id or uuid.uuid4().hex[:12]
        start_epoch = ckpt.epoch if ckpt is not None else 0
        params = sum(p.numel() for p in model.parameters())
        vers, rev, where = versions(), git_revision(), machine()
        if store is not None and ctx.is_main:
            store.create_run(
                run_id, cfg.to_dict(), name=name, seed=cfg.seed, versions=vers, git_revision=rev, machine=where
            )
            # Epochs after the checkpoint were computed by the killed process; they are replayed now.
            store.truncate_epochs(run_id, start_epoch)
            store.put_epochs(run_id, [m.to_dict() for m in history])
    except BaseException:
        distributed.shutdown(ctx)
        raise
    try:
        net = distributed.wrap(model, ctx, device)
        status, message = "completed", ""
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            ep = _train_epoch(
                cfg, epoch, data, net, optimizer, ctx, device, channels_last, autocast, should_stop, on_step
            )
            if ep.status != "completed":
                status, message = ep.status, ep.message
                break
            distributed.average_buffers(model, ctx)
            test_loss, test_error = evaluate(model, data, device, ctx, channels_last)
            gn = torch.stack(ep.grad_norms)
            seconds = time.perf_counter() - t0
            metrics = EpochMetrics(
                epoch=epoch + 1,
                train_loss=(ep.sums[0] / ep.sums[2]).item(),
                train_error=(ep.sums[1] / ep.sums[2]).item(),
                test_loss=test_loss,
                test_error=test_error,
                lr=ep.lr,
                grad_norm_mean=gn.mean().item(),
                grad_norm_max=gn.max().item(),
                grad_norm_min=gn.min().item(),
                seconds=seconds,
                images_per_s=ep.examples / seconds,
            )
            history.append(metrics)
            if ctx.is_main:
                if store is not None:
                    store.put_epoch(run_id, metrics.to_dict())
                if run_dir is not None:
                    meta = {
                        "run_id": run_id,
                        "config": cfg.to_dict(),
                        "history": [m.to_dict() for m in history],
                        "versions": vers,
                        "git_revision": rev,
                        "machine": where,
                    }
                    checkpoint.save_checkpoint(run_dir, epoch + 1, model, optimizer, meta)
            if on_epoch is not None:
                on_epoch(metrics)
        if store is not None and ctx.is_main:
            store.finish(run_id, status, message)
        checksums = distributed.gather(weights_checksum(model), ctx) if ctx.enabled else []
        distributed.barrier(ctx)
    except BaseException as e:
        # A run that dies of an exception (or an interrupt) is recorded as failed, not left 'running' forever.
        if store is not None and ctx.is_main:
            store.finish(run_id, "failed", f"{type(e).__name__}: {e}")
        raise
    finally:
        distributed.shutdown(ctx)
    return RunResult(
        run_id=run_id,
        status=status,
        message=message,
        config=cfg.to_dict(),
        epochs=history,
        seconds=time.perf_counter() - t_start,
        params=params,
        data=data.to_dict(),
        versions=vers,
        git_revision=rev,
        machine=where,
        resumed_from=start_epoch,
        rank=ctx.rank,
        rank_checksums=checksums,
        model=model,
    )
