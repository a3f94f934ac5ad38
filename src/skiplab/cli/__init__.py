"""The `skiplab` command: thin adapters that parse, call the library and render."""

from __future__ import annotations

import typer

from skiplab.cli import (  # noqa: F401 (registers its commands)
    experiment,
    experiment_unet,
    experiment_variants,
    experiment_zoo,
    landscape,  # noqa: F401 (registers probe landscape, experiment landscape[-subjects])
    models,
    probe,
    serve,
)
from skiplab.cli import train as train_cli

app = typer.Typer(
    name="skiplab",
    help="Skip connections explained with numbers from real networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(models.app, name="models")
app.add_typer(probe.app, name="probe")
app.command("serve")(serve.serve)
app.command("train")(train_cli.train_cmd)
app.add_typer(train_cli.runs_app, name="runs")
app.add_typer(experiment.experiment_app, name="experiment")


def main() -> None:
    app()
