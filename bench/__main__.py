"""Run every benchmark module (or those named on the command line) and write bench/results.json."""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("bench_*.py"))
    out_path = HERE / "results.json"
    results = json.loads(out_path.read_text()) if out_path.exists() and argv else {}
    results["_machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        t0 = time.perf_counter()
        results[name] = module.run()
        results[name]["_wall_s"] = round(time.perf_counter() - t0, 1)
        print(f"== {name} ({results[name]['_wall_s']} s)")
        print(json.dumps(results[name], indent=2))
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
