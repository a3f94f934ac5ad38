"""Data-parallel training under `torchrun`: one process per rank, each on its shard of every epoch.

`torchrun --nproc_per_node=N` starts N processes and tells each its place
through the RANK / WORLD_SIZE / LOCAL_RANK environment variables; this module
is the one place that reads them. Gradients are averaged across ranks by
`DistributedDataParallel` (gloo on CPU, NCCL on GPUs), so every rank takes
the same optimizer step and all ranks hold identical weights after each step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # gloo | nccl when distributed

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group torchrun set up, or return the single-process context when not under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
    return DistContext(rank, world, local, backend)


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    if not ctx.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise sum over ranks (the identity in a single process)."""
    if ctx.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


@torch.no_grad()
def average_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks.

    DDP keeps parameters identical on every rank, but each rank updates its BN
    running statistics from its own shard; averaging them before evaluation
    and checkpointing makes every rank hold the same network.
    """
    if not ctx.enabled:
        return
    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(ctx.world_size)


def gather(value: object, ctx: DistContext) -> list:
    """`value` from every rank, in rank order."""
    if not ctx.enabled:
        return [value]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, value)
    return out


def barrier(ctx: DistContext) -> None:
    """Wait for every rank: a run that finished well leaves the group only when all ranks have.

    Otherwise the rank that finishes first tears its gloo threads down while a
    peer is still inside the last collective; on a busy machine that aborts the
    process ("terminate called without an active exception").
    """
    if ctx.enabled and dist.is_initialized():
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
