"""Residual block explorer: the norm after every operation of a real block, as its branch is scaled.

Computed by `skiplab.probes.anatomy.block_anatomy` on a freshly initialised
basic, bottleneck or pre-activation block (He et al. 2015, Fig. 2 and 5;
He et al. 2016) and a standard-normal input.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from skiplab.probes.anatomy import block_anatomy
from skiplab.web.deps import COMPUTE, Engine

router = APIRouter(tags=["block anatomy"])

WIDTH = 16  # channels into and out of the block (the bottleneck works at WIDTH/4 inside)
SEED = 0


class AnatomyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    form: Literal["basic", "bottleneck", "preact"] = Field("basic", description="Block form.")
    scale: float = Field(1.0, ge=0.1, le=2.0, description="Factor s in y = s·F(x) + x.")


class OpNormOut(BaseModel):
    name: str
    op: str
    norm: float
    shape: list[int]


class ScalePointOut(BaseModel):
    scale: float
    residual_norm: float
    sum_norm: float
    out_norm: float
    residual_share: float


class BlockCostOut(BaseModel):
    form: str
    params: int
    flops: int = Field(description="Forward FLOPs per example, 2 per multiply-add.")


class AnatomyOut(BaseModel):
    """`skiplab.probes.anatomy.BlockAnatomy`, with sentences that read its numbers."""

    form: str
    width: int
    scale: float
    zero_init: bool
    x_norm: float
    residual_norm: float
    shortcut_norm: float
    sum_norm: float
    out_norm: float
    branch: list[OpNormOut]
    shortcut: list[OpNormOut]
    sweep: list[ScalePointOut]
    costs: list[BlockCostOut]
    explanation: str
    cost_comparison: str = Field(description="The measured costs of a basic and a bottleneck block in one sentence.")


def anatomy_of(q: AnatomyQuery) -> AnatomyOut:
    d = block_anatomy(form=q.form, width=WIDTH, scale=q.scale, seed=SEED).to_dict()
    return AnatomyOut(**d)


@router.get("/anatomy", response_model=AnatomyOut, responses=COMPUTE, summary="Norms inside one residual block")
async def anatomy(q: Annotated[AnatomyQuery, Query()], engine: Engine) -> AnatomyOut:
    return await engine.run(anatomy_of, q)
