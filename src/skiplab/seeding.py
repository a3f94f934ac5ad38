"""Seeded scopes for the process's CPU random generator.

Module constructors and `torch.nn.init` draw from one generator per process
(`torch.default_generator`). `seeded(seed)` seeds it for a block and gives the
caller's random state back afterwards, so a network built inside depends on
the seed alone. Whoever seeds it and draws from it holds one lock: a probe in
one thread and a training run starting in another cannot interleave their
draws.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_LOCK = threading.RLock()


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with the CPU generator seeded by `seed`, then restore the caller's random state.

    Only the CPU generator: every network here is initialised on the CPU,
    and `torch.manual_seed` also queues a seeding of every accelerator
    backend, formatting a stack trace each time (about 1 ms a call).
    """
    with _LOCK:
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(seed)
        try:
            yield
        finally:
            generator.set_state(state)
