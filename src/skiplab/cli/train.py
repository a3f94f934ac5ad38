"""`skiplab train` and `skiplab runs list|show|export`.

Thin adapters: parse the options, call `skiplab.train` / `skiplab.store`,
render tables, JSON or a rich progress bar. No numerical logic lives here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from skiplab.cli.common import (
    DEFAULT_STORE,
    JsonOpt,
    StoreOpt,
    console,
    err_console,
    fmt,
    open_store,
    print_json,
    print_table,
    user_errors,
)
from skiplab.train import PRESETS, TrainConfig, preset, train
from skiplab.train.checkpoint import run_config

runs_app = typer.Typer(help="The run store: list, show and export stored runs.", no_args_is_help=True)


# ---------------------------------------------------------------- train


def train_cmd(
    model: Annotated[
        str | None, typer.Option(help="Model: registered name or resconv20, plainconv56, resnet20, ...")
    ] = None,
    preset_name: Annotated[
        str | None, typer.Option("--preset", help=f"Start from a preset: {', '.join(PRESETS)}.")
    ] = None,
    data: Annotated[str | None, typer.Option(help="digits | mnist1d | cifar10 | spirals | blobs | parity.")] = None,
    data_root: Annotated[str | None, typer.Option(help="Folder of the CIFAR-10 binary release.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs to train.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (per batch).")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Batch size (global under torchrun).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for weights, data order and augmentation.")] = None,
    width: Annotated[int | None, typer.Option(help="Channels of the first stage / of a stack.")] = None,
    schedule: Annotated[str | None, typer.Option(help="constant | step | cosine.")] = None,
    warmup: Annotated[float | None, typer.Option(help="Warm-up epochs.")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch threads (0: torch's default).")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda.")] = None,
    cpu_bf16: Annotated[
        bool | None,
        typer.Option("--cpu-bf16/--cpu-fp32", help="bfloat16 autocast on the CPU (~2x with AMX); default float32."),
    ] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Folder for checkpoints (one per epoch, atomic).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --run-dir from its checkpoint.")
    ] = False,
    store: StoreOpt = DEFAULT_STORE,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not record the run.")] = False,
    name: Annotated[str, typer.Option(help="A label stored with the run.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Train one network, store every epoch, checkpoint, and resume after a crash (works under torchrun)."""
    overrides = {
        "model": model,
        "data": data,
        "data_root": data_root,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch,
        "seed": seed,
        "width": width,
        "schedule": schedule,
        "warmup_epochs": warmup,
        "threads": threads,
        "device": device,
        "cpu_bf16": cpu_bf16,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    with user_errors():
        if resume and run_dir is None:
            raise typer.BadParameter("--resume needs --run-dir, the folder that holds the checkpoint")
        if resume:
            cfg = run_config(run_dir).resumed(**given)
        else:
            cfg = preset(preset_name, **overrides) if preset_name is not None else TrainConfig().replace(**given)
    run_store = None if no_store else open_store(store)
    progress, on_step, on_epoch = _progress(cfg, json_)
    with progress, user_errors():
        result = train(
            cfg, store=run_store, run_dir=run_dir, resume=resume, on_epoch=on_epoch, on_step=on_step, name=name
        )
    if result.rank == 0:  # under torchrun, rank 0 reports for all
        _report(result, cfg, json_)


def _progress(cfg: TrainConfig, json_: bool):
    """A progress bar on a terminal, a line per epoch otherwise (none with --json), and the hooks that feed it."""
    quiet = json_ or not sys.stderr.isatty()
    progress = Progress(
        TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
    )
    task = progress.add_task("train", total=None, epoch=0, epochs=cfg.epochs, info="")

    def on_step(step: int, steps: int) -> None:
        progress.update(task, completed=step, total=steps)

    def on_epoch(m) -> None:
        info = f"loss {m.train_loss:.4f} err {m.train_error:.3f} held-out err {m.test_error:.3f}"
        progress.update(task, epoch=m.epoch, info=info)
        if quiet and not json_:
            click.echo(f"epoch {m.epoch}/{cfg.epochs}: {info} ({m.seconds:.1f} s)", err=True)

    return progress, on_step, on_epoch


def _report(result, cfg: TrainConfig, json_: bool) -> None:
    if json_:
        print_json(result.to_dict())
    else:
        rows = [
            [
                e.epoch,
                fmt(e.train_loss),
                fmt(e.train_error, 3),
                fmt(e.test_loss),
                fmt(e.test_error, 3),
                fmt(e.lr, 3),
                fmt(e.grad_norm_mean, 3),
                f"{e.seconds:.1f}",
            ]
            for e in result.epochs
        ]
        print_table(
            f"run {result.run_id}: {cfg.model} on {cfg.data}, seed {cfg.seed} — {result.status}",
            ["epoch", "train loss", "train err", "held-out loss", "held-out err", "lr", "grad norm", "s"],
            rows,
        )
        if result.message:
            console.print(result.message)
    if result.status == "diverged":
        raise typer.Exit(1)


# ---------------------------------------------------------------- runs


@runs_app.command("list")
def runs_list(
    store: StoreOpt = DEFAULT_STORE,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    name: Annotated[str | None, typer.Option(help="Only runs whose name starts with this.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many, newest first.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Stored runs, newest first."""
    s = open_store(store)
    with user_errors():
        runs = s.list(status=status, name=name, limit=limit)
    if json_:
        print_json([r.to_dict() for r in runs])
        return
    print_table(
        f"{len(runs)} runs in {store}",
        ["id", "name", "model", "data", "seed", "status", "epochs", "best train loss"],
        [[r.id, r.name, r.model, r.data, r.seed, r.status, r.epochs_done, fmt(r.best_train_loss)] for r in runs],
    )


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="A run id from `skiplab runs list`.")],
    store: StoreOpt = DEFAULT_STORE,
    json_: JsonOpt = False,
) -> None:
    """One run: its config, versions and every epoch."""
    s = open_store(store)
    with user_errors():
        run = s.get(run_id)
    if json_:
        print_json(run.to_dict())
        return
    console.print(
        f"run {run.id} ({run.name or 'unnamed'}): {run.model} on {run.data}, seed {run.seed}, {run.status}"
        + (f" — {run.message}" if run.message else "")
    )
    console.print(f"git {run.git_revision or '-'}; " + ", ".join(f"{k} {v}" for k, v in run.versions.items()))
    if run.machine:
        m = run.machine
        console.print(
            f"trained on {m.get('cpu', '?')} ({m.get('capability', '?')} kernels, {m.get('threads', '?')} threads)"
        )
    print_table(
        "epochs",
        ["epoch", "train loss", "train err", "held-out loss", "held-out err", "lr", "s"],
        [
            [
                e["epoch"],
                fmt(e["train_loss"]),
                fmt(e["train_error"], 3),
                fmt(e["test_loss"]),
                fmt(e["test_error"], 3),
                fmt(e["lr"], 3),
                fmt(e["seconds"], 3),
            ]
            for e in run.epochs
        ],
    )


@runs_app.command("export")
def runs_export(
    run_ids: Annotated[list[str] | None, typer.Argument(help="Runs to export (default: all).")] = None,
    store: StoreOpt = DEFAULT_STORE,
    fmt: Annotated[str, typer.Option("--format", help="csv | json.")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
) -> None:
    """Export runs with their per-epoch metrics as CSV (one row per epoch) or JSON."""
    if fmt not in ("csv", "json"):
        raise typer.BadParameter(f"format must be one of csv, json; got {fmt!r}", param_hint="--format")
    s = open_store(store)
    with user_errors():
        if fmt == "csv":
            text = s.export_csv(run_ids or None)
        else:
            text = json.dumps(s.export_json(run_ids or None), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        err_console.print(f"wrote {out}")
