"""Price a MiniLM stream probe before running it, from the model's config and the request's token counts.

The network is fixed (loaded once, never built per request), so what a request
costs is the tokens it pushes through it. A forward pass costs about 2 FLOPs
per weight per token (Kaplan et al. 2020's 2N, embeddings excluded: a lookup
is not a multiply) plus attention's 4·T·H per token and layer; the intact pass
is run with a backward to the stream (about twice the forward again); the pairs
and, with lesions, every sentence once more go forward only. Counting tokens
needs the tokenizer alone, so the server prices a request in milliseconds,
before it queues, whatever the worker is doing.
"""

from __future__ import annotations

from collections.abc import Sequence

from skiplab.probes import minilm
from skiplab.probes.budget import Budget, Price, check_budget
from skiplab.probes.transformer import DEFAULT_PAIRS, MAX_CHARS, MAX_TOKENS, encode_sentences
from skiplab.probes.transformer_hooks import parse_lesions

FLOAT_BYTES = 4


def _forward(rows: int, tokens: int, layers: int, hidden: int, inner: int) -> tuple[int, int]:
    """FLOPs and saved activation bytes of one forward pass of `rows` sentences padded to `tokens`."""
    weights = layers * (4 * hidden * hidden + 2 * hidden * inner)
    flops = rows * tokens * (2 * weights + 4 * layers * tokens * hidden)
    heads_per_hidden = 1 / 32  # attention probabilities per layer: heads x tokens per token (12 heads at 384)
    per_token = layers * (6 * hidden + 2 * inner + tokens * hidden * heads_per_hidden)
    return flops, int(rows * tokens * per_token * FLOAT_BYTES)


def price_probe(
    texts: Sequence[str],
    lesions: int = 0,
    pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
) -> Price:
    """The price of `probe_sentences(texts, lesion=<lesions keys>, pairs=pairs)`; a ValueError for bad sentences."""
    cfg = minilm.model_config()
    layers, hidden, inner = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"]
    reader = encode_sentences(texts)
    reader_flops, act = _forward(len(texts), len(reader.input_ids[0]), layers, hidden, inner)
    flops = 3 * reader_flops  # forward, and a backward to the stream
    if pairs:
        enc = minilm.encode([s for p in pairs for s in p], MAX_TOKENS, MAX_CHARS)
        pair_flops, _ = _forward(len(enc.input_ids), len(enc.input_ids[0]), layers, hidden, inner)
        flops += pair_flops * (2 if lesions else 1)
    if lesions:
        flops += reader_flops  # the reader's sentences once more, cut
    return Price(
        params=layers * (4 * hidden * hidden + 2 * hidden * inner),  # the weights every token is multiplied by
        flops=flops,
        activation_bytes=act,
        weight_bytes=0,  # loaded once per worker, not per request
    )


def check_probe(texts: Sequence[str], lesion: Sequence[str], drop: str, budget: Budget) -> Price:
    """What `probe_sentences(texts, lesion, drop)` would be refused for, found before it runs: bad sentences or
    lesions (a ValueError), or a price over `budget` (OverBudget, a ValueError saying what to lower)."""
    parse_lesions(lesion, drop, minilm.model_config()["num_hidden_layers"])
    return check_budget(price_probe(texts, len(lesion)), budget, lower="the sentences' length or number")
