"""Pitfalls: the identity-shape mismatch and its fixes, post- vs pre-activation, dense memory growth.

He et al. 2015 (sec. 3.3) for the shortcut options; He et al. 2016 for the
pre-activation block; Huang et al. 2017 for dense connectivity.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from skiplab.nn import StackConfig, make_shortcut
from skiplab.probes import measure_cost, stack_cost
from skiplab.probes.gradflow import stack_gradient_flow
from skiplab.web.deps import COMPUTE, Engine
from skiplab.web.schemas import CostOut, GradientFlowOut

router = APIRouter(prefix="/pitfalls", tags=["pitfalls"])

SAMPLE_SIZE = 8  # height and width of the example image pushed through a shortcut


class ShortcutQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    in_channels: int = Field(16, ge=1, le=256, description="Channels entering the block.")
    out_channels: int = Field(32, ge=1, le=256, description="Channels leaving the block.")
    stride: int = Field(2, ge=1, le=4, description="Spatial stride of the block.")
    shortcut: Literal["identity", "zeropad", "projection", "pool", "none"] = Field(
        "identity", description="Shortcut kind (pool: average-pool the skip path, zero-pad new channels)."
    )


class ShortcutOut(BaseModel):
    ok: bool = Field(description="Whether the library could build the shortcut for this change of shape.")
    shortcut: str
    error: str | None = Field(None, description="The library's error, word for word, when it refused.")
    error_type: str | None = None
    module: str | None = Field(None, description="The module the library built (its repr).")
    cost: CostOut | None = Field(None, description="Measured cost of the shortcut alone on one example.")


def shortcut_outcome(q: ShortcutQuery) -> ShortcutOut:
    """Ask `make_shortcut` for the shortcut; report its refusal or what it built and costs."""
    try:
        module = make_shortcut(q.shortcut, q.in_channels, q.out_channels, q.stride)
    except ValueError as e:  # ShapeMismatchError, or zero-padding asked to drop channels: the pitfall, shown
        return ShortcutOut(ok=False, shortcut=q.shortcut, error=str(e), error_type=type(e).__name__)
    cost = measure_cost(module, (q.in_channels, SAMPLE_SIZE, SAMPLE_SIZE))
    return ShortcutOut(ok=True, shortcut=q.shortcut, module=repr(module), cost=CostOut(**cost.to_dict()))


@router.get("/shortcut", response_model=ShortcutOut, responses=COMPUTE, summary="Build a shortcut across a shape")
async def shortcut(q: Annotated[ShortcutQuery, Query()], engine: Engine) -> ShortcutOut:
    return await engine.run(shortcut_outcome, q)


class DenseQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    width: int = Field(16, ge=1, le=64, description="Channels of the stack; the growth rate of the dense one.")
    max_depth: int = Field(8, ge=2, le=32, description="Deepest stack measured (depths 1, 2, 4, ... up to it).")


class DensePoint(BaseModel):
    depth: int
    dense: CostOut
    identity: CostOut


class DenseOut(BaseModel):
    width: int
    input_shape: list[int]
    points: list[DensePoint]


DENSE_INPUT = (3, SAMPLE_SIZE, SAMPLE_SIZE)


def dense_deepest(q: DenseQuery) -> StackConfig:
    """The costliest stack the dense-memory view builds: what its request is priced by."""
    return StackConfig(depth=q.max_depth, width=q.width, skip="dense", in_shape=DENSE_INPUT)


def dense_memory(q: DenseQuery) -> DenseOut:
    """`stack_cost` (measure_cost, once per shape) of a dense and an identity conv stack at doubling depths."""
    in_shape = DENSE_INPUT
    depths = sorted({min(2**k, q.max_depth) for k in range(q.max_depth.bit_length() + 1)})
    points = []
    for d in depths:
        costs = {
            skip: stack_cost(StackConfig(depth=d, width=q.width, skip=skip, in_shape=in_shape))
            for skip in ("dense", "identity")
        }
        points.append(DensePoint(depth=d, **{k: CostOut(**c.to_dict()) for k, c in costs.items()}))
    return DenseOut(width=q.width, input_shape=list(in_shape), points=points)


@router.get("/dense-memory", response_model=DenseOut, responses=COMPUTE, summary="Dense memory growth with depth")
async def dense(q: Annotated[DenseQuery, Query()], engine: Engine) -> DenseOut:
    return await engine.run(dense_memory, q, stacks=[(dense_deepest(q), 2)])


class PreactQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    depth: int = Field(56, ge=2, le=1000, description="Residual blocks in the stack (56: the gradient highway's).")
    activation: Literal["relu", "tanh", "sigmoid"] = "relu"


class PreactOut(BaseModel):
    depth: int
    width: int
    post: GradientFlowOut = Field(description="Post-activation blocks: the activation follows the addition.")
    pre: GradientFlowOut = Field(description="Pre-activation blocks: nothing follows the addition.")


PREACT_WIDTH = 64  # features of the residual MLP stacks compared
PREACT_BATCH = 64  # examples in the probe batch


def preact_stacks(q: PreactQuery) -> dict[str, StackConfig]:
    """The same residual MLP stack in both block forms."""
    return {
        form: StackConfig(depth=q.depth, width=PREACT_WIDTH, skip="identity", activation=q.activation, preact=pre)
        for form, pre in (("post", False), ("pre", True))
    }


def post_vs_pre(q: PreactQuery) -> PreactOut:
    """`stack_gradient_flow` of the same residual MLP stack in both block forms."""
    flows = {form: stack_gradient_flow(cfg, batch=PREACT_BATCH).to_dict() for form, cfg in preact_stacks(q).items()}
    return PreactOut(depth=q.depth, width=PREACT_WIDTH, **{k: GradientFlowOut(**v) for k, v in flows.items()})


@router.get("/preact", response_model=PreactOut, responses=COMPUTE, summary="Post- vs pre-activation gradients")
async def preact(q: Annotated[PreactQuery, Query()], engine: Engine) -> PreactOut:
    return await engine.run(post_vs_pre, q, stacks=[(cfg, PREACT_BATCH) for cfg in preact_stacks(q).values()])
