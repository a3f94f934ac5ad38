"""`skiplab experiment unet`: the U-Net with and without its long skips, trained, compared, written."""

from __future__ import annotations

from typing import Annotated

import typer

from skiplab.cli.common import JsonOpt, console, err_console, fmt, parse_ints, print_json, print_table, user_errors
from skiplab.cli.experiment import OutOpt, WriteOpt, _keep_results, experiment_app
from skiplab.experiments.unet import METRICS, UNetConfig, unet_experiment

DEFAULTS = UNetConfig()


def _on_run(quiet: bool):
    def report(name: str, run: dict) -> None:
        if not quiet:
            err_console.print(
                f"  {name}: {run['status']}, held-out IoU {fmt(run['iou'], 3)}, "
                f"boundary F {fmt(run['boundary_f'], 3)} ({run['seconds']:.1f} s)"
            )

    return report


def _print(result) -> None:
    cfg = result.config
    print_table(
        f"U-Net on thin shapes: held-out scores per seed ({', '.join(map(str, cfg.seeds))}), {cfg.epochs} epochs, "
        f"width {cfg.width}, {result.wall_seconds:.0f} s",
        ["net", "params", *METRICS.values()],
        [[r["label"], f"{r['params']:,}", *(" ".join(fmt(v, 3) for v in r[m]) for m in METRICS)] for r in result.rows],
    )
    print_table(
        "long skips better?",
        ["metric", "gain per seed", "smallest gain", "seed spread", "verdict"],
        [
            [METRICS[c.metric], " ".join(fmt(g, 3) for g in c.gains), *(fmt(v, 3) for v in (c.smallest_gain, c.spread))]
            + [c.summary]
            for c in result.comparisons
        ],
    )
    console.print(result.verdict)
    console.print(f"Rule: {result.rule}")


@experiment_app.command("unet")
def unet_cmd(
    ctx: typer.Context,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (weights and batch order).")] = ",".join(
        map(str, DEFAULTS.seeds)
    ),
    epochs: Annotated[int, typer.Option()] = DEFAULTS.epochs,
    width: Annotated[int, typer.Option(help="Channels at full resolution (doubling per level).")] = DEFAULTS.width,
    lr: Annotated[float, typer.Option(help="Adam's step size (cosine to zero).")] = DEFAULTS.lr,
    batch_size: Annotated[int, typer.Option("--batch")] = DEFAULTS.batch_size,
    n: Annotated[int, typer.Option(help="Images generated (a quarter held out).")] = DEFAULTS.n,
    data_seed: Annotated[int, typer.Option(help="Seed of the images (shared by every run).")] = DEFAULTS.data_seed,
    workers: Annotated[int, typer.Option(help="Runs trained at once (processes).")] = DEFAULTS.workers,
    write_results_: WriteOpt = False,
    results_out: OutOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A small U-Net with and without its long skips, same budget, per seed: held-out IoU and boundary F."""
    with user_errors():
        cfg = UNetConfig(
            seeds=parse_ints("--seeds", seeds),
            epochs=epochs,
            width=width,
            lr=lr,
            batch_size=batch_size,
            n=n,
            data_seed=data_seed,
            workers=workers,
        )
        result = unet_experiment(cfg, on_run=_on_run(json_))
    _keep_results(ctx, "unet", result.to_dict(), write_results_, results_out)
    if json_:
        print_json({k: v for k, v in result.to_dict().items() if k not in ("runs", "examples")})
        return
    _print(result)

