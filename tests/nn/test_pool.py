"""The stack pool: a reused stack is bit for bit a fresh build under the same seed, whatever was done to it."""

from __future__ import annotations

import itertools

import pytest
import torch

from skiplab.nn.models import SKIP_TYPES, StackConfig, build_stack
from skiplab.nn.pool import StackPool, _batch_constant_writes, _InitRecorder, seeded

CONFIGS = [
    StackConfig(3, 4, skip, act, norm, init, pre, shape, num_classes=3)
    for skip, act, norm, init, pre, shape in itertools.product(
        SKIP_TYPES,
        ("relu", "sigmoid"),
        ("batch", "none"),
        ("he", "xavier", "default"),
        (False, True),
        ((12,), (3, 5, 5)),
    )
    if not (len(shape) == 1 and skip in ("dense", "se"))
]


def fresh(cfg: StackConfig, seed: int) -> dict[str, torch.Tensor]:
    with seeded(seed):
        return build_stack(cfg).state_dict()


def misuse(model: torch.nn.Module) -> None:
    """What a careless caller might leave: moved statistics, changed weights, gradients, eval mode."""
    model(torch.randn(4, *model.cfg.in_shape)).sum().backward()
    with torch.no_grad():
        for t in (*model.parameters(), *model.buffers()):
            t.add_(1)
    model.eval()


@pytest.mark.parametrize(
    "cfg", CONFIGS, ids=lambda c: f"{c.skip}-{c.activation}-{c.norm}-{c.init}-{c.preact}-{len(c.in_shape)}d"
)
def test_reused_stack_equals_a_fresh_build(cfg):
    pool = StackPool()
    with pool.stack(cfg, 1) as model:
        misuse(model)
    with pool.stack(cfg, 7) as again:
        assert again is model and pool.builds == 1 and pool.replays == 1
        assert again.training and all(p.grad is None for p in again.parameters())
        got = again.state_dict()
        want = fresh(cfg, 7)
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want)


def test_random_stream_continues_as_after_a_fresh_build_and_the_callers_is_kept():
    cfg = StackConfig(depth=4, width=8, in_shape=(8,))
    pool = StackPool()
    with seeded(3):
        build_stack(cfg)
        want = torch.randn(5)
    torch.manual_seed(123)
    before = torch.randn(3)
    torch.manual_seed(123)
    for _ in range(2):  # a build, then a replay
        with pool.stack(cfg, 3):
            assert torch.equal(torch.randn(5), want)
    assert torch.equal(torch.randn(3), before)
    assert (pool.builds, pool.replays) == (1, 1)


def test_a_stack_in_use_is_not_handed_out_twice():
    cfg = StackConfig(depth=2, width=4, in_shape=(4,))
    pool = StackPool()
    with pool.stack(cfg, 0) as a, pool.stack(cfg, 0) as b:
        assert a is not b
    assert pool.builds == 2
    with pool.stack(cfg, 0) as c, pool.stack(cfg, 0) as d:
        assert {id(c), id(d)} == {id(a), id(b)}


def test_the_pool_keeps_within_its_bytes_and_drops_the_least_recently_used():
    small, other = StackConfig(depth=2, width=4, in_shape=(4,)), StackConfig(depth=3, width=4, in_shape=(4,))
    model = build_stack(small)
    size = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    pool = StackPool(max_bytes=size)
    with pool.stack(small, 0):
        pass
    with pool.stack(other, 0):  # larger than the whole pool: never kept
        pass
    with pool.stack(small, 0):
        pass
    assert (pool.builds, pool.replays) == (2, 1)
    with pool.stack(StackConfig(depth=2, width=4, in_shape=(4,), activation="tanh"), 0):
        pass  # same size: takes the place of `small`
    with pool.stack(small, 0):
        pass
    assert pool.builds == 4


def test_a_construction_that_draws_a_fresh_random_tensor_is_not_replayable():
    with _InitRecorder() as recorder:
        torch.nn.Linear(3, 3)
    assert recorder.replayable and recorder.ops
    with _InitRecorder() as recorder:
        torch.nn.Parameter(torch.randn(3))
    assert not recorder.replayable


def test_batched_constants_give_what_the_ops_in_order_give():
    def construction():
        a, b, c, n = torch.empty(4), torch.empty(4), torch.empty(3), torch.empty(2, dtype=torch.int64)
        a.zero_()
        a.add_(2.0)  # reads a: the zero before it must stay in order
        b.fill_(5.0)
        b.uniform_()  # overwrites b without reading it: the fill is dropped
        c.uniform_()
        c.fill_(1.0)  # the last write: batched at the end
        n.fill_(3)  # an integer fill stays in order
        return a, b, c, n

    with _InitRecorder() as recorder, seeded(0):
        tensors = construction()
    ordered, settings = _batch_constant_writes(recorder.ops)
    assert len(ordered) == 5 and [v for v, _ in settings] == [1.0]
    with seeded(0):
        want = [t.clone() for t in construction()]
    for t in tensors:
        t.fill_(7)
    with seeded(0), torch.no_grad():
        for func, args, kwargs in ordered:
            func(*args, **kwargs)
        for value, ts in settings:
            torch._foreach_zero_(ts)
            torch._foreach_add_(ts, value)
    assert all(torch.equal(t, w) for t, w in zip(tensors, want))
