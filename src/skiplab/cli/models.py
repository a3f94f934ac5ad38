"""`skiplab models list|info`: the registry, with measured parameters, FLOPs and activation memory."""

from __future__ import annotations

from typing import Annotated

import typer

from skiplab.cli.common import JsonOpt, human_bytes, human_count, print_json, print_table, user_errors
from skiplab.nn import get_spec, list_models
from skiplab.probes import count_params, measure_cost

app = typer.Typer(help="List the model zoo and measure a model.", no_args_is_help=True)


@app.command("list")
def list_cmd(
    family: Annotated[str | None, typer.Option(help="Only this family (e.g. cifar-resnet).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Every registered model: family, depth, input shape, parameters."""
    specs = list_models(family)
    if family is not None and not specs:
        families = sorted({s.family for s in list_models()})
        raise typer.BadParameter(
            f"unknown family {family!r}; choose one of {', '.join(families)}", param_hint="--family"
        )
    rows = [
        {
            "name": s.name,
            "family": s.family,
            "depth": s.depth,
            "input_shape": list(s.input_shape),
            "num_classes": s.num_classes,
            "params": count_params(s.create()),
            "description": s.description,
        }
        for s in specs
    ]
    if json_:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} models",
        ["name", "family", "depth", "input", "params", "description"],
        [
            [
                r["name"],
                r["family"],
                r["depth"],
                "x".join(map(str, r["input_shape"])),
                f"{r['params']:,}",
                r["description"],
            ]
            for r in rows
        ],
    )


@app.command("info")
def info_cmd(
    name: Annotated[str, typer.Argument(help="A registered model name (see `skiplab models list`).")],
    json_: JsonOpt = False,
) -> None:
    """Parameters, depth, FLOPs and activation memory per example of one model."""
    with user_errors():
        spec = get_spec(name)
    model = spec.create()
    cost = measure_cost(model, spec.input_shape)
    data = {
        "name": spec.name,
        "family": spec.family,
        "description": spec.description,
        "depth": spec.depth,
        "blocks": len(model.named_blocks()),
        "num_classes": spec.num_classes,
        **cost.to_dict(),
    }
    if json_:
        print_json(data)
        return
    print_table(
        f"{spec.name}: {spec.description}",
        ["measure", "value"],
        [
            ["family", spec.family],
            ["depth (weight layers)", spec.depth],
            ["blocks", data["blocks"]],
            ["input shape", "x".join(map(str, spec.input_shape))],
            ["parameters", f"{cost.params:,}"],
            ["FLOPs / example (forward)", human_count(cost.flops_per_example)],
            ["activation memory / example", human_bytes(cost.activation_bytes_per_example)],
        ],
    )
