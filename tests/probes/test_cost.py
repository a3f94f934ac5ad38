import pytest
import torch
from torch import nn

from skiplab.nn import StackConfig, build_stack, create_model
from skiplab.probes import compare_skip_types, measure_cost, stack_cost
from skiplab.probes.cost import forward_flops, saved_activation_bytes


def test_flops_of_a_linear_layer_are_2_per_multiply_add():
    layer = nn.Linear(10, 7)
    assert forward_flops(layer, torch.randn(3, 10)) == 2 * 3 * 10 * 7


def test_resnet20_flops_match_the_published_41m_macs():
    cost = measure_cost(create_model("resnet20"), (3, 32, 32))
    assert abs(cost.flops_per_example / 2 - 40.6e6) / 40.6e6 < 0.02


def test_saved_activations_count_what_backward_needs():
    # Linear saves its input (weights excluded); ReLU saves its output.
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU())
    x = torch.randn(4, 16)
    assert saved_activation_bytes(model, x) == 4 * 16 * 4 + 4 * 32 * 4


def test_deeper_nets_keep_more_activations():
    a = measure_cost(create_model("resnet20"), (3, 32, 32)).activation_bytes_per_example
    b = measure_cost(create_model("resnet56"), (3, 32, 32)).activation_bytes_per_example
    assert 2.2 < b / a < 3.2


def test_peak_memory_covers_outputs_and_gradients():
    from skiplab.probes.cost import peak_step_bytes

    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 256))
    x = torch.randn(128, 256)
    peak = peak_step_bytes(model, x)
    weight_grads = 2 * 256 * 512 * 4
    saved = saved_activation_bytes(model, x)
    assert peak >= weight_grads + 128 * 256 * 4  # both weight gradients and the output exist at once
    assert peak >= saved
    assert all(p.grad is None for p in model.parameters())
    # twice the batch: the activations double, the gradients do not
    assert peak < peak_step_bytes(model, torch.randn(256, 256)) < 2 * peak


def test_measure_cost_with_peak_keeps_the_model_as_it_was():
    model = create_model("resmlp20").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cost = measure_cost(model, (64,), batch=8, peak=True)
    assert cost.peak_bytes > cost.activation_bytes_per_example * 8
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert measure_cost(model, (64,)).peak_bytes is None


def test_skip_types_side_by_side():
    from skiplab.probes.skip_types import COMPARED_SKIPS, compare_skip_types

    table = compare_skip_types(depth=4, width=8, size=6, batch=4)
    rows = {r.skip: r for r in table.rows}
    assert tuple(rows) == COMPARED_SKIPS
    # an identity shortcut adds nothing; a projection adds a 1x1 conv + BN per block; dense concatenates
    assert rows["identity"].params == rows["none"].params
    assert rows["identity"].flops_per_example == rows["none"].flops_per_example
    assert rows["projection"].params == rows["identity"].params + 4 * (8 * 8 + 2 * 8)
    assert rows["dense"].activation_bytes_per_example == max(r.activation_bytes_per_example for r in table.rows)
    assert rows["highway"].params > rows["identity"].params
    for r in table.rows:
        assert len(r.grad_norms) == 4 and r.peak_bytes > r.activation_bytes_per_example
        assert r.grad_summary["count"] == 4


def test_skip_type_ratings_follow_from_the_numbers_by_the_stated_rule():
    from skiplab.probes.skip_types import compare_skip_types, rate_cost, rate_gradient

    assert [rate_cost(v, 100) for v in (90, 100, 120, 190, 500)] == [
        "less", "none extra", "a little more", "more", "much more"
    ]
    assert rate_gradient(1.0) == rate_gradient(2.9) == rate_gradient(0.34) == "steady"
    assert rate_gradient(50.0) == "grows towards the input" and rate_gradient(0.05) == "fades towards the input"
    assert rate_gradient(1e4) == "explodes towards the input" and rate_gradient(1e-4) == "vanishes towards the input"
    assert rate_gradient(None) == rate_gradient(float("nan")) == "not finite"

    table = compare_skip_types(depth=6, width=8, size=6, batch=4)
    rows = {r.skip: r for r in table.rows}
    assert table.baseline == "none" and "1.25x" in table.rating_rule and "100x" in table.rating_rule
    for r in table.rows:
        assert r.ratings == {
            "params": rate_cost(r.params, rows["none"].params),
            "memory": rate_cost(r.activation_bytes_per_example, rows["none"].activation_bytes_per_example),
            "gradient": rate_gradient(r.grad_summary["first_last_ratio"]),
        }
    assert rows["identity"].ratings["params"] == "none extra"
    assert rows["dense"].ratings["params"] == "much more"  # concatenation grows every layer's input
    # without a plain row the first type measured is the baseline, and the rule names it
    only = compare_skip_types(depth=2, width=4, size=4, batch=2, skips=("identity", "dense"))
    assert only.baseline == "identity" and "identity stack" in only.rating_rule


def test_skip_types_bad_options():
    from skiplab.probes.skip_types import compare_skip_types

    with pytest.raises(ValueError, match="skip must be one of"):
        compare_skip_types(skips=("identity", "wormhole"))
    with pytest.raises(ValueError, match="depth"):
        compare_skip_types(depth=0)


@pytest.mark.gpu
def test_peak_memory_agrees_with_the_cuda_allocator():
    from skiplab.probes.cost import peak_step_bytes

    model = nn.Sequential(nn.Linear(1024, 2048), nn.ReLU(), nn.Linear(2048, 1024)).cuda()
    x = torch.randn(512, 1024, device="cuda")
    peak_step_bytes(model, x)  # warm-up: cuBLAS handles and workspaces
    torch.cuda.synchronize()
    start = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    ours = peak_step_bytes(model, x)
    allocator = torch.cuda.max_memory_allocated() - start
    # The allocator rounds every block up to 512 bytes: it may see a little more, never less.
    assert ours <= allocator <= 1.02 * ours


def test_skip_type_gradient_flow_equals_the_gradient_flow_probe():
    # The comparison reads gradient norms through hooks inside its metered training step; the probe reads them
    # from autograd.grad. Same seed, same network, same batch: same numbers.
    from skiplab.nn import StackConfig
    from skiplab.probes import compare_skip_types, stack_gradient_flow

    for row in compare_skip_types(depth=3, width=8, size=4, batch=4, skips=("identity", "dense", "highway")).rows:
        cfg = StackConfig(depth=3, width=8, skip=row.skip, in_shape=(3, 4, 4))
        expected = [la.input_grad_norm for la in stack_gradient_flow(cfg, batch=4).layers]
        assert row.grad_norms == pytest.approx(expected, rel=1e-5)


def test_skip_type_costs_remembered_per_shape_equal_a_fresh_metered_step():
    # The first call meters each stack; later calls reuse the costs (they depend on shapes only) and run
    # the unmetered step for the gradients. Clearing the memo must give the same table, seed for seed.
    from skiplab.probes import cost

    args = dict(depth=3, width=4, size=4, batch=2, skips=("identity", "dense", "highway"))
    cost._STEP_COSTS = cost._Memo()
    first = compare_skip_types(**args, seed=5)
    assert compare_skip_types(**args, seed=5) == first
    other = compare_skip_types(**args, seed=6)
    for a, b in zip(first.rows, other.rows):
        assert (a.params, a.flops_per_example, a.activation_bytes_per_example, a.peak_bytes) == (
            b.params,
            b.flops_per_example,
            b.activation_bytes_per_example,
            b.peak_bytes,
        )
        assert a.grad_norms != b.grad_norms
    cost._STEP_COSTS = cost._Memo()
    assert compare_skip_types(**args, seed=6) == other


def test_stack_cost_is_measure_cost_of_the_built_stack():
    cfg = StackConfig(depth=3, width=4, skip="dense", in_shape=(3, 4, 4))
    assert stack_cost(cfg) == measure_cost(build_stack(cfg), cfg.in_shape)
    assert stack_cost(cfg, peak=True) == measure_cost(build_stack(cfg), cfg.in_shape, peak=True)


# ------------------------------------------------------------------ any model: in-place ops, fast paths, outputs


class _TorchvisionBlock(nn.Module):
    """torchvision's BasicBlock as written there: in-place ReLU and `out += identity`."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


def _torchvision_style_net(c=4, blocks=2, classes=10):
    return nn.Sequential(
        nn.Conv2d(3, c, 3, padding=1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(inplace=True),
        *[_TorchvisionBlock(c) for _ in range(blocks)],
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c, classes),
    )


def test_in_place_ops_are_costed():
    # Bug: OpMeter kept weak references in a set, and a second reference to the tensor an in-place op returns
    # compared the tensors elementwise ("Boolean value of Tensor with more than one value is ambiguous").
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))
    cost = measure_cost(model, (8,), peak=True)
    assert cost.flops_per_example == 2 * (8 * 8 + 8 * 2)
    twin = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    twin.load_state_dict(model.state_dict())
    assert 0 < cost.peak_bytes <= measure_cost(twin, (8,), peak=True).peak_bytes  # in place allocates no more


def test_a_torchvision_style_resnet_with_in_place_additions_is_costed():
    c, size, blocks = 4, 8, 2
    model = _torchvision_style_net(c, blocks)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cost = measure_cost(model, (3, size, size), batch=4, peak=True)
    macs = size * size * 9 * (3 * c + 2 * blocks * c * c) + c * 10  # by hand: the convolutions and the classifier
    assert cost.flops_per_example == 2 * macs
    assert cost.peak_bytes > 4 * cost.activation_bytes_per_example > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _encoder(d=32, heads=4, ff=64, layers=2):
    layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def _encoder_flops(d=32, ff=64, layers=2, tokens=6):
    """By hand, per sequence: q, k, v and output projections, scores and their weighted sum, the feed-forward."""
    macs = 4 * tokens * d * d + 2 * tokens * tokens * d + 2 * tokens * d * ff
    return 2 * layers * macs


def test_a_transformer_in_eval_mode_is_counted_whole():
    # Bug: in eval mode without grad, PyTorch runs one fused _transformer_encoder_layer_fwd per layer, which no
    # formula counts: the encoder reported almost nothing.
    from torch.utils.flop_counter import FlopCounterMode

    model = _encoder().eval()
    cost = measure_cost(model, (6, 32))
    assert cost.flops_per_example == _encoder_flops()
    assert cost.uncounted_ops == ()
    # torch's own counter, gradients on, agrees on every op it has a formula for (all but CPU attention's kernel)
    x = torch.randn(2, 6, 32, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        model(x)
    attention = 2 * 2 * 2 * 6 * 6 * 32  # two layers, scores and weighted sum, 2 FLOPs per multiply-add
    assert counter.get_total_flops() // 2 == cost.flops_per_example - attention


class _TokenEncoder(nn.Module):
    def __init__(self, vocab=50, d=32):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.encoder = _encoder(d)

    def forward(self, input_ids, attention_mask=None):
        pad = None if attention_mask is None else attention_mask == 0
        return self.encoder(self.embed(input_ids), src_key_padding_mask=pad)


def test_a_frozen_token_model_in_eval_mode_is_counted_and_left_frozen():
    model = _TokenEncoder().eval().requires_grad_(False)
    ids = torch.randint(0, 50, (3, 6))
    cost = measure_cost(model, example={"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    assert (cost.flops_per_example, cost.batch, cost.input_shape) == (_encoder_flops(), 3, (6,))
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training


def test_ops_without_a_formula_are_named_never_silently_zero():
    # An LSTM on CPU runs one fused mkldnn_rnn_layer (where oneDNN is built in): no formula counts it.
    model = nn.LSTM(8, 16, batch_first=True)
    cost = measure_cost(model, (5, 8), output=lambda out: out[0])
    by_hand = 2 * 5 * 4 * (8 * 16 + 16 * 16)  # 4 gates, input and recurrent matmuls, 5 steps
    assert cost.flops_per_example == by_hand or (cost.flops_per_example < by_hand and cost.uncounted_ops)
    if cost.uncounted_ops:
        assert all(op.startswith("aten.") for op in cost.uncounted_ops)


def test_a_float64_model_is_costed_in_its_own_dtype():
    torch.manual_seed(0)
    single = build_stack(StackConfig(depth=3, width=8, in_shape=(8,)))
    double = build_stack(StackConfig(depth=3, width=8, in_shape=(8,))).double()
    a, b = measure_cost(single, (8,), batch=4, peak=True), measure_cost(double, (8,), batch=4, peak=True)
    assert a.flops_per_example == b.flops_per_example == 2 * (8 * 8 + 3 * 8 * 8 + 8 * 10)  # stem, blocks, head
    assert b.activation_bytes_per_example == 2 * a.activation_bytes_per_example  # 8 bytes a number, not 4
    x = torch.randn(4, 8, dtype=torch.float64)
    assert measure_cost(double, example=x) == measure_cost(double, (8,), batch=4)
