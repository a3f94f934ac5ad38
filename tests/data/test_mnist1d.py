import random

import numpy as np
import torch

from skiplab.data import DATASETS, load_dataset, load_mnist1d
from skiplab.data.mnist1d import _generate


def test_mnist1d_is_generated_locally_with_the_packages_split():
    d = load_mnist1d()
    assert "mnist1d" in DATASETS and d.name == "mnist1d"
    assert d.input_shape == (1, 40) and d.num_classes == 10
    assert len(d.y_train) == 4000 and len(d.y_test) == 1000
    assert set(d.y_train.tolist()) == set(d.y_test.tolist()) == set(range(10))
    assert "make_dataset" in d.source
    x = d.prepare(d.x_train)
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-3


def test_mnist1d_is_the_same_for_every_seed_and_leaves_global_generators_alone():
    np.random.seed(5)
    random.seed(5)
    expected = (np.random.rand(), random.random())
    _generate.cache_clear()  # generate again here: make_dataset seeds both global generators
    np.random.seed(5)
    random.seed(5)
    a = load_dataset("mnist1d", seed=0)
    b = load_dataset("mnist1d", seed=3)
    assert (np.random.rand(), random.random()) == expected
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
