"""Response models shared by several routers: typed mirrors of the library's `to_dict()`."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CostOut(BaseModel):
    """`skiplab.probes.cost.Cost`: what one example costs."""

    params: int
    flops_per_example: int = Field(description="Forward pass, 2 FLOPs per multiply-add.")
    activation_bytes_per_example: int = Field(description="Saved for backward in training mode, float32.")
    input_shape: list[int]
    batch: int = Field(2, description="Examples the measurement ran on.")
    peak_bytes: int | None = Field(None, description="Peak bytes of one forward+backward of the batch, if measured.")


class LayerGradientOut(BaseModel):
    name: str
    input_grad_norm: float | None = Field(description="|dL/d(layer input)|, over the batch; null if not finite.")
    weight_grad_norm: float | None = Field(description="|dL/d(layer weights)|; null if not finite.")
    params: int


class FlowSummaryOut(BaseModel):
    count: int
    min: float | None
    max: float | None
    variance: float | None
    log10_variance: float | None
    first_last_ratio: float | None = Field(description="First layer's norm over the last's: >1 grows toward the input.")
    growth_per_layer: float | None


class GradientFlowOut(BaseModel):
    """`skiplab.probes.gradflow.GradientFlow`: one backward pass, layer by layer."""

    layers: list[LayerGradientOut]
    summary: FlowSummaryOut
    weight_summary: FlowSummaryOut
    loss: float | None
