"""The stack pool: a reused stack is bit for bit a fresh build under the same seed, whatever was done to it."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from skiplab.nn.models import SKIP_TYPES, StackConfig, build_stack
from skiplab.nn.pool import StackPool, _batch_constant_writes, _InitRecorder, _run_replay, seeded

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
    """What a careless caller might leave: moved statistics, changed weights, gradients, frozen weights, eval mode."""
    model(torch.randn(4, *model.cfg.in_shape)).sum().backward()
    with torch.no_grad():
        for t in (*model.parameters(), *model.buffers()):
            t.add_(1)
    next(model.parameters()).requires_grad_(False)
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
        assert again.training and all(p.grad is None and p.requires_grad for p in again.parameters())
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


def _replayed(construction):
    """Record `construction`, scribble over its tensors, replay the batched form; return (replayed, fresh, parts)."""
    with _InitRecorder() as recorder, seeded(0):
        tensors = construction()
    ordered, settings = _batch_constant_writes(recorder.ops)
    with seeded(0):
        want = [t.clone() for t in construction()]
    for t in tensors:
        t.fill_(7)
    with seeded(0):
        _run_replay(ordered, settings)
    return tensors, want, (len(recorder.ops), len(ordered), [v for v, _ in settings])


def test_batched_constants_give_what_the_ops_in_order_give():
    def construction():
        b, c, d, n = torch.empty(4), torch.empty(3), torch.empty(2), torch.empty(2, dtype=torch.int64)
        b.fill_(5.0)
        b.uniform_()  # overwrites b without reading it: the fill is dropped
        c.uniform_()
        c.fill_(1.0)  # the last write: batched at the end
        d.fill_(-0.0)  # batched it would come back +0.0: kept in order
        n.fill_(3)  # an integer fill: kept in order
        return b, c, d, n

    got, want, (recorded, ordered, constants) = _replayed(construction)
    assert (recorded, ordered, constants) == (6, 4, [1.0])
    assert all(torch.equal(t, w) for t, w in zip(got, want))
    assert math.copysign(1.0, got[2][0].item()) < 0


def test_a_construction_with_an_op_that_reads_is_replayed_in_order():
    def construction():
        a, b = torch.empty(2), torch.empty(2)
        a.zero_()
        a.add_(2.0)  # reads a
        b.copy_(a)  # reads another tensor
        return a, b

    got, want, (recorded, ordered, constants) = _replayed(construction)
    assert (recorded, ordered, constants) == (3, 3, [])
    assert all(torch.equal(t, w) for t, w in zip(got, want))


def test_the_default_dtype_is_part_of_the_key():
    cfg = StackConfig(depth=2, width=4, in_shape=(4,))
    pool = StackPool()
    with pool.stack(cfg, 0) as single:
        assert single.fc.weight.dtype == torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with pool.stack(cfg, 0) as double:
            assert double is not single and double.fc.weight.dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)


def test_probes_in_one_thread_and_seeded_builds_in_another_do_not_mix_their_random_numbers():
    import threading

    from skiplab.probes.gradflow import stack_gradient_flow

    cfg = StackConfig(depth=6, width=16, in_shape=(16,))
    want = stack_gradient_flow(cfg, batch=8, seed=3).to_dict()
    stop, got = threading.Event(), []

    def builder():  # what a training run does when it starts: seed, then build
        while not stop.is_set():
            with seeded(11):
                build_stack(StackConfig(depth=6, width=16, in_shape=(16,), skip="none"))

    other = threading.Thread(target=builder)
    other.start()
    try:
        got = [stack_gradient_flow(cfg, batch=8, seed=3).to_dict() for _ in range(30)]
    finally:
        stop.set()
        other.join()
    assert all(g == want for g in got)
