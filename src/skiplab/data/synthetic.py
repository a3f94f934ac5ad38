"""Small synthetic classification sets, generated from a seed: quick to train, known difficulty.

- `spirals`: two or more interleaved 2-d spirals (needs a curved boundary);
- `blobs`: Gaussian clusters in `features` dimensions (nearly linearly separable);
- `parity`: the parity of `features` random signs (hard for shallow nets).
"""

from __future__ import annotations

import math

import torch

from skiplab.data.dataset import Dataset, split_by_seed

SYNTHETIC: tuple[str, ...] = ("spirals", "blobs", "parity")


def synthetic(
    name: str = "spirals",
    n: int = 1000,
    num_classes: int = 2,
    features: int = 2,
    noise: float = 0.1,
    seed: int = 0,
    held_out: float = 0.2,
) -> Dataset:
    """`n` examples of a named synthetic task, split into training and held-out by `seed`."""
    if name not in SYNTHETIC:
        raise ValueError(f"synthetic data set must be one of {', '.join(SYNTHETIC)}; got {name!r}")
    if not isinstance(n, int) or n < 10:
        raise ValueError(f"n must be an integer >= 10; got {n!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
    g = torch.Generator().manual_seed(int(seed))
    if name == "spirals":
        y = torch.arange(n) % num_classes
        r = torch.rand(n, generator=g)
        theta = 4 * math.pi * r + 2 * math.pi * y / num_classes
        x = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)
        x = x + noise * torch.randn(n, 2, generator=g)
    elif name == "blobs":
        centres = 2.0 * torch.randn(num_classes, features, generator=g)
        y = torch.arange(n) % num_classes
        x = centres[y] + (1.0 + noise) * torch.randn(n, features, generator=g)
    else:
        if num_classes != 2:
            raise ValueError(f"parity has 2 classes; got num_classes={num_classes}")
        signs = torch.randint(0, 2, (n, features), generator=g) * 2 - 1
        y = ((signs < 0).sum(1) % 2).long()
        x = signs.float() + noise * torch.randn(n, features, generator=g)
    x_train, y_train, x_test, y_test = split_by_seed(x.float(), y.long(), held_out, seed)
    return Dataset(
        name,
        x_train,
        y_train,
        x_test,
        y_test,
        num_classes=num_classes,
        source=f"synthetic {name}: n={n}, classes={num_classes}, features={x.shape[1]}, noise={noise}, seed={seed}",
    )
