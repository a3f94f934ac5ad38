"""Load held by `skiplab serve`, driven by wrk (a compiled generator that shares no interpreter with the server).

Two wrk processes run at once for `SECONDS`: 25 connections asking light
endpoints (the article, stored results, the schema) and 25 asking heavy ones
with random settings, so most of them miss the answer cache. The heavy side's
queue is full nearly all the time, so nearly all of its answers are 429s: its
latency percentiles are those of a refusal (the counts say how many were
computed), and one more client, curl, times 300 of them one by one so the
refusals' own tail is known. A light-only run first is the baseline in the
same run; the server's memory (PSS of the serving process, its fork server and
workers) is sampled every second.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.load import served

SECONDS = 60
BASELINE_SECONDS = 20
CONNECTIONS = 25  # per side: 50 clients in all
REFUSAL_PROBES = 300  # requests of the one curl client that times each refusal on its own

# Each wrk thread counts the statuses it sees; `done` prints them as one JSON line.
COUNTING = """
counts = {}  -- global: done() reads each thread's copy with thread:get
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for k, v in pairs(c) do total[tostring(k)] = (total[tostring(k)] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%s": %d', k, v)) end
  io.write("STATUSES {" .. table.concat(parts, ", ") .. "}\\n")
  for _, p in ipairs({50, 99}) do io.write(string.format("P%d %.3f\\n", p, latency:percentile(p) / 1000)) end
end
"""
LIGHT = COUNTING + """
local paths = {"/", "/api/results/degradation", "/api/results/lesion", "/openapi.json"}
local i = 0
function request() i = i + 1; return wrk.format("GET", paths[(i % #paths) + 1]) end
"""
# Uncached gradient-flow probes of 300-1000 layers (0.2-2 s each): the queue stays full, so all but a
# few of these are refused, and the side's percentiles are those of a 429 (the counts say how many ran).
HEAVY = COUNTING + """
local acts = {"relu", "tanh", "sigmoid"}
local norms = {"batch", "none"}
function request()
  local q = "depth=" .. math.random(300, 1000) .. "&activation=" .. acts[math.random(3)]
  q = q .. "&norm=" .. norms[math.random(2)]
  return wrk.format("GET", "/api/gradflow?" .. q)
end
"""


def _wrk(url: str, script: str, seconds: int, tmp: Path, name: str) -> subprocess.Popen:
    path = tmp / f"{name}.lua"
    path.write_text(script)
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "30s", "-s", str(path), url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _parse(out: str) -> dict:
    statuses = json.loads(re.search(r"^STATUSES (.*)$", out, re.M).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "p50_ms": float(re.search(r"^P50 (\S+)$", out, re.M).group(1)),
        "p99_ms": float(re.search(r"^P99 (\S+)$", out, re.M).group(1)),
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
    }


def _refusal_probe(url: str, n: int, seed: int = 0) -> dict:
    """One curl client asking `n` uncached deep probes in turn while the load runs: each answer's own time.

    wrk reports one latency distribution per process; this separates the refusals (429) from the few
    requests that were admitted and computed, so the refusal's own tail is measured.
    """
    rng = random.Random(seed)
    args = ["curl", "-s", "--max-time", "60", "-w", "%{http_code} %{time_total}\\n"]
    for _ in range(n):
        args += ["-o", "/dev/null", f"{url}/api/gradflow?depth={rng.randint(300, 1000)}&norm=none"]
    lines = subprocess.run(args, capture_output=True, text=True).stdout.split()
    answers = list(zip(lines[::2], (1000 * float(t) for t in lines[1::2])))
    refused = sorted(ms for code, ms in answers if code == "429")
    pick = lambda q: round(refused[min(len(refused) - 1, int(q * len(refused)))], 1) if refused else None  # noqa: E731
    return {"requests": len(answers), "refused": len(refused), "p50_ms": pick(0.5), "p99_ms": pick(0.99)}


def _tree_pss_mb(pid: int) -> float:
    """Proportional set size of `pid` and its descendants (fork server, workers), in MiB.

    PSS counts each shared page once across the processes that share it: the workers are forked from a
    fork server that imported torch, so summing their RSS would count torch's pages several times.
    """
    ps = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout.split("\n")
    rows = [tuple(int(v) for v in line.split()) for line in ps if line.strip()]
    tree, grew = {pid}, True
    while grew:
        grew = False
        for p, parent in rows:
            if parent in tree and p not in tree:
                tree.add(p)
                grew = True
    total_kb = 0
    for p in tree:
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue  # ended meanwhile
        total_kb += int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))
    return total_kb / 1024


def run() -> dict:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (make bench does)")
    pss: list[float] = []
    stop = threading.Event()
    with served() as (url, server):

        def sample() -> None:
            while not stop.wait(1.0):
                pss.append(_tree_pss_mb(server.pid))

        threading.Thread(target=sample, daemon=True).start()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                baseline = _parse(_wrk(url, LIGHT, BASELINE_SECONDS, Path(tmp), "baseline").communicate()[0])
                light = _wrk(url, LIGHT, SECONDS, Path(tmp), "light")
                heavy = _wrk(url, HEAVY, SECONDS, Path(tmp), "heavy")
                time.sleep(5)  # let the heavy side fill the queue
                refusals = _refusal_probe(url, REFUSAL_PROBES)
                light_out, heavy_out = _parse(light.communicate()[0]), _parse(heavy.communicate()[0])
        finally:
            stop.set()
    statuses = {**light_out["statuses"]}
    for k, v in heavy_out["statuses"].items():
        statuses[k] = statuses.get(k, 0) + v
    return {
        "seconds": SECONDS,
        "clients": 2 * CONNECTIONS,
        "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(v for k, v in statuses.items() if k.startswith("5")),
        "light": light_out,
        "heavy": heavy_out,
        "light_only_baseline": baseline,
        "light_p99_vs_light_only": round(light_out["p99_ms"] / max(baseline["p99_ms"], 1e-9), 2),
        "refusals_probed": refusals,
        "heavy_computed_share": round(heavy_out["statuses"].get("200", 0) / max(heavy_out["requests"], 1), 4),
        "pss_mb_max": round(max(pss), 1) if pss else None,
        "pss_mb_last": round(pss[-1], 1) if pss else None,
    }
