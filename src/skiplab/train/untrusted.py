"""Reading a run folder that may come from anyone: every check a checkpoint passes before it is loaded.

A run folder is untrusted input (it may be downloaded, shared or hand-edited),
so these checks live apart from the code that writes and restores checkpoints:
all that stands between a hostile folder and `torch` is in this one module, to
be read and reviewed as a whole. Loading reads nothing it has not bounded
first, and never unpickles anything:

- `checkpoint.json` must be a regular file in the folder, at most
  `MAX_JSON_BYTES`, and every field has its type checked;
- its config is priced before anything is built: a depth, a width and a
  parameter count (from a build on the meta device, which allocates no
  weights) beyond `LOAD_LIMITS` are refused;
- the weights file must be a plain file name inside the folder (no path, no
  link out of it); its safetensors header (8-byte little-endian length, then
  JSON naming each tensor's dtype, shape and byte range) is checked against
  the file's size and against the model the config describes before the
  file is read (the caller checks the SHA-256 after).

Every refusal is a `CheckpointError` (a ValueError) naming the file and the fault.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from skiplab.data import DATASETS
from skiplab.train.config import MAX_EPOCHS, TrainConfig
from skiplab.train.models import build_model
from skiplab.train.records import EpochMetrics

CHECKPOINT_JSON = "checkpoint.json"
FORMAT = "skiplab-checkpoint-1"
MAX_JSON_BYTES = 8 * 2**20  # about 20,000 epochs of history
MAX_HEADER_BYTES = 16 * 2**20  # a safetensors header: ~100 bytes a tensor
MAX_RANK = 8  # dimensions of a tensor's shape; more only serves to make the header costly to check


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
    "mnist1d": ((1, 40), 10),
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

# Tensor name → (shape, safetensors dtype name): what a run's model puts in its weights file.
Expected = dict[str, tuple[tuple[int, ...], str]]


class CheckpointError(ValueError):
    pass


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _json(raw: bytes, path: Path, what: str) -> object:
    try:
        return json.loads(raw)
    except RecursionError:
        raise CheckpointError(f"{path}: {what} nests too deeply to be read") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
        raise CheckpointError(f"{path}: {what} is not valid JSON ({e})") from None


def in_folder(run_dir: Path, name: str, what: str) -> Path:
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


# The checkpoint record


def _is_epoch(v: object) -> bool:
    return _is_int(v) and 0 <= v <= MAX_EPOCHS


def _is_file_name(v: object) -> bool:
    return isinstance(v, str) and _FILE_NAME.fullmatch(v) is not None


def _is_sha256(v: object) -> bool:
    return isinstance(v, str) and _SHA256.fullmatch(v) is not None


def _is_run_id(v: object) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 200 and v.isprintable()


# Field → (check, fault); `{got}` in a fault is the value found, cut short. Checked in this order.
_RECORD_FIELDS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("epoch", _is_epoch, f"epoch must be an integer in [0, {MAX_EPOCHS:,}]"),
    ("weights", _is_file_name, "weights must be a plain file name inside the run folder (no path, no '..'); got {got}"),
    ("sha256", _is_sha256, "sha256 must be 64 lowercase hexadecimal digits"),
    ("run_id", _is_run_id, "run_id must be a printable string of 1 to 200 characters"),
    ("config", lambda v: isinstance(v, dict), "config must be an object of training options"),
)


def _read_record(path: Path) -> object:
    """The JSON of the checkpoint record at `path`, refused unparsed if it is over `MAX_JSON_BYTES`."""
    with open(path, "rb") as f:
        raw = f.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise CheckpointError(f"{path}: larger than {MAX_JSON_BYTES // 2**20} MiB; not a checkpoint record, refused")
    return _json(raw, path, "the checkpoint record")


def _check_format(meta: object, path: Path) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path} is not a skiplab checkpoint (format {str(found)[:80]!r})")


def _check_fields(meta: dict, path: Path) -> None:
    for name, ok, fault in _RECORD_FIELDS:
        value = meta.get(name)
        if not ok(value):
            raise CheckpointError(f"{path}: " + fault.format(got=repr(str(value)[:80])))


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
    path = in_folder(run_dir, CHECKPOINT_JSON, "the checkpoint record")
    meta = _read_record(path)
    _check_format(meta, path)
    _check_fields(meta, path)
    _check_history(meta.get("history"), path)
    return meta


# The config, priced


def _model_depth(name: str) -> int | None:
    """The depth a model name asks for (its trailing number), None if it has none."""
    m = re.search(r"(\d+)$", name)
    if m is None:
        return None
    return int(m.group(1)) if len(m.group(1)) <= 9 else 10**9


@functools.lru_cache(maxsize=16)
def expected_tensors(model: str, width: int | None, data: str) -> tuple[int, Expected]:
    """Parameters and the checkpoint's tensors (name → shape, dtype) of the model, built on the meta device."""
    shape, classes = DATA_SHAPES[data]
    with torch.device("meta"):
        net = build_model(model, shape, classes, width)
    tensors = {f"model/{k}": (tuple(v.shape), _DTYPE_NAMES[v.dtype]) for k, v in net.state_dict().items()}
    for i, p in enumerate(net.parameters()):
        tensors[f"optim/{i}/momentum_buffer"] = (tuple(p.shape), _DTYPE_NAMES[p.dtype])
    return sum(p.numel() for p in net.parameters()), tensors


def _parsed_config(config: dict, source: str | Path) -> TrainConfig:
    try:
        cfg = TrainConfig.from_dict(config)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{source}: config: {e}") from None
    if cfg.data not in DATA_SHAPES:
        raise CheckpointError(f"{source}: config: data must be one of {', '.join(DATASETS)}; got {cfg.data[:80]!r}")
    if len(cfg.model) > 100:
        raise CheckpointError(f"{source}: config: model must be a name of at most 100 characters")
    return cfg


def _check_size(cfg: TrainConfig, source: str | Path, limits: LoadLimits, over: str) -> None:
    """Refuse a depth (a model name's number) or a width over `limits`, which would make even a meta build costly."""
    depth = _model_depth(cfg.model)
    if depth is not None and depth > limits.depth:
        shown = cfg.model if len(cfg.model) <= 40 else cfg.model[:37] + "..."
        raise CheckpointError(f"{source}: config asks for model {shown!r}, deeper than depth {limits.depth:,}{over}")
    if cfg.width is not None and cfg.width > limits.width:
        raise CheckpointError(f"{source}: config asks for width {cfg.width:,}{over}")


def _check_params(cfg: TrainConfig, source: str | Path, limits: LoadLimits, over: str) -> None:
    try:
        params, _ = expected_tensors(cfg.model, cfg.width, cfg.data)
    except (ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{source}: config: model {cfg.model!r} cannot be built ({e})") from None
    if params > limits.params:
        raise CheckpointError(
            f"{source}: config asks for {cfg.model} (width {cfg.width or 'default'}) on {cfg.data}: "
            f"{params:,} parameters{over}"
        )


def priced_config(config: dict, source: str | Path, limits: LoadLimits = LOAD_LIMITS) -> TrainConfig:
    """A run folder's config as a TrainConfig, refused if its model is over `limits`; nothing real is built.

    The depth (a name's number) and the width are bounded first, so that the meta-device build that counts
    the parameters is itself bounded.
    """
    cfg = _parsed_config(config, source)
    over = f"; a run folder may ask for at most {limits.describe()} when it is loaded"
    _check_size(cfg, source, limits, over)
    _check_params(cfg, source, limits, over)
    return cfg


# The weights file's safetensors header


def _is_dtype(v: object) -> bool:
    return isinstance(v, str) and v in _DTYPES  # a str first: an unhashable value cannot be looked up


def _is_shape(v: object) -> bool:
    return isinstance(v, list) and len(v) <= MAX_RANK and all(_is_int(n) and n >= 0 for n in v)


def _is_offsets(v: object) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_is_int(n) for n in v)


def _entry_fault(name: str, entry: object) -> str | None:
    """What is wrong with one tensor's header entry on its own: its form, or a byte range its shape does not fill."""
    if not (
        isinstance(entry, dict)
        and _is_dtype(entry.get("dtype"))
        and _is_shape(entry.get("shape"))
        and _is_offsets(entry.get("data_offsets"))
    ):
        return f"tensor {name[:80]!r} has a malformed entry (dtype, shape, data_offsets)"
    begin, end = entry["data_offsets"]
    if end - begin != math.prod(entry["shape"]) * _DTYPES[entry["dtype"]][1]:
        return f"tensor {name[:80]!r} declares {end - begin:,} bytes for shape {entry['shape']}"
    return None


def _listed(what: str, names: list[str]) -> str:
    return f"{what} {', '.join(n[:80] for n in names[:5])}{' ...' if len(names) > 5 else ''}"


def _mismatch(tensors: dict[str, dict], expected: Expected) -> str | None:
    """Tensors the model has too but with another dtype or shape: how many, and the first as an example."""
    wrong = sorted(
        k for k in tensors if k in expected and (tuple(tensors[k]["shape"]), tensors[k]["dtype"]) != expected[k]
    )
    if not wrong:
        return None
    k = wrong[0]
    return (
        f"{len(wrong)} tensors whose dtype or shape differ from the model's, e.g. {k}: "
        f"{tensors[k]['dtype']} {tensors[k]['shape']} where the model has {expected[k][1]} {list(expected[k][0])}"
    )


def _name_faults(tensors: dict[str, dict], expected: Expected) -> list[str]:
    """Tensors the model has and the file lacks (optimizer buffers may be absent), has extra, or has otherwise."""
    missing = sorted(k for k in expected if k.startswith("model/") and k not in tensors)
    unexpected = sorted(k for k in tensors if k not in expected)
    named = (("missing tensors", missing), ("unexpected tensors", unexpected))
    faults = [_listed(what, names) for what, names in named if names]
    mismatch = _mismatch(tensors, expected)
    return faults if mismatch is None else [*faults, mismatch]


def _tiled_end(spans: Iterable[tuple[int, int]]) -> int | None:
    """Where byte ranges end if, sorted, they tile [0, end) with no overlap or gap; None if they do not."""
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            return None
        position = end
    return position


def _header_faults(header: dict, expected: Expected, data_bytes: int) -> list[str]:
    """What is wrong with a safetensors header given the tensors the run's model has and the bytes that follow."""
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    for name, entry in tensors.items():
        fault = _entry_fault(name, entry)
        if fault is not None:  # the checks below need well-formed entries
            return [fault]
    faults = _name_faults(tensors, expected)
    end = _tiled_end(tuple(entry["data_offsets"]) for entry in tensors.values())
    if end is None:
        faults.append("tensor byte ranges overlap or leave gaps")
    elif not faults and end != data_bytes:
        faults.append(f"its header declares {end:,} bytes of tensors but {data_bytes:,} follow it: truncated or padded")
    return faults


def _header_length_fault(path: Path, head: bytes, size: int) -> CheckpointError:
    """The refusal of a file whose first 8 bytes are no safetensors header length, naming a pickle as one."""
    if head.startswith((b"PK", b"\x80")):
        kind = "a torch.save (zip) file" if head.startswith(b"PK") else "a pickle"
        return CheckpointError(f"{path}: {kind}, not safetensors; skiplab never unpickles a file, refused")
    n = int.from_bytes(head, "little")
    return CheckpointError(
        f"{path}: not a safetensors file, or truncated: header length {n:,} bytes but the file has "
        f"{size:,} (at most {MAX_HEADER_BYTES // 2**20} MiB of header is accepted)"
    )


def read_weights(path: Path, expected: Expected) -> bytes:
    """The whole weights file, read only after its header matched `expected` and its size."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        n = int.from_bytes(head, "little")
        if len(head) < 8 or n > MAX_HEADER_BYTES or n > size - 8:
            raise _header_length_fault(path, head, size)
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
