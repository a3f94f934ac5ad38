"""`skiplab experiment imagenet-costs`: the zoo's ImageNet ResNets measured beside their published errors, and
DenseNet-121's activation memory against resolution."""

from __future__ import annotations

from typing import Annotated

import typer

from skiplab.cli.common import (
    JsonOpt,
    console,
    human_bytes,
    human_count,
    parse_ints,
    print_json,
    print_table,
    user_errors,
)
from skiplab.cli.experiment import OutOpt, WriteOpt, _keep_results, experiment_app
from skiplab.experiments.zoo import MEMORY_MODELS, PUBLISHED_TOP1, RESOLUTIONS, zoo_costs


@experiment_app.command("imagenet-costs")
def imagenet_costs_cmd(
    ctx: typer.Context,
    models: Annotated[str, typer.Option(help="Comma-separated zoo ResNets.")] = ",".join(PUBLISHED_TOP1),
    memory_models: Annotated[str, typer.Option(help="Comma-separated zoo models for the memory curve.")] = ",".join(
        MEMORY_MODELS
    ),
    resolutions: Annotated[str, typer.Option(help="Comma-separated input resolutions (32..512).")] = ",".join(
        map(str, RESOLUTIONS)
    ),
    write_results_: WriteOpt = False,
    results_out: OutOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Parameters and FLOPs of the ImageNet ResNets (published errors beside them) and DenseNet memory."""
    with user_errors():
        names = tuple(m.strip() for m in models.split(",") if m.strip())
        mem = tuple(m.strip() for m in memory_models.split(",") if m.strip())
        result = zoo_costs(names, mem, tuple(parse_ints("--resolutions", resolutions)))
    _keep_results(ctx, "imagenet", result.to_dict(), write_results_, results_out)
    if json_:
        print_json(result.to_dict())
        return
    print_table(
        "ImageNet ResNets: measured at 224x224, top-1 error as published",
        ["model", "params", "FLOPs", "activations", "published top-1 error", "source"],
        [
            [
                r.name,
                human_count(r.params),
                human_count(r.flops_per_example),
                human_bytes(r.activation_bytes_per_example),
                f"{r.published_top1_error}%",
                r.source,
            ]
            for r in result.rows
        ],
    )
    print_table(
        "activation memory per example against resolution",
        ["model", "resolution", "params", "FLOPs", "activations"],
        [
            [
                p.name,
                f"{p.resolution}x{p.resolution}",
                human_count(p.params),
                human_count(p.flops_per_example),
                human_bytes(p.activation_bytes_per_example),
            ]
            for p in result.memory
        ],
    )
    console.print(result.finding)
