"""What a probe looks at and what it differentiates: the modules it probes, their input, and the loss.

With no modules named, a probe looks at the repeated blocks of the network
(`find_blocks`: the zoo's, torchvision's `layer1.0`, Hugging Face's
`encoder.layer.0` or `h.0`, timm's `blocks.0`) and says what it chose; a
module the forward never calls is refused by name rather than reported as
nan. The loss is a name or a callable.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from skiplab.nn.models import SkipNet
from skiplab.probes.common import choice

LOSSES: tuple[str, ...] = ("auto", "cross_entropy", "mse")
ModuleChoice = type[nn.Module] | tuple[type[nn.Module], ...] | str | None
LossChoice = str | Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


def find_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The repeated blocks of a network: what a probe looks at when not told.

    A block is a module with submodules and parameters, held by index in an
    `nn.Sequential` or `nn.ModuleList` (torchvision's `layer1.0`, Hugging
    Face's `encoder.layer.0` or `h.0`, timm's `blocks.0`), whose type occurs at
    least twice among such modules; blocks inside a block are not listed.
    """
    named = dict(model.named_modules())
    candidates = []
    for name, m in named.items():
        parent, _, last = name.rpartition(".")
        if not last.isdigit() or not isinstance(named.get(parent), (nn.Sequential, nn.ModuleList)):
            continue
        if next(m.children(), None) is not None and next(m.parameters(), None) is not None:
            candidates.append((name, m))
    counts: dict[type, int] = {}
    for _, m in candidates:
        counts[type(m)] = counts.get(type(m), 0) + 1
    found: list[tuple[str, nn.Module]] = []
    for name, m in candidates:  # named_modules lists a module before its submodules
        if counts[type(m)] >= 2 and not any(name.startswith(f"{outer}.") for outer, _ in found):
            found.append((name, m))
    return found


def _names(found: list[tuple[str, nn.Module]]) -> str:
    names = [n for n, _ in found]
    return ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:3])}, …, {', '.join(names[-2:])}"


def choose_modules(model: nn.Module, modules: ModuleChoice = None) -> tuple[list[tuple[str, nn.Module]], str]:
    """The modules a probe looks at, by qualified name, and a sentence saying how they were chosen.

    None: the blocks of a `SkipNet` (its `named_blocks()`); else the
    repeated blocks `find_blocks` finds (torchvision, Hugging Face and timm
    layouts); else the model's direct children. A type or tuple of types:
    every submodule of that type. A string: every submodule whose qualified
    name matches the regular expression (`re.fullmatch`).
    """
    if modules is None:
        if isinstance(model, SkipNet):
            found, how = model.named_blocks(), f"the blocks of the {type(model).__name__} (named_blocks)"
        elif blocks := find_blocks(model):
            found = blocks
            how = f"repeated blocks of {type(model).__name__} held by index in a Sequential or ModuleList"
        else:
            found, how = list(model.named_children()), f"the direct children of {type(model).__name__}"
    elif isinstance(modules, str):
        try:
            pattern = re.compile(modules)
        except re.error as e:
            raise ValueError(f"modules: {modules!r} is not a valid regular expression ({e})") from None
        found = [(n, m) for n, m in model.named_modules() if n and pattern.fullmatch(n)]
        how = f"the submodules whose name matches {modules!r}"
    elif isinstance(modules, type) or (isinstance(modules, tuple) and all(isinstance(t, type) for t in modules)):
        found = [(n, m) for n, m in model.named_modules() if n and isinstance(m, modules)]
        types = modules if isinstance(modules, tuple) else (modules,)
        how = f"the submodules of type {' or '.join(t.__name__ for t in types)}"
    else:
        raise ValueError(f"modules must be None, a module type, a tuple of types or a name pattern; got {modules!r}")
    if not found:
        raise ValueError(f"modules: {modules!r} selects no submodule of {type(model).__name__}")
    return found, f"{how}: {_names(found)} ({len(found)})"


def select_modules(model: nn.Module, modules: ModuleChoice = None) -> list[tuple[str, nn.Module]]:
    """The modules a probe looks at, by qualified name (see `choose_modules`)."""
    return choose_modules(model, modules)[0]


def never_called(names: list[str]) -> ValueError:
    """The error for selected modules that the forward never calls (a ModuleList, a block called by parts)."""
    listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return ValueError(
        f"modules: the forward never calls {listed}: a probe can only measure modules the model runs "
        "(a ModuleList or Sequential that the model iterates over is not itself called; select its blocks, "
        "for example modules=r'blocks\\.\\d+')"
    )


# ------------------------------------------------------------------ loss


def compute_loss(out: torch.Tensor, y: torch.Tensor | None, loss: LossChoice = "auto") -> torch.Tensor:
    """Cross-entropy for integer labels, mean squared error for float targets (`auto`), with shape checks.

    loss may also be a callable loss(out, y) returning a scalar tensor (y may then be None).
    """
    if callable(loss):
        value = loss(out, y)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError("loss: the callable must return a scalar tensor")
        return value.reshape(())
    choice("loss", loss, LOSSES)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"loss: the model must return one tensor; it returned {type(out).__name__}")
    if y is None:
        raise ValueError(f"y is required with loss={loss!r} (a callable loss may do without)")
    if loss == "auto":
        loss = "mse" if y.is_floating_point() else "cross_entropy"
    if loss == "cross_entropy":
        if out.dim() != 2 or y.dim() != 1 or y.shape[0] != out.shape[0] or y.is_floating_point():
            raise ValueError(
                "loss: cross_entropy needs a model output of shape (batch, classes) and integer labels of shape "
                f"(batch,); got output {tuple(out.shape)} and y {tuple(y.shape)} ({y.dtype})"
            )
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= out.shape[1]:
            classes = out.shape[1]
            raise ValueError(f"y: labels must be in 0..{classes - 1} for {classes} classes; got {low}..{high}")
        return F.cross_entropy(out, y)
    if out.shape != y.shape:
        raise ValueError(f"loss: mse needs y of the output's shape {tuple(out.shape)}; got {tuple(y.shape)}")
    return F.mse_loss(out, y.to(out.dtype))


def first_tensor_argument(args: tuple, kwargs: dict) -> int | str | None:
    """Where a module's input is: the position or keyword of its first tensor argument (None: it has none).

    Hugging Face layers are called with `hidden_states=` as a keyword, after
    positional arguments that may be None.
    """
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            return i
    return next((k for k, v in kwargs.items() if isinstance(v, torch.Tensor)), None)
