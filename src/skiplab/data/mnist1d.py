"""MNIST-1D (Greydanus 2020): 5,000 one-dimensional signals of length 40, 10 classes, generated locally.

The `mnist1d` package (pinned in pyproject.toml) builds the set from its ten
digit templates with `make_dataset` and its default arguments (seed 42,
4,000 training and 1,000 test signals). Nothing is downloaded and no pickle
is read: `get_dataset`, which fetches a pickled copy, is never called. The
set is the same for every run seed (the seed still fixes weights and batch
order); it is built once per process and kept.
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np
import torch

from skiplab.data.dataset import Dataset

SIGNAL_LENGTH = 40
TRAIN_SIGNALS = 4000
TEST_SIGNALS = 1000


@lru_cache(maxsize=1)
def _generate() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset seeds numpy's and Python's global generators; leave them as they were
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(get_dataset_args())  # the default templates and arguments
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return d["x"], d["y"], d["x_test"], d["y_test"]


def load_mnist1d() -> Dataset:
    """MNIST-1D as (1, 40) float tensors: the package's own 4,000 / 1,000 split, standardised by the training set."""
    x, y, xt, yt = _generate()
    x_train = torch.tensor(x, dtype=torch.float32).unsqueeze(1)
    x_test = torch.tensor(xt, dtype=torch.float32).unsqueeze(1)
    mean, std = x_train.mean().item(), x_train.std().item()
    return Dataset(
        "mnist1d",
        x_train,
        torch.tensor(y, dtype=torch.int64),
        x_test,
        torch.tensor(yt, dtype=torch.int64),
        num_classes=10,
        mean=(mean,),
        std=(std,),
        source="mnist1d.data.make_dataset (default templates and arguments, seed 42), generated locally",
    )
