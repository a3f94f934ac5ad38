"""The search for He et al.'s whole claim: every setting tried, its runs, and what the verdict says of each.

A setting shows the whole claim when, at every pair of depths, plain deeper
is worse and residual deeper is better by the rule of
`skiplab.experiments.verdict`; the record keeps every setting tried, so the
page's claim carries its evidence.
"""

from __future__ import annotations

from collections.abc import Callable

from skiplab.experiments.studies import DegradationConfig, degradation
from skiplab.experiments.verdict import judge, rule_text
from skiplab.store import RunStore


def both_halves(comparisons: list[dict]) -> bool:
    """He et al.'s whole claim at every pair of depths: plain deeper is worse AND residual deeper is better."""
    plain = [c for c in comparisons if c["kind"] == "plain"]
    res = [c for c in comparisons if c["kind"] == "res"]
    return (
        bool(plain and res)
        and all(c["summary"] == "deeper is worse" for c in plain)
        and all(c["summary"] == "deeper is better" for c in res)
    )


def setting_label(c: dict) -> str:
    """A setting in a few words, e.g. "mnist1d conv1d w16, 30 epochs, lr 0.1, warm-up 9, batch 128, seeds 0,1,2"."""
    return (
        f"{c['data']} {c['family']} w{c['width']}, {c['epochs']} epochs, lr {c['lr']:g}, warm-up "
        f"{c['warmup_epochs']:g}, batch {c['batch_size']}, seeds {','.join(map(str, c['seeds']))}"
    )


def search_entry(label: str, command: str, result: dict) -> dict:
    """One setting of the search: what was run (command, config) and what the rule says about its runs."""
    j = judge(result["rows"], result["config"].get("alpha", 0.05))
    comparisons = [c.to_dict() for c in j["comparisons"]]
    return {
        "label": label,
        "command": command,
        "config": result["config"],
        "rows": result["rows"],
        "comparisons": comparisons,
        "error_comparisons": [c.to_dict() for c in j["error_comparisons"]],
        "verdict": j["verdict"],
        "both_halves": both_halves(comparisons),
        "wall_seconds": result.get("wall_seconds"),
    }


def search_record(entries: list[dict], runs: dict[str, dict], alpha: float = 0.05) -> dict:
    """The search's results: every setting tried with its outcome, the finding in words, and all the runs."""
    found = [e["label"] for e in entries if e["both_halves"]]
    plain_only = [
        e["label"]
        for e in entries
        if all(c["summary"] == "deeper is worse" for c in e["comparisons"] if c["kind"] == "plain")
    ]
    if found:
        finding = (
            f"Both halves of the claim (plain deeper is worse, residual deeper is better, on best training loss by "
            f"the rule) show in: {'; '.join(found)}."
        )
    else:
        residual = "; ".join(
            f"{e['label']}: {c['summary']} ({c['deep']} vs {c['shallow']}, best loss x {c['ratio']:.3g})"
            for e in entries
            for c in e["comparisons"]
            if c["kind"] == "res"
        )
        finding = (
            f"No setting tried shows residual deeper better than residual shallower by the rule ({len(entries)} "
            f"tried). Plain deeper is worse in: {'; '.join(plain_only) or 'none'}. Residual: {residual}. The "
            f"paper's result on CIFAR-10 needs `skiplab train --preset he2015-cifar` with the CIFAR-10 binary release."
        )
    return {
        "config": {"alpha": alpha, "threads": _threads(runs), "settings": [e["label"] for e in entries]},
        "rule": rule_text(alpha),
        "finding": finding,
        "found": found,
        "settings": entries,
        "runs": runs,
    }


def _threads(runs: dict[str, dict]) -> int | None:
    threads = {r["config"].get("threads") for r in runs.values()}
    return threads.pop() if len(threads) == 1 else None


def degradation_search(
    settings: list[DegradationConfig],
    *,
    store: RunStore | None = None,
    on_run: Callable[[str, dict], None] | None = None,
    command_of: Callable[[DegradationConfig], str] | None = None,
) -> dict:
    """Run the degradation experiment for every setting and record each with its outcome."""
    entries, runs = [], {}
    for cfg in settings:
        label = setting_label(cfg.to_dict())
        result = degradation(cfg, store=store, on_run=on_run).to_dict()
        entries.append(search_entry(label, command_of(cfg) if command_of else "", result))
        runs.update({f"{label}/{name}": run for name, run in result["runs"].items()})
    return search_record(entries, runs, settings[0].alpha if settings else 0.05)


def assemble_search(files: list[dict], alpha: float = 0.05) -> dict:
    """The search record from degradation results files (one per setting, each made by its recorded command)."""
    entries, runs = [], {}
    for data in files:
        if data.get("name") != "degradation":
            raise ValueError(f"a search is assembled from degradation results files; got {data.get('name')!r}")
        c = data["config"]
        label = setting_label(c)
        if any(e["label"] == label for e in entries):
            raise ValueError(f"setting {label!r} is given twice")
        entries.append(search_entry(label, data["command"], {**data, "config": {**c, "alpha": alpha}}))
        runs.update({f"{label}/{name}": run for name, run in data["runs"].items()})
    return search_record(entries, runs, alpha)
