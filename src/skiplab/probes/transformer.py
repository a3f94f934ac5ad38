"""The residual stream of a transformer, measured per sublayer, with lesions: `probe_stream` and `probe_sentences`.

Every sublayer of a transformer (attention, then feed-forward) adds a branch
to a residual stream: y = x + F(x) in a pre-LN model (GPT-2), y = LN(x + F(x))
in a post-LN one (BERT, and Vaswani et al. 2017's original block). For the
reader's sentences this module reports, per layer and sublayer, the norm of
the stream entering and leaving, |F(x)|/|x|, the cosine between the stream
before and after, and the gradient reaching the stream; then cuts sublayers
(`Lesion`: drop F(x) and keep the skip, or keep F(x) and drop the skip) and
reports how far the pooled sentence embedding turns (its cosine to the
intact one) and whether the similarity ranking of a few sentence pairs
survives, in the spirit of Veit et al. 2016's lesion study.

Conventions: norms are Euclidean per token, averaged over the real tokens of
the reader's sentences (padding excluded); sentence embeddings are the mean
of the last hidden states over real tokens (sentence-transformers' pooling
for MiniLM); the gradient is that of a fixed random unit read-out of the
pooled embedding (`GRADIENT_LOSS`), so it depends on the network alone.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from skiplab.probes import minilm
from skiplab.probes.transformer_hooks import (
    Architecture,
    Lesion,
    SiteTrace,
    architecture,
    parse_lesions,
    run_traced,
)

MAX_TOKENS = 32  # per sentence, [CLS] and [SEP] included: the probe's size bound
MAX_CHARS = 200
MAX_SENTENCES = 4
GRADIENT_LOSS = "mean over sentences of <pooled embedding, u>, u a fixed random unit vector (seed 0)"

# Sentence pairs whose similarity ranking a lesion may or may not keep: from near-paraphrase to unrelated.
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("A man is playing a guitar.", "A man plays the guitar."),
    ("The cat sleeps on the sofa.", "A kitten is napping on the couch."),
    ("The train was late this morning.", "My flight was delayed today."),
    ("She bought bread at the bakery.", "The stock market fell sharply."),
)

STATEMENTS = {
    "post-LN": (
        "post-LN (BERT): each sublayer computes LayerNorm(x + F(x)), so the skip passes through a "
        "normalisation on its way to the next sublayer; the stream's norm is reset at every sublayer"
    ),
    "pre-LN": (
        "pre-LN (GPT-2): each sublayer computes x + F(LayerNorm(x)), nothing follows the addition, so the "
        "skip is a clean identity and the stream's norm can grow layer after layer"
    ),
}


@dataclass(frozen=True)
class SublayerStream:
    """One sublayer on the reader's sentences: the stream entering (x), the branch F(x), the stream leaving."""

    layer: int
    sublayer: str
    stream_norm_in: float  # mean over tokens of |x|
    stream_norm_out: float  # mean over tokens of |y|, y the stream after the sublayer (after its LayerNorm if post-LN)
    branch_norm: float  # mean over tokens of |F(x)|, the branch as computed (even where a lesion drops it)
    branch_ratio: float  # mean over tokens of |F(x)| / |x|
    cosine_in_out: float  # mean over tokens of cos(x, y)
    grad_norm: float | None = None  # |dL/dx| over the reader's tokens (the intact pass only)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairSimilarity:
    a: str
    b: str
    intact: float  # cosine of the two pooled embeddings, intact network
    lesioned: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LesionEffect:
    """What cutting `lesions` did: the embeddings' turn, the pair ranking, and the stream along the way."""

    lesions: list[Lesion]
    embedding_cosine: list[float]  # per reader sentence: cos(pooled lesioned, pooled intact)
    mean_embedding_cosine: float
    pair_similarity: list[float]  # per pair, lesioned
    ranking_kept: bool  # the pairs in the same order of similarity as in the intact network
    rank_correlation: float | None  # Kendall's tau between intact and lesioned pair similarities
    streams: list[SublayerStream]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lesions"] = [c.to_dict() for c in self.lesions]
        return d


@dataclass(frozen=True)
class StreamProbe:
    """The residual stream of one transformer on the reader's sentences (see the module's docstring)."""

    model: str
    family: str  # "bert" | "gpt2"
    norm_position: str  # "post-LN" | "pre-LN"
    statement: str
    layers: int
    hidden: int
    texts: list[str]
    tokens: list[list[str]]
    hidden_norms: list[float]  # what output_hidden_states holds: each layer's input, then the model's output
    sublayers: list[SublayerStream]
    gradient_loss: str
    pairs: list[PairSimilarity]
    lesion: LesionEffect | None = None
    single_lesions: list[LesionEffect] = field(default_factory=list)
    pooling: str = "mean over real tokens"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pairs"] = [p.to_dict() for p in self.pairs]
        d["lesion"] = self.lesion.to_dict() if self.lesion else None
        d["single_lesions"] = [e.to_dict() for e in self.single_lesions]
        return d


# ------------------------------------------------------------------ measurements


def _token_norms(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return t.detach()[mask].norm(dim=-1)


def _mean_norm(t: torch.Tensor, mask: torch.Tensor) -> float:
    return float(_token_norms(t, mask).mean())


def _sublayer_stream(t: SiteTrace, mask: torch.Tensor, grad: torch.Tensor | None = None) -> SublayerStream:
    x, f, y = (v.detach()[mask] for v in (t.x, t.branch, t.out))
    xn = x.norm(dim=-1)
    return SublayerStream(
        layer=t.site.layer,
        sublayer=t.site.sublayer,
        stream_norm_in=float(xn.mean()),
        stream_norm_out=float(y.norm(dim=-1).mean()),
        branch_norm=float(f.norm(dim=-1).mean()),
        branch_ratio=float((f.norm(dim=-1) / xn.clamp_min(1e-12)).mean()),
        cosine_in_out=float(nn.functional.cosine_similarity(x, y, dim=-1).mean()),
        grad_norm=None if grad is None else float(grad[mask].norm()),
    )


def pooled(last: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the last hidden states over the real tokens: one embedding per sentence."""
    m = mask.unsqueeze(-1).to(last.dtype)
    return (last * m).sum(1) / m.sum(1).clamp_min(1)


def _readout(hidden: int, seed: int = 0) -> torch.Tensor:
    u = torch.randn(hidden, generator=torch.Generator().manual_seed(seed))
    return u / u.norm()


def _kendall_tau(a: Sequence[float], b: Sequence[float]) -> float | None:
    n = len(a)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if not pairs:
        return None
    score = sum(((a[i] > a[j]) - (a[i] < a[j])) * ((b[i] > b[j]) - (b[i] < b[j])) for i, j in pairs)
    return score / len(pairs)


def _order(values: Sequence[float]) -> list[int]:
    return sorted(range(len(values)), key=lambda i: -values[i])


@dataclass(frozen=True)
class Batch:
    """Token ids and the mask of real tokens (right padding), for `model(input_ids=..., attention_mask=...)`."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        return self.attention_mask.bool()


def _pair_sims(model: nn.Module, arch: Architecture, pairs: Batch | None, lesions: Sequence[Lesion]) -> list[float]:
    if pairs is None:
        return []
    _, last = run_traced(model, arch, pairs.input_ids, pairs.attention_mask, lesions)
    e = pooled(last, pairs.attention_mask)
    return [float(v) for v in nn.functional.cosine_similarity(e[0::2], e[1::2], dim=-1)]


def _lesion_effect(
    model: nn.Module, arch: Architecture, batch: Batch, pairs: Batch | None, lesions: Sequence[Lesion],
    intact_emb: torch.Tensor, intact_sims: list[float],
) -> LesionEffect:  # fmt: skip
    trace, last = run_traced(model, arch, batch.input_ids, batch.attention_mask, lesions)
    cos = nn.functional.cosine_similarity(pooled(last, batch.attention_mask), intact_emb, dim=-1)
    sims = _pair_sims(model, arch, pairs, lesions)
    return LesionEffect(
        lesions=list(lesions),
        embedding_cosine=[float(c) for c in cos],
        mean_embedding_cosine=float(cos.mean()),
        pair_similarity=sims,
        ranking_kept=_order(sims) == _order(intact_sims),
        rank_correlation=_kendall_tau(intact_sims, sims),
        streams=[_sublayer_stream(t, batch.mask) for t in trace.sites],
    )


Intact = tuple[list[SublayerStream], list[float], torch.Tensor]


def _intact(model: nn.Module, arch: Architecture, batch: Batch) -> Intact:
    """The intact pass with gradients: per-sublayer streams, the hidden-state norms, the pooled embeddings."""
    trace, last = run_traced(model, arch, batch.input_ids, batch.attention_mask, grad=True)
    emb = pooled(last, batch.attention_mask)
    loss = (emb @ _readout(emb.shape[-1]).to(emb.dtype)).mean()
    grads = torch.autograd.grad(loss, [t.x for t in trace.sites], allow_unused=True)
    streams = [_sublayer_stream(t, batch.mask, g) for t, g in zip(trace.sites, grads)]
    firsts = [t for t in trace.sites if t.site.sublayer == "attention"]
    norms = [_mean_norm(t.x, batch.mask) for t in firsts] + [_mean_norm(last, batch.mask)]
    return streams, norms, emb.detach()


def _check_batch(batch: Batch, option: str) -> None:
    ids, mask = batch.input_ids, batch.attention_mask
    if ids.ndim != 2 or ids.shape != mask.shape or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"{option}: input_ids and attention_mask must be equal (sentences, tokens) shapes")
    if not bool(mask.bool().any(dim=1).all()):
        raise ValueError(f"{option}: every sentence needs at least one real token")


def _pairs(labels: Sequence[tuple[str, str]], sims: list[float], effect: LesionEffect | None) -> list[PairSimilarity]:
    return [
        PairSimilarity(a, b, s, effect.pair_similarity[i] if effect else None)
        for i, ((a, b), s) in enumerate(zip(labels, sims))
    ]


def probe_stream(
    model: nn.Module,
    batch: Batch,
    *,
    pairs: Batch | None = None,
    pair_texts: Sequence[tuple[str, str]] = (),
    lesions: Sequence[Lesion] = (),
    each: bool = False,
    texts: Sequence[str] = (),
    tokens: Sequence[Sequence[str]] = (),
    name: str = "",
    intact_pairs: Sequence[float] | None = None,
) -> StreamProbe:
    """Measure the residual stream of `model` (a BERT- or GPT-2-style `transformers` model) on `batch`.

    `pairs`: sentences two by two (rows 0 and 1 are a pair, 2 and 3, ...) whose similarity ranking lesions
    are judged by. `lesions`: cut these together and report the effect. `each`: also cut every sublayer
    alone, both ways (2 x 2 x layers forward passes). `intact_pairs`: the pairs' similarities in the intact
    model, if the caller has them already (they depend on the model and the pairs alone).
    """
    arch = architecture(model)
    base = getattr(model, "base_model", model)
    _check_batch(batch, "batch")
    if pairs is not None:
        _check_batch(pairs, "pairs")
    was_training = base.training
    base.eval()  # dropout off: every number is of the deterministic network
    try:
        streams, norms, emb = _intact(base, arch, batch)
        sims = list(intact_pairs) if intact_pairs is not None else _pair_sims(base, arch, pairs, ())
        effect = _lesion_effect(base, arch, batch, pairs, lesions, emb, sims) if lesions else None
        singles = [
            _lesion_effect(base, arch, batch, pairs, [Lesion(s.layer, s.sublayer, drop)], emb, sims)
            for drop in ("branch", "skip")
            for s in arch.sites
        ] if each else []  # fmt: skip
    finally:
        base.train(was_training)
    labels = list(pair_texts) or [(f"row {2 * i}", f"row {2 * i + 1}") for i in range(len(sims))]
    return StreamProbe(
        model=name or type(model).__name__,
        family=arch.family,
        norm_position=arch.norm_position,
        statement=STATEMENTS[arch.norm_position],
        layers=len(arch.layers),
        hidden=arch.hidden,
        texts=list(texts),
        tokens=[list(t) for t in tokens],
        hidden_norms=norms,
        sublayers=streams,
        gradient_loss=GRADIENT_LOSS,
        pairs=_pairs(labels, sims, effect),
        lesion=effect,
        single_lesions=singles,
    )


def _batch(enc: minilm.Encoded) -> Batch:
    return Batch(torch.tensor(enc.input_ids), torch.tensor(enc.attention_mask))


def encode_sentences(texts: Sequence[str]) -> minilm.Encoded:
    """The reader's sentences as MiniLM tokens, refused with a ValueError if empty, too many or too long."""
    if len(texts) > MAX_SENTENCES:
        raise ValueError(f"text: at most {MAX_SENTENCES} sentences; got {len(texts)}")
    return minilm.encode(list(texts), MAX_TOKENS, MAX_CHARS)


@functools.lru_cache(maxsize=8)
def _minilm_pairs(pairs: tuple[tuple[str, str], ...]) -> tuple[float, ...]:
    """The pairs' similarities in the intact MiniLM: fixed weights, so computed once per process and pairs."""
    model = minilm.load_model()
    batch = _batch(minilm.encode([s for p in pairs for s in p], MAX_TOKENS, MAX_CHARS))
    return tuple(_pair_sims(model, architecture(model), batch, ()))


def probe_sentences(
    texts: Sequence[str],
    lesion: Sequence[str] = (),
    drop: str = "branch",
    each: bool = False,
    pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
) -> StreamProbe:
    """`probe_stream` of the pretrained MiniLM (loaded on first use) on the reader's sentences.

    `lesion`: sublayer keys such as '0.attention' or '5.ffn', cut together the way `drop` says
    ('branch': F(x) dropped, skip kept; 'skip': F(x) kept, skip dropped).
    """
    enc = encode_sentences(texts)
    config = minilm.model_config()
    cuts = parse_lesions(lesion, drop, config["num_hidden_layers"])
    pair_enc = minilm.encode([s for p in pairs for s in p], MAX_TOKENS, MAX_CHARS) if pairs else None
    model = minilm.load_model()
    pair_batch = _batch(pair_enc) if pair_enc else None
    return probe_stream(
        model,
        _batch(enc),
        pairs=pair_batch,
        pair_texts=list(pairs),
        lesions=cuts,
        each=each,
        texts=list(texts),
        tokens=enc.tokens,
        name=minilm.MODEL_NAME,
        intact_pairs=_minilm_pairs(tuple(map(tuple, pairs))) if pair_batch else None,
    )
