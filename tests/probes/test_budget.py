import pytest
import torch

from skiplab.nn import SKIP_TYPES, StackConfig, build_stack
from skiplab.probes.budget import Budget, OverBudget, _quadratic, check_budget, price_stack
from skiplab.probes.cost import count_params, forward_flops, saved_activation_bytes

CONV = (1, 8, 8)


def _cases():
    for skip in SKIP_TYPES:
        yield StackConfig(depth=7, width=8, skip=skip, in_shape=CONV)
        if skip not in ("dense", "se"):
            yield StackConfig(depth=9, width=12, skip=skip, in_shape=(20,), preact=skip == "identity")
    yield StackConfig(depth=6, width=8, skip="identity", norm="none", activation="sigmoid")


@pytest.mark.parametrize("cfg", list(_cases()), ids=lambda c: f"{c.skip}-{len(c.in_shape)}d-{c.depth}")
def test_price_matches_the_built_network(cfg):
    batch = 4
    price = price_stack(cfg, batch)
    model = build_stack(cfg)
    x = torch.randn(batch, *cfg.in_shape)
    assert price.params == count_params(model)
    assert price.flops == 3 * forward_flops(model, x)
    assert price.activation_bytes == saved_activation_bytes(model.train(), x)


def test_quadratic_extrapolation_is_exact():
    f = lambda d: 7 + 3 * d + 5 * d * d  # noqa: E731
    assert _quadratic(f(1), f(2), f(3), 1000) == f(1000)


def test_over_budget_says_what_to_lower():
    price = price_stack(StackConfig(depth=1000, width=1024), batch=256)
    with pytest.raises(OverBudget, match="Lower depth, width or batch") as e:
        check_budget(price, Budget())
    assert "parameters" in str(e.value) and "activations" in str(e.value)
    small = price_stack(StackConfig(depth=10, width=16), batch=8)
    assert check_budget(small, Budget()) is small


def test_bad_batch_is_refused():
    with pytest.raises(ValueError, match="batch"):
        price_stack(StackConfig(), 0)
