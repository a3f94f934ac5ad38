"""An in-memory dataset split into training and held-out examples, with its batch preparation.

Every dataset skiplab trains on fits in memory (digits: 1,797 images;
CIFAR-10: 60,000 images kept as uint8, 184 MB). A `Dataset` holds both
splits as tensors and knows how to turn a batch of stored examples into
network input: convert to float, normalise per channel, and (for CIFAR, on
training batches only) augment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from skiplab.data.augment import pad_crop_flip


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: torch.Tensor = field(repr=False)  # stored examples (float32, or uint8 images for CIFAR)
    y_train: torch.Tensor = field(repr=False)  # int64 class labels
    x_test: torch.Tensor = field(repr=False)  # the held-out split, never trained on
    y_test: torch.Tensor = field(repr=False)
    num_classes: int
    mean: tuple[float, ...] = ()  # per-channel mean subtracted in `prepare` (after scaling to [0, 1] for uint8)
    std: tuple[float, ...] = ()  # per-channel std divided out in `prepare`
    augment: bool = False  # 4-pixel pad, random crop and horizontal flip on training batches (CIFAR)
    source: str = ""  # where the examples came from

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def prepare(self, x: torch.Tensor, train: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Stored examples → network input: float, normalised, augmented when training and `augment` is set."""
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if self.mean:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            x = (x - torch.tensor(self.mean).view(shape)) / torch.tensor(self.std).view(shape)
        if train and self.augment:
            x = pad_crop_flip(x, generator=generator)
        return x

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "train_examples": len(self.y_train),
            "held_out_examples": len(self.y_test),
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "augment": self.augment,
            "source": self.source,
        }


def check_held_out(held_out: float) -> float:
    if not isinstance(held_out, (int, float)) or not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be a fraction between 0 and 1 (exclusive); got {held_out!r}")
    return float(held_out)


def split_by_seed(
    x: torch.Tensor, y: torch.Tensor, held_out: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed, stratified train/held-out split: the same seed always gives the same split."""
    check_held_out(held_out)
    g = torch.Generator().manual_seed(int(seed))
    train_idx, test_idx = [], []
    # Stratified: every class keeps the same share in both splits.
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = max(1, round(len(idx) * held_out))
        test_idx.append(idx[:k])
        train_idx.append(idx[k:])
    tr, te = torch.cat(train_idx).sort().values, torch.cat(test_idx).sort().values
    return x[tr], y[tr], x[te], y[te]
