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

A run folder is untrusted input (it may come from anyone), so loading one
reads nothing it has not bounded first, and never unpickles anything:

- `checkpoint.json` must be a regular file in the folder, at most
  `MAX_JSON_BYTES`, and every field has its type checked;
- its config is priced before anything is built: a depth, a width and a
  parameter count (from a build on the meta device, which allocates no
  weights) beyond `LOAD_LIMITS` are refused;
- the weights file must be a plain file name inside the folder (no path, no
  link out of it); its safetensors header (8-byte little-endian length, then
  JSON naming each tensor's dtype, shape and byte range) is checked against
  the file's size and against the model the config describes before the
  file is read, and the SHA-256 after.

Every refusal is a `CheckpointError` (a ValueError) naming the file and the fault.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import stat
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from skiplab.data import DATASETS
from skiplab.train.config import MAX_EPOCHS, TrainConfig
from skiplab.train.models import build_model
from skiplab.train.records import EpochMetrics

CHECKPOINT_JSON = "checkpoint.json"
FORMAT = "skiplab-checkpoint-1"
MAX_JSON_BYTES = 8 * 2**20  # about 20,000 epochs of history
MAX_HEADER_BYTES = 16 * 2**20  # a safetensors header: ~100 bytes a tensor


@dataclass(frozen=True)
class LoadLimits:
    """What a run folder may ask for when it is loaded; training a bigger model yourself is not limited."""

    depth: int = 2000  # the zoo's deepest are resnet1202 and preact_resnet1001
    width: int = 8192
    params: int = 100_000_000  # 400 MB of float32 weights; the zoo's largest, resnet152, has 60 M

    def describe(self) -> str:
        return f"depth {self.depth:,}, width {self.width:,}, {self.params:,} parameters"


LOAD_LIMITS = LoadLimits()

# Input shape and classes of each data set as the trainer loads it, known without loading it (cifar10 needs a
# folder); tests/train/test_checkpoint_hostile.py checks them against the loaded data.
DATA_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    "digits": ((1, 8, 8), 10),
    "cifar10": ((3, 32, 32), 10),
    "spirals": ((2,), 2),
    "blobs": ((2,), 2),
    "parity": ((2,), 2),
}
_DTYPES: dict[str, tuple[torch.dtype, int]] = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}
_DTYPE_NAMES = {dtype: name for name, (dtype, _) in _DTYPES.items()}
_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HISTORY_KEYS = frozenset(f.name for f in fields(EpochMetrics))


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


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _in_folder(run_dir: Path, name: str, what: str) -> Path:
    """`run_dir / name` if it is a regular file that resolves inside `run_dir` (a link out of it is refused)."""
    path = run_dir / name
    try:
        inside = path.resolve().parent == run_dir.resolve()
        st = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: {what} is missing") from None
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
        raise CheckpointError(f"{path}: {what} cannot be opened ({e})") from None
    if not inside:
        raise CheckpointError(f"{path}: {what} links out of the run folder {str(run_dir)!r}; refused unread")
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path}: {what} is not a regular file")
    return path


def _json(raw: bytes, path: Path, what: str) -> object:
    try:
        return json.loads(raw)
    except RecursionError:
        raise CheckpointError(f"{path}: {what} nests too deeply to be read") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
        raise CheckpointError(f"{path}: {what} is not valid JSON ({e})") from None


def _check_history(history: object, path: Path) -> None:
    if not isinstance(history, list):
        raise CheckpointError(f"{path}: history must be a list of per-epoch metrics; got {type(history).__name__}")
    for i, row in enumerate(history):
        if not isinstance(row, dict) or set(row) != _HISTORY_KEYS:
            raise CheckpointError(
                f"{path}: history[{i}] must be an object with exactly the keys {', '.join(sorted(_HISTORY_KEYS))}"
            )
        bad = sorted(k for k, v in row.items() if not _is_number(v))
        if bad:
            raise CheckpointError(f"{path}: history[{i}] has values that are not numbers: {', '.join(bad)}")


def read_meta(run_dir: str | Path) -> dict:
    """The commit record of `run_dir`, its size bounded before it is read and its fields' types checked."""
    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT_JSON).exists() and not (run_dir / CHECKPOINT_JSON).is_symlink():
        raise CheckpointError(f"no checkpoint in {str(run_dir)!r} (expected {CHECKPOINT_JSON} from a training run)")
    path = _in_folder(run_dir, CHECKPOINT_JSON, "the checkpoint record")
    with open(path, "rb") as f:
        raw = f.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise CheckpointError(f"{path}: larger than {MAX_JSON_BYTES // 2**20} MiB; not a checkpoint record, refused")
    meta = _json(raw, path, "the checkpoint record")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path} is not a skiplab checkpoint (format {str(found)[:80]!r})")
    epoch = meta.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= MAX_EPOCHS:
        raise CheckpointError(f"{path}: epoch must be an integer in [0, {MAX_EPOCHS:,}]")
    weights = meta.get("weights")
    if not isinstance(weights, str) or not _FILE_NAME.fullmatch(weights):
        raise CheckpointError(
            f"{path}: weights must be a plain file name inside the run folder (no path, no '..'); "
            f"got {str(weights)[:80]!r}"
        )
    if not isinstance(meta.get("sha256"), str) or not _SHA256.fullmatch(meta["sha256"]):
        raise CheckpointError(f"{path}: sha256 must be 64 lowercase hexadecimal digits")
    run_id = meta.get("run_id")
    if not isinstance(run_id, str) or not 0 < len(run_id) <= 200 or not run_id.isprintable():
        raise CheckpointError(f"{path}: run_id must be a printable string of 1 to 200 characters")
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: config must be an object of training options")
    _check_history(meta.get("history"), path)
    return meta


def _model_depth(name: str) -> int | None:
    """The depth a model name asks for (its trailing number), None if it has none."""
    m = re.search(r"(\d+)$", name)
    if m is None:
        return None
    return int(m.group(1)) if len(m.group(1)) <= 9 else 10**9


@functools.lru_cache(maxsize=16)
def _expected_tensors(model: str, width: int | None, data: str) -> tuple[int, dict[str, tuple[tuple[int, ...], str]]]:
    """Parameters and the checkpoint's tensors (name → shape, dtype) of the model, built on the meta device."""
    shape, classes = DATA_SHAPES[data]
    with torch.device("meta"):
        net = build_model(model, shape, classes, width)
    tensors = {f"model/{k}": (tuple(v.shape), _DTYPE_NAMES[v.dtype]) for k, v in net.state_dict().items()}
    for i, p in enumerate(net.parameters()):
        tensors[f"optim/{i}/momentum_buffer"] = (tuple(p.shape), _DTYPE_NAMES[p.dtype])
    return sum(p.numel() for p in net.parameters()), tensors


def priced_config(config: dict, source: str | Path, limits: LoadLimits = LOAD_LIMITS) -> TrainConfig:
    """A run folder's config as a TrainConfig, refused if its model is over `limits`; nothing real is built.

    The depth (a name's number) and the width are bounded first, so that the meta-device build that counts
    the parameters is itself bounded.
    """
    try:
        cfg = TrainConfig.from_dict(config)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{source}: config: {e}") from None
    if cfg.data not in DATA_SHAPES:
        raise CheckpointError(f"{source}: config: data must be one of {', '.join(DATASETS)}; got {cfg.data[:80]!r}")
    over = f"; a run folder may ask for at most {limits.describe()} when it is loaded"
    if len(cfg.model) > 100:
        raise CheckpointError(f"{source}: config: model must be a name of at most 100 characters")
    depth = _model_depth(cfg.model)
    if depth is not None and depth > limits.depth:
        shown = cfg.model if len(cfg.model) <= 40 else cfg.model[:37] + "..."
        raise CheckpointError(f"{source}: config asks for model {shown!r}, deeper than depth {limits.depth:,}{over}")
    if cfg.width is not None and cfg.width > limits.width:
        raise CheckpointError(f"{source}: config asks for width {cfg.width:,}{over}")
    try:
        params, _ = _expected_tensors(cfg.model, cfg.width, cfg.data)
    except (ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{source}: config: model {cfg.model!r} cannot be built ({e})") from None
    if params > limits.params:
        raise CheckpointError(
            f"{source}: config asks for {cfg.model} (width {cfg.width or 'default'}) on {cfg.data}: "
            f"{params:,} parameters{over}"
        )
    return cfg


def run_config(run_dir: str | Path) -> TrainConfig:
    """The config of the run in `run_dir`, checked and priced (for a resume or a study of the run)."""
    meta = read_meta(run_dir)
    return priced_config(meta["config"], Path(run_dir) / CHECKPOINT_JSON)


def _header_faults(header: dict, expected: dict[str, tuple[tuple[int, ...], str]], data_bytes: int) -> list[str]:
    """What is wrong with a safetensors header given the tensors the run's model has and the bytes that follow."""
    header = {k: v for k, v in header.items() if k != "__metadata__"}
    faults, spans = [], []
    for name, entry in header.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and entry["dtype"] in _DTYPES
            and isinstance(entry.get("shape"), list)
            and len(entry["shape"]) <= 8
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in entry["shape"])
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in entry["data_offsets"])
        ):
            return [f"tensor {name[:80]!r} has a malformed entry (dtype, shape, data_offsets)"]
        begin, end = entry["data_offsets"]
        if end - begin != math.prod(entry["shape"]) * _DTYPES[entry["dtype"]][1]:
            return [f"tensor {name[:80]!r} declares {end - begin:,} bytes for shape {entry['shape']}"]
        spans.append((begin, end))
    missing = sorted(k for k in expected if k.startswith("model/") and k not in header)
    unexpected = sorted(k for k in header if k not in expected)
    wrong = sorted(
        k for k in header if k in expected and (tuple(header[k]["shape"]), header[k]["dtype"]) != expected[k]
    )
    for what, names in (("missing tensors", missing), ("unexpected tensors", unexpected)):
        if names:
            faults.append(f"{what} {', '.join(n[:80] for n in names[:5])}{' ...' if len(names) > 5 else ''}")
    if wrong:
        k = wrong[0]
        faults.append(
            f"{len(wrong)} tensors whose dtype or shape differ from the model's, e.g. {k}: "
            f"{header[k]['dtype']} {header[k]['shape']} where the model has {expected[k][1]} {list(expected[k][0])}"
        )
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            faults.append("tensor byte ranges overlap or leave gaps")
            break
        position = end
    if not faults and position != data_bytes:
        faults.append(
            f"its header declares {position:,} bytes of tensors but {data_bytes:,} follow it: truncated or padded"
        )
    return faults


def _read_weights(path: Path, expected: dict[str, tuple[tuple[int, ...], str]]) -> bytes:
    """The whole weights file, read only after its header matched `expected` and its size."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        n = int.from_bytes(head, "little")
        if len(head) < 8 or n > MAX_HEADER_BYTES or n > size - 8:
            if head.startswith((b"PK", b"\x80")):
                kind = "a torch.save (zip) file" if head.startswith(b"PK") else "a pickle"
                raise CheckpointError(f"{path}: {kind}, not safetensors; skiplab never unpickles a file, refused")
            raise CheckpointError(
                f"{path}: not a safetensors file, or truncated: header length {n:,} bytes but the file has "
                f"{size:,} (at most {MAX_HEADER_BYTES // 2**20} MiB of header is accepted)"
            )
        header = _json(f.read(n), path, "the safetensors header")
        if not isinstance(header, dict):
            raise CheckpointError(f"{path}: the safetensors header is not a JSON object")
        faults = _header_faults(header, expected, size - 8 - n)
        if faults:
            raise CheckpointError(f"{path} does not hold this run's model: {'; '.join(faults)}")
        f.seek(0)
        blob = f.read(size + 1)
    if len(blob) != size:
        raise CheckpointError(f"{path} changed while it was read")
    return blob


def load_checkpoint(run_dir: str | Path) -> Checkpoint:
    """The last complete checkpoint in `run_dir`, checked as the module docstring says, SHA-256 verified."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    cfg = priced_config(meta["config"], run_dir / CHECKPOINT_JSON)
    _, expected = _expected_tensors(cfg.model, cfg.width, cfg.data)
    weights = _in_folder(run_dir, meta["weights"], f"the weights file {CHECKPOINT_JSON} names")
    blob = _read_weights(weights, expected)
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
