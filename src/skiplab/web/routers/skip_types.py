"""Skip types at a glance: identity, projection, dense, highway, squeeze-excitation and none, measured.

Numbers from `skiplab.probes.skip_types.compare_skip_types` (same depth, width,
seed and batch for all); the formulas and the advice are the article's prose.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from skiplab.probes.skip_types import SKIP_TYPES_BATCH, compare_skip_types, skip_type_stacks
from skiplab.web.article import tex
from skiplab.web.deps import COMPUTE, Engine
from skiplab.web.schemas import FlowSummaryOut

router = APIRouter(tags=["skip types"])

# skip → (formula in LaTeX, when to use it, where it is used). Prose and citations, not numbers: the numbers
# and the ratings in words come from the probe.
ABOUT: dict[str, tuple[str, str, str]] = {
    "identity": (
        r"y = \mathcal{F}(x) + x",
        "The default wherever shapes match: no parameters, and the gradient reaches earlier blocks directly.",
        "ResNet, ResNeXt, Transformers",
    ),
    "projection": (
        r"y = \mathcal{F}(x) + W_s x",
        "Where channels or resolution change. Used on every block it only adds parameters and memory "
        "(He et al. 2015: option C gained little over B) and gives up the clean gradient path.",
        "ResNet (downsampling blocks), ResNeXt",
    ),
    "dense": (
        r"x_l = H_l([x_0, \ldots, x_{l-1}])",
        "Feature reuse by concatenation: each layer stays narrow, but the inputs grow with depth, so "
        "parameters and memory grow fastest of all; keep blocks short, with transition layers between.",
        "DenseNet, DenseASPP",
    ),
    "highway": (
        r"y = T(x) H(x) + (1 - T(x))\, x",
        "A learned gate on the carry; historically first. The gate doubles the block's weights and can "
        "close the highway.",
        "Highway Networks, early LSTMs",
    ),
    "se": (
        r"y = x + s \odot \mathcal{F}(x)",
        "Channel attention on the residual branch for a few extra parameters; a small, reliable gain in ResNets.",
        "SENet, EfficientNet",
    ),
    "none": (r"y = \mathcal{F}(x)", "The plain baseline: fine when shallow, degrades when deep.", "VGG, AlexNet"),
}


class SkipTypesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    depth: int = Field(4, ge=1, le=32, description="Layers of each conv stack.")
    # At depth 32, width 32 is the widest that the default budget accepts (15 GFLOP; 40 would be 23, over 20):
    # the schema offers only what answers (tests/web/test_hardening.py prices every widget's maximum).
    width: int = Field(16, ge=4, le=32, description="Channels of each conv stack (dense: growth per layer).")


class SkipTypeRowOut(BaseModel):
    skip: str
    formula_mathml: str = Field(description="The block's formula, as MathML.")
    when: str = Field(description="When to use it.")
    used_in: str = Field(description="Architectures that use it.")
    ratings: dict[str, str] = Field(description="params, memory, gradient in words, by the response's rating_rule.")
    params: int
    flops_per_example: int
    activation_bytes_per_example: int
    peak_bytes: int = Field(description="Peak bytes of one forward+backward of the batch.")
    grad_norms: list[float | None]
    grad_summary: FlowSummaryOut


class SkipTypesOut(BaseModel):
    depth: int
    width: int
    input_shape: list[int]
    batch: int
    rows: list[SkipTypeRowOut]
    baseline: str = Field(description="The skip type parameters and memory are rated against.")
    rating_rule: str


def skip_types(q: SkipTypesQuery) -> SkipTypesOut:
    d = compare_skip_types(depth=q.depth, width=q.width).to_dict()
    rows = []
    for row in d["rows"]:
        formula, when, used_in = ABOUT[row["skip"]]
        rows.append(SkipTypeRowOut(**row, formula_mathml=str(tex(formula)), when=when, used_in=used_in))
    return SkipTypesOut(**{**d, "rows": rows})


@router.get("/skip-types", response_model=SkipTypesOut, responses=COMPUTE, summary="Every skip type, measured")
async def skip_types_route(q: Annotated[SkipTypesQuery, Query()], engine: Engine) -> SkipTypesOut:
    stacks = skip_type_stacks(depth=q.depth, width=q.width)
    return await engine.run(skip_types, q, stacks=[(cfg, SKIP_TYPES_BATCH) for cfg in stacks])
