"""Bypass metrics: the highway-bypass picture of skip connections, measured on a real network.

A skip connection is a bypass: with skips, the input can reach the output
through no layer at all, and each of the 2^n paths through n residual blocks
passes through a different subset of layers (Veit et al. 2016). Without skips
there is one road through every layer. The probe builds a short fully
connected stack (default 5 layers of width 16, no normalisation) with or
without identity skips and measures, on a standard-normal batch:

- **signal retained**: how much of the input survives to the output, defined
  as the mean over examples of cos²(x, y) between the input x and the output
  y (same width): the fraction of the output's energy that lies along the
  input's direction. 1 means the output is a scaled copy of the input; a
  network that scrambles its input scores about 1/width (`chance`).
- **path lengths**: the shortest and mean number of weight layers on a path
  from input to output, and the number of paths, read from the blocks'
  shortcuts (a block with a shortcut offers a path of length 0 or 1 through
  it, a plain block only 1).
- **gradient strength**: how strongly the output responds to the input,
  the root-mean-square singular value of the Jacobian d(output)/d(input),
  ‖J‖_F / √width, averaged over examples. 1 means a small change of the
  input reaches the output at its own size on average; the identity map
  scores exactly 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from skiplab.nn.layers import ACTIVATIONS
from skiplab.nn.shortcuts import NoShortcut
from skiplab.nn.stacks import StackConfig
from skiplab.probes.common import check_int, choice, seeded_stack
from skiplab.probes.results import Tabular


@dataclass(frozen=True)
class LayerSignal:
    layer: int  # 1-based: after this many layers
    signal_retained: float  # mean cos²(x, h_layer)


@dataclass(frozen=True)
class BypassMetrics(Tabular):
    layers: int
    width: int
    skips: bool
    activation: str
    preact: bool
    signal_retained: float  # mean over examples of cos²(input, output): share of the output's energy along the input
    chance: float  # 1/width: what a network that keeps nothing of the input's direction scores on average
    shortest_path: int  # fewest weight layers from input to output
    mean_path: float  # mean weight layers over all paths
    paths: int  # number of distinct input-to-output paths (2^residual blocks)
    gradient_strength: float  # mean over examples of ‖d(output)/d(input)‖_F / √width (1 for the identity map)
    per_layer: tuple[LayerSignal, ...]  # signal retained after every layer

    _plot_x = "layer"
    _plot_y = ("signal_retained",)

    def to_dict(self) -> dict:
        return asdict(self)


def _cos2(x: torch.Tensor, h: torch.Tensor) -> float:
    """Mean over examples of cos²(x_i, h_i) (0 where h_i is all zeros)."""
    dots = (x * h).sum(1)
    norms = x.norm(dim=1) * h.norm(dim=1)
    cos = torch.where(norms > 0, dots / norms.clamp_min(1e-30), torch.zeros_like(dots))
    return float((cos**2).mean())


def path_stats(blocks: list[nn.Module]) -> tuple[int, float, int]:
    """Shortest and mean path length in weight layers, and the number of paths, through `blocks`.

    A block of k weight layers with a shortcut offers 0 or k layers (2 paths);
    a plain block offers k. Paths through different blocks combine freely, so
    lengths add and counts multiply.
    """
    shortest, mean, paths = 0, 0.0, 1
    for block in blocks:
        k = sum(1 for m in block.modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and not _in_shortcut(block, m))
        if isinstance(getattr(block, "shortcut", NoShortcut()), NoShortcut):
            shortest, mean = shortest + k, mean + k
        else:
            mean, paths = mean + k / 2, paths * 2
    return shortest, mean, paths


def _in_shortcut(block: nn.Module, m: nn.Module) -> bool:
    shortcut = getattr(block, "shortcut", None)
    return shortcut is not None and any(m is s for s in shortcut.modules())


def bypass_metrics(
    layers: int = 5,
    skips: bool = True,
    activation: str = "relu",
    width: int = 16,
    preact: bool = True,
    batch: int = 64,
    seed: int = 0,
) -> BypassMetrics:
    """Signal retained, path lengths and gradient strength of a short stack with or without skips.

    layers 1..100, width 2..256, batch 1..1024; activation relu | tanh |
    sigmoid; preact: the residual form x + W·act(x) (a pure identity bypass)
    rather than act(W·x + x). No normalisation, so examples stay independent
    and the Jacobian is per example.
    """
    check_int("layers", layers, 1, 100)
    check_int("width", width, 2, 256)
    check_int("batch", batch, 1, 1024)
    check_int("seed", seed, 0, 2**31 - 1)
    choice("activation", activation, tuple(ACTIVATIONS))
    cfg = StackConfig(
        depth=layers,
        width=width,
        skip="identity" if skips else "none",
        activation=activation,
        norm="none",
        preact=preact,
        in_shape=(width,),
    )
    with seeded_stack(cfg, seed) as model:
        blocks = [b for _, b in model.named_blocks()]
        x = torch.randn(batch, width)
        body = nn.Sequential(*blocks).eval()
        with torch.no_grad():
            hs, h = [], x
            for block in blocks:
                h = block(h)
                hs.append(h)
            per_layer = tuple(LayerSignal(i + 1, _cos2(x, t)) for i, t in enumerate(hs))
        # Rows of the Jacobian for all examples at once: examples are independent, so d(sum_i y_i)/dx_i = J_i.
        # jac: (width, batch, width)
        jac = torch.autograd.functional.jacobian(lambda v: body(v).sum(0), x, vectorize=True)
        gain = float((jac.pow(2).sum((0, 2)).sqrt() / math.sqrt(width)).mean())
        shortest, mean, paths = path_stats(blocks)
    return BypassMetrics(
        layers=layers,
        width=width,
        skips=skips,
        activation=activation,
        preact=preact,
        signal_retained=per_layer[-1].signal_retained,
        chance=1 / width,
        shortest_path=shortest,
        mean_path=mean,
        paths=paths,
        gradient_strength=gain,
        per_layer=per_layer,
    )
