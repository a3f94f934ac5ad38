"""The ensemble view: how many paths of each length n residual blocks offer, and how much gradient each carries.

Veit, Wilber and Belongie 2016: a residual network of n blocks is a
collection of 2^n paths whose lengths are binomially distributed, and most
of the gradient flows through the short ones. Counts from
`skiplab.probes.paths.path_length_distribution`; gradient per length from
`gradient_by_path_length` on a fresh pre-activation residual MLP.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from skiplab.probes.paths import gradient_by_path_length, path_length_distribution
from skiplab.web.deps import COMPUTE, Engine

router = APIRouter(tags=["ensemble view"])

SAMPLES = 4  # paths sampled per length for the gradient measurement
SEED = 0


class PathsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    n: int = Field(12, ge=1, le=40, description="Residual blocks.")


class PathDistributionOut(BaseModel):
    n: int
    counts_str: list[str] = Field(description="counts[k] = C(n, k), exact, as decimal strings.")
    total_str: str
    fractions: list[float]
    mean: float
    std: float


class PathGradientOut(BaseModel):
    length: int
    per_path: float
    paths: int
    total: float
    share: float


class PathGradientsOut(BaseModel):
    blocks: int
    samples: int
    lengths: list[PathGradientOut]
    effective_range: list[int] = Field(description="Narrowest range of lengths carrying 90% of the gradient.")
    mean_length: float


class PathsOut(BaseModel):
    distribution: PathDistributionOut
    gradient: PathGradientsOut


def paths(q: PathsQuery) -> PathsOut:
    dist = path_length_distribution(q.n).to_dict()
    grad = gradient_by_path_length(blocks=q.n, samples=SAMPLES, seed=SEED).to_dict()
    return PathsOut(distribution=PathDistributionOut(**dist), gradient=PathGradientsOut(**grad))


@router.get("/paths", response_model=PathsOut, responses=COMPUTE, summary="Path lengths and their gradient")
async def paths_route(q: Annotated[PathsQuery, Query()], engine: Engine) -> PathsOut:
    return await engine.run(paths, q)
