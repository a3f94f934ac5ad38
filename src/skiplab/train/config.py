"""What a training run is: a small frozen config, and named presets (He et al. 2015's CIFAR recipe among them).

The learning rate is per batch of `batch_size` examples (no implicit scaling).
Schedules are expressed in epochs so that a preset keeps its shape when the
epoch count changes: `milestones` are fractions of the run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


RESUMABLE: tuple[str, ...] = ("epochs", "threads", "device")  # what may change when a run resumes
MAX_EPOCHS = 1_000_000


def _short(v: object, limit: int = 80) -> str:
    """repr(v), cut to `limit` characters: a value from a file may be megabytes long."""
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    model: str = "resconv20"  # a registered model, or any depth of resconv/plainconv/resmlp/plainmlp/resnet/plain
    data: str = "digits"  # digits | mnist1d | cifar10 | spirals | blobs | parity
    data_root: str | None = None  # the cifar-10-batches-bin folder (cifar10 only)
    width: int | None = None  # channels of the first stage / of a stack; None keeps the model's own
    epochs: int = 10
    batch_size: int = 128  # global batch: split across ranks under torchrun
    lr: float = 0.05  # peak learning rate, per batch of batch_size
    momentum: float = 0.9
    weight_decay: float = 1e-4  # L2 on every parameter, as in He et al. 2015
    schedule: str = "cosine"  # constant | step | cosine (to zero at the end)
    warmup_epochs: float = 0.0  # linear warm-up from lr/10 (He et al. 2015 warm ResNet-110 up at 0.01)
    milestones: tuple[float, ...] = (0.5, 0.75)  # step schedule: fractions of the run where lr drops 10x
    gamma: float = 0.1  # step schedule: the factor at each milestone
    seed: int = 0  # weights, data order, augmentation and the digits split all follow it
    held_out: float = 0.2  # share of digits / synthetic data kept for evaluation
    device: str = "auto"  # auto (CUDA if present) | cpu | cuda
    amp: bool = True  # bfloat16 autocast on CUDA
    cpu_bf16: bool = False  # bfloat16 autocast on the CPU too: ~2x on CPUs with AMX (make bench); other numbers
    channels_last: bool = True  # NHWC memory format for conv nets on CUDA, and on the CPU for images >= 16x16
    threads: int = 0  # torch intra-op threads for this run; 0 leaves torch's default

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> TrainConfig:
        """Check every field's type and range (a config may come from a checkpoint file, not only from code)."""
        for check in _CHECKS:
            check(self)
        return self

    def resumed(self, **given) -> TrainConfig:
        """This (a checkpoint's) config with what a resume may change: epochs (to extend), threads, device.

        Any other option given with a different value is refused: a resumed
        run is the same run.
        """
        changed = sorted(k for k, v in given.items() if k not in RESUMABLE and v != getattr(self, k, v))
        if changed:
            raise ValueError(
                f"--resume keeps the checkpoint's config; these options differ from it: {', '.join(changed)}"
            )
        return self.replace(**{k: v for k, v in given.items() if k in RESUMABLE})

    def replace(self, **changes) -> TrainConfig:
        """A copy with `changes`; unknown names are refused with the list of fields."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            names = ", ".join(k if len(k) <= 40 else k[:37] + "..." for k in unknown[:20])
            raise ValueError(f"unknown config field(s) {names}; fields are {', '.join(sorted(known))}")
        return dataclasses.replace(self, **changes)  # checked by __post_init__

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a mapping of field names to values; got {_short(d)}")
        d = dict(d)
        if isinstance(d.get("milestones"), list):
            d["milestones"] = tuple(d["milestones"])
        return cls().replace(**d)


# Field → (type, what it must be); checked before any range, which could not compare a value of another type.
_TYPES: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("model", str, "a string"),
    ("data", str, "a string"),
    ("schedule", str, "a string"),
    ("device", str, "a string"),
    ("data_root", (str, type(None)), "a folder name or null"),
    ("amp", bool, "true or false"),
    ("cpu_bf16", bool, "true or false"),
    ("channels_last", bool, "true or false"),
)
_FINITE: tuple[str, ...] = ("warmup_epochs", "gamma", "held_out")
_INTEGERS: tuple[tuple[str, int, int], ...] = (  # field, lowest, highest
    ("epochs", 1, MAX_EPOCHS),
    ("batch_size", 1, 2**24),
    ("threads", 0, 1024),
    ("seed", 0, 2**32 - 1),
)
_NUMBERS: tuple[tuple[str, float, float], ...] = (  # field, lowest, highest
    ("lr", 0.0, 100.0),
    ("momentum", 0.0, 1.0),
    ("weight_decay", 0.0, 1.0),
)
_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (("schedule", SCHEDULES), ("device", DEVICES))


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_types(cfg: TrainConfig) -> None:
    """Each field's type, floats finite: the later checks compare and sort these values."""
    for name, kind, what in _TYPES:
        if not isinstance(getattr(cfg, name), kind):
            raise ValueError(f"{name} must be {what}; got {_short(getattr(cfg, name))}")
    for name in _FINITE:
        v = getattr(cfg, name)
        if not _is_number(v) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number; got {_short(v)}")
    if not isinstance(cfg.milestones, tuple) or not all(_is_number(m) for m in cfg.milestones):
        raise ValueError(f"milestones must be a list of numbers; got {_short(cfg.milestones)}")


def _check_integer(cfg: TrainConfig, name: str, low: int = 1, high: int | None = None) -> None:
    v = getattr(cfg, name)
    if not isinstance(v, int) or isinstance(v, bool) or v < low or (high is not None and v > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high:,}]"
        raise ValueError(f"{name} must be an integer {bounds}; got {_short(v)}")


def _check_integers(cfg: TrainConfig) -> None:
    for name, low, high in _INTEGERS:
        _check_integer(cfg, name, low, high)
    if cfg.width is not None:
        _check_integer(cfg, "width")


def _check_numbers(cfg: TrainConfig) -> None:
    for name, low, high in _NUMBERS:
        v = getattr(cfg, name)
        if not isinstance(v, (int, float)) or not math.isfinite(v) or not low <= v <= high:
            raise ValueError(f"{name} must be a number in [{low:g}, {high:g}]; got {_short(v)}")
    if cfg.lr == 0:
        raise ValueError("lr must be > 0")


def _check_choices(cfg: TrainConfig) -> None:
    for name, choices in _CHOICES:
        v = getattr(cfg, name)
        if v not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}; got {_short(v)}")


def _check_schedule(cfg: TrainConfig) -> None:
    """The schedule's shape: warm-up within the run, milestones inside it and in order, a decaying gamma."""
    if not isinstance(cfg.warmup_epochs, (int, float)) or not 0 <= cfg.warmup_epochs <= cfg.epochs:
        raise ValueError(f"warmup_epochs must be between 0 and epochs ({cfg.epochs}); got {_short(cfg.warmup_epochs)}")
    if any(not 0 < m < 1 for m in cfg.milestones) or list(cfg.milestones) != sorted(cfg.milestones):
        raise ValueError(f"milestones must be increasing fractions of the run in (0, 1); got {_short(cfg.milestones)}")
    if not 0 < cfg.gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1]; got {_short(cfg.gamma)}")


def _check_held_out(cfg: TrainConfig) -> None:
    if not 0 < cfg.held_out < 1:
        raise ValueError(f"held_out must be a fraction in (0, 1); got {_short(cfg.held_out)}")


# In this order: each check may rely on the types the ones before it established.
_CHECKS: tuple[Callable[[TrainConfig], None], ...] = (
    _check_types,
    _check_integers,
    _check_numbers,
    _check_choices,
    _check_schedule,
    _check_held_out,
)


PRESETS: dict[str, TrainConfig] = {
    # He et al. 2015, sec. 4.2: SGD momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 32k and
    # 48k iterations, stopped at 64k (= 164 epochs of 391 batches of the 50k training images), with the 4-pixel
    # pad / random crop / flip augmentation; evaluated on the 10k test images.
    "he2015-cifar": TrainConfig(
        model="resnet20",
        data="cifar10",
        epochs=164,
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        schedule="step",
        milestones=(0.5, 0.75),
    ),
    # The same recipe for ResNet-110, with the paper's warm-up: lr 0.01 until training error is below 80 %
    # (about 400 iterations, i.e. one epoch), then 0.1.
    "he2015-cifar-110": TrainConfig(
        model="resnet110",
        data="cifar10",
        epochs=164,
        lr=0.1,
        weight_decay=1e-4,
        schedule="step",
        milestones=(0.5, 0.75),
        warmup_epochs=1.0,
    ),
    # The degradation experiment's recipe on digits (see skiplab.experiments.degradation).
    "digits": TrainConfig(model="resconv20", data="digits", epochs=15, batch_size=128, lr=0.05, schedule="cosine"),
    # Seconds, for smoke tests and demos.
    "quick": TrainConfig(model="resconv8", data="digits", epochs=2, batch_size=128, lr=0.05, schedule="constant"),
}


def preset(name: str, **overrides) -> TrainConfig:
    """A named preset, with some fields replaced (None values are ignored)."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    return PRESETS[name].replace(**{k: v for k, v in overrides.items() if v is not None})
