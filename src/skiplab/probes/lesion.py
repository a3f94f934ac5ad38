"""Lesion study: delete one block of a trained network and measure what is left (Veit et al. 2016).

Veit, Wilber & Belongie 2016 ("Residual Networks Behave Like Ensembles of
Relatively Shallow Networks", sec. 4) deleted single blocks from trained
networks at test time. A residual network barely notices: removing one block
removes only half of its paths, and the others still work. A plain network
collapses to chance, since its one path is cut.

Deleting a block here means:
- a residual block (`ResidualBlock`, or a torchvision-style block with a
  `downsample` attribute): only its shortcut remains, followed by its
  post-activation, y = post(shortcut(x));
- any other block (a plain layer, a highway or dense layer, a transformer
  layer): it is skipped, y = x, where its output has its input's shape (a
  block that returns a tuple, as Hugging Face layers do, has its first
  element replaced); where it does not, the block cannot be deleted and is
  reported as such.

The model may take a tensor, a tuple of positional arguments or a dict of
keyword arguments (token ids and a mask), and return class scores as a
tensor, a tuple, a dict or a Hugging Face `ModelOutput` (its "logits" are
read), or anything an `output` callable picks them from.

The deletion is a forward hook that replaces the block's output (PyTorch's
public API, no monkeypatching); the hook is removed and the model's mode
restored afterwards, so the model leaves the study exactly as it came.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from skiplab.nn.blocks import ResidualBlock
from skiplab.nn.shortcuts import NoShortcut
from skiplab.probes.common import (
    Inputs,
    OutputChoice,
    batch_size,
    call_model,
    check_inputs,
    check_int,
    output_tensor,
    slice_batch,
)
from skiplab.probes.results import Tabular
from skiplab.probes.targets import ModuleChoice, choose_modules, first_tensor_argument, never_called


@dataclass(frozen=True)
class BlockLesion:
    name: str  # qualified block name
    kind: str  # residual (its shortcut remains) | skipped (y = x) | kept (shapes differ: not deleted)
    accuracy: float | None  # held-out accuracy with this block deleted (None: not deletable)
    drop: float | None  # intact accuracy − accuracy


@dataclass(frozen=True)
class LesionResult(Tabular):
    intact_accuracy: float
    examples: int
    architecture: str  # residual | plain | mixed: what the deleted blocks were
    blocks: tuple[BlockLesion, ...]
    mean_accuracy: float | None  # over the deletable blocks
    worst: str | None  # the block whose deletion hurts most
    selected: str = ""  # how the blocks were chosen

    _plot_x = "name"
    _plot_y = ("accuracy",)
    _plot_kind = "bar"

    def to_dict(self) -> dict:
        return asdict(self)


def _shortcut_of(block: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """(shortcut, post) of a residual block, or None for a block without a shortcut."""
    if isinstance(block, ResidualBlock):
        return None if isinstance(block.shortcut, NoShortcut) else (block.shortcut, block.post)
    if hasattr(block, "downsample"):  # torchvision's BasicBlock / Bottleneck: relu(identity-or-downsample(x) + F(x))
        down = block.downsample if block.downsample is not None else nn.Identity()
        return down, getattr(block, "relu", nn.Identity())
    return None


def _predict(model: nn.Module, x: Inputs, batch: int, output: OutputChoice) -> torch.Tensor:
    n = batch_size(x)
    return torch.cat(
        [output_tensor(call_model(model, slice_batch(x, i, i + batch)), output).argmax(1) for i in range(0, n, batch)]
    )


def lesion_study(
    model: nn.Module,
    x: Inputs,
    y: torch.Tensor,
    *,
    modules: ModuleChoice = None,
    batch: int = 512,
    output: OutputChoice = None,
) -> LesionResult:
    """Held-out accuracy of `model` on (x, y) intact and after deleting each single block.

    x: a tensor, a tuple of positional arguments or a dict of keyword
    arguments, batch first. modules selects the blocks as in `gradient_flow`
    (None: a SkipNet's blocks, else the model's repeated blocks, such as
    torchvision's layer1.0; `LesionResult.selected` says which). output: how
    to read the class scores from the model's output (None: a tensor, or the
    "logits" of a dict or `ModelOutput`, or the first tensor of a tuple). The
    model runs in eval mode (BatchNorm uses its running statistics); its
    mode, parameters and hooks are as before afterwards. batch: examples per
    forward (1..65536).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    check_inputs(x, "x")
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or batch_size(x) != len(y):
        raise ValueError("x and y must be of the same length (batch first), y a tensor of integer class labels")
    if len(y) == 0:
        raise ValueError("x and y must hold at least one example")
    check_int("batch", batch, 1, 65536)
    targets, selected = choose_modules(model, modules)
    was_training = model.training
    y = y.to(torch.long)
    try:
        model.eval()
        with torch.no_grad():
            out = output_tensor(call_model(model, slice_batch(x, 0, 1)), output)
            if out.dim() != 2:
                raise ValueError(f"model: a lesion study needs class scores (batch, classes); got {tuple(out.shape)}")
            intact = float((_predict(model, x, batch, output) == y).float().mean())
            lesions = [_lesion_one(model, name, block, x, y, batch, intact, output) for name, block in targets]
    finally:
        model.train(was_training)
    missing = [le.name for le in lesions if le.kind == "not called"]
    if missing:
        raise never_called(missing)
    kinds = {le.kind for le in lesions if le.kind != "kept"}
    architecture = kinds.pop().replace("skipped", "plain") if len(kinds) == 1 else "mixed"
    scored = [le for le in lesions if le.accuracy is not None]
    mean = sum(le.accuracy for le in scored) / len(scored) if scored else None
    worst = min(scored, key=lambda le: le.accuracy).name if scored else None
    return LesionResult(intact, len(y), architecture, tuple(lesions), mean, worst, selected)


def _lesion_one(
    model: nn.Module,
    name: str,
    block: nn.Module,
    x: Inputs,
    y: torch.Tensor,
    batch: int,
    intact: float,
    output: OutputChoice,
) -> BlockLesion:
    shortcut = _shortcut_of(block)
    deletable, called = [True], [False]

    def delete(module: nn.Module, args: tuple, kwargs: dict, out):
        called[0] = True
        where = first_tensor_argument(args, kwargs)
        inp = None if where is None else args[where] if isinstance(where, int) else kwargs[where]
        first = out[0] if isinstance(out, tuple) and out else out
        if not isinstance(inp, torch.Tensor) or not isinstance(first, torch.Tensor):
            deletable[0] = False
            return None
        if shortcut is not None:
            kept = shortcut[1](shortcut[0](inp))  # only the shortcut remains
        elif inp.shape == first.shape:
            kept = inp  # a plain block is skipped
        else:
            deletable[0] = False
            return None
        return (kept, *out[1:]) if isinstance(out, tuple) else kept

    handle = block.register_forward_hook(delete, with_kwargs=True)
    try:
        correct = _predict(model, x, batch, output) == y
    finally:
        handle.remove()
    if not called[0]:
        return BlockLesion(name, "not called", None, None)
    if not deletable[0]:
        return BlockLesion(name, "kept", None, None)
    accuracy = float(correct.float().mean())
    return BlockLesion(name, "residual" if shortcut is not None else "skipped", accuracy, intact - accuracy)
