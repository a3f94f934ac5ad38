import torch

from skiplab.data import load_dataset, load_digits


def test_digits_shapes_split_and_normalisation():
    d = load_digits(seed=0)
    assert d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert len(d.y_train) + len(d.y_test) == 1797
    assert abs(len(d.y_test) / 1797 - 0.2) < 0.01
    # stratified: every class is in both splits
    assert set(d.y_train.tolist()) == set(d.y_test.tolist()) == set(range(10))
    x = d.prepare(d.x_train)
    assert x.dtype == torch.float32
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-3


def test_split_is_fixed_by_seed_and_disjoint():
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_test, c.x_test)
    train_rows = {tuple(r) for r in a.x_train.flatten(1).tolist()}
    test_rows = [tuple(r) for r in a.x_test.flatten(1).tolist()]
    # digits has a few duplicate images; the split itself must not reuse an index, so overlap stays tiny
    assert sum(r in train_rows for r in test_rows) < 5


def test_load_dataset_rejects_unknown_name():
    try:
        load_dataset("mnist")
    except ValueError as e:
        assert "digits" in str(e) and "mnist" in str(e)
    else:
        raise AssertionError("no error")
