"""A synthetic segmentation set with thin parts, generated from a seed: the U-Net experiment's data.

Each image (one channel, `size` x `size`, 32 by default) holds two or three
shapes drawn on textured noise; the target is the shapes' mask. The shapes
are the kinds whose detail a coarse decoder loses: thin bars, rings, crosses
and branching strokes, drawn with stroke widths of one to two pixels (a
pixel belongs to a shape when its centre lies within half the stroke width
of the shape's centre line), so most of a mask is one or two pixels across.

The background is what makes the task more than thresholding: a smooth
random field (bilinear from a 4x4 grid), a sine grating of random
orientation and period, and pixel noise. Shapes add a contrast of 0.8 to 1.2
on top, so a single pixel is ambiguous and the net must read a stroke from
its neighbourhood. Everything comes from one `torch.Generator` seeded by
`seed`: the same seed gives the same images, bit for bit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from skiplab.data.dataset import Dataset, check_held_out

SHAPES: tuple[str, ...] = ("bar", "ring", "cross", "branch")


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column coordinates of every pixel centre."""
    r = torch.arange(size, dtype=torch.float32)
    return torch.meshgrid(r, r, indexing="ij")


def _segment_distance(py: torch.Tensor, px: torch.Tensor, a: tuple[float, float], b: tuple[float, float]):
    """Distance of every pixel centre (py, px) from the segment a-b (points as (y, x))."""
    ay, ax = a
    dy, dx = b[0] - ay, b[1] - ax
    t = ((py - ay) * dy + (px - ax) * dx) / max(dy * dy + dx * dx, 1e-12)
    t = t.clamp(0.0, 1.0)
    return torch.hypot(py - (ay + t * dy), px - (ax + t * dx))


def _strokes(kind: str, g: torch.Generator, size: int) -> tuple[list, tuple | None]:
    """The centre-line segments (and the ring, if any) of one shape of `kind`, placed inside the image."""
    margin = 3.0
    cy, cx = _uniform(g, margin + 4, size - margin - 4), _uniform(g, margin + 4, size - margin - 4)
    angle = _uniform(g, 0.0, math.pi)

    def ray(y, x, theta, length):
        end = (y + length * math.sin(theta), x + length * math.cos(theta))
        return (y, x), (min(max(end[0], margin), size - margin), min(max(end[1], margin), size - margin))

    if kind == "ring":
        return [], (cy, cx, _uniform(g, 3.5, min(9.0, size / 3)))
    if kind == "bar":
        half = _uniform(g, 5.0, size / 2.5)
        return [ray(cy, cx, angle, half), ray(cy, cx, angle + math.pi, half)], None
    if kind == "cross":
        arm = _uniform(g, 4.0, size / 4)
        return [ray(cy, cx, angle + k * math.pi / 2, arm) for k in range(4)], None
    # branch: a stem that forks in two, and one fork forks again
    stem = ray(cy, cx, angle, _uniform(g, 5.0, size / 4))
    fy, fx = stem[1]
    spread = _uniform(g, 0.4, 0.9)
    left = ray(fy, fx, angle + spread, _uniform(g, 4.0, size / 5))
    right = ray(fy, fx, angle - spread, _uniform(g, 4.0, size / 5))
    twig = ray(*left[1], angle + 2 * spread, _uniform(g, 3.0, size / 6))
    return [stem, left, right, twig], None


def draw_shape(kind: str, g: torch.Generator, size: int, width: float) -> torch.Tensor:
    """A boolean (size, size) mask of one shape of `kind` with stroke width `width` (pixels)."""
    py, px = _grid(size)
    segments, ring = _strokes(kind, g, size)
    dist = torch.full((size, size), float("inf"))
    for a, b in segments:
        dist = torch.minimum(dist, _segment_distance(py, px, a, b))
    if ring is not None:
        cy, cx, r = ring
        dist = torch.minimum(dist, (torch.hypot(py - cy, px - cx) - r).abs())
    return dist <= width / 2


def background(g: torch.Generator, size: int) -> torch.Tensor:
    """Textured noise: a smooth random field, a sine grating of random orientation and period, pixel noise."""
    smooth = F.interpolate(torch.randn(1, 1, 4, 4, generator=g), size=(size, size), mode="bilinear", align_corners=True)
    theta, period, phase = _uniform(g, 0, math.pi), _uniform(g, 3.0, 8.0), _uniform(g, 0, 2 * math.pi)
    y, x = _grid(size)
    grating = torch.sin(2 * math.pi * (x * math.cos(theta) + y * math.sin(theta)) / period + phase)
    return 0.4 * smooth[0, 0] + 0.25 * grating + 0.3 * torch.randn(size, size, generator=g)


def segmentation_example(g: torch.Generator, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """One (image (1, size, size) float32, mask (size, size) uint8) pair drawn from `g`."""
    mask = torch.zeros(size, size, dtype=torch.bool)
    image = background(g, size)
    for _ in range(2 + int(torch.randint(0, 2, (), generator=g))):
        kind = SHAPES[int(torch.randint(0, len(SHAPES), (), generator=g))]
        shape = draw_shape(kind, g, size, width=_uniform(g, 1.0, 2.0))
        image = image + _uniform(g, 0.8, 1.2) * shape
        mask |= shape
    return image.unsqueeze(0), mask.to(torch.uint8)


def segmentation(n: int = 1200, size: int = 32, seed: int = 0, held_out: float = 0.25) -> Dataset:
    """`n` images of thin shapes on textured noise with their masks; the last `held_out` share is held out.

    `y_train`/`y_test` are uint8 masks of shape (N, size, size): 1 on a shape, 0 elsewhere. The examples are
    independent draws, so the split is simply the order they were drawn in.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 4:
        raise ValueError(f"n must be an integer >= 4; got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 128:
        raise ValueError(f"size must be an integer from 16 to 128 pixels; got {size!r}")
    check_held_out(held_out)
    g = torch.Generator().manual_seed(int(seed))
    pairs = [segmentation_example(g, size) for _ in range(n)]
    x = torch.stack([p[0] for p in pairs])
    y = torch.stack([p[1] for p in pairs])
    k = max(1, round(n * held_out))
    mean, std = float(x[:-k].mean()), float(x[:-k].std())  # the training split's, as any normaliser would
    return Dataset(
        "shapes",
        x[:-k],
        y[:-k],
        x[-k:],
        y[-k:],
        num_classes=2,
        mean=(mean,),
        std=(std,),
        source=f"synthetic thin shapes ({', '.join(SHAPES)}) on textured noise: n={n}, {size}x{size}, seed={seed}",
    )
