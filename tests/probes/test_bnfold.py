"""Eval-mode BatchNorm folded into the layer before it: the same function, on the zoo and on a user's model."""

import pytest
import torch
from torch import nn
from torch.func import functional_call

from skiplab.nn import get_spec
from skiplab.probes.bnfold import fold_batchnorm
from skiplab.probes.landscape import loss_landscape
from skiplab.probes.weightspace import trainable
from tests.probes.test_landscape import _trained_like


class Branchy(nn.Module):
    """A linear layer → BN (foldable), and a convolution whose output feeds a BN and a skip (not foldable)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 6, bias=False)
        self.bn_fc = nn.BatchNorm1d(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        h = self.conv(x)
        h = torch.relu(self.bn(h)) + h  # the convolution's output is used twice
        return self.head(torch.relu(self.bn_fc(self.fc(h.mean(2)))))


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 3, 3)
        self.bn = nn.BatchNorm1d(3)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        h = self.bn(self.conv(x))
        if h.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            h = torch.relu(h)
        return self.head(h.mean(2))


@pytest.mark.parametrize(("name", "shape"), [("resnet1d20", (6, 1, 40)), ("resnet20", (4, 3, 32, 32))])
def test_folded_zoo_nets_compute_the_same_function(name, shape):
    torch.manual_seed(0)
    x = torch.randn(*shape)
    model = _trained_like(get_spec(name).create(), x)
    folded = fold_batchnorm(model)
    assert folded is not None and len(folded.folds) == sum(isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)
                                                           for m in model.modules())  # fmt: skip
    with torch.no_grad():
        expect = model(x)
        got = functional_call(folded.module, (folded.weights(trainable(model)), dict(folded.module.named_buffers())),
                              (x,))  # fmt: skip
    torch.testing.assert_close(got, expect, rtol=1e-4, atol=1e-5)


def test_only_a_bn_that_alone_reads_its_layer_is_folded():
    torch.manual_seed(1)
    x = torch.randn(8, 2, 5)
    model = _trained_like(Branchy(), x)
    folded = fold_batchnorm(model)
    assert [(f.layer, f.bn) for f in folded.folds] == [("fc", "bn_fc")]
    with torch.no_grad():
        got = functional_call(folded.module, (folded.weights(trainable(model)), dict(folded.module.named_buffers())),
                              (x,))  # fmt: skip
        torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-6)


def test_a_model_that_does_not_trace_is_evaluated_as_it_is():
    torch.manual_seed(2)
    x, y = torch.randn(6, 1, 8), torch.randint(0, 2, (6,))
    model = _trained_like(Untraceable(), x)
    assert fold_batchnorm(model) is None
    land = loss_landscape(model, (x, y), xs=[-0.5, 0.0, 0.5], ys=[-0.5, 0.0, 0.5])
    assert land.folded_bn == 0 and land.rows[1].loss[1] == land.base_loss


def test_a_folded_plane_matches_the_unfolded_one():
    torch.manual_seed(3)
    x, y = torch.randn(8, 1, 40), torch.randint(0, 10, (8,))
    model = _trained_like(get_spec("plain1d20").create(), x)
    grid = [-0.5, 0.0, 0.5]
    folded = loss_landscape(model, (x, y), xs=grid, ys=grid, seed=4)
    plain = loss_landscape(model, (x, y), xs=grid, ys=grid, seed=4, fold_bn=False)
    assert folded.folded_bn == 19 and plain.folded_bn == 0
    for a, b in zip(folded.rows, plain.rows):
        assert a.loss == pytest.approx(b.loss, rel=1e-5)
