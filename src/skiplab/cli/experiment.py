"""`skiplab experiment degradation|degradation-verdict|degradation-search|lesion|skip-types`: run a study, print
its table, write its results file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from skiplab import experiments as exp
from skiplab.cli.common import (
    DEFAULT_STORE,
    JsonOpt,
    StoreOpt,
    console,
    err_console,
    fmt,
    open_store,
    parse_ints,
    print_json,
    print_table,
    user_errors,
)
from skiplab.experiments.results import rejudge, results_payload, shipped_path, write_results

experiment_app = typer.Typer(help="The experiments behind the explainer.", no_args_is_help=True)


# ---------------------------------------------------------------- experiments


def _command(ctx: typer.Context) -> list[str]:
    """The experiment's command with every setting spelled out (defaults too), as recorded in a results file."""
    args = [ctx.parent.info_name if ctx.parent else "experiment", ctx.info_name or ""]
    for param in ctx.command.params:
        if param.name in ("store", "runs_dir", "write_results_", "results_out", "json_"):  # where, not what
            continue
        args += [max(param.opts, key=len), str(ctx.params[param.name])]
    return args


def _keep_results(ctx: typer.Context, name: str, result_dict: dict, write_results_: bool, out: Path | None) -> None:
    """With --write-results or --results-out, write the results file with the exact command that made it."""
    target = out if out is not None else (shipped_path(name) if write_results_ else None)
    if target is not None:
        write_results(target, results_payload(name, _command(ctx), result_dict))
        err_console.print(f"wrote {target}")


WriteOpt = Annotated[bool, typer.Option("--write-results", help="Write the shipped results file in the package.")]
OutOpt = Annotated[Path | None, typer.Option("--results-out", help="Write the results file here instead.")]


def _on_run(quiet: bool):
    def report(name: str, run: dict) -> None:
        if not quiet:
            best = run["best_train_loss"]
            err_console.print(f"  {name}: {run['status']}, best train loss {fmt(best)} ({run['seconds']:.1f} s)")

    return report


# The options both degradation commands take (each command gives its own defaults).
DepthsOpt = Annotated[str, typer.Option(help="Comma-separated depths.")]
SeedsOpt = Annotated[str, typer.Option(help="Comma-separated seeds.")]
DataOpt = Annotated[str, typer.Option(help="digits | mnist1d.")]
EpochsOpt = Annotated[int, typer.Option()]
LrOpt = Annotated[float, typer.Option()]
WarmupOpt = Annotated[float, typer.Option()]
BatchOpt = Annotated[int, typer.Option("--batch")]
WidthOpt = Annotated[int, typer.Option()]
AlphaOpt = Annotated[float, typer.Option(help="Level of the paired t-test the verdict uses.")]
WorkersOpt = Annotated[int, typer.Option(help="Runs trained at once (processes).")]


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number between 0 and 1 (exclusive); got {alpha!r}")


LABEL = {"plain": "plain", "res": "residual"}


def _degradation_config(depths, seeds, family, data, epochs, lr, warmup, batch, width, alpha, workers):
    """The experiment's config from the command's options (both degradation commands take the same ones)."""
    return exp.DegradationConfig(
        depths=parse_ints("--depths", depths),
        seeds=parse_ints("--seeds", seeds),
        family=family,
        data=data,
        epochs=epochs,
        lr=lr,
        warmup_epochs=warmup,
        batch_size=batch,
        width=width,
        alpha=alpha,
        workers=workers,
    )


def _print_degradation(cfg, result) -> None:
    print_table(
        f"degradation on {cfg.data}: best training loss per seed ({', '.join(map(str, cfg.seeds))}), "
        f"{cfg.epochs} epochs, {result.wall_seconds:.0f} s",
        ["net", "best train loss", "final train err", "final held-out err"],
        [
            [
                f"{LABEL[r.kind]}-{r.depth}",
                " ".join(fmt(v, 3) for v in r.best_train_loss),
                " ".join(fmt(v, 3) for v in r.final_train_error),
                " ".join(fmt(v, 3) for v in r.final_test_error),
            ]
            for r in result.rows
        ],
    )
    print_table(
        "deeper is better?",
        ["net", "depths", "per seed", "loss ratio", "t", "verdict"],
        [
            [
                LABEL[c.kind],
                f"{c.deep} vs {c.shallow}",
                " ".join(c.outcomes),
                f"{c.ratio:.3g}",
                f"{fmt(c.t_stat, 3)} (> {fmt(c.t_critical, 3)}?)",
                c.summary,
            ]
            for c in result.comparisons
        ],
    )
    console.print(result.verdict)
    console.print(f"Rule: {result.rule}")


def _print_search(record: dict) -> None:
    print_table(
        "degradation search: every setting tried",
        ["setting", "net", "loss ratio deep/shallow", "t", "verdict", "both halves"],
        [
            [
                e["label"],
                LABEL[c["kind"]],
                f"{c['ratio']:.3g}",
                fmt(c["t_stat"], 3),
                c["summary"],
                str(e["both_halves"]),
            ]
            for e in record["settings"]
            for c in e["comparisons"]
        ],
    )
    console.print(record["finding"])
    console.print(f"Rule: {record['rule']}")


@experiment_app.command("degradation")
def degradation_cmd(
    ctx: typer.Context,
    depths: DepthsOpt = ",".join(
        map(str, exp.DegradationConfig.depths)
    ),
    seeds: SeedsOpt = ",".join(
        map(str, exp.DegradationConfig.seeds)
    ),
    family: Annotated[str, typer.Option(help="mlp | conv | conv1d (with --data mnist1d).")] = (
        exp.DegradationConfig.family
    ),
    data: DataOpt = exp.DegradationConfig.data,
    epochs: EpochsOpt = exp.DegradationConfig.epochs,
    lr: LrOpt = exp.DegradationConfig.lr,
    warmup: WarmupOpt = exp.DegradationConfig.warmup_epochs,
    batch: BatchOpt = exp.DegradationConfig.batch_size,
    width: WidthOpt = exp.DegradationConfig.width,
    alpha: AlphaOpt = (
        exp.DegradationConfig.alpha
    ),
    workers: WorkersOpt = exp.DegradationConfig.workers,
    store: StoreOpt = DEFAULT_STORE,
    runs_dir: Annotated[
        Path | None,
        typer.Option(help="Keep each run's checkpoints here (one folder per run); rerun to continue them."),
    ] = None,
    write_results_: WriteOpt = False,
    results_out: OutOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Plain vs residual nets at two or more depths (digits or MNIST-1D): does deeper train worse?"""
    with user_errors():
        cfg = _degradation_config(depths, seeds, family, data, epochs, lr, warmup, batch, width, alpha, workers)
        result = exp.degradation(cfg, store=open_store(store), on_run=_on_run(json_), run_root=runs_dir)
    _keep_results(ctx, "degradation", result.to_dict(), write_results_, results_out)
    if json_:
        print_json(result.to_dict())
        return
    _print_degradation(cfg, result)


@experiment_app.command("degradation-verdict")
def degradation_verdict_cmd(
    results: Annotated[
        Path | None, typer.Option(help="A degradation results file (default: the shipped one), rewritten in place.")
    ] = None,
    alpha: AlphaOpt = (
        exp.DegradationConfig.alpha
    ),
) -> None:
    """Recompute a degradation results file's verdict from its stored runs by the current rule (no training)."""
    with user_errors():
        _check_alpha(alpha)
        path = results if results is not None else shipped_path("degradation")
        data = json.loads(Path(path).read_text())
        argv = ["experiment", "degradation-verdict", "--alpha", f"{alpha:g}"]
        if results is not None:
            argv[2:2] = ["--results", str(results)]
        new = rejudge(data, argv, alpha)
    write_results(path, new)
    console.print(new["verdict"])
    console.print(f"Rule: {new['rule']}")
    err_console.print(f"wrote {path}")


SETTING_KEYS = {"epochs": "epochs", "lr": "lr", "warmup": "warmup_epochs", "batch": "batch_size", "width": "width"}


def parse_settings(text: str) -> list[dict]:
    """ "epochs=15,warmup=4.5;epochs=30,warmup=9" → [{"epochs": 15, "warmup_epochs": 4.5}, ...]."""
    settings = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        changes: dict = {}
        for item in part.split(","):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in SETTING_KEYS:
                raise ValueError(f"a setting is key=value pairs with keys {', '.join(SETTING_KEYS)}; got {item!r}")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"setting {key} must be a number; got {value!r}") from None
            changes[SETTING_KEYS[key]] = int(number) if key in ("epochs", "batch", "width") else number
        settings.append(changes)
    return settings


@experiment_app.command("degradation-search")
def degradation_search_cmd(
    ctx: typer.Context,
    settings: Annotated[
        str,
        typer.Option(help="Settings to try, ';'-separated, each key=value pairs (epochs, lr, warmup, batch, width)."),
    ] = "epochs=15,warmup=4.5;epochs=30,warmup=9",
    from_: Annotated[
        list[Path] | None,
        typer.Option("--from", help="Assemble the record from these degradation results files instead of training."),
    ] = None,
    depths: DepthsOpt = "20,56",
    seeds: SeedsOpt = "0,1,2",
    family: Annotated[str, typer.Option(help="mlp | conv | conv1d.")] = "conv1d",
    data: DataOpt = "mnist1d",
    epochs: EpochsOpt = 30,
    lr: LrOpt = 0.1,
    warmup: WarmupOpt = 9.0,
    batch: BatchOpt = 128,
    width: WidthOpt = 16,
    alpha: AlphaOpt = 0.05,
    workers: WorkersOpt = 1,
    store: StoreOpt = DEFAULT_STORE,
    write_results_: WriteOpt = False,
    results_out: OutOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Search for a setting where plain deeper is worse AND residual deeper is better; record every try."""
    with user_errors():
        if from_:
            _check_alpha(alpha)
            files = [json.loads(Path(f).read_text()) for f in from_]
            record = exp.assemble_search(files, alpha)
            argv = ["experiment", "degradation-search", *[w for f in from_ for w in ("--from", str(f))]]
            argv += ["--alpha", f"{alpha:g}"]
        else:
            base = _degradation_config(depths, seeds, family, data, epochs, lr, warmup, batch, width, alpha, workers)
            configs = [replace(base, **changes).validate() for changes in parse_settings(settings)]
            if not configs:
                raise ValueError("--settings names no setting")
            record = exp.degradation_search(configs, store=open_store(store), on_run=_on_run(json_))
            argv = _command(ctx)
    target = (
        results_out if results_out is not None else (shipped_path("degradation_search") if write_results_ else None)
    )
    if target is not None:
        write_results(target, results_payload("degradation_search", argv, record))
        err_console.print(f"wrote {target}")
    if json_:
        print_json({k: v for k, v in record.items() if k != "runs"})
        return
    _print_search(record)


@experiment_app.command("skip-types")
def skip_types_cmd(
    ctx: typer.Context,
    skips: Annotated[str, typer.Option(help="Comma-separated skip types.")] = ",".join(exp.SkipTypesConfig.skips),
    depth: Annotated[int, typer.Option()] = exp.SkipTypesConfig.depth,
    width: Annotated[int, typer.Option()] = exp.SkipTypesConfig.width,
    epochs: Annotated[int, typer.Option()] = exp.SkipTypesConfig.epochs,
    lr: Annotated[float, typer.Option()] = exp.SkipTypesConfig.lr,
    seed: Annotated[int, typer.Option()] = exp.SkipTypesConfig.seed,
    workers: Annotated[int, typer.Option()] = exp.SkipTypesConfig.workers,
    store: StoreOpt = DEFAULT_STORE,
    write_results_: WriteOpt = False,
    results_out: OutOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A short training of each skip type at equal depth and width."""
    with user_errors():
        cfg = exp.SkipTypesConfig(
            skips=tuple(s.strip() for s in skips.split(",") if s.strip()),
            depth=depth,
            width=width,
            epochs=epochs,
            lr=lr,
            seed=seed,
            workers=workers,
        )
        result = exp.skip_types(cfg, store=open_store(store), on_run=_on_run(json_))
    _keep_results(ctx, "skip_types", result.to_dict(), write_results_, results_out)
    if json_:
        print_json(result.to_dict())
        return
    print_table(
        f"skip types: depth {cfg.depth}, width {cfg.width}, {cfg.epochs} epochs, seed {cfg.seed}",
        ["skip", "params", "best train loss", "final train err", "final held-out err", "s"],
        [
            [
                r["skip"],
                f"{r['params']:,}",
                fmt(r["best_train_loss"]),
                fmt(r["final_train_error"], 3),
                fmt(r["final_test_error"], 3),
                f"{r['seconds']:.1f}",
            ]
            for r in result.rows
        ],
    )


@experiment_app.command("lesion")
def lesion_cmd(
    ctx: typer.Context,
    depth: Annotated[int, typer.Option()] = exp.LesionConfig.depth,
    family: Annotated[str, typer.Option(help="mlp | conv.")] = exp.LesionConfig.family,
    width: Annotated[int, typer.Option()] = exp.LesionConfig.width,
    epochs: Annotated[int, typer.Option()] = exp.LesionConfig.epochs,
    lr: Annotated[float, typer.Option()] = exp.LesionConfig.lr,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = ",".join(map(str, exp.LesionConfig.seeds)),
    workers: Annotated[int, typer.Option()] = exp.LesionConfig.workers,
    store: StoreOpt = DEFAULT_STORE,
    write_results_: WriteOpt = False,
    results_out: OutOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Train a residual and a plain net, then delete each block in turn (Veit et al. 2016)."""
    with user_errors():
        cfg = exp.LesionConfig(
            depth=depth,
            family=family,
            width=width,
            epochs=epochs,
            lr=lr,
            seeds=parse_ints("--seeds", seeds),
            workers=workers,
        )
        result = exp.lesion(cfg, store=open_store(store), on_run=_on_run(json_))
    _keep_results(ctx, "lesion", result.to_dict(), write_results_, results_out)
    if json_:
        print_json(result.to_dict())
        return
    print_table(
        f"lesion: depth {cfg.depth} {cfg.family}, {cfg.epochs} epochs: held-out accuracy with one block deleted",
        ["net", "seed", "intact", "mean after deleting one block", "worst", "best"],
        [
            [
                r["net"],
                r["seed"],
                fmt(r["intact_accuracy"], 3),
                fmt(r["mean_accuracy"], 3),
                fmt(r["worst_accuracy"], 3),
                fmt(r["best_accuracy"], 3),
            ]
            for r in result.rows
        ],
    )
