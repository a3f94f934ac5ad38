"""`skiplab experiment shortcut-variants`: He et al. 2016's shortcut variants trained on MNIST-1D, each compared with
the identity shortcut by the paired rule."""

from __future__ import annotations

from typing import Annotated

import typer

from skiplab.cli.common import (
    DEFAULT_STORE,
    JsonOpt,
    StoreOpt,
    console,
    fmt,
    open_store,
    parse_ints,
    print_json,
    print_table,
    user_errors,
)
from skiplab.cli.experiment import (
    BatchOpt,
    EpochsOpt,
    LrOpt,
    OutOpt,
    SeedsOpt,
    WarmupOpt,
    WorkersOpt,
    WriteOpt,
    _keep_results,
    _on_run,
    experiment_app,
)
from skiplab.experiments.variants import ShortcutVariantsConfig, shortcut_variants

D = ShortcutVariantsConfig()


@experiment_app.command("shortcut-variants")
def shortcut_variants_cmd(
    ctx: typer.Context,
    depth: Annotated[int, typer.Option(help="20 or 56.")] = D.depth,
    seeds: SeedsOpt = ",".join(map(str, D.seeds)),
    variants: Annotated[str, typer.Option(help="Comma-separated, identity first.")] = ",".join(D.variants),
    epochs: EpochsOpt = D.epochs,
    lr: LrOpt = D.lr,
    warmup: WarmupOpt = D.warmup_epochs,
    batch: BatchOpt = D.batch_size,
    workers: WorkersOpt = D.workers,
    store: StoreOpt = DEFAULT_STORE,
    write_results_: WriteOpt = False,
    results_out: OutOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Identity vs scaled, gated, 1x1-conv and dropout shortcuts (He et al. 2016, Table 1), trained and compared."""
    with user_errors():
        cfg = ShortcutVariantsConfig(
            depth=depth,
            seeds=tuple(parse_ints("--seeds", seeds)),
            variants=tuple(v.strip() for v in variants.split(",") if v.strip()),
            epochs=epochs,
            lr=lr,
            warmup_epochs=warmup,
            batch_size=batch,
            workers=workers,
        )
        result = shortcut_variants(cfg, store=open_store(store), on_run=_on_run(json_))
    _keep_results(ctx, "shortcut_variants", result.to_dict(), write_results_, results_out)
    if json_:
        print_json(result.to_dict())
        return
    print_table(
        f"shortcut variants, 1-D ResNet-{cfg.depth} on MNIST-1D: best training loss per seed "
        f"({', '.join(map(str, cfg.seeds))})",
        ["variant", "best training loss", "final test error", "init grad first/last", "published error", "verdict"],
        [
            [
                r.variant,
                " / ".join(fmt(v) for v in r.best_train_loss),
                " / ".join(fmt(v) for v in r.final_test_error),
                fmt(r.init_first_last),
                "fail" if r.published_test_error is None else f"{r.published_test_error}%",
                r.summary,
            ]
            for r in result.rows
        ],
    )
    console.print(f"Rule: {result.rule}")
    console.print(f"Published: {result.published_source}.")
