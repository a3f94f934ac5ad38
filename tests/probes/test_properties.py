"""Hypothesis properties of the probes: finite values, one norm per layer, same seed same result."""

import math

from hypothesis import given
from hypothesis import strategies as st

from skiplab.nn import StackConfig
from skiplab.probes.anatomy import block_anatomy
from skiplab.probes.bypass import bypass_metrics
from skiplab.probes.gradflow import stack_gradient_flow
from skiplab.probes.paths import path_length_distribution

stacks = st.builds(
    StackConfig,
    depth=st.integers(1, 24),
    width=st.integers(2, 24),
    skip=st.sampled_from(["none", "identity", "projection", "highway"]),
    activation=st.sampled_from(["relu", "tanh", "sigmoid"]),
    norm=st.sampled_from(["none", "batch"]),
    init=st.sampled_from(["he", "xavier", "default"]),
    preact=st.booleans(),
    in_shape=st.just((12,)),
)


def finite(x) -> bool:
    return x is None or (isinstance(x, float | int) and math.isfinite(x))


@given(cfg=stacks, batch=st.integers(2, 16), seed=st.integers(0, 2**16))
def test_gradient_flow_is_finite_one_per_layer_and_seeded(cfg, batch, seed):
    flow = stack_gradient_flow(cfg, batch=batch, seed=seed)
    assert len(flow.layers) == cfg.depth
    assert all(finite(la.input_grad_norm) and la.input_grad_norm >= 0 for la in flow.layers)
    assert all(finite(la.weight_grad_norm) and la.weight_grad_norm >= 0 for la in flow.layers)
    assert all(finite(v) for v in flow.to_dict()["summary"].values() if not isinstance(v, str))
    assert stack_gradient_flow(cfg, batch=batch, seed=seed).to_dict() == flow.to_dict()


@given(
    layers=st.integers(1, 12),
    skips=st.booleans(),
    activation=st.sampled_from(["relu", "tanh", "sigmoid"]),
    preact=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_bypass_metrics_are_bounded_and_seeded(layers, skips, activation, preact, seed):
    m = bypass_metrics(layers=layers, skips=skips, activation=activation, preact=preact, seed=seed)
    assert 0.0 <= m.signal_retained <= 1.0 + 1e-6
    assert len(m.per_layer) == layers
    assert m.shortest_path <= m.mean_path <= layers
    assert m.paths == (2**layers if skips else 1)
    assert finite(m.gradient_strength)
    assert bypass_metrics(layers=layers, skips=skips, activation=activation, preact=preact, seed=seed) == m


@given(
    form=st.sampled_from(["basic", "bottleneck", "preact"]),
    scale=st.floats(0.0, 2.0),
    seed=st.integers(0, 2**16),
)
def test_anatomy_norms_are_finite_and_scale_linearly(form, scale, seed):
    a = block_anatomy(form=form, scale=scale, seed=seed)
    assert all(finite(op.norm) and op.norm >= 0 for op in (*a.branch, *a.shortcut))
    unit = block_anatomy(form=form, scale=1.0, seed=seed)
    # |s·F(x)| = s·|F(x)|: the branch is computed once and scaled
    assert math.isclose(a.residual_norm, scale * unit.residual_norm, rel_tol=1e-5, abs_tol=1e-6)
    assert math.isclose(a.x_norm, unit.x_norm)


@given(n=st.integers(1, 200))
def test_path_counts_sum_to_two_to_the_n(n):
    d = path_length_distribution(n)
    assert sum(d.counts) == 2**n == d.total
    assert list(d.counts) == [math.comb(n, k) for k in range(n + 1)]
