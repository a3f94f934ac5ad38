"""Beyond vision: a pretrained transformer's residual stream for the reader's sentence, with lesions.

Numbers from `skiplab.probes.transformer.probe_sentences` (MiniLM, a post-LN
BERT, loaded from its PyPI wheel) and `skiplab.probes.transformer_init.compare_init`
(post-LN vs pre-LN gradients at initialisation; Xiong et al. 2020).

MiniLM takes a few seconds to load the first time a worker uses it, so these
routes have workers of their own (`text_engine`): the load never holds up
another widget's request, and the model stays in memory between requests.
Each request is priced from its token count before it queues.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from skiplab.probes.minilm import ModelMissing
from skiplab.probes.transformer import MAX_CHARS, MAX_SENTENCES, MAX_TOKENS, probe_sentences
from skiplab.probes.transformer_budget import check_probe
from skiplab.probes.transformer_init import InitConfig, compare_init
from skiplab.web.deps import COMPUTE, ComputeEngine, Settings
from skiplab.web.limits import WorkerPool
from skiplab.web.settings import WebSettings

router = APIRouter(prefix="/transformer", tags=["transformer"])

DEFAULT_TEXT = "Skip connections give the signal and its gradient a short road."
LOAD_TIMEOUT_S = 60.0  # the cap of a transformer computation: the first one in a worker includes the model's load

Sentence = Annotated[str, StringConstraints(max_length=MAX_CHARS)]


class StreamQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    text: list[Sentence] = Field(
        [DEFAULT_TEXT],
        min_length=1,
        max_length=MAX_SENTENCES,
        description=f"The reader's sentences (repeat the parameter), each at most {MAX_TOKENS} tokens.",
    )
    lesion: str = Field(
        "",
        max_length=200,
        pattern=r"^[0-9a-z.,]*$",
        description="Sublayers to cut, comma-separated: LAYER.attention or LAYER.ffn, e.g. 0.attention,5.ffn.",
    )
    drop: Literal["branch", "skip"] = Field(
        "branch", description="branch: drop F(x) and keep the skip; skip: keep F(x) and drop the skip."
    )

    @property
    def lesions(self) -> list[str]:
        return [k for k in self.lesion.split(",") if k]


class SublayerOut(BaseModel):
    layer: int
    sublayer: Literal["attention", "ffn"]
    stream_norm_in: float = Field(description="Mean over tokens of |x|, the stream entering.")
    stream_norm_out: float = Field(description="Mean over tokens of |y|, the stream leaving (after its LayerNorm).")
    branch_norm: float = Field(description="Mean over tokens of |F(x)|, as computed.")
    branch_ratio: float = Field(description="Mean over tokens of |F(x)|/|x|.")
    cosine_in_out: float = Field(description="Mean over tokens of cos(x, y).")
    grad_norm: float | None = Field(None, description="|dL/dx| (intact pass only).")


class LesionOut(BaseModel):
    layer: int
    sublayer: str
    drop: str
    key: str


class PairOut(BaseModel):
    a: str
    b: str
    intact: float
    lesioned: float | None


class EffectOut(BaseModel):
    lesions: list[LesionOut]
    embedding_cosine: list[float] = Field(description="Per sentence: cosine of the cut embedding to the intact one.")
    mean_embedding_cosine: float
    pair_similarity: list[float]
    ranking_kept: bool
    rank_correlation: float | None = Field(description="Kendall's tau, intact vs cut pair similarities.")
    streams: list[SublayerOut]


class StreamOut(BaseModel):
    settings: StreamQuery
    model: str
    family: str
    norm_position: Literal["post-LN", "pre-LN"]
    statement: str = Field(description="Where the LayerNorm sits and what the skip passes through, in words.")
    layers: int
    hidden: int
    texts: list[str]
    tokens: list[list[str]]
    hidden_norms: list[float] = Field(description="Mean |h| of each of output_hidden_states.")
    sublayers: list[SublayerOut]
    gradient_loss: str
    pairs: list[PairOut]
    lesion: EffectOut | None
    single_lesions: list[EffectOut]
    pooling: str


class InitFlowOut(BaseModel):
    model: str
    norm_position: str
    layer_grad: list[float]
    stream_grad: list[float]
    last_first_ratio: float
    trend: str


class InitOut(BaseModel):
    config: dict[str, int]
    loss: str
    initialisation: str
    reference: str
    post_ln: InitFlowOut
    pre_ln: InitFlowOut
    agrees_with_reference: bool
    finding: str


def stream_of(q: StreamQuery) -> StreamOut:
    found = probe_sentences(q.text, lesion=q.lesions, drop=q.drop).to_dict()
    return StreamOut(settings=q, **found)


def init_comparison() -> InitOut:
    return InitOut(**compare_init(InitConfig()).to_dict())


def text_engine(settings: WebSettings) -> ComputeEngine:
    """The engine of the transformer routes: one worker of its own (MiniLM loads there once), the same limits."""
    pool = WorkerPool(
        workers=1,
        queue=settings.heavy_queue,
        timeout_s=max(settings.compute_timeout_s, LOAD_TIMEOUT_S),
        retry_after_s=settings.retry_after_s,
        torch_threads=settings.torch_threads,
    )
    return ComputeEngine(settings.cache_size, settings.budget, pool)


def warm_up(engine: ComputeEngine, stop: threading.Event) -> None:
    """Load MiniLM in the transformer worker and compute the default views, so the first reader waits less."""
    for fn, args in ((stream_of, (StreamQuery(),)), (init_comparison, ())):
        if stop.is_set():
            return
        try:
            engine.call(fn, *args)
        except Exception:  # a failing view reports its error when the page asks for it
            return


async def get_text_engine(request: Request) -> ComputeEngine:
    """The transformer routes' engine, without withdrawal when a client goes: its work is a fraction of a second
    once MiniLM is loaded, and stopping it during the load would throw the load away for the next reader."""
    return request.app.state.text_engine


TextEngine = Annotated[ComputeEngine, Depends(get_text_engine)]


@router.get("/stream", response_model=StreamOut, responses=COMPUTE, summary="A pretrained transformer's stream")
async def stream(q: Annotated[StreamQuery, Query()], engine: TextEngine, settings: Settings) -> StreamOut:
    try:  # checked and priced here, from the token count: a bad request is refused before it queues
        await asyncio.to_thread(check_probe, q.text, q.lesions, q.drop, settings.budget)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    except ModelMissing as e:
        raise HTTPException(503, str(e)) from None
    return await engine.run(stream_of, q)


@router.get("/init", response_model=InitOut, responses=COMPUTE, summary="Post-LN vs pre-LN gradients at init")
async def init(engine: TextEngine) -> InitOut:
    return await engine.run(init_comparison)
