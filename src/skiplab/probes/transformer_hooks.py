"""Where a transformer's residual stream lives, read and cut through forward hooks on named modules.

Two families of Hugging Face `transformers` models are recognised by their
structure (so RoBERTa or ELECTRA, built like BERT, are read the same way):

- **BERT-style, post-LN** (Devlin et al. 2019; Vaswani et al. 2017's
  original block): each sublayer ends in a module such as `BertSelfOutput` /
  `BertOutput` that computes `LayerNorm(dense(h) + x)`. The branch F(x) is
  the output of its `dense`; the skip x is its second argument; the
  LayerNorm comes after the addition, so the skip itself passes through a
  normalisation on its way to the next sublayer.
- **GPT-2-style, pre-LN** (Radford et al. 2019; Xiong et al. 2020): each block
  computes `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`. The stream entering
  a sublayer is the input of its LayerNorm, F(x) is the output of `attn` /
  `mlp`, and nothing follows the addition: the skip is a clean identity.

Lesions cut one sublayer in one of two ways: drop the branch (F(x) replaced
by zeros, the skip kept) or drop the skip (F(x) kept, x not added). For a
post-LN sublayer dropping the skip zeroes the second argument of its output
module; for a pre-LN one the addition happens inside the block, out of a
hook's reach, so the branch returns F(x) - x and the block's own `+ x`
cancels it (exact up to float rounding).

Only public API is used: `register_forward_pre_hook` / `register_forward_hook`
on the model's own submodules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

SUBLAYERS = ("attention", "ffn")
DROPS = ("branch", "skip")
Sublayer = Literal["attention", "ffn"]
Drop = Literal["branch", "skip"]


@dataclass(frozen=True)
class Lesion:
    """One cut: in layer `layer`'s `sublayer`, drop the branch F(x) (keep the skip) or drop the skip (keep F(x))."""

    layer: int
    sublayer: Sublayer
    drop: Drop = "branch"

    @property
    def key(self) -> str:
        return f"{self.layer}.{self.sublayer}"

    def to_dict(self) -> dict:
        return {"layer": self.layer, "sublayer": self.sublayer, "drop": self.drop, "key": self.key}


def parse_lesions(keys: Sequence[str], drop: str, layers: int) -> tuple[Lesion, ...]:
    """Lesions from keys such as '0.attention' or '3.ffn', all cut the same way; a ValueError names a bad key."""
    if drop not in DROPS:
        raise ValueError(f"drop must be one of {', '.join(DROPS)}; got {drop!r}")
    out: dict[str, Lesion] = {}
    for key in keys:
        layer, _, sub = key.strip().partition(".")
        if not layer.isdigit() or sub not in SUBLAYERS or not 0 <= int(layer) < layers:
            raise ValueError(
                f"lesion: {key!r} is not a sublayer; use LAYER.attention or LAYER.ffn with LAYER from 0 to {layers - 1}"
            )
        out[key.strip()] = Lesion(int(layer), sub, drop)  # type: ignore[arg-type]
    return tuple(out.values())


# ------------------------------------------------------------------ where each sublayer lives


@dataclass(frozen=True)
class Site:
    """One sublayer of one layer: the modules where its stream enters, its branch leaves and its stream leaves."""

    layer: int
    sublayer: Sublayer
    x_module: nn.Module  # forward pre-hook: the stream entering, argument `x_arg` (named `x_name`)
    x_arg: int
    x_name: str
    branch: nn.Module  # forward hook: F(x) (its output, or the first element of a tuple)
    out_module: nn.Module  # the stream leaving: this module's output, or (out_is_input) its first argument
    out_is_input: bool


@dataclass(frozen=True)
class Architecture:
    family: Literal["bert", "gpt2"]
    norm_position: Literal["post-LN", "pre-LN"]
    layers: list[nn.Module]
    sites: list[Site]
    hidden: int


def _is_bert_layer(m: nn.Module) -> bool:
    att = getattr(m, "attention", None)
    out = getattr(m, "output", None)
    return all(
        isinstance(getattr(part, name, None), nn.Module)
        for part in (getattr(att, "output", None), out)
        for name in ("dense", "LayerNorm")
    )


def _is_gpt2_block(m: nn.Module) -> bool:
    return all(isinstance(getattr(m, name, None), nn.Module) for name in ("ln_1", "attn", "ln_2", "mlp"))


def _bert_sites(i: int, layer: nn.Module) -> list[Site]:
    return [
        Site(i, "attention", layer.attention.output, 1, "input_tensor", layer.attention.output.dense,
             layer.attention.output, False),
        Site(i, "ffn", layer.output, 1, "input_tensor", layer.output.dense, layer.output, False),
    ]  # fmt: skip


def _gpt2_sites(i: int, block: nn.Module) -> list[Site]:
    return [
        Site(i, "attention", block.ln_1, 0, "input", block.attn, block.ln_2, True),
        Site(i, "ffn", block.ln_2, 0, "input", block.mlp, block, False),
    ]


def architecture(model: nn.Module) -> Architecture:
    """Recognise a BERT-style (post-LN) or GPT-2-style (pre-LN) model; a ValueError for anything else."""
    bert = [m for m in model.modules() if _is_bert_layer(m)]
    gpt2 = [m for m in model.modules() if _is_gpt2_block(m)]
    if bert and not gpt2:
        if any(hasattr(m, "crossattention") for m in bert):
            raise ValueError("model: BERT layers with cross-attention (a decoder) are not supported")
        sites = [s for i, m in enumerate(bert) for s in _bert_sites(i, m)]
        hidden = bert[0].output.dense.out_features
        return Architecture("bert", "post-LN", bert, sites, hidden)
    if gpt2 and not bert:
        if any(hasattr(m, "crossattention") for m in gpt2):
            raise ValueError("model: GPT-2 blocks with cross-attention are not supported")
        sites = [s for i, m in enumerate(gpt2) for s in _gpt2_sites(i, m)]
        hidden = gpt2[0].ln_1.normalized_shape[0]
        return Architecture("gpt2", "pre-LN", gpt2, sites, hidden)
    raise ValueError(
        "model: not a BERT-style (attention.output / output with dense + LayerNorm) or GPT-2-style "
        "(ln_1, attn, ln_2, mlp) transformers model"
    )


# ------------------------------------------------------------------ tracing and cutting


@dataclass
class SiteTrace:
    """What passed through one sublayer in one forward pass: x entering, F(x) computed, the stream leaving."""

    site: Site
    x: torch.Tensor | None = None
    branch: torch.Tensor | None = None
    out: torch.Tensor | None = None


@dataclass
class Trace:
    sites: list[SiteTrace]
    stream_in: torch.Tensor | None = None  # the first layer's input, a leaf when `grad` was asked
    handles: list[Any] = field(default_factory=list)


def _arg(args: tuple, kwargs: dict, index: int, name: str) -> torch.Tensor:
    return args[index] if len(args) > index else kwargs[name]


def _with_arg(args: tuple, kwargs: dict, index: int, name: str, value: torch.Tensor) -> tuple[tuple, dict]:
    if len(args) > index:
        return (*args[:index], value, *args[index + 1 :]), kwargs
    return args, {**kwargs, name: value}


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _replace_first(output: Any, value: torch.Tensor) -> Any:
    return (value, *output[1:]) if isinstance(output, tuple) else value


def _hook_site(t: SiteTrace, lesion: Lesion | None, post_ln: bool) -> list[Any]:
    s = t.site
    skip_zeroed = lesion is not None and lesion.drop == "skip" and post_ln

    def enter(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        t.x = _arg(args, kwargs, s.x_arg, s.x_name)
        if skip_zeroed:  # post-LN: LayerNorm(F(x) + 0)
            return _with_arg(args, kwargs, s.x_arg, s.x_name, torch.zeros_like(t.x))
        return None

    def branch(module: nn.Module, args: tuple, output: Any) -> Any:
        t.branch = _first(output)
        if lesion is None or skip_zeroed:
            return None
        if lesion.drop == "branch":
            return _replace_first(output, torch.zeros_like(t.branch))
        return _replace_first(output, t.branch - t.x)  # pre-LN: the block adds x back, leaving F(x) alone

    def leave_output(module: nn.Module, args: tuple, output: Any) -> None:
        t.out = _first(output)

    def leave_input(module: nn.Module, args: tuple, kwargs: dict) -> None:
        t.out = _arg(args, kwargs, 0, "input")

    handles = [s.x_module.register_forward_pre_hook(enter, with_kwargs=True), s.branch.register_forward_hook(branch)]
    if s.out_is_input:
        handles.append(s.out_module.register_forward_pre_hook(leave_input, with_kwargs=True))
    else:
        handles.append(s.out_module.register_forward_hook(leave_output))
    return handles


@contextmanager
def traced(arch: Architecture, lesions: Sequence[Lesion] = (), grad: bool = False) -> Iterator[Trace]:
    """Hooks on every sublayer for the forward passes run inside the block; removed on the way out.

    `grad`: the stream entering the first layer is made a leaf that requires grad (`trace.stream_in`), so the
    gradient of anything downstream can be taken with respect to every sublayer's x.
    """
    cuts = {(c.layer, c.sublayer): c for c in lesions}
    trace = Trace([SiteTrace(s) for s in arch.sites])
    post_ln = arch.norm_position == "post-LN"

    def leaf(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        x = _arg(args, kwargs, 0, "hidden_states").detach().requires_grad_()
        trace.stream_in = x
        return _with_arg(args, kwargs, 0, "hidden_states", x)

    try:
        for t in trace.sites:
            trace.handles += _hook_site(t, cuts.get((t.site.layer, t.site.sublayer)), post_ln)
        if grad:
            trace.handles.append(arch.layers[0].register_forward_pre_hook(leaf, with_kwargs=True))
        yield trace
    finally:
        for h in trace.handles:
            h.remove()


def run_traced(
    model: nn.Module,
    arch: Architecture,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    lesions: Sequence[Lesion] = (),
    grad: bool = False,
) -> tuple[Trace, torch.Tensor]:
    """One forward pass of `model` with every sublayer traced (and `lesions` cut): the trace and the last hidden state.

    Without `grad` it runs under `torch.no_grad()`.
    """
    context: Callable[[], Any] = torch.enable_grad if grad else torch.no_grad
    with context(), traced(arch, lesions, grad) as trace:
        out = model(input_ids=input_ids, attention_mask=attention_mask)
    last = out.last_hidden_state if hasattr(out, "last_hidden_state") else _first(out)
    return trace, last
