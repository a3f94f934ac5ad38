"""`skiplab probe ...`: measure what skip connections do, as tables or `--json` (thin adapters over skiplab.probes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer

from skiplab.cli.common import (
    JsonOpt,
    exact_or_scientific,
    human_bytes,
    human_count,
    print_json,
    print_table,
    user_errors,
)
from skiplab.cli.probe_transformer import transformer_cmd
from skiplab.nn import StackConfig, get_spec
from skiplab.probes.anatomy import block_anatomy
from skiplab.probes.bypass import bypass_metrics
from skiplab.probes.cost import measure_cost
from skiplab.probes.gradflow import FlowSummary, gradient_flow, stack_gradient_flow
from skiplab.probes.lesion import lesion_study
from skiplab.probes.paths import gradient_by_path_length, path_length_distribution
from skiplab.probes.skip_types import compare_skip_types
from skiplab.train.trained import load_trained

app = typer.Typer(help="Measure what skip connections do, on real networks.", no_args_is_help=True)
app.command("transformer")(transformer_cmd)

SeedOpt = Annotated[int, typer.Option(help="Seed of the network's initialisation and of the synthetic batch.")]


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def _summary_rows(s: FlowSummary) -> list[list[str]]:
    d = s.to_dict()
    return [[k.replace("_", " "), _g(d[k]) if isinstance(d[k], float | None) else str(d[k])] for k in d]


@app.command("gradflow")
def gradflow_cmd(
    model: Annotated[str | None, typer.Option(help="A registered model (e.g. resnet56) instead of a stack.")] = None,
    depth: Annotated[int, typer.Option(help="Stack depth, 1..1000 layers.")] = 56,
    width: Annotated[int, typer.Option(help="Stack width (features).")] = 64,
    skip: Annotated[str, typer.Option(help="none | identity | projection | highway.")] = "identity",
    activation: Annotated[str, typer.Option(help="relu | tanh | sigmoid.")] = "relu",
    norm: Annotated[str, typer.Option(help="none | batch.")] = "batch",
    init: Annotated[str, typer.Option(help="he | xavier | default.")] = "he",
    preact: Annotated[bool, typer.Option("--preact/--postact", help="Pre- or post-activation blocks.")] = False,
    batch: Annotated[int, typer.Option(help="Examples in the batch (a registry model: 8 if not given).")] = 0,
    seed: SeedOpt = 0,
    json_: JsonOpt = False,
) -> None:
    """Per-block gradient norms of one real backward pass, for a zoo stack or a registered model."""
    with user_errors():
        if model is not None:
            spec = get_spec(model)
            n = batch or 8
            g = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)
            net = spec.create().train()
            x = torch.randn(n, *(spec.test_shape or spec.input_shape), generator=g)
            y = torch.randint(0, spec.num_classes, (n,), generator=g)
            flow = gradient_flow(net, x, y)
            title = f"gradient flow of {model}, batch {n}"
        else:
            cfg = StackConfig(
                depth=depth, width=width, skip=skip, activation=activation, norm=norm, init=init, preact=preact,
                in_shape=(width,),
            )  # fmt: skip
            flow = stack_gradient_flow(cfg, batch=batch or 64, seed=seed)
            form = "pre-activation" if preact else "post-activation"
            title = f"gradient flow: {depth} layers, width {width}, skip {skip}, {activation}, norm {norm}, {form}"
    if json_:
        print_json(flow.to_dict())
        return
    rows = [[la.name, _g(la.input_grad_norm), _g(la.weight_grad_norm), f"{la.params:,}"] for la in flow.layers]
    print_table(title, ["layer", "|dL/d input|", "|dL/d weights|", "params"], rows)
    print_table("summary of |dL/d input| (input → output)", ["measure", "value"], _summary_rows(flow.summary))


@app.command("anatomy")
def anatomy_cmd(
    form: Annotated[str, typer.Option(help="basic | bottleneck | preact.")] = "basic",
    width: Annotated[int, typer.Option(help="Channels in and out (a multiple of 4).")] = 16,
    size: Annotated[int, typer.Option(help="Height and width of the input in pixels.")] = 8,
    batch: Annotated[int, typer.Option(help="Examples in the batch.")] = 8,
    scale: Annotated[float, typer.Option(help="Residual scale s in s·F(x) + x, 0..2.")] = 1.0,
    zero_init: Annotated[bool, typer.Option("--zero-init", help="Zero the branch's last scale: F(x) = 0.")] = False,
    seed: SeedOpt = 0,
    json_: JsonOpt = False,
) -> None:
    """Norms after every operation inside one residual block, and the residual-scale sweep."""
    with user_errors():
        a = block_anatomy(form, width, size, batch, scale, zero_init, seed=seed)
    if json_:
        print_json(a.to_dict())
        return
    print_table(
        f"{form} block, width {width}: residual branch",
        ["op", "type", "norm"],
        [[o.name, o.op, _g(o.norm)] for o in a.branch],
    )
    print_table("shortcut", ["op", "type", "norm"], [[o.name, o.op, _g(o.norm)] for o in a.shortcut])
    print_table(
        f"at scale {a.scale:g}",
        ["|x|", "|s·F(x)|", "|s·F(x)+x|", "|output|"],
        [[_g(a.x_norm), _g(a.residual_norm), _g(a.sum_norm), _g(a.out_norm)]],
    )
    print_table(
        "residual scale sweep",
        ["s", "|s·F(x)|", "|s·F(x)+x|", "|output|", "branch share"],
        [
            [f"{p.scale:g}", _g(p.residual_norm), _g(p.sum_norm), _g(p.out_norm), f"{p.residual_share:.2f}"]
            for p in a.sweep
        ],
    )
    print_table(
        f"basic vs bottleneck at width {width}",
        ["block", "params", "FLOPs / example"],
        [[c.form, f"{c.params:,}", human_count(c.flops)] for c in a.costs],
    )


@app.command("bypass")
def bypass_cmd(
    layers: Annotated[int, typer.Option(help="Layers of the stack, 1..100.")] = 5,
    skips: Annotated[bool, typer.Option("--skips/--no-skips", help="With or without identity skips.")] = True,
    activation: Annotated[str, typer.Option(help="relu | tanh | sigmoid.")] = "relu",
    width: Annotated[int, typer.Option(help="Features of every layer.")] = 16,
    preact: Annotated[bool, typer.Option("--preact/--postact", help="x + W·act(x) or act(W·x + x).")] = True,
    seed: SeedOpt = 0,
    json_: JsonOpt = False,
) -> None:
    """Signal retained, path lengths and d(output)/d(input) of a short stack with or without skips."""
    with user_errors():
        b = bypass_metrics(layers, skips, activation, width, preact, seed=seed)
    if json_:
        print_json(b.to_dict())
        return
    print_table(
        f"{layers} layers, width {width}, {activation}, {'with' if skips else 'without'} skips",
        ["measure", "value"],
        [
            ["signal retained (mean cos² of input and output)", _g(b.signal_retained)],
            ["chance level (1/width)", _g(b.chance)],
            ["shortest path (weight layers)", b.shortest_path],
            ["mean path (weight layers)", _g(b.mean_path)],
            ["paths", f"{b.paths:,}"],
            ["gradient strength ‖dy/dx‖_F/√width", _g(b.gradient_strength)],
        ],
    )


@app.command("cost")
def cost_cmd(
    model: Annotated[str, typer.Argument(help="A registered model name (see `skiplab models list`).")],
    batch: Annotated[int, typer.Option(help="Examples in the measured step.")] = 2,
    json_: JsonOpt = False,
) -> None:
    """Parameters, FLOPs, activation memory and peak memory of a forward+backward of a registered model."""
    with user_errors():
        spec = get_spec(model)
        cost = measure_cost(spec.create(), spec.input_shape, batch, peak=True)
    if json_:
        print_json({"name": model, **cost.to_dict()})
        return
    print_table(
        f"{model}: cost",
        ["measure", "value"],
        [
            ["parameters", f"{cost.params:,}"],
            ["FLOPs / example (forward)", human_count(cost.flops_per_example)],
            ["activation memory / example", human_bytes(cost.activation_bytes_per_example)],
            [f"peak memory, forward+backward of {batch}", human_bytes(cost.peak_bytes or 0)],
        ],
    )


@app.command("skip-types")
def skip_types_cmd(
    depth: Annotated[int, typer.Option(help="Layers of every stack, 1..200.")] = 8,
    width: Annotated[int, typer.Option(help="Channels of every layer (a dense layer adds this many).")] = 16,
    size: Annotated[int, typer.Option(help="Image height and width.")] = 8,
    batch: Annotated[int, typer.Option(help="Examples in the measured step.")] = 8,
    seed: SeedOpt = 0,
    json_: JsonOpt = False,
) -> None:
    """Identity, projection, dense, highway, squeeze-excitation and no skip side by side at equal depth and width."""
    with user_errors():
        t = compare_skip_types(depth, width, size, batch, seed=seed)
    if json_:
        print_json(t.to_dict())
        return
    print_table(
        f"skip types at depth {depth}, width {width}, {size}x{size} images, batch {batch}",
        ["skip", "params", "FLOPs / ex.", "activations / ex.", "peak (batch)", "grad first/last", "growth / layer"],
        [
            [
                r.skip,
                f"{r.params:,}",
                human_count(r.flops_per_example),
                human_bytes(r.activation_bytes_per_example),
                human_bytes(r.peak_bytes),
                _g(r.grad_summary["first_last_ratio"]),
                _g(r.grad_summary["growth_per_layer"]),
            ]
            for r in t.rows
        ],
    )


@app.command("paths")
def paths_cmd(
    n: Annotated[int, typer.Option(help="Residual blocks, 1..1000 (the gradient measurement: up to 200).")] = 10,
    gradient: Annotated[
        bool, typer.Option("--gradient/--no-gradient", help="Also measure gradient per path length.")
    ] = True,
    samples: Annotated[int, typer.Option(help="Paths sampled per length for the gradient.")] = 4,
    seed: SeedOpt = 0,
    json_: JsonOpt = False,
) -> None:
    """Path-length distribution of n residual blocks and the gradient each length carries (Veit et al. 2016)."""
    with user_errors():
        dist = path_length_distribution(n)
        grad = gradient_by_path_length(blocks=n, samples=samples, seed=seed) if gradient else None
    if json_:
        print_json({"distribution": dist.to_dict(), "gradient": grad.to_dict() if grad else None})
        return
    columns = ["length", "paths", "share of paths"] + (["|grad| per path", "share of gradient"] if grad else [])
    rows = []
    for k, (c, f) in enumerate(zip(dist.counts, dist.fractions)):
        row = [k, exact_or_scientific(c), f"{f:.3g}"]
        if grad:
            row += [_g(grad.lengths[k].per_path), f"{grad.lengths[k].share:.3g}"]
        rows.append(row)
    print_table(f"{n} residual blocks: {exact_or_scientific(dist.total)} paths", columns, rows)
    if grad:
        lo, hi = grad.effective_range
        print_table(
            "gradient by path length",
            ["measure", "value"],
            [
                ["lengths carrying 90% of the gradient", f"{lo}..{hi}"],
                ["gradient-weighted mean length", _g(grad.mean_length)],
            ],
        )


@app.command("lesion")
def lesion_cmd(
    run_dir: Annotated[Path, typer.Option(help="Folder of a run trained with `skiplab train --run-dir`.")],
    data_root: Annotated[str | None, typer.Option(help="CIFAR-10 folder, if the run's data is cifar10.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Held-out accuracy of a trained run after deleting each single block (Veit et al. 2016)."""
    with user_errors():
        trained = load_trained(run_dir, data_root)
        data = trained.data
        study = lesion_study(trained.model, data.prepare(data.x_test), data.y_test)
    if json_:
        print_json({"run_dir": str(run_dir), "epoch": trained.epoch, **study.to_dict()})
        return
    print_table(
        f"lesion study of {trained.config.model} after {trained.epoch} epochs ({study.architecture}): "
        f"intact held-out accuracy {study.intact_accuracy:.3f}",
        ["deleted block", "kind", "accuracy", "drop"],
        [
            [
                b.name,
                b.kind,
                "—" if b.accuracy is None else f"{b.accuracy:.3f}",
                "—" if b.drop is None else f"{b.drop:+.3f}",
            ]
            for b in study.blocks
        ],
    )
