import math

import pytest
import torch

from skiplab.probes.bypass import _cos2, bypass_metrics


@pytest.mark.parametrize("layers", [1, 5, 9])
def test_path_lengths_with_and_without_skips(layers):
    res = bypass_metrics(layers=layers, skips=True)
    plain = bypass_metrics(layers=layers, skips=False)
    assert (res.shortest_path, res.mean_path, res.paths) == (0, layers / 2, 2**layers)
    assert (plain.shortest_path, plain.mean_path, plain.paths) == (layers, layers, 1)


def test_skips_carry_signal_and_gradient_through_a_sigmoid_stack():
    res = bypass_metrics(activation="sigmoid", skips=True)
    plain = bypass_metrics(activation="sigmoid", skips=False)
    assert res.gradient_strength > 10 * plain.gradient_strength
    assert res.signal_retained > 2 * plain.signal_retained
    assert all(0 <= s.signal_retained <= 1 for s in res.per_layer + plain.per_layer)
    assert len(res.per_layer) == 5 and res.per_layer[-1].signal_retained == res.signal_retained
    assert plain.signal_retained < 3 * plain.chance  # no better than a few times chance


def test_signal_retained_is_cos_squared():
    x = torch.randn(10, 6)
    assert _cos2(x, 3 * x) == pytest.approx(1.0)
    assert _cos2(x, -x) == pytest.approx(1.0)
    assert _cos2(x, torch.zeros_like(x)) == 0.0
    e = torch.eye(2)
    assert _cos2(e, e.flip(1)) == 0.0


def test_gradient_strength_matches_an_independent_jacobian():
    # One example: the RMS singular value of d(output)/d(input) from torch.func, against the probe.
    m = bypass_metrics(layers=3, width=8, batch=1, seed=3)
    from skiplab.nn.stacks import StackConfig, build_stack
    from skiplab.seeding import seeded

    with seeded(3):
        cfg = StackConfig(depth=3, width=8, norm="none", preact=True, in_shape=(8,))
        blocks = [b for _, b in build_stack(cfg).named_blocks()]
        x = torch.randn(1, 8)
    body = torch.nn.Sequential(*blocks)
    jac = torch.func.jacrev(lambda v: body(v[None])[0])(x[0])
    assert m.gradient_strength == pytest.approx(jac.norm().item() / math.sqrt(8), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(layers=0), "layers"),
        (dict(layers=101), "layers"),
        (dict(width=1), "width"),
        (dict(activation="gelu"), "activation"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bypass_metrics(**kwargs)
