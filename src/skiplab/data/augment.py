"""CIFAR augmentation as in He et al. 2015, sec. 4.2: pad 4 pixels, take a random 32x32 crop, flip half.

Done on a whole batch of tensors at once (no per-image Python loop), driven by
an explicit `torch.Generator` so that a fixed seed gives the same crops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_crop_flip(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly shifted (zero padding of `pad`) and horizontally flipped copies of a batch (N, C, H, W)."""
    if x.dim() != 4:
        raise ValueError(f"pad_crop_flip needs a batch of images (N, C, H, W); got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    # Gather each image's window through index arithmetic: rows dy..dy+h, columns dx..dx+w (reversed if flipped).
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = dx[:, None] + torch.arange(w)[None, :]
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(n)[:, None, None, None]
    chans = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch, chans, rows, cols]
