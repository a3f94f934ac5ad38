"""`skiplab probe landscape`, `skiplab experiment landscape-subjects` and `skiplab experiment landscape`.

Thin adapters over skiplab.experiments.landscape(_study): the loss plane,
the init-to-trained line or the Hessian extremes of a run folder or a
shipped subject; the export of a degradation experiment's run folders as
the shipped subjects; and the study of every shipped subject.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from skiplab.cli.common import JsonOpt, err_console, fmt, parse_ints, print_json, print_table, user_errors
from skiplab.cli.experiment import experiment_app
from skiplab.cli.probe import app as probe_app
from skiplab.experiments.landscape import EXAMPLES, Subject, export_subjects, load_subject, read_index, run_subject
from skiplab.experiments.landscape_study import (
    StudyConfig,
    landscape_study,
    line_of,
    plane_of,
    sharpness_of,
    write_study,
)
from skiplab.probes.common import tuned, usable_cores
from skiplab.probes.hessian import HessianSpectrum
from skiplab.probes.landscape import Landscape

VIEWS = ("plane", "line", "sharpness")
_NAME = re.compile(r"(plain|res)(\d+)-s(\d+)")


def _subject(run_dir: Path | None, subject: str | None) -> Subject:
    if (run_dir is None) == (subject is None):
        raise ValueError("subject: give either --run-dir (a run folder) or --subject (a shipped net, e.g. res56-s0)")
    if run_dir is not None:
        return run_subject(run_dir)
    m = _NAME.fullmatch(subject)
    if m is None:
        names = ", ".join(s.name for s in read_index().subjects)
        raise ValueError(f"subject must name a shipped net ({names}); got {subject!r}")
    return load_subject(m.group(1), int(m.group(2)), int(m.group(3)))


def _print_plane(name: str, land: Landscape) -> None:
    r = land.roughness
    print_table(
        f"loss plane of {name}: rows y, columns x in [{land.xs[0]:g}, {land.xs[-1]:g}] (filter-normalised units)",
        ["y \\ x", *(f"{x:g}" for x in land.xs)],
        [[f"{row.y:g}", *(fmt(v, 3) for v in row.loss)] for row in land.rows],
    )
    print_table(
        "summary",
        ["", "value"],
        [
            ["loss at the trained weights", fmt(land.base_loss)],
            ["accuracy there", fmt(land.base_accuracy)],
            ["non-convex share of the plane", fmt(r.non_convex_share) if r else "-"],
            ["largest |λmin/λmax| of the slice", fmt(r.max_ratio) if r else "-"],
            ["directions", f"{land.directions} (seed {land.seed})"],
            ["BatchNorm", land.bn_statistics],
            ["examples", str(land.examples)],
            ["seconds", f"{land.seconds:.2f} (first row {land.first_row_seconds:.2f})"],
        ],
    )


def _print_line(name: str, land: Landscape) -> None:
    row = land.rows[0]
    print_table(
        f"loss from the initial (t = 0) to the trained weights (t = 1) of {name}; BatchNorm: {land.bn_statistics}",
        ["t", "loss", "accuracy"],
        [[f"{t:.3g}", fmt(v), fmt(a)] for t, v, a in zip(land.xs, row.loss, row.accuracy)],
    )


def _print_sharpness(name: str, h: HessianSpectrum) -> None:
    print_table(
        f"Hessian of {name}'s loss at its trained weights ({h.examples} examples, {h.parameters:,} parameters): "
        f"|λmin/λmax| = {fmt(h.ratio)}",
        ["eigenvalue", "value", "iterations", "residual bound", "converged"],
        [
            [e.which, fmt(e.value), str(e.iterations), fmt(e.residual), "yes" if e.converged else "no"]
            for e in h.eigenvalues
        ],
    )


@probe_app.command("landscape")
def probe_landscape_cmd(
    run_dir: Annotated[
        Path | None, typer.Option(help="Folder of a run trained with `skiplab train --run-dir`.")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="A shipped net instead: plain20-s0, res56-s1, ...")] = None,
    view: Annotated[str, typer.Option(help="plane | line (initial → trained weights) | sharpness.")] = "plane",
    grid: Annotated[int, typer.Option(help="Points per axis of the plane (odd, 3..51).")] = 11,
    span: Annotated[float, typer.Option(help="The plane covers [-span, span]² (filter-normalised units).")] = 1.0,
    direction_seed: Annotated[int, typer.Option(help="Seed of the plane's two random directions.")] = 0,
    points: Annotated[int, typer.Option(help="Points along the line (5..201).")] = 51,
    split: Annotated[str, typer.Option(help="train | test: which signals the loss is measured on.")] = "train",
    examples: Annotated[int, typer.Option(help="Signals in the batch.")] = EXAMPLES,
    iters: Annotated[int, typer.Option(help="Sharpness: Hessian-vector products per eigenvalue at most.")] = 100,
    threads: Annotated[
        int | None,
        typer.Option(help="Plane and line: points evaluated at once, one per thread (default: one per core)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Loss plane, init-to-trained line or Hessian extremes of a trained net (Li et al. 2018)."""
    with user_errors():
        if view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}; got {view!r}")
        s = _subject(run_dir, subject)
        threads = usable_cores() if threads is None else threads
        # Several points at once, each forward on one torch thread: the threads share the cores between them.
        with tuned(1 if threads > 1 and view != "sharpness" else None):
            if view == "plane":
                *_, result = plane_of(s, grid=grid, span=span, direction_seed=direction_seed, split=split,
                                      examples=examples, threads=threads)  # fmt: skip
            elif view == "line":
                result = line_of(s, points=points, split=split, examples=examples, threads=threads)
            else:
                result = sharpness_of(s, split=split, examples=examples, iters=iters)
    if json_:
        print_json({"subject": s.name, "model": s.config.model, "split": split, view: result.to_dict()})
        return
    {"plane": _print_plane, "line": _print_line, "sharpness": _print_sharpness}[view](s.name, result)


@experiment_app.command("landscape-subjects")
def landscape_subjects_cmd(
    ctx: typer.Context,
    runs_dir: Annotated[Path, typer.Option(help="The --runs-dir of a conv1d degradation experiment.")],
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds (default: every finished one).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write (default: the package's shipped subjects).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Ship the trained plain/residual 20- and 56-layer nets of a degradation experiment's run folders."""
    chosen = parse_ints("--seeds", seeds) if seeds else None
    argv = ["experiment", ctx.info_name or "landscape-subjects", "--runs-dir", str(runs_dir)]
    argv += ["--seeds", ",".join(map(str, chosen))] if chosen else []
    with user_errors():
        index = export_subjects(runs_dir, out, seeds=chosen, argv=argv)
    if json_:
        print_json(index.to_dict())
        return
    print_table(
        f"landscape subjects written ({sum(s.bytes for s in index.subjects) / 1e6:.1f} MB)",
        ["subject", "model", "epochs", "final train loss", "test error", "bytes", "sha256"],
        [
            [s.name, s.model, str(s.epoch), fmt(s.final["train_loss"]), fmt(s.final["test_error"]), f"{s.bytes:,}",
             s.sha256[:12]]
            for s in index.subjects
        ],
    )  # fmt: skip


@experiment_app.command("landscape")
def landscape_study_cmd(
    ctx: typer.Context,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds (default: every shipped one).")] = None,
    grid: Annotated[int, typer.Option(help="Points per axis of each plane (odd).")] = 21,
    span: Annotated[float, typer.Option(help="Each plane covers [-span, span]².")] = 1.0,
    direction_seed: Annotated[int, typer.Option(help="Seed of the planes' directions.")] = 0,
    split: Annotated[str, typer.Option(help="train | test.")] = "train",
    write_results_: Annotated[bool, typer.Option("--write-results", help="Keep it beside the subjects.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Roughness, init-to-trained line and Hessian of every shipped subject; plain vs residual, seed by seed."""
    chosen = parse_ints("--seeds", seeds) if seeds else ()
    with user_errors():
        cfg = StudyConfig(seeds=chosen, grid=grid, span=span, direction_seed=direction_seed, split=split).validate()
        study = landscape_study(cfg, on_subject=lambda m: err_console.print(f"{m.name}: {m.seconds:.0f} s"))
    if write_results_:
        argv = ["experiment", ctx.info_name or "landscape", "--grid", str(grid), "--span", f"{span:g}"]
        argv += ["--direction-seed", str(direction_seed), "--split", split, "--write-results"]
        argv += ["--seeds", ",".join(map(str, chosen))] if chosen else []
        err_console.print(f"wrote {write_study(study, argv)}")
    if json_:
        print_json(study.to_dict())
        return
    print_table(
        f"loss landscapes of the shipped subjects ({cfg.grid}x{cfg.grid} planes, span {cfg.span:g}, {cfg.split} batch)",
        ["subject", "loss", "non-convex share", "λmax", "λmin", "|λmin/λmax|", "init loss", "line monotone"],
        [
            [m.name, fmt(m.loss), fmt(m.non_convex_share), fmt(m.lambda_max), fmt(m.lambda_min), fmt(m.ratio),
             fmt(m.line_init_loss), "yes" if m.line_monotone else "no"]
            for m in study.measures
        ],
    )  # fmt: skip
    typer.echo(study.finding)
