import pytest
import torch

from skiplab.data import SYNTHETIC, synthetic


@pytest.mark.parametrize("name", SYNTHETIC)
def test_each_synthetic_set_is_seeded_and_labelled(name):
    a = synthetic(name, n=200, seed=1)
    b = synthetic(name, n=200, seed=1)
    assert torch.equal(a.x_train, b.x_train)
    assert len(a.y_train) + len(a.y_test) == 200
    assert set(a.y_train.tolist()) == set(range(a.num_classes))
    assert not torch.equal(a.x_train, synthetic(name, n=200, seed=2).x_train)


def test_blobs_are_learnable_by_a_linear_classifier():
    d = synthetic("blobs", n=400, num_classes=3, features=5, noise=0.0, seed=0)
    # nearest class mean on the training split classifies the held-out split well above chance
    means = torch.stack([d.x_train[d.y_train == c].mean(0) for c in range(3)])
    pred = torch.cdist(d.x_test, means).argmin(1)
    assert (pred == d.y_test).float().mean() > 0.7


@pytest.mark.parametrize(
    "kwargs, word", [({"name": "moons"}, "synthetic"), ({"n": 3}, "n must"), ({"num_classes": 1}, "num_classes")]
)
def test_bad_arguments_name_the_option(kwargs, word):
    with pytest.raises(ValueError, match=word):
        synthetic(**kwargs)
