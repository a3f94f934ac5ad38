"""Checkpoints as safetensors + JSON, written so that a kill at any moment never leaves a half-written one.

A checkpoint is two files in the run folder:

- `weights-<epoch>.safetensors`: the model's state and the optimizer's
  momentum buffers (safetensors: plain tensors, nothing executable on load);
- `checkpoint.json`: the commit record: epoch, run id, config, the metrics
  history so far, the weights file's name and its SHA-256.

Each file is written to a temporary name, flushed and fsync'ed, then moved
into place with `os.replace` (atomic on POSIX), weights first. The JSON is
the commit point: until it is replaced, the previous checkpoint stays the
valid one; a weights file the JSON does not name is a leftover and removed.

A run folder is untrusted input (it may come from anyone): loading one goes
through the checks of skiplab.train.untrusted (bounded reads, a priced config,
a weights header matched to the model) and never unpickles anything. Every
refusal is a `CheckpointError` (a ValueError) naming the file and the fault.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from skiplab.train.config import TrainConfig
from skiplab.train.untrusted import (
    CHECKPOINT_JSON,
    DATA_SHAPES,
    FORMAT,
    LOAD_LIMITS,
    MAX_HEADER_BYTES,
    MAX_JSON_BYTES,
    CheckpointError,
    LoadLimits,
    expected_tensors,
    in_folder,
    priced_config,
    read_meta,
    read_weights,
)

__all__ = [
    "CHECKPOINT_JSON",
    "DATA_SHAPES",
    "FORMAT",
    "LOAD_LIMITS",
    "MAX_HEADER_BYTES",
    "MAX_JSON_BYTES",
    "Checkpoint",
    "CheckpointError",
    "LoadLimits",
    "has_checkpoint",
    "load_checkpoint",
    "load_model_state",
    "priced_config",
    "read_meta",
    "restore",
    "run_config",
    "save_checkpoint",
    "write_atomic",
]


@dataclass(frozen=True)
class Checkpoint:
    epoch: int  # epochs completed
    meta: dict  # run_id, config, history, versions
    tensors: dict[str, torch.Tensor]

    def model_state(self) -> dict[str, torch.Tensor]:
        return {k[len("model/") :]: v for k, v in self.tensors.items() if k.startswith("model/")}

    def optimizer_buffers(self) -> dict[int, torch.Tensor]:
        return {int(k.split("/")[1]): v for k, v in self.tensors.items() if k.startswith("optim/")}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the complete new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _tensors(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {f"model/{k}": v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        buf = optimizer.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            out[f"optim/{i}/momentum_buffer"] = buf.detach().to("cpu").contiguous().clone()
    return out


def save_checkpoint(
    run_dir: str | Path, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, meta: dict
) -> Path:
    """Write the checkpoint after `epoch` completed epochs; returns the path of the JSON."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    blob = st_save(_tensors(model, optimizer), metadata={"format": FORMAT, "epoch": str(epoch)})
    weights = run_dir / f"weights-{epoch:05d}.safetensors"
    write_atomic(weights, blob)
    record = {
        "format": FORMAT,
        "epoch": epoch,
        "weights": weights.name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        **meta,
    }
    write_atomic(run_dir / CHECKPOINT_JSON, json.dumps(record, indent=1).encode())
    # Only now is the older weights file unreferenced.
    for old in run_dir.glob("weights-*.safetensors"):
        if old.name != weights.name:
            old.unlink(missing_ok=True)
    return run_dir / CHECKPOINT_JSON


def has_checkpoint(run_dir: str | Path) -> bool:
    return (Path(run_dir) / CHECKPOINT_JSON).is_file()


def run_config(run_dir: str | Path) -> TrainConfig:
    """The config of the run in `run_dir`, checked and priced (for a resume or a study of the run)."""
    meta = read_meta(run_dir)
    return priced_config(meta["config"], Path(run_dir) / CHECKPOINT_JSON)


def load_checkpoint(run_dir: str | Path) -> Checkpoint:
    """The last complete checkpoint in `run_dir`, checked as skiplab.train.untrusted says, SHA-256 verified."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    cfg = priced_config(meta["config"], run_dir / CHECKPOINT_JSON)
    _, expected = expected_tensors(cfg.model, cfg.width, cfg.data)
    weights = in_folder(run_dir, meta["weights"], f"the weights file {CHECKPOINT_JSON} names")
    blob = read_weights(weights, expected)
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise CheckpointError(f"{weights} does not match the SHA-256 recorded in {CHECKPOINT_JSON}")
    try:
        tensors = st_load(blob)
    except SafetensorError as e:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({e})") from None
    # Leftovers of a write that was killed before its commit.
    for tmp in run_dir.glob(".*.tmp"):
        if tmp.is_symlink() or tmp.is_file():
            tmp.unlink(missing_ok=True)
    return Checkpoint(meta["epoch"], meta, tensors)


def load_model_state(ckpt: Checkpoint, model: nn.Module) -> None:
    """Put the checkpoint's weights and BN statistics into `model`, refusing (not crashing on) a mismatch."""
    state = ckpt.model_state()
    own = model.state_dict()
    if set(state) != set(own) or any(tuple(state[k].shape) != tuple(own[k].shape) for k in own):
        raise CheckpointError(
            f"the checkpoint's weights do not fit {type(model).__name__}: different tensor names or shapes"
        )
    model.load_state_dict(state, strict=True)


def restore(ckpt: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Put the checkpoint's weights, BN statistics and momentum buffers back into `model` and `optimizer`."""
    load_model_state(ckpt, model)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    buffers = ckpt.optimizer_buffers()
    if any(not 0 <= i < len(params) or buf.shape != params[i].shape for i, buf in buffers.items()):
        raise CheckpointError("the checkpoint's momentum buffers do not fit the optimizer's parameters")
    for i, buf in buffers.items():
        optimizer.state[params[i]]["momentum_buffer"] = buf.to(params[i].device)
