"""Why the shortcut must stay clean: He et al. 2016's shortcut variants, trained on the degradation setting.

He et al. ("Identity Mappings in Deep Residual Networks", 2016, Table 1)
trained ResNet-110 on CIFAR-10 with six ways of combining x and F(x) and found
every change to the identity shortcut hurt: scaling, gating or convolving the
shortcut all stand between the gradient and the earlier layers. This study
trains the same variants (`skiplab.nn.conv1d.SHORTCUT_VARIANTS`) as 1-D ResNets
on MNIST-1D with the degradation experiment's recipe, on several seeds, and
compares each with the identity by the paired rule of `verdict.compare`; it
also measures each variant's gradient flow at initialisation on one batch.
The published errors are shown beside, cited as published, not measured.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from skiplab.data import load_dataset
from skiplab.experiments.pool import run_many
from skiplab.experiments.studies import recipe
from skiplab.experiments.verdict import compare, rule_text
from skiplab.nn import SHORTCUT_VARIANTS, create_model
from skiplab.probes.gradflow import gradient_flow
from skiplab.seeding import seeded
from skiplab.store import RunStore
from skiplab.train.config import TrainConfig

# He et al. 2016, Table 1: ResNet-110 on CIFAR-10, test error (%); None: "fail" (did not converge).
PUBLISHED_ERROR: dict[str, float | None] = {
    "identity": 6.61,
    "scale": 12.35,  # constant scaling, 0.5 on both F(x) and x
    "exclusive_gate": 8.70,  # initial gate bias -6
    "shortcut_gate": 6.91,  # initial gate bias -6
    "conv1x1": 12.22,
    "dropout": None,  # dropout 0.5 on the shortcut
}
PUBLISHED_SOURCE = "He et al. 2016, Identity Mappings in Deep Residual Networks, Table 1 (ResNet-110, CIFAR-10)"
SAYS = {"deeper is worse": "worse than identity", "deeper is better": "better than identity"}
FLOW_BATCH = 256  # MNIST-1D training signals the gradient flow at initialisation is measured on


@dataclass(frozen=True, kw_only=True)
class ShortcutVariantsConfig:
    depth: int = 20
    seeds: tuple[int, ...] = (0, 1, 2)
    variants: tuple[str, ...] = SHORTCUT_VARIANTS
    data: str = "mnist1d"
    epochs: int = 20
    lr: float = 0.1
    warmup_epochs: float = 6.0
    batch_size: int = 128
    width: int | None = None  # the registered nets are width 16
    workers: int = 2
    threads: int = 1
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.depth not in (20, 56):
            raise ValueError(f"depth must be 20 or 56 (the registered variant nets); got {self.depth!r}")
        if not self.variants or self.variants[0] != "identity":
            raise ValueError("variants must start with 'identity', the baseline every other variant is compared with")
        for v in self.variants:
            if v not in SHORTCUT_VARIANTS:
                raise ValueError(f"variant must be one of {', '.join(SHORTCUT_VARIANTS)}; got {v!r}")
        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ValueError(f"seeds must be distinct and at least one; got {self.seeds!r}")
        if self.data != "mnist1d":
            raise ValueError("the shortcut variants are 1-D nets: data must be mnist1d")

    def model(self, variant: str) -> str:
        return f"resnet1d{self.depth}" + ("" if variant == "identity" else f"_{variant}")

    def train_config(self, variant: str, seed: int) -> TrainConfig:
        return recipe(self, self.model(variant), seed)

    def to_dict(self) -> dict:
        return {**asdict(self), "seeds": list(self.seeds), "variants": list(self.variants)}


@dataclass(frozen=True)
class VariantRow:
    variant: str
    model: str
    best_train_loss: list[float]  # per seed
    final_train_error: list[float]
    final_test_error: list[float]
    init_grad_norms: list[float]  # |dL/d(block input)| per block at initialisation, input to output (seed 0)
    init_first_last: float  # first block's norm / last block's
    published_test_error: float | None  # percent, He et al. 2016 (None: failed to converge)
    comparison: dict | None  # against identity on best training loss (verdict.compare), None for identity
    summary: str  # better than identity | worse than identity | no measurable difference | baseline


@dataclass(frozen=True)
class ShortcutVariantsResult:
    config: ShortcutVariantsConfig
    rows: list[VariantRow]
    rule: str
    published_source: str
    wall_seconds: float
    runs: dict[str, dict] = field(repr=False)

    def to_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "rows": [asdict(r) for r in self.rows],
            "rule": self.rule,
            "published_source": self.published_source,
            "wall_seconds": self.wall_seconds,
            "runs": self.runs,
        }


def init_flow(cfg: ShortcutVariantsConfig, variant: str, x, y) -> list[float]:
    """Per-block gradient norms of the freshly initialised net (the training seed's weights) on the batch x, y."""
    with seeded(cfg.seeds[0]):
        model = create_model(cfg.model(variant))
    flow = gradient_flow(model.train(), x, y)
    return [la.input_grad_norm for la in flow.layers]


def shortcut_variants(
    cfg: ShortcutVariantsConfig = ShortcutVariantsConfig(), *, store: RunStore | None = None, on_run=None
) -> ShortcutVariantsResult:
    """Train every variant on every seed (in parallel), compare each with identity, measure its initial flow."""
    jobs = [(f"{v}-s{s}", cfg.train_config(v, s)) for s in cfg.seeds for v in cfg.variants]
    t0 = time.perf_counter()
    runs = run_many(jobs, workers=cfg.workers, store=store, on_run=on_run)
    wall = round(time.perf_counter() - t0, 2)

    def per_seed(v: str, key: str) -> list[float]:
        out = []
        for s in cfg.seeds:
            r = runs[f"{v}-s{s}"]
            value = r["best_train_loss"] if key == "best" else (r["epochs"][-1][key] if r["epochs"] else None)
            out.append(float("inf") if value is None else value)
        return out

    base = per_seed("identity", "best")
    data = load_dataset(cfg.data)  # one batch of training signals, the same for every variant's flow
    x, y = data.prepare(data.x_train[:FLOW_BATCH]), data.y_train[:FLOW_BATCH]
    rows = []
    for v in cfg.variants:
        losses = per_seed(v, "best")
        comparison = None if v == "identity" else compare(v, cfg.depth, cfg.depth, base, losses, alpha=cfg.alpha)
        flow = init_flow(cfg, v, x, y)
        rows.append(
            VariantRow(
                variant=v,
                model=cfg.model(v),
                best_train_loss=losses,
                final_train_error=per_seed(v, "train_error"),
                final_test_error=per_seed(v, "test_error"),
                init_grad_norms=flow,
                init_first_last=flow[0] / flow[-1] if flow[-1] else float("inf"),
                published_test_error=PUBLISHED_ERROR[v],
                comparison=None if comparison is None else comparison.to_dict(),
                summary="baseline" if comparison is None else SAYS.get(comparison.summary, comparison.summary),
            )
        )
    return ShortcutVariantsResult(cfg, rows, variants_rule(cfg.alpha), PUBLISHED_SOURCE, wall, runs)


def variants_rule(alpha: float = 0.05) -> str:
    """The degradation experiment's paired rule (`verdict.rule_text`), worded for a variant against identity."""
    text = (
        rule_text(alpha)
        .replace("Deeper vs shallower net", "Each variant against the identity shortcut")
        .replace("'deeper is worse'", "'worse than identity'")
        .replace("'deeper is better'", "'better than identity'")
        .replace("the log-ratio", "the log-ratio (variant over identity)")
    )
    return text[: text.index(" Training error is compared")]  # only the loss is compared here

