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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from skiplab.data import Dataset, load_dataset
from skiplab.provenance import git_revision, machine, versions
from skiplab.seeding import seeded
from skiplab.train import checkpoint, distributed
from skiplab.train.config import RESUMABLE, TrainConfig
from skiplab.train.device import autocast_for, resolve_device, use_channels_last
from skiplab.train.models import build_model
from skiplab.train.records import EpochMetrics, RunResult
from skiplab.train.schedule import lr_at

if TYPE_CHECKING:  # train writes to any store with RunStore's methods; experiments and the CLI open one
    from skiplab.store import RunStore

EVAL_BATCH = 1024  # held-out examples per forward pass (no gradients kept)


def weights_checksum(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


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
    return [
        f"{k}: checkpoint {saved.get(k)!r} vs now {v!r}"
        for k, v in now.items()
        if k not in RESUMABLE and saved.get(k) != v
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
    batch (progress bars); should_stop() before every batch. cfg.threads (when not 0) sets torch's thread
    count for the run; the caller's is restored afterwards.
    """
    if resume and run_dir is None:
        raise ValueError("resume needs the run folder that holds the checkpoint (run_dir / --run-dir)")
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        t_start = time.perf_counter()
        run = _start(cfg, run_dir=run_dir, resume=resume, run_id=run_id)
        try:
            _record_start(run, store, name)
        except BaseException:
            distributed.shutdown(run.ctx)
            raise
        return _run_epochs(run, store, run_dir, on_epoch, should_stop, on_step, t_start)
    finally:
        torch.set_num_threads(old_threads)


@dataclass
class _Run:
    """A run between its steps: what it trains, on what, and what it has done so far."""

    cfg: TrainConfig
    device: torch.device
    autocast: Callable[[], contextlib.AbstractContextManager]
    data: Dataset
    ctx: distributed.DistContext
    model: nn.Module
    optimizer: torch.optim.Optimizer
    channels_last: bool
    run_id: str
    start_epoch: int
    history: list[EpochMetrics]
    provenance: dict  # versions, git_revision, machine

    def checkpoint_meta(self) -> dict:
        history = [m.to_dict() for m in self.history]
        return {"run_id": self.run_id, "config": self.cfg.to_dict(), "history": history, **self.provenance}


def _start(cfg: TrainConfig, *, run_dir: str | Path | None, resume: bool, run_id: str | None) -> _Run:
    """Check what can be refused before anything is stored, then build the network (or restore it)."""
    device = resolve_device(cfg.device)
    autocast = autocast_for(cfg, device)  # cpu_bf16 may be refused here
    data = load_dataset(cfg.data, seed=cfg.seed, root=cfg.data_root, held_out=cfg.held_out)
    if not resume and run_dir is not None and checkpoint.has_checkpoint(run_dir):
        raise ValueError(f"run folder {str(run_dir)!r} already holds a checkpoint: resume it or choose another folder")
    ckpt = checkpoint.load_checkpoint(run_dir) if resume else None
    if ckpt is not None and (diff := _config_differences(ckpt.meta["config"], cfg)):
        raise ValueError("the checkpoint was made with a different config: " + "; ".join(diff))
    ctx = distributed.init_from_env(device)
    try:
        with seeded(cfg.seed):  # weights from the seed alone, even while a probe runs in another thread
            model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.width).to(device)
        channels_last = use_channels_last(cfg, device, data.input_shape)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        history: list[EpochMetrics] = []
        if ckpt is not None:
            checkpoint.restore(ckpt, model, optimizer)
            history = [EpochMetrics(**m) for m in ckpt.meta["history"]][: ckpt.epoch]
            run_id = ckpt.meta["run_id"]
    except BaseException:
        distributed.shutdown(ctx)
        raise
    provenance = {"versions": versions(), "git_revision": git_revision(), "machine": machine()}
    return _Run(
        cfg, device, autocast, data, ctx, model, optimizer, channels_last, run_id or uuid.uuid4().hex[:12],
        ckpt.epoch if ckpt is not None else 0, history, provenance,
    )  # fmt: skip


def _record_start(run: _Run, store: RunStore | None, name: str) -> None:
    """The run in the store as running, with the epochs a checkpoint brought (later ones are replayed)."""
    if store is None or not run.ctx.is_main:
        return
    store.create_run(run.run_id, run.cfg.to_dict(), name=name, seed=run.cfg.seed, **run.provenance)
    store.truncate_epochs(run.run_id, run.start_epoch)
    store.put_epochs(run.run_id, [m.to_dict() for m in run.history])


def _metrics(epoch: int, ep: _EpochPass, test: tuple[float, float], seconds: float) -> EpochMetrics:
    gn = torch.stack(ep.grad_norms)
    return EpochMetrics(
        epoch=epoch + 1,
        train_loss=(ep.sums[0] / ep.sums[2]).item(),
        train_error=(ep.sums[1] / ep.sums[2]).item(),
        test_loss=test[0],
        test_error=test[1],
        lr=ep.lr,
        grad_norm_mean=gn.mean().item(),
        grad_norm_max=gn.max().item(),
        grad_norm_min=gn.min().item(),
        seconds=seconds,
        images_per_s=ep.examples / seconds,
    )


def _run_epochs(run: _Run, store, run_dir, on_epoch, should_stop, on_step, t_start: float) -> RunResult:
    """Train, evaluate, store and checkpoint epoch by epoch; a run that raises is stored as failed."""
    cfg, ctx, model = run.cfg, run.ctx, run.model
    status, message, checksums = "completed", "", []
    try:
        net = distributed.wrap(model, ctx, run.device)
        for epoch in range(run.start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            ep = _train_epoch(
                cfg, epoch, run.data, net, run.optimizer, ctx, run.device, run.channels_last, run.autocast,
                should_stop, on_step,
            )  # fmt: skip
            if ep.status != "completed":
                status, message = ep.status, ep.message
                break
            distributed.average_buffers(model, ctx)
            test = evaluate(model, run.data, run.device, ctx, run.channels_last)
            metrics = _metrics(epoch, ep, test, time.perf_counter() - t0)
            run.history.append(metrics)
            if ctx.is_main and store is not None:
                store.put_epoch(run.run_id, metrics.to_dict())
            if ctx.is_main and run_dir is not None:
                checkpoint.save_checkpoint(run_dir, epoch + 1, model, run.optimizer, run.checkpoint_meta())
            if on_epoch is not None:
                on_epoch(metrics)
        if store is not None and ctx.is_main:
            store.finish(run.run_id, status, message)
        checksums = distributed.gather(weights_checksum(model), ctx) if ctx.enabled else []
        distributed.barrier(ctx)
    except BaseException as e:
        # A run that dies of an exception (or an interrupt) is recorded as failed, not left 'running' forever.
        if store is not None and ctx.is_main:
            store.finish(run.run_id, "failed", f"{type(e).__name__}: {e}")
        raise
    finally:
        distributed.shutdown(ctx)
    return RunResult(
        run_id=run.run_id,
        status=status,
        message=message,
        config=cfg.to_dict(),
        epochs=run.history,
        seconds=time.perf_counter() - t_start,
        params=sum(p.numel() for p in model.parameters()),
        data=run.data.to_dict(),
        **run.provenance,
        resumed_from=run.start_epoch,
        rank=ctx.rank,
        rank_checksums=checksums,
        model=model,
    )
