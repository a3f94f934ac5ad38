"""Seeded scopes: a network built inside depends on the seed alone, and the caller's random state survives."""

import threading

import torch

from skiplab.nn.stacks import StackConfig, build_stack
from skiplab.seeding import seeded


def test_same_seed_same_weights_and_the_callers_stream_continues():
    cfg = StackConfig(depth=3, width=8, in_shape=(8,))
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    with seeded(1):
        a = build_stack(cfg).state_dict()
    with seeded(1):
        b = build_stack(cfg).state_dict()
    assert torch.equal(torch.rand(3), expected_next)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with seeded(2):
        c = build_stack(cfg).state_dict()
    assert not torch.equal(a["fc.weight"], c["fc.weight"])


def test_probes_in_one_thread_and_seeded_builds_in_another_do_not_mix_their_random_numbers():
    from skiplab.probes.gradflow import stack_gradient_flow

    cfg = StackConfig(depth=6, width=16, in_shape=(16,))
    want = stack_gradient_flow(cfg, batch=8, seed=3).to_dict()
    stop = threading.Event()

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
