"""Stored results: the shipped runs the article shows at once (degradation curves and search, lesion study).

They come from `skiplab.experiments.results.load_results`, which keeps the exact
command, config, seeds, versions and git revision of the runs, so every
figure can say which runs produced it. Only what the page draws is sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from skiplab.experiments.results import load_results
from skiplab.experiments.variants import VariantRow
from skiplab.experiments.zoo import MemoryPoint, ZooRow
from skiplab.web.deps import NOT_FOUND

router = APIRouter(prefix="/results", tags=["stored results"])


class Provenance(BaseModel):
    command: str = Field(description="The command that produced the runs (rerun it to reproduce them).")
    created: str
    git_revision: str | None
    versions: dict[str, Any]
    machine: dict[str, Any] = Field(description="CPU, torch's CPU capability and threads the runs trained with.")
    config: dict[str, Any]


class EpochPoint(BaseModel):
    epoch: int
    train_loss: float | None
    train_error: float | None
    test_error: float | None


class Curve(BaseModel):
    run: str = Field(description="The run's name in the results file, e.g. plain56-s0.")
    kind: str = Field(description="plain | res")
    depth: int
    seed: int
    epochs: list[EpochPoint]


class DegradationRowOut(BaseModel):
    kind: str
    depth: int
    best_train_loss: list[float]
    final_train_error: list[float]
    final_test_error: list[float]


class ComparisonOut(BaseModel):
    kind: str
    shallow: int
    deep: int
    outcomes: list[str] = Field(description="Per seed: worse | same | better (the deeper net against the shallower).")
    deltas: list[float]
    log_ratios: list[float] = Field(description="Per seed: ln(deep / shallow).")
    mean_log_ratio: float
    std_error: float | None
    t_stat: float | None
    t_critical: float | None = Field(description="The threshold |t| must pass (Student's t, n-1 degrees of freedom).")
    ratio: float = Field(description="The deeper net's value as a multiple of the shallower's (geometric mean).")
    summary: str = Field(description="deeper is worse | deeper is better | no measurable difference")


class DegradationOut(BaseModel):
    provenance: Provenance
    seeds: list[int]
    rows: list[DegradationRowOut]
    comparisons: list[ComparisonOut] = Field(description="On best training loss: the verdict.")
    error_comparisons: list[ComparisonOut] = Field(description="On final training error, by the same rule.")
    verdict: str
    rule: str = Field(description="The comparison rule the verdict applies, in words.")
    verdict_recomputed: dict[str, Any] | None = Field(
        None, description="Set when the verdict was recomputed from stored runs: by which command, when, why."
    )
    curves: list[Curve]


def shipped(name: str) -> dict:
    try:
        return load_results(name)
    except ValueError as e:  # not shipped with this install
        raise HTTPException(404, str(e)) from None


def provenance(data: dict) -> Provenance:
    return Provenance(
        **{k: data.get(k) for k in ("command", "created", "git_revision", "versions", "machine", "config")}
    )


def curves(data: dict) -> list[Curve]:
    """Every run's curve, labelled by the row (kind, depth) that lists its run id."""
    row_of = {run_id: row for row in data["rows"] for run_id in row["run_ids"]}
    return [
        Curve(
            run=name,
            kind=row_of[run["run_id"]]["kind"],
            depth=row_of[run["run_id"]]["depth"],
            seed=run["config"]["seed"],
            epochs=[EpochPoint(**{k: e.get(k) for k in EpochPoint.model_fields}) for e in run["epochs"]],
        )
        for name, run in data["runs"].items()
    ]


@functools.cache
def _json(build: Callable[[], BaseModel]) -> bytes:
    """The shipped files do not change while the server runs: each answer is built and serialised once."""
    return build().model_dump_json().encode()


def stored(path: str, model: type[BaseModel], summary: str) -> Callable[[Callable[[], BaseModel]], Callable]:
    """Register `GET path` answering `build()` (a shipped results file's view), built and serialised once."""

    def register(build: Callable[[], BaseModel]) -> Callable[[], BaseModel]:
        async def route() -> Response:
            return Response(_json(build), media_type="application/json")

        route.__name__ = build.__name__.removesuffix("_out")
        router.add_api_route(path, route, response_model=model, responses=NOT_FOUND, summary=summary)
        return build

    return register


@stored("/degradation", DegradationOut, "Stored degradation runs")
def degradation_out() -> DegradationOut:
    data = shipped("degradation")
    return DegradationOut(
        provenance=provenance(data),
        seeds=data["config"]["seeds"],
        rows=data["rows"],
        comparisons=data["comparisons"],
        error_comparisons=data["error_comparisons"],
        verdict=data["verdict"],
        rule=data["rule"],
        verdict_recomputed=data.get("verdict_recomputed"),
        curves=curves(data),
    )


class SearchSettingOut(BaseModel):
    label: str
    command: str = Field(description="The command that trained this setting's runs.")
    config: dict[str, Any]
    rows: list[DegradationRowOut]
    comparisons: list[ComparisonOut]
    error_comparisons: list[ComparisonOut]
    verdict: str
    both_halves: bool = Field(description="Plain deeper is worse AND residual deeper is better, by the rule.")


class DegradationSearchOut(BaseModel):
    provenance: Provenance
    rule: str
    finding: str = Field(description="What the search found, in words (or that no setting showed both halves).")
    found: list[str]
    settings: list[SearchSettingOut]


@stored("/degradation-search", DegradationSearchOut, "Every setting tried in the search for the degradation claim")
def degradation_search_out() -> DegradationSearchOut:
    data = shipped("degradation_search")
    return DegradationSearchOut(
        provenance=provenance(data),
        rule=data["rule"],
        finding=data["finding"],
        found=data["found"],
        settings=data["settings"],
    )


class BlockLesionOut(BaseModel):
    name: str
    kind: str = Field(description="residual (its shortcut remains) | skipped (y = x) | kept (not deletable)")
    accuracy: float | None
    drop: float | None


class LesionStudyOut(BaseModel):
    run: str
    label: str
    kind: str = Field(description="res | plain")
    seed: int
    intact_accuracy: float
    mean_accuracy: float | None
    blocks: list[BlockLesionOut]


class LesionOut(BaseModel):
    provenance: Provenance
    summary: str = Field(description="One sentence per net: intact accuracy and mean accuracy with a block deleted.")
    studies: list[LesionStudyOut]


@stored("/lesion", LesionOut, "Stored lesion study (Veit et al.)")
def lesion_out() -> LesionOut:
    data = shipped("lesion")
    studies, sentences = [], []
    for name, run in data["runs"].items():
        study = run["lesion"]
        kind = "res" if run["config"]["model"].startswith("res") else "plain"
        label = f"{'residual' if kind == 'res' else 'plain'} ({run['config']['model']}, seed {run['config']['seed']})"
        studies.append(
            LesionStudyOut(
                run=name,
                label=label,
                kind=kind,
                seed=run["config"]["seed"],
                intact_accuracy=study["intact_accuracy"],
                mean_accuracy=study["mean_accuracy"],
                blocks=study["blocks"],
            )
        )
        mean = study["mean_accuracy"]
        sentences.append(
            f"{label}: {study['intact_accuracy']:.1%} intact, "
            f"{'—' if mean is None else format(mean, '.1%')} on average with one block deleted."
        )
    return LesionOut(provenance=provenance(data), summary=" ".join(sentences), studies=studies)


class ImagenetOut(BaseModel):
    """`skiplab.experiments.zoo.ZooCosts` as shipped, with what produced it."""

    provenance: Provenance
    rows: list[ZooRow] = Field(description="Zoo ResNets measured at 224x224; top-1 errors as published.")
    plain_published: list[dict[str, Any]] = Field(description="The plain twins' published errors (not measured).")
    memory: list[MemoryPoint] = Field(description="Activation memory per example against input resolution.")
    finding: str
    memory_finding: str


@stored("/imagenet", ImagenetOut, "ImageNet ResNets, DenseNet memory")
def imagenet_out() -> ImagenetOut:
    data = shipped("imagenet")
    return ImagenetOut(
        provenance=provenance(data),
        **{k: data[k] for k in ("rows", "plain_published", "memory", "finding", "memory_finding")},
    )


class VariantCurve(BaseModel):
    variant: str
    seed: int
    train_loss: list[float | None]


class ShortcutVariantsOut(BaseModel):
    """`skiplab.experiments.variants.ShortcutVariantsResult` as shipped: rows, rule, per-run loss curves."""

    provenance: Provenance
    rows: list[VariantRow]
    rule: str
    published_source: str
    curves: list[VariantCurve]


@stored("/shortcut-variants", ShortcutVariantsOut, "He et al. 2016's shortcut variants, trained")
def shortcut_variants_out() -> ShortcutVariantsOut:
    data = shipped("shortcut_variants")
    variant_of = {row["model"]: row["variant"] for row in data["rows"]}
    curves = [
        VariantCurve(
            variant=variant_of[run["config"]["model"]],
            seed=run["config"]["seed"],
            train_loss=[e["train_loss"] for e in run["epochs"]],
        )
        for run in data["runs"].values()
    ]
    return ShortcutVariantsOut(
        provenance=provenance(data),
        rows=data["rows"],
        rule=data["rule"],
        published_source=data["published_source"],
        curves=curves,
    )
