"""`skiplab probe transformer`: the residual stream of the pretrained MiniLM on the reader's sentences."""

from __future__ import annotations

from typing import Annotated

import typer

from skiplab.cli.common import JsonOpt, err_console, fmt, print_json, print_table, user_errors
from skiplab.probes.minilm import ModelMissing
from skiplab.probes.transformer import MAX_SENTENCES, MAX_TOKENS, LesionEffect, StreamProbe, probe_sentences
from skiplab.probes.transformer_init import InitComparison, compare_init

SAMPLE = "Skip connections let the signal and its gradient take a short road."


def _lesion_label(e: LesionEffect) -> str:
    return ", ".join(c.key for c in e.lesions) + f" (drop {e.lesions[0].drop})"


def _print_stream(p: StreamProbe) -> None:
    print_table(
        f"{p.model}: {p.layers} layers, hidden {p.hidden} — {p.statement}",
        ["layer", "sublayer", "|x| in", "|y| out", "|F(x)|", "|F(x)|/|x|", "cos(x, y)", "|dL/dx|"],
        [
            [s.layer, s.sublayer, fmt(s.stream_norm_in), fmt(s.stream_norm_out), fmt(s.branch_norm),
             fmt(s.branch_ratio), fmt(s.cosine_in_out), fmt(s.grad_norm)]
            for s in p.sublayers
        ],
    )  # fmt: skip
    print_table(
        f"sentence pairs (cosine of mean-pooled embeddings){' — intact and lesioned' if p.lesion else ''}",
        ["sentence a", "sentence b", "intact", *(["lesioned"] if p.lesion else [])],
        [[q.a, q.b, fmt(q.intact), *([fmt(q.lesioned)] if p.lesion else [])] for q in p.pairs],
    )


def _print_effects(title: str, effects: list[LesionEffect]) -> None:
    print_table(
        title,
        ["lesion", "embedding cosine to intact", "pair ranking kept", "Kendall's tau"],
        [
            [_lesion_label(e), ", ".join(fmt(c) for c in e.embedding_cosine), "yes" if e.ranking_kept else "no",
             fmt(e.rank_correlation)]
            for e in effects
        ],
    )  # fmt: skip


def _print_init(r: InitComparison) -> None:
    c = r.config
    print_table(
        f"at initialisation, {c.layers} layers, hidden {c.hidden}: |dL/dθ| per layer ({r.loss})",
        ["layer", f"post-LN ({r.post_ln.model})", f"pre-LN ({r.pre_ln.model})"],
        [[i, fmt(a), fmt(b)] for i, (a, b) in enumerate(zip(r.post_ln.layer_grad, r.pre_ln.layer_grad))],
    )
    print_table("post-LN vs pre-LN", ["", ""], [["reference", r.reference], ["here", r.finding]])


def transformer_cmd(
    text: Annotated[
        list[str] | None,
        typer.Option(help=f"A sentence (repeat for up to {MAX_SENTENCES}; at most {MAX_TOKENS} tokens each)."),
    ] = None,
    lesion: Annotated[
        list[str] | None, typer.Option(help="Cut this sublayer, e.g. 0.attention or 5.ffn (repeat to cut several).")
    ] = None,
    drop: Annotated[str, typer.Option(help="branch: drop F(x), keep the skip | skip: keep F(x), drop the skip.")] = (
        "branch"
    ),
    each: Annotated[bool, typer.Option("--each", help="Also cut every sublayer alone, both ways.")] = False,
    init: Annotated[
        bool, typer.Option("--init", help="Also compare post-LN and pre-LN gradients at initialisation.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """A pretrained MiniLM's residual stream per sublayer for your sentences, with lesions (post-LN BERT)."""
    with user_errors():
        try:
            probe = probe_sentences(text or [SAMPLE], lesion=lesion or [], drop=drop, each=each)
            start = compare_init() if init else None
        except ModelMissing as e:
            err_console.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from None
    if json_:
        print_json({"probe": probe.to_dict(), "init": start.to_dict() if start else None})
        return
    _print_stream(probe)
    if probe.lesion:
        _print_effects("the lesion asked for", [probe.lesion])
    if probe.single_lesions:
        _print_effects("every sublayer cut alone", probe.single_lesions)
    if start:
        _print_init(start)
