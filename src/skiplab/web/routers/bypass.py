"""Highway bypass: signal retained, path lengths and gradient strength of a short stack, with or without skips.

Computed by `skiplab.probes.bypass.bypass_metrics` on a real fully connected
stack (He et al. 2016's pure identity bypass when skips are on).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from skiplab.probes.bypass import bypass_metrics
from skiplab.web.deps import COMPUTE, Engine

router = APIRouter(tags=["highway bypass"])

WIDTH = 64  # features of every layer
SEED = 0


class BypassQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    layers: int = Field(10, ge=1, le=50, description="Layers in the stack.")
    skips: bool = Field(True, description="Identity skip connections around every layer.")
    activation: Literal["sigmoid", "tanh", "relu"] = "sigmoid"


class LayerSignalOut(BaseModel):
    layer: int
    signal_retained: float


class BypassOut(BaseModel):
    """`skiplab.probes.bypass.BypassMetrics`."""

    layers: int
    width: int
    skips: bool
    activation: str
    preact: bool
    signal_retained: float = Field(description="Mean cos²(input, output): share of the output along the input.")
    chance: float = Field(description="What an output unrelated to the input scores (1/width).")
    shortest_path: int
    mean_path: float
    paths: int
    paths_str: str = Field(description="`paths` as a decimal string (exact beyond 2^53).")
    gradient_strength: float | None = Field(description="RMS singular value of d(output)/d(input); 1 = identity.")
    per_layer: list[LayerSignalOut]


def bypass(q: BypassQuery) -> BypassOut:
    d = bypass_metrics(layers=q.layers, skips=q.skips, activation=q.activation, width=WIDTH, seed=SEED).to_dict()
    return BypassOut(**d, paths_str=str(d["paths"]))


@router.get("/bypass", response_model=BypassOut, responses=COMPUTE, summary="The highway bypass, measured")
async def bypass_route(q: Annotated[BypassQuery, Query()], engine: Engine) -> BypassOut:
    return await engine.run(bypass, q)
