"""The shipped results the explainer shows at once: real runs, with the command and seeds that produced them.

`skiplab experiment degradation --write-results` (and lesion, skip-types)
writes `src/skiplab/results/<name>.json`; the web reads it with
`load_results(name)`. Each file records the exact command, the config (seeds
included), package versions and git revision, and every run's per-epoch
curves, so a figure on the page can say which runs produced it and anyone can
rerun them.
"""

from __future__ import annotations

import json
import shlex
import time
from importlib import resources
from pathlib import Path

from skiplab.provenance import git_revision, machine, versions
from skiplab.train.checkpoint import write_atomic

RESULT_NAMES: tuple[str, ...] = (
    "degradation",
    "lesion",
    "skip_types",
    "degradation_search",
    "imagenet",
    "unet",
    "shortcut_variants",
)
FORMAT = "skiplab-results-1"


def _check(name: str) -> str:
    if name not in RESULT_NAMES:
        raise ValueError(f"results name must be one of {', '.join(RESULT_NAMES)}; got {name!r}")
    return name


def shipped_path(name: str) -> Path:
    """Where the package keeps the shipped file for `name` (inside the installed skiplab)."""
    return Path(str(resources.files("skiplab") / "results" / f"{_check(name)}.json"))


def load_results(name: str) -> dict:
    """The shipped results file `name` (degradation | lesion | skip_types) as a dict."""
    path = shipped_path(name)
    if not path.is_file():
        raise ValueError(
            f"no shipped results for {name!r}: run `skiplab experiment {name.replace('_', '-')} --write-results`"
        )
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skiplab results file (format {data.get('format')!r})")
    return data


def results_payload(name: str, argv: list[str], result: dict) -> dict:
    """A results file's content: what produced it, then the experiment's `to_dict()`."""
    return {
        "format": FORMAT,
        "name": _check(name),
        "command": shlex.join(["skiplab", *argv]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions(),
        "machine": runs_machine(result),
        "git_revision": git_revision(),
        **result,
    }


def runs_machine(result: dict) -> dict:
    """The machine record the runs share (CPU, kernels, the threads each run trained with), else this process's.

    The runs train in worker processes with their own thread count, so the
    parent's `machine()` would name the wrong number of threads.
    """
    records = [run["machine"] for run in result.get("runs", {}).values() if run.get("machine")]
    if records and all(r == records[0] for r in records):
        return records[0]
    if records:
        raise ValueError("the runs of one results file trained on different machines or thread counts")
    return machine()


def write_results(path: str | Path, payload: dict) -> Path:
    """Write a results file atomically (a reader never sees half of it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(payload, indent=1) + "\n").encode())
    return path


def rejudge(data: dict, argv: list[str], alpha: float = 0.05) -> dict:
    """A degradation results file with its verdict recomputed from its stored rows by the current rule.

    The runs are untouched (and checked against the rows); the file says the
    verdict was recomputed, when, by which command and with which rule, and
    keeps the command that trained the runs as `runs_command`. `command`
    becomes that command as the current CLI spells it (the verdict options
    replaced), so rerunning it trains the same runs and judges them this way.
    """
    from skiplab.experiments.verdict import judge

    if data.get("name") != "degradation":
        raise ValueError(f"only a degradation results file has a verdict to recompute; got {data.get('name')!r}")
    seeds = data["config"]["seeds"]
    for row in data["rows"]:
        for seed, best in zip(seeds, row["best_train_loss"], strict=True):
            run = data["runs"][f"{row['kind']}{row['depth']}-s{seed}"]
            if run["best_train_loss"] != best:
                raise ValueError(f"row {row['kind']}{row['depth']} does not match its run for seed {seed}")
    j = judge(data["rows"], alpha)
    runs_command = data.get("runs_command", data["command"])
    words = shlex.split(runs_command)
    kept: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in ("--tolerance", "--alpha"):  # the verdict's options, not the runs'
            i += 2
            continue
        kept.append(words[i])
        i += 1
    config = {k: v for k, v in data["config"].items() if k != "tolerance"}
    return {
        **data,
        "command": shlex.join([*kept, "--alpha", f"{alpha:g}"]),
        "runs_command": runs_command,
        "config": {**config, "alpha": alpha},
        "comparisons": [c.to_dict() for c in j["comparisons"]],
        "error_comparisons": [c.to_dict() for c in j["error_comparisons"]],
        "verdict": j["verdict"],
        "rule": j["rule"],
        "verdict_recomputed": {
            "command": shlex.join(["skiplab", *argv]),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "note": "runs unchanged (trained by runs_command); verdict, comparisons and rule recomputed from the "
            "stored rows by the paired-seed rule, which replaced the absolute tolerance in nats",
        },
    }
