"""Post-LN vs pre-LN at initialisation: per-layer gradient norms of a random BERT and a random GPT-2 of one size.

Xiong et al. 2020 ("On Layer Normalization in the Transformer Architecture")
showed that at initialisation the gradients of a post-LN transformer's
parameters are large near the output and shrink toward the input, which is
why post-LN training needs a learning-rate warm-up, while a pre-LN
transformer's gradients are about the same in every layer. Here the two
layouts are built from `transformers`' own config classes at the same size
(layers, hidden width, heads, feed-forward width, vocabulary), initialised by
their own code, and given the same loss: cross-entropy of random target
tokens read out through each model's input embedding matrix (a tied output
layer), on the same random tokens. What they show is reported as measured.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch
from torch import nn

from skiplab.probes.common import check_int
from skiplab.probes.minilm import import_transformers
from skiplab.probes.transformer_hooks import architecture, run_traced
from skiplab.seeding import seeded

REFERENCE = (
    "Xiong et al. 2020: at initialisation a post-LN transformer's parameter gradients are largest near the "
    "output (growing with the layer index), a pre-LN transformer's are about the same in every layer"
)
SAME_WITHIN = 1.25  # last/first within this factor either way: "about the same in every layer"
INITIALISATION = (
    "each model's own (transformers: normal weights, std initializer_range = 0.02; GPT-2 also scales its "
    "residual output projections by 1/sqrt(2 x layers))"
)
LOSS = "cross-entropy of random target tokens, logits = last hidden state x (input embedding matrix)^T"


@dataclass(frozen=True)
class InitConfig:
    layers: int = 6  # MiniLM's depth and width, so the page compares like with like
    hidden: int = 384
    heads: int = 12
    tokens: int = 32  # per sequence
    batch: int = 4  # sequences
    vocab: int = 1024  # small: the tied read-out stays cheap, and the blocks, not the vocabulary, are compared
    seed: int = 0

    def check(self) -> InitConfig:
        check_int("layers", self.layers, 1, 48)
        check_int("hidden", self.hidden, 8, 1024)
        check_int("heads", self.heads, 1, 64)
        check_int("tokens", self.tokens, 2, 512)
        check_int("batch", self.batch, 1, 64)
        check_int("vocab", self.vocab, 2, 65536)
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class InitFlow:
    """One randomly initialised model: per layer (input → output), the gradient of the loss."""

    model: str
    norm_position: str
    layer_grad: list[float]  # |dL/dθ| over all of the layer's parameters
    stream_grad: list[float]  # |dL/dx| at the layer's input (the residual stream)
    last_first_ratio: float  # layer_grad[-1] / layer_grad[0]: > 1 means larger near the output
    trend: str  # "largest near the output" | "largest near the input" | "about the same in every layer"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class InitComparison:
    config: InitConfig
    loss: str
    initialisation: str
    reference: str
    post_ln: InitFlow
    pre_ln: InitFlow
    agrees_with_reference: bool  # post-LN largest near the output and pre-LN about the same in every layer
    finding: str  # what was measured, in words, beside the reference

    def to_dict(self) -> dict:
        return asdict(self)


def random_models(cfg: InitConfig) -> tuple[nn.Module, nn.Module]:
    """A BertModel (post-LN) and a GPT2Model (pre-LN) of the same size, each initialised by its own code."""
    tf = import_transformers()
    positions = max(cfg.tokens, 8)
    bert = tf.BertConfig(
        vocab_size=cfg.vocab, hidden_size=cfg.hidden, num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
        intermediate_size=4 * cfg.hidden, max_position_embeddings=positions, pad_token_id=0,
    )  # fmt: skip
    gpt2 = tf.GPT2Config(
        vocab_size=cfg.vocab, n_embd=cfg.hidden, n_layer=cfg.layers, n_head=cfg.heads, n_inner=4 * cfg.hidden,
        n_positions=positions, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    with seeded(cfg.seed):
        post = tf.BertModel(bert, add_pooling_layer=False).eval()
    with seeded(cfg.seed):
        pre = tf.GPT2Model(gpt2).eval()
    return post, pre


def trend(last_first: float) -> str:
    """Where a per-layer gradient profile is largest, from its last/first ratio (`SAME_WITHIN` either way: flat)."""
    if last_first > SAME_WITHIN:
        return "largest near the output"
    if last_first < 1 / SAME_WITHIN:
        return "largest near the input"
    return "about the same in every layer"


def _finding(post: InitFlow, pre: InitFlow) -> tuple[bool, str]:
    agrees = post.trend == "largest near the output" and pre.trend == "about the same in every layer"
    said = (
        f"measured with each model's own initialisation: post-LN gradients {post.trend} "
        f"(last/first layer {post.last_first_ratio:.3g}), pre-LN gradients {pre.trend} "
        f"(last/first {pre.last_first_ratio:.3g}); Xiong et al. 2020's pattern (post-LN largest near the output, "
        f"pre-LN the same in every layer) {'shows' if agrees else 'does not show'} here"
    )
    return agrees, said


def _flow(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor) -> InitFlow:
    arch = architecture(model)
    model.zero_grad(set_to_none=True)
    trace, last = run_traced(model, arch, ids, torch.ones_like(ids), grad=True)
    logits = last @ model.get_input_embeddings().weight.T
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    inputs = [t.x for t in trace.sites if t.site.sublayer == "attention"]
    stream = torch.autograd.grad(loss, inputs, retain_graph=True)
    loss.backward()
    layer_grad = [
        float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in layer.parameters() if p.grad is not None])))
        for layer in arch.layers
    ]
    model.zero_grad(set_to_none=True)
    return InitFlow(
        model=type(model).__name__,
        norm_position=arch.norm_position,
        layer_grad=layer_grad,
        stream_grad=[float(g.norm()) for g in stream],
        last_first_ratio=layer_grad[-1] / layer_grad[0],
        trend=trend(layer_grad[-1] / layer_grad[0]),
    )


@functools.lru_cache(maxsize=8)
def compare_init(cfg: InitConfig = InitConfig()) -> InitComparison:
    """Per-layer gradient norms at initialisation of a post-LN BERT and a pre-LN GPT-2 of the same size.

    Seeded, so remembered per configuration: the page asks for the same one with every sentence.
    """
    cfg.check()
    post, pre = random_models(cfg)
    g = torch.Generator().manual_seed(cfg.seed)
    ids = torch.randint(1, cfg.vocab, (cfg.batch, cfg.tokens), generator=g)
    targets = torch.randint(0, cfg.vocab, (cfg.batch, cfg.tokens), generator=g)
    flows = _flow(post, ids, targets), _flow(pre, ids, targets)
    return InitComparison(cfg, LOSS, INITIALISATION, REFERENCE, *flows, *_finding(*flows))
