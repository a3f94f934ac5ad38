"""Gradient highway: per-layer gradient norms of a plain and a residual stack, side by side.

Both come from `skiplab.probes.gradflow.stack_gradient_flow` (one real
backward pass each, same seed), the measurement behind He et al. 2016's
eq. 5: with an identity shortcut the gradient reaching layer l keeps a term
equal to the gradient at the top.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from skiplab.nn import StackConfig
from skiplab.probes.highway import compare_highways
from skiplab.web.deps import COMPUTE, Engine
from skiplab.web.schemas import FlowSummaryOut, GradientFlowOut

router = APIRouter(tags=["gradient flow"])

WIDTH = 64  # features per layer of the probed MLP
BATCH = 64  # examples in the probe batch
SEED = 0


class GradFlowQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    depth: int = Field(56, ge=2, le=1000, description="Layers in the stack.")
    activation: Literal["relu", "tanh", "sigmoid"] = "relu"
    norm: Literal["batch", "none"] = "batch"
    init: Literal["he", "xavier", "default"] = "he"
    preact: bool = Field(False, description="Pre-activation blocks (norm-act-weight, nothing after the add).")


class RangedSummaryOut(FlowSummaryOut):
    """`skiplab.probes.gradflow.FlowSummary` with its counts of norms float32 could not hold."""

    overflowed: int = Field(description="Norms that overflowed float32 (inf or nan): shown as no number.")
    underflowed: int = Field(description="Norms that underflowed to exactly 0 in float32.")


class HighwayFlowOut(GradientFlowOut):
    summary: RangedSummaryOut
    weight_summary: RangedSummaryOut


class GradFlowOut(BaseModel):
    settings: GradFlowQuery
    width: int
    batch: int
    seed: int
    plain: HighwayFlowOut
    residual: HighwayFlowOut
    note: str | None = Field(None, description="Where the measurement contradicts the folk story, say so.")


def stacks(q: GradFlowQuery) -> list[StackConfig]:
    """The plain and the residual stack the widget compares."""
    return [
        StackConfig(
            depth=q.depth, width=WIDTH, skip=skip, activation=q.activation, norm=q.norm, init=q.init, preact=q.preact
        )
        for skip in ("none", "identity")
    ]


def gradient_highway(q: GradFlowQuery) -> GradFlowOut:
    found = compare_highways(*stacks(q), batch=BATCH, seed=SEED).to_dict()
    return GradFlowOut(settings=q, width=WIDTH, batch=BATCH, seed=SEED, **found)


@router.get("/gradflow", response_model=GradFlowOut, responses=COMPUTE, summary="Plain vs residual gradient flow")
async def gradflow(q: Annotated[GradFlowQuery, Query()], engine: Engine) -> GradFlowOut:
    return await engine.run(gradient_highway, q, stacks=[(cfg, BATCH) for cfg in stacks(q)])
