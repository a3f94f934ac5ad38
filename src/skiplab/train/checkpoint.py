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
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

CHECKPOINT_JSON = "checkpoint.json"
FORMAT = "skiplab-checkpoint-1"


class CheckpointError(ValueError):
    pass


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


def read_meta(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CHECKPOINT_JSON
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in {str(run_dir)!r} (expected {CHECKPOINT_JSON} from a training run)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a skiplab checkpoint (format {meta.get('format')!r})")
    return meta


def load_checkpoint(run_dir: str | Path) -> Checkpoint:
    """The last complete checkpoint in `run_dir`, its weights verified against the recorded SHA-256."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    weights = run_dir / meta["weights"]
    if not weights.is_file():
        raise CheckpointError(f"checkpoint names {meta['weights']}, which is missing from {str(run_dir)!r}")
    blob = weights.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise CheckpointError(f"{weights} does not match the SHA-256 recorded in {CHECKPOINT_JSON}")
    # Leftovers of a write that was killed before its commit.
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    return Checkpoint(int(meta["epoch"]), meta, st_load(blob))


def restore(ckpt: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Put the checkpoint's weights, BN statistics and momentum buffers back into `model` and `optimizer`."""
    model.load_state_dict(ckpt.model_state(), strict=True)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for i, buf in ckpt.optimizer_buffers().items():
        optimizer.state[params[i]]["momentum_buffer"] = buf.to(params[i].device)
