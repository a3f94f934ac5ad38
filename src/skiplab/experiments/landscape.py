"""The loss-landscape subjects: the trained nets of the degradation runs, shipped in the package.

Li et al. 2018 draw the loss surfaces of trained ResNet-56 / ResNet-20 and
their plain twins. Here the subjects are the 1-D versions of those nets that
the degradation experiment trains on MNIST-1D (`skiplab experiment
degradation --family conv1d --data mnist1d --runs-dir DIR`): plain and
residual, 20 and 56 layers, a few seeds. `export_subjects` copies the model
weights (no optimizer state) of each finished run from its checkpoint
folder into `skiplab/results/landscape/` as safetensors, with an index
(`subjects.json`) naming each file's model, seed, run config, final metrics
and SHA-256; `skiplab experiment landscape-subjects --runs-dir DIR` runs it.

`load_subject` rebuilds a net from its recorded config and loads the
shipped weights (SHA-256 checked); `initial_model` rebuilds the net the run
started from, exactly as the trainer does (the run's seed alone fixes the
initial weights: `skiplab.train.loop` builds the model inside
`seeded(cfg.seed)`), the start of the init-to-trained line.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shlex
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from skiplab.data import Dataset, load_dataset
from skiplab.provenance import git_revision, versions
from skiplab.seeding import seeded
from skiplab.train.checkpoint import load_checkpoint, priced_config, write_atomic
from skiplab.train.config import TrainConfig
from skiplab.train.models import build_model
from skiplab.train.trained import load_trained

FORMAT = "skiplab-landscape-subjects-1"
INDEX = "subjects.json"
KINDS: tuple[str, ...] = ("plain", "res")
DEPTHS: tuple[int, ...] = (20, 56)
EXAMPLES = 256  # signals in the batch every landscape of a subject is computed on
SPLITS: tuple[str, ...] = ("train", "test")  # train: the loss that training minimised (the paper's); test: held out


@dataclass(frozen=True)
class SubjectInfo:
    name: str  # plain56-s0: the run's name in the degradation experiment
    kind: str  # plain | res
    depth: int
    seed: int
    model: str  # the registered model the config names (plain1d56, resnet1d20, ...)
    file: str  # the safetensors file in the subjects folder
    sha256: str
    bytes: int
    epoch: int  # epochs trained
    run_id: str
    config: dict  # the run's TrainConfig
    final: dict  # the last epoch's train_loss, train_error, test_loss, test_error, and the best train_loss

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SubjectIndex:
    format: str
    command: str  # regenerates the folder from the run folders
    created: str
    git_revision: str | None
    versions: dict
    subjects: tuple[SubjectInfo, ...]

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted({s.seed for s in self.subjects}))

    def to_dict(self) -> dict:
        return asdict(self)


def subjects_dir() -> Path:
    """The package's folder of shipped subjects."""
    return Path(str(resources.files("skiplab") / "results" / "landscape"))


def subject_name(kind: str, depth: int, seed: int) -> str:
    return f"{kind}{depth}-s{seed}"


def _final(history: list[dict]) -> dict:
    last = history[-1]
    keys = ("train_loss", "train_error", "test_loss", "test_error")
    return {**{k: last[k] for k in keys}, "best_train_loss": min(h["train_loss"] for h in history)}


def _finished_seeds(runs_dir: Path) -> list[int]:
    """Seeds whose four runs (plain and residual, 20 and 56 layers) all have a final checkpoint."""
    seeds = []
    for folder in sorted(runs_dir.glob(f"{KINDS[0]}{DEPTHS[0]}-s*")):
        seed_text = folder.name.rsplit("-s", 1)[1]
        if not seed_text.isdigit():
            continue
        seed = int(seed_text)
        metas = [runs_dir / subject_name(k, d, seed) / "checkpoint.json" for k in KINDS for d in DEPTHS]
        if all(p.is_file() for p in metas) and all(_complete(json.loads(p.read_text())) for p in metas):
            seeds.append(seed)
    return sorted(seeds)


def _complete(meta: dict) -> bool:
    return meta.get("epoch") == meta.get("config", {}).get("epochs")


def _export_one(runs_dir: Path, out_dir: Path, kind: str, depth: int, seed: int) -> SubjectInfo:
    name = subject_name(kind, depth, seed)
    ckpt = load_checkpoint(runs_dir / name)  # untrusted folder: priced, header-checked, SHA-256 verified
    cfg = priced_config(ckpt.meta["config"], runs_dir / name / "checkpoint.json")
    if ckpt.epoch != cfg.epochs:
        raise ValueError(f"run {name} is not finished: epoch {ckpt.epoch} of {cfg.epochs}")
    if cfg.seed != seed:
        raise ValueError(f"run {name} was trained with seed {cfg.seed}, not {seed}")
    family = "plain1d" if kind == "plain" else "resnet1d"
    if not re.fullmatch(rf"{family}{depth}(w\d+)?", cfg.model):
        raise ValueError(f"run {name} trained {cfg.model!r}, not a {family}{depth} net of the conv1d degradation runs")
    state = {k: v.contiguous() for k, v in sorted(ckpt.model_state().items())}
    blob = st_save(state, metadata={"format": FORMAT, "name": name, "model": cfg.model, "seed": str(seed)})
    file = f"{name}.safetensors"
    write_atomic(out_dir / file, blob)
    return SubjectInfo(
        name, kind, depth, seed, cfg.model, file, hashlib.sha256(blob).hexdigest(), len(blob), ckpt.epoch,
        ckpt.meta["run_id"], cfg.to_dict(), _final(ckpt.meta["history"]),
    )  # fmt: skip


def export_subjects(
    runs_dir: str | Path, out_dir: str | Path | None = None, *, seeds: tuple[int, ...] | None = None, argv=()
) -> SubjectIndex:
    """Copy the model weights of each finished run (plain and residual, 20 and 56 layers) into `out_dir`.

    seeds: which (None: every seed whose four runs are finished). The folder
    ends up holding exactly the index and the files it names. argv: the
    command's words, recorded so that the folder says how to regenerate it.
    """
    runs_dir = Path(runs_dir)
    out_dir = Path(out_dir) if out_dir is not None else subjects_dir()
    if not runs_dir.is_dir():
        raise ValueError(f"runs_dir {str(runs_dir)!r} is not a folder")
    chosen = sorted(seeds) if seeds is not None else _finished_seeds(runs_dir)
    if not chosen:
        raise ValueError(f"runs_dir {str(runs_dir)!r} holds no seed with all four finished runs (plain/res 20/56)")
    out_dir.mkdir(parents=True, exist_ok=True)
    subjects = tuple(_export_one(runs_dir, out_dir, k, d, s) for s in chosen for k in KINDS for d in DEPTHS)
    index = SubjectIndex(
        FORMAT,
        shlex.join(["skiplab", *argv]) if argv else "",
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        git_revision(),
        versions(),
        subjects,
    )
    write_atomic(out_dir / INDEX, (json.dumps(index.to_dict(), indent=1) + "\n").encode())
    for old in out_dir.glob("*.safetensors"):
        if old.name not in {s.file for s in subjects}:
            old.unlink()
    read_index.cache_clear()
    return index


@functools.lru_cache(maxsize=4)
def read_index(folder: str | None = None) -> SubjectIndex:
    """The subjects index of `folder` (None: the package's)."""
    path = (Path(folder) if folder else subjects_dir()) / INDEX
    if not path.is_file():
        raise ValueError(
            f"no landscape subjects at {path.parent}: run `skiplab experiment landscape-subjects --runs-dir DIR` "
            "on the run folders of a conv1d degradation experiment"
        )
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a landscape subjects index (format {data.get('format')!r})")
    subjects = tuple(SubjectInfo(**s) for s in data.pop("subjects"))
    return SubjectIndex(**data, subjects=subjects)


def subject_info(kind: str, depth: int, seed: int, folder: str | None = None) -> SubjectInfo:
    """The index entry of one subject, or a ValueError naming the ones there are."""
    index = read_index(folder)
    for s in index.subjects:
        if (s.kind, s.depth, s.seed) == (kind, depth, seed):
            return s
    names = ", ".join(s.name for s in index.subjects)
    raise ValueError(f"subject {subject_name(kind, depth, seed)!r} is not shipped; the subjects are {names}")


@dataclass(frozen=True)
class Subject:
    name: str  # plain56-s0 for a shipped subject, the folder for a run
    model: nn.Module  # the trained net, eval mode, CPU
    config: TrainConfig
    data: Dataset
    info: SubjectInfo | None = None  # a shipped subject's index entry


def run_subject(run_dir: str | Path) -> Subject:
    """Any run folder as a subject: its model with the last checkpoint's weights (checked as untrusted input)."""
    trained = load_trained(run_dir)
    return Subject(str(run_dir), trained.model, trained.config, trained.data)


@functools.lru_cache(maxsize=16)
def load_subject(kind: str, depth: int, seed: int, folder: str | None = None) -> Subject:
    """A shipped subject: its net rebuilt from the recorded config, with the shipped weights (SHA-256 checked).

    Remembered (a few MB each): a server's worker answers every request for the same net from one load.
    Callers must not change the model (the landscape probes work on their own copies).
    """
    info = subject_info(kind, depth, seed, folder)
    root = Path(folder) if folder else subjects_dir()
    blob = (root / info.file).read_bytes()
    if hashlib.sha256(blob).hexdigest() != info.sha256:
        raise ValueError(f"{root / info.file} does not match the SHA-256 in {INDEX}")
    cfg = TrainConfig.from_dict(info.config)
    data = load_dataset(cfg.data, seed=cfg.seed, root=cfg.data_root, held_out=cfg.held_out)
    model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.width)
    state = st_load(blob)
    own = model.state_dict()
    if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
        raise ValueError(f"{root / info.file} does not hold the weights of {cfg.model}")
    model.load_state_dict(state, strict=True)
    return Subject(info.name, model.eval(), cfg, data, info)


def initial_model(cfg: TrainConfig, data: Dataset) -> nn.Module:
    """The net `cfg`'s run started from: built under the run's seed, as `skiplab.train.loop` builds it."""
    with seeded(cfg.seed):
        return build_model(cfg.model, data.input_shape, data.num_classes, cfg.width).eval()


def subject_batch(data: Dataset, split: str = "train", examples: int = EXAMPLES) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `examples` signals of the training or held-out split, as network input, and their labels."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    if not 1 <= examples <= len(y):
        raise ValueError(f"examples must be from 1 to {len(y)} for the {split} split; got {examples!r}")
    return data.prepare(x[:examples]), y[:examples]
