import json

import pytest

from skiplab.probes.anatomy import FORMS, SWEEP, block_anatomy, make_block
from skiplab.probes.cost import count_params


@pytest.mark.parametrize("form", FORMS)
def test_zero_init_block_is_exactly_its_shortcut(form):
    a = block_anatomy(form, zero_init=True)
    assert a.residual_norm == 0.0
    assert a.sum_norm == pytest.approx(a.x_norm, rel=1e-6)
    assert all(p.residual_norm == 0.0 and p.sum_norm == pytest.approx(a.x_norm, rel=1e-6) for p in a.sweep)


@pytest.mark.parametrize("form", FORMS)
def test_every_operation_of_the_branch_is_reported(form):
    a = block_anatomy(form)
    names = [n for n, _ in make_block(form, 16).residual.named_children()]
    assert [o.name for o in a.branch] == ["input", *names]
    assert a.branch[0].norm == a.x_norm and a.shortcut[-1].norm == pytest.approx(a.x_norm)  # identity shortcut
    assert a.branch[-1].norm == pytest.approx(a.residual_norm, rel=1e-6)
    assert a.x_norm > 0 and a.residual_norm > 0
    json.dumps(a.to_dict())


def test_the_sweep_scales_the_branch_linearly():
    a = block_anatomy("preact")
    assert [p.scale for p in a.sweep] == list(SWEEP) and len(SWEEP) == 20 and SWEEP[0] == 0.1 and SWEEP[-1] == 2.0
    one = next(p for p in a.sweep if p.scale == 1.0)
    assert one.residual_norm == pytest.approx(a.residual_norm)
    for p in a.sweep:
        assert p.residual_norm == pytest.approx(p.scale * one.residual_norm, rel=1e-6)
        # the triangle inequality on the addition itself
        assert p.sum_norm <= p.residual_norm + a.shortcut_norm + 1e-4
    shares = [p.residual_share for p in a.sweep]
    assert shares == sorted(shares)
    assert block_anatomy("preact", scale=0.0).sum_norm == pytest.approx(a.shortcut_norm, rel=1e-6)


def test_basic_vs_bottleneck_cost_at_the_same_width():
    a = block_anatomy("basic", width=64)
    basic, bottleneck = a.costs
    assert basic.params == count_params(make_block("basic", 64))
    assert bottleneck.params == count_params(make_block("bottleneck", 64))
    assert bottleneck.flops < basic.flops and bottleneck.params < basic.params
    assert basic.flops == 2 * 2 * 9 * 64 * 64 * 8 * 8  # two 3x3 convolutions, 8x8 pixels, 2 FLOPs per MAC


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(form="dense"), "form must be one of"),
        (dict(width=18), "multiple of 4"),
        (dict(width=0), "width"),
        (dict(scale=2.5), "scale must be a number from 0 to 2"),
        (dict(batch=1), "batch"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        block_anatomy(**kwargs)


def test_the_explanation_reads_the_measured_share():
    from skiplab.probes.anatomy import explain

    a = block_anatomy(zero_init=True)
    assert a.residual_share == 0.0 and "small correction" in a.explanation
    b = block_anatomy(scale=2.0)
    assert b.residual_share == pytest.approx(b.residual_norm / (b.residual_norm + b.shortcut_norm))
    assert "similar size" in explain(1.0, 1.0, 1.0, 1.4, 0.5) and "dominates" in explain(2.0, 3.0, 1.0, 3.2, 0.75)


def test_the_cost_comparison_reads_the_measured_costs():
    from skiplab.probes.anatomy import BlockCost, compare_costs

    a = block_anatomy("bottleneck", width=16)
    basic, bottleneck = a.costs
    text = a.cost_comparison
    assert f"{bottleneck.params:,} parameters" in text and f"{basic.params:,} and {basic.flops:,}" in text
    assert bottleneck.flops < 0.5 * basic.flops and "far cheaper" in text and "about as cheap" not in text
    assert f"{bottleneck.flops / basic.flops:.2g}×" in text
    # The verdict follows the numbers, not a fixed story.
    same = compare_costs((BlockCost("basic", 100, 1000), BlockCost("bottleneck", 90, 1100)), 16, 8)
    assert "about as cheap, 1.1×" in same
    dear = compare_costs((BlockCost("basic", 100, 1000), BlockCost("bottleneck", 300, 3000)), 16, 8)
    assert "costlier, 3×" in dear
    assert "is cheaper" in compare_costs((BlockCost("basic", 1, 1000), BlockCost("bottleneck", 1, 700)), 16, 8)
