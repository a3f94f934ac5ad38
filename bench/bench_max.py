"""Every setting the page offers answers: the first request for each widget at its largest settings.

For every widget, every combination of its choices (activation, norm, ...)
with each number at the top of its range is asked once of a fresh app with
the server's own settings (its 10 s compute cap included), so each is a
first request: nothing cached, nothing built before. It runs twice, in a
child process each: with this CPU's kernels, and with an older instruction
set's (`provenance.older_kernels_env`: AVX2 on an AVX-512 machine), both
while another process keeps one core busy. Reported per widget: the worst
time, its settings, and every status seen (the goal: 200 or a priced 422,
never a 5xx).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
import typing

from annotated_types import Le

# widget → (endpoint, module, query model)
WIDGETS: dict[str, tuple[str, str, str]] = {
    "gradflow": ("/api/gradflow", "gradflow", "GradFlowQuery"),
    "preact": ("/api/pitfalls/preact", "pitfalls", "PreactQuery"),
    "bypass": ("/api/bypass", "bypass", "BypassQuery"),
    "anatomy": ("/api/anatomy", "anatomy", "AnatomyQuery"),
    "types": ("/api/skip-types", "skip_types", "SkipTypesQuery"),
    "ensemble": ("/api/paths", "paths", "PathsQuery"),
    "dense": ("/api/pitfalls/dense-memory", "pitfalls", "DenseQuery"),
    "shortcut": ("/api/pitfalls/shortcut", "pitfalls", "ShortcutQuery"),
}


def largest_settings(model) -> list[dict]:
    """Every combination of a query model's choices, each number at its upper bound."""
    axes = {}
    for name, field in model.model_fields.items():
        bound = next((m.le for m in field.metadata if isinstance(m, Le)), None)
        if field.annotation is bool:
            axes[name] = [False, True]
        elif typing.get_origin(field.annotation) is typing.Literal:
            axes[name] = list(typing.get_args(field.annotation))
        elif bound is not None:
            axes[name] = [bound]
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def _spin(stop) -> None:
    while not stop.is_set():
        pass


def measure() -> dict:
    """In this process: a fresh app, one core kept busy, each widget's largest settings asked once each."""
    import importlib

    from fastapi.testclient import TestClient

    from skiplab.provenance import machine
    from skiplab.web.app import create_app
    from skiplab.web.settings import WebSettings

    stop = mp.Event()
    spinner = mp.Process(target=_spin, args=(stop,), daemon=True)
    spinner.start()
    out = {"machine": machine(), "widgets": {}}
    try:
        with TestClient(create_app(WebSettings()), base_url="http://127.0.0.1") as client:
            for widget, (path, module, model_name) in WIDGETS.items():
                model = getattr(importlib.import_module(f"skiplab.web.routers.{module}"), model_name)
                worst, statuses = {"seconds": 0.0}, {}
                for params in largest_settings(model):
                    t0 = time.perf_counter()
                    response = client.get(path, params={k: str(v).lower() for k, v in params.items()})
                    seconds = time.perf_counter() - t0
                    statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
                    if seconds > worst["seconds"]:
                        worst = {"seconds": round(seconds, 2), "params": params, "status": response.status_code}
                out["widgets"][widget] = {"worst": worst, "statuses": statuses}
    finally:
        stop.set()
        spinner.join()
    return out


def run() -> dict:
    from skiplab.provenance import older_kernels_env
    from skiplab.web.settings import WebSettings

    results = {}
    for label, env in (("this_cpu", {}), ("older_kernels", older_kernels_env())):
        if label == "older_kernels" and not env:
            continue
        proc = subprocess.run(
            [sys.executable, "-m", "bench.bench_max", "--child"],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        results[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    results["cap_s"] = WebSettings().compute_timeout_s
    results["server_errors"] = sum(
        n for r in results.values() if isinstance(r, dict) for w in r["widgets"].values()
        for s, n in w["statuses"].items() if int(s) >= 500
    )  # fmt: skip
    return results


if __name__ == "__main__":
    if "--child" in sys.argv:
        print(json.dumps(measure()))
    else:
        print(json.dumps(run(), indent=2))
