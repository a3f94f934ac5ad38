"""The ImageNet networks of the zoo, measured: "deeper is better" beside the published errors, and DenseNet memory.

He et al. 2015 trained ResNets of 18 to 152 layers on ImageNet and each
deeper net had a lower error, while the plain 34-layer net ended above the
plain 18-layer one. Training them takes weeks on GPUs; what this study can
do here is measure the networks themselves (parameters and forward FLOPs of
the zoo's torchvision-layout ResNets, counted by PyTorch) and put the paper's
published errors beside them, cited as published.

Huang et al. 2017's DenseNet-121 has a third of ResNet-50's parameters, but
every layer concatenates all earlier feature maps, and a straightforward
implementation keeps each concatenation for the backward pass: activation
memory per example grows with the resolution's area and sits above
ResNet-50's. `activation_memory` measures both at several resolutions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from skiplab.nn import create_model
from skiplab.probes import measure_cost

# He et al. 2015, "Deep Residual Learning for Image Recognition": top-1 error (%) on the ImageNet validation
# set, 10-crop testing. Table 2 has the 18/34-layer nets with option A shortcuts (and their plain twins);
# Table 3 the 34-layer net with option B (projections where shapes change, as the zoo builds it) and the
# 50/101/152-layer bottleneck nets.
PUBLISHED_TOP1: dict[str, tuple[float, str]] = {
    "resnet18": (27.88, "He et al. 2015, Table 2 (option A shortcuts)"),
    "resnet34": (24.52, "He et al. 2015, Table 3 (option B shortcuts)"),
    "resnet50": (22.85, "He et al. 2015, Table 3"),
    "resnet101": (21.75, "He et al. 2015, Table 3"),
    "resnet152": (21.43, "He et al. 2015, Table 3"),
}
PUBLISHED_PLAIN_TOP1: dict[int, tuple[float, str]] = {
    18: (27.94, "He et al. 2015, Table 2"),
    34: (28.54, "He et al. 2015, Table 2"),
}
IMAGENET_SHAPE = (3, 224, 224)
MEMORY_MODELS: tuple[str, ...] = ("densenet121", "resnet50")
RESOLUTIONS: tuple[int, ...] = (32, 64, 128, 224)


@dataclass(frozen=True)
class ZooRow:
    name: str
    depth: int
    params: int
    flops_per_example: int  # forward, 2 per multiply-add, at 224x224
    activation_bytes_per_example: int  # saved for backward, training mode, float32, at 224x224
    published_top1_error: float  # percent, as published (not measured here)
    source: str


@dataclass(frozen=True)
class MemoryPoint:
    name: str
    resolution: int
    params: int
    flops_per_example: int
    activation_bytes_per_example: int


@dataclass(frozen=True)
class ZooCosts:
    config: dict  # models, memory_models, resolutions
    rows: tuple[ZooRow, ...]
    plain_published: tuple[dict, ...]  # depth, top1_error, source: the plain twins, published only
    memory: tuple[MemoryPoint, ...]
    finding: str  # the ResNet rows: published errors against depth, measured sizes
    memory_finding: str  # the memory points ("" without both DenseNet-121 and ResNet-50)

    def to_dict(self) -> dict:
        return asdict(self)


def imagenet_resnets(names: tuple[str, ...] = tuple(PUBLISHED_TOP1)) -> tuple[ZooRow, ...]:
    """Parameters, forward FLOPs and activation memory of each zoo ResNet at 224x224, with its published error."""
    rows = []
    for name in names:
        if name not in PUBLISHED_TOP1:
            raise ValueError(f"no published error for {name!r}; choose from {', '.join(PUBLISHED_TOP1)}")
        model = create_model(name)
        cost = measure_cost(model, IMAGENET_SHAPE)
        error, source = PUBLISHED_TOP1[name]
        depth = int(name.removeprefix("resnet"))
        rows.append(
            ZooRow(name, depth, cost.params, cost.flops_per_example, cost.activation_bytes_per_example, error, source)
        )
    return tuple(rows)


def activation_memory(
    names: tuple[str, ...] = MEMORY_MODELS, resolutions: tuple[int, ...] = RESOLUTIONS
) -> tuple[MemoryPoint, ...]:
    """Activation memory per example (saved for backward) of each model at each square input resolution."""
    points = []
    for name in names:
        model = create_model(name)
        for r in resolutions:
            if not 32 <= r <= 512:
                raise ValueError(f"resolution must be between 32 and 512; got {r!r}")
            cost = measure_cost(model, (3, r, r))
            points.append(MemoryPoint(name, r, cost.params, cost.flops_per_example, cost.activation_bytes_per_example))
    return tuple(points)


def _findings(rows: tuple[ZooRow, ...], memory: tuple[MemoryPoint, ...]) -> tuple[str, str]:
    """What the ResNet rows show (published errors, measured sizes), and what the memory points show."""
    deeper_better = all(b.published_top1_error < a.published_top1_error for a, b in zip(rows, rows[1:]))
    first, last = rows[0], rows[-1]
    depth = (
        f"Published: each deeper ResNet has a lower top-1 error ({first.name} {first.published_top1_error}% "
        f"to {last.name} {last.published_top1_error}%)"
        if deeper_better
        else "Published: the errors do not fall with every added depth"
    )
    depth += (
        f"; measured here: {last.name} has {last.params / first.params:.1f}x the parameters and "
        f"{last.flops_per_example / first.flops_per_example:.1f}x the FLOPs of {first.name}."
    )
    top = max(p.resolution for p in memory)
    at_top = {p.name: p for p in memory if p.resolution == top}
    if not {"densenet121", "resnet50"} <= set(at_top):
        return depth, ""
    d, r = at_top["densenet121"], at_top["resnet50"]
    low = min(p.resolution for p in memory if p.name == "densenet121")
    d_low = next(p for p in memory if p.name == "densenet121" and p.resolution == low)
    mem = (
        f"At {top}x{top}, DenseNet-121 saves {d.activation_bytes_per_example / r.activation_bytes_per_example:.2f}x "
        f"ResNet-50's activation memory per image with {d.params / r.params:.2f}x its parameters; from {low}x{low} "
        f"to {top}x{top} its memory grows {d.activation_bytes_per_example / d_low.activation_bytes_per_example:.0f}x "
        f"({(top / low) ** 2:.0f}x the pixels)."
    )
    return depth, mem


def zoo_costs(
    names: tuple[str, ...] = tuple(PUBLISHED_TOP1),
    memory_models: tuple[str, ...] = MEMORY_MODELS,
    resolutions: tuple[int, ...] = RESOLUTIONS,
) -> ZooCosts:
    """The ImageNet ResNets measured beside their published errors, and activation memory against resolution."""
    rows = imagenet_resnets(names)
    memory = activation_memory(memory_models, resolutions)
    plain = tuple({"depth": d, "top1_error": e, "source": s} for d, (e, s) in PUBLISHED_PLAIN_TOP1.items())
    config = {"models": list(names), "memory_models": list(memory_models), "resolutions": list(resolutions)}
    return ZooCosts(config, rows, plain, memory, *_findings(rows, memory))
