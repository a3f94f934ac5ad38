"""The handwritten digits that scikit-learn ships (UCI optdigits test set): 1,797 8x8 images, 10 classes.

Embedded in scikit-learn, so it needs no download; it is the default data set
of every skiplab experiment. Pixels (0..16) are scaled to [0, 1] and
standardised with the training split's mean and standard deviation.
"""

from __future__ import annotations

import torch

from skiplab.data.dataset import Dataset, split_by_seed


def load_digits(seed: int = 0, held_out: float = 0.2) -> Dataset:
    """Digits as 1x8x8 float tensors, split by `seed` into training and `held_out` examples (stratified)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    x_train, y_train, x_test, y_test = split_by_seed(x, y, held_out, seed)
    mean, std = x_train.mean().item(), x_train.std().item()
    return Dataset(
        "digits",
        x_train,
        y_train,
        x_test,
        y_test,
        num_classes=10,
        mean=(mean,),
        std=(std,),
        source=f"sklearn.datasets.load_digits, held-out {held_out:g}, split seed {seed}",
    )
