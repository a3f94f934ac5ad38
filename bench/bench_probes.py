"""Probe speed: gradient flow against a straightforward hook-based baseline, and every probe at its default.

Goals (issue 6), medians on 2 cores: gradient flow of a width-64, batch-64
MLP at depth 100 <= 25 ms and depth 1000 <= 400 ms; CIFAR ResNet-110 with
batch 16 <= 500 ms; every probe at its explainer default <= 50 ms. The
baseline is what one writes first: forward pre-hooks that `retain_grad()` each
block input, `loss.backward()` into `.grad`, one `.item()` per norm, the
process's default thread count and no denormal flushing. Both run in the same
process on the same prebuilt model; ratios are baseline / probe.

Probes at their explainer defaults are timed warm (shape-only costs
remembered: what a running server or notebook sees after the first call) and
cold (those dropped before each call). Every call builds its network anew.

The "under load" section runs the depth-100 case again while a second
process spins on one core, for the probe's own thread choice (1 thread for
an MLP), the probe forced to use every core, and the baseline.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import statistics
import time

import torch
import torch.nn.functional as F

from skiplab.nn import StackConfig, build_stack, create_model
from skiplab.probes.anatomy import block_anatomy
from skiplab.probes.bypass import bypass_metrics
from skiplab.probes.common import auto_threads, tuned
from skiplab.probes.cost import forget_built, forward_flops, measure_cost, saved_activation_bytes
from skiplab.probes.gradflow import gradient_flow, stack_gradient_flow, synthetic_batch
from skiplab.probes.paths import gradient_by_path_length, path_length_distribution
from skiplab.probes.skip_types import compare_skip_types
from skiplab.probes.targets import select_modules


def hook_baseline(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[str, float, float]]:
    targets = select_modules(model)
    inputs: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(module, args):
            t = args[0]
            if not t.requires_grad:
                t = t.detach().requires_grad_()
            t.retain_grad()
            inputs[name] = t
            return (t, *args[1:])

        return hook

    handles = [m.register_forward_pre_hook(keep(n)) for n, m in targets]
    try:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    out = []
    for name, m in targets:
        w = math.sqrt(sum(p.grad.norm().item() ** 2 for p in m.parameters() if p.grad is not None))
        out.append((name, inputs[name].grad.norm().item(), w))
    model.zero_grad(set_to_none=True)
    return out


def median_ms(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1e3, 2)


def _compare(model, x, y, reps: int, **probe_kw) -> dict:
    # The probe as the server runs it: threads by workload, subnormals flushed (both asked for explicitly).
    probe_kw = {"num_threads": auto_threads(x), "flush_denormal": True, **probe_kw}
    probe = median_ms(lambda: gradient_flow(model, x, y, **probe_kw), reps)
    base = median_ms(lambda: hook_baseline(model, x, y), reps)
    # The two agree: same norms from the same network, exactly when both treat subnormal floats alike.
    exact = [la.input_grad_norm for la in gradient_flow(model, x, y, flush_denormal=False).layers]
    theirs = [n for _, n, _ in hook_baseline(model, x, y)]
    agree = all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-37) for a, b in zip(exact, theirs))
    # What flushing changed: the largest true norm that the flushed probe reports differently.
    flushed = [la.input_grad_norm for la in gradient_flow(model, x, y, flush_denormal=True).layers]
    changed = [b for a, b in zip(flushed, exact) if not math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-37)]
    return {
        "probe_ms": probe,
        "baseline_ms": base,
        "speedup": round(base / probe, 2),
        "norms_agree_unflushed": agree,
        "layers": len(exact),
        "layers_changed_by_flushing": len(changed),
        "largest_norm_changed_by_flushing": max(changed) if changed else None,
        "top_layer_norm": exact[-1],
    }


def _ratio(probe_ms: float, baseline_ms: float) -> dict:
    return {"probe_ms": probe_ms, "baseline_ms": baseline_ms, "speedup": round(baseline_ms / probe_ms, 2)}


def _mlp(depth: int, **kw):
    cfg = StackConfig(depth=depth, width=64, **kw)
    torch.manual_seed(0)
    model = build_stack(cfg).train()
    x, y = synthetic_batch(cfg, 64, 0)
    return model, x, y


def _spin(stop) -> None:
    while not stop.is_set():
        pass


def run() -> dict:
    # The machine may be shared: the load average says how busy it was while these numbers were taken.
    out: dict = {"threads_available": torch.get_num_threads(), "load_average_before": os.getloadavg()[0]}
    model, x, y = _mlp(100)
    out["mlp_depth100"] = {**_compare(model, x, y, 21), "goal_ms": 25}
    with tuned(1, flush_denormal=True):
        out["mlp_depth100_end_to_end_ms"] = median_ms(lambda: stack_gradient_flow(StackConfig(depth=100)), 7)
    sig = _mlp(100, activation="sigmoid", norm="none", skip="none")
    out["mlp_depth100_sigmoid_plain"] = _compare(*sig, 11)
    out["mlp_depth1000"] = {**_compare(*_mlp(1000), 5), "goal_ms": 400}
    torch.manual_seed(0)
    resnet = create_model("resnet110").train()
    rx, ry = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    out["resnet110_batch16"] = {**_compare(resnet, rx, ry, 5), "goal_ms": 500}
    out["resnet110_batch16_1_thread_ms"] = median_ms(lambda: gradient_flow(resnet, rx, ry, num_threads=1), 5)

    defaults = {
        "stack_gradient_flow(depth=20)": lambda: stack_gradient_flow(StackConfig(depth=20)),
        "block_anatomy()": lambda: block_anatomy(),
        "bypass_metrics()": lambda: bypass_metrics(),
        "compare_skip_types()": lambda: compare_skip_types(),
        "path_length_distribution(10)": lambda: path_length_distribution(10),
        "gradient_by_path_length()": lambda: gradient_by_path_length(),
    }
    # Warm: shape-only costs remembered (probes.cost), as in a running server or notebook. Cold: dropped first.
    with tuned(1, flush_denormal=True):  # the explainer server's settings
        out["defaults_ms"] = {name: median_ms(fn, 9) for name, fn in defaults.items()}
        out["defaults_cold_ms"] = {
            name: median_ms(lambda fn=fn: (forget_built(), fn()), 5) for name, fn in defaults.items()
        }
    out["defaults_goal_ms"] = 50

    # measure_cost of the explainer's deepest dense stack at one thread (what the server asks for a few small
    # images) against the same two measurements at the process's default thread count.
    dense_shape = (3, 8, 8)
    dense = build_stack(StackConfig(depth=8, width=16, skip="dense", in_shape=dense_shape))
    dx = torch.randn(2, *dense_shape)

    def cost_probe() -> None:
        with tuned(1):
            measure_cost(dense, dense_shape)

    def cost_baseline() -> None:
        dense.eval()
        forward_flops(dense, dx)
        dense.train()
        saved_activation_bytes(dense, dx)

    out["measure_cost_dense_depth8"] = _ratio(median_ms(cost_probe, 9), median_ms(cost_baseline, 9))

    stop = mp.Event()
    spinner = mp.Process(target=_spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        time.sleep(0.2)
        n = torch.get_num_threads()
        out["under_load_measure_cost_dense_depth8"] = _ratio(median_ms(cost_probe, 9), median_ms(cost_baseline, 9))
        out["under_load_mlp_depth100"] = {
            "probe_auto_threads_ms": median_ms(lambda: gradient_flow(model, x, y, num_threads=auto_threads(x)), 21),
            f"probe_{n}_threads_ms": median_ms(lambda: gradient_flow(model, x, y, num_threads=n), 21),
            "baseline_ms": median_ms(lambda: hook_baseline(model, x, y), 21),
        }
    finally:
        stop.set()
        spinner.join()
    out["load_average_after"] = os.getloadavg()[0]
    return out
