"""Loss landscapes: a 21x21 plane and a 51-point line around the shipped 56-layer plain net, against a plain loop.

Goals (issue 16): the plane on one held-out batch of 256 signals under 10 s
on 2 cores with its first row under 1 s, and the achieved GFLOP/s set against
the peak float32 matmul rate measured in the same run; the line under 1 s.
The reference is the straightforward loop of Li et al.'s code: for each
point, copy θ + αδ + βη into the model's parameters, then evaluate. It runs
on the plane's first three rows (63 points) and is compared per point.
`points_per_call` > 1 (vmap over stacked weights) is measured on one row.
Three ways of using the cores are measured in the same run: points in one
thread per core, each forward on one torch thread (what the server and the
CLI do); one thread alone; and one point at a time with every core inside
each forward (torch's intra-op threads).
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F

from bench.bench_train import peak_matmul_gflops
from skiplab.experiments.landscape import load_subject, read_index, subject_batch
from skiplab.experiments.landscape_study import line_of, plane_positions
from skiplab.probes.common import threads, tuned, usable_cores
from skiplab.probes.cost import forward_flops
from skiplab.probes.landscape import LandscapeRow, filter_normalized_direction, landscape_stream, trainable

GRID = 21
LOOP_ROWS = 3
EXAMPLES = 256


def straightforward(model, x, y, xs, ys, d1, d2) -> tuple[float, list[float]]:
    """Li et al.'s way: write each point's weights into the model, evaluate; (seconds, losses)."""
    net = copy.deepcopy(model).eval()
    base = {n: p.detach().clone() for n, p in net.named_parameters()}
    losses = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in ys:
            for a in xs:
                for n, p in net.named_parameters():
                    p.copy_(base[n] + a * d1[n] + b * d2[n])
                logits = net(x)
                losses.append(F.cross_entropy(logits, y).item())
                (logits.argmax(1) == y).float().mean().item()
    return time.perf_counter() - t0, losses


def _plane(model, batch, xs, ys, **options) -> tuple[float, float, list]:
    t0 = time.perf_counter()
    first, rows = None, []
    for item in landscape_stream(model, batch, xs=xs, ys=ys, seed=0, **options):
        if isinstance(item, LandscapeRow):
            first = first if first is not None else time.perf_counter() - t0
            rows.append(item.loss)
    return time.perf_counter() - t0, first, rows


def _peak(cores: int) -> float:
    """The float32 matmul peak of `cores` cores, in GFLOP/s, the torch thread count restored after."""
    with threads(cores):
        return peak_matmul_gflops()


def run() -> dict:
    """The server's way (points in one thread per core, each forward on one torch thread), one thread alone, and
    every core inside each forward (torch's intra-op threads), in the same run."""
    cores = usable_cores()
    ours = measure(point_threads=cores)
    one = measure(point_threads=1)
    intra = measure(point_threads=1, torch_threads=cores)
    keep = ("plane_s", "first_row_s", "plane_gflops", "peak_matmul_gflops", "fraction_of_peak", "ms_per_point")
    keep += ("loop_ms_per_point", "line_s")
    return {
        **ours,
        # Like with like: ours and the loop each on one thread; ours on every core against the loop on every core.
        "speedup_vs_loop_on_one_thread": round(one["loop_ms_per_point"] / one["ms_per_point"], 2),
        "speedup_vs_loop_on_every_core": round(intra["loop_ms_per_point"] / ours["ms_per_point"], 2),
        "one_thread": {k: one[k] for k in keep},
        "intra_op_threads": {k: intra[k] for k in (*keep, "torch_threads")},
        "speedup_vs_one_thread": round(one["plane_s"] / ours["plane_s"], 2),
        "line_speedup_vs_one_thread": round(one["line_s"] / ours["line_s"], 2),
    }


def measure(point_threads: int, torch_threads: int = 1) -> dict:
    """point_threads: points evaluated at once, a thread each; torch_threads: intra-op threads inside each forward.
    On a shared 2-core machine a second intra-op thread stalls whenever another process holds a core (measured
    0.9 s a point with 2 threads against 0.1 s with one while a training run held the other core); threads of
    their own, one per point, share what is left instead."""
    seed = read_index().seeds[0]
    subject = load_subject("plain", 56, seed)
    model = subject.model
    x, y = subject_batch(subject.data, "test", EXAMPLES)
    xs = plane_positions(GRID, 1.0)
    out: dict = {
        "net": subject.name,
        "examples": EXAMPLES,
        "grid": GRID,
        "point_threads": point_threads,
        "torch_threads": torch_threads,
        "cores": point_threads * torch_threads,
    }
    cores = point_threads * torch_threads
    with tuned(torch_threads, flush_denormal=True):
        peaks = [_peak(cores)]
        flops = forward_flops(model, x)
        seconds, first, rows = _plane(model, (x, y), xs, xs, threads=point_threads)
        points = GRID * GRID + 1  # and the centre, evaluated once more as the base
        g = torch.Generator().manual_seed(0)
        weights = trainable(model)
        d1, d2 = filter_normalized_direction(weights, g), filter_normalized_direction(weights, g)
        loop_s, loop_losses = straightforward(model, x, y, xs, xs[:LOOP_ROWS], d1, d2)
        vmap_s, _, _ = _plane(model, (x, y), xs, xs[:1], points_per_call=GRID)  # one row, its points stacked
        line = line_of(subject, points=51, split="test", examples=EXAMPLES, threads=point_threads)
        same = rows[:2] == _plane(model, (x, y), xs, xs[:2])[2]  # the first two rows, one point at a time
        peaks.append(_peak(cores))
    per_point = seconds / points
    loop_per_point = loop_s / (LOOP_ROWS * GRID)
    ours = [v for row in rows[:LOOP_ROWS] for v in row]
    out.update(
        {
            "flops_per_point": flops,
            "plane_tflop": round(points * flops / 1e12, 3),
            "plane_s": round(seconds, 2),
            "first_row_s": round(first, 3),
            "plane_gflops": round(points * flops / seconds / 1e9, 1),
            "peak_matmul_gflops": round(max(peaks), 1),
            "peak_matmul_gflops_runs": [round(p, 1) for p in peaks],
            "fraction_of_peak": round(points * flops / seconds / 1e9 / max(peaks), 3),
            "ms_per_point": round(1000 * per_point, 1),
            "loop_ms_per_point": round(1000 * loop_per_point, 1),
            "speedup_vs_loop": round(loop_per_point / per_point, 2),
            "loop_max_rel_diff": max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(ours, loop_losses)),
            "vmap_ms_per_point": round(1000 * vmap_s / (GRID + 1), 1),
            "line_points": len(line.xs),
            "line_s": round(line.seconds, 2),
            "same_as_one_at_a_time": same,
            "goals": {"plane_s": 10.0, "first_row_s": 1.0, "line_s": 1.0},
        }
    )
    return out
