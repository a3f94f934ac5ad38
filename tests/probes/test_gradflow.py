import math

import pytest
import torch
from torch import nn

from skiplab.nn import BasicBlock, StackConfig, build_stack, create_model, imagenet_resnet
from skiplab.probes.gradflow import gradient_flow, stack_gradient_flow, summarize


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-10, abs_tol=1e-12)


def _batch(n=16, features=8, classes=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def test_block_gradients_equal_autograd_in_float64():
    model = build_stack(StackConfig(depth=6, width=8, in_shape=(8,), skip="identity")).double().train()
    x, y = _batch()
    flow = gradient_flow(model, x, y)
    blocks = model.named_blocks()
    assert [la.name for la in flow.layers] == [n for n, _ in blocks]
    for i, (_, block) in enumerate(blocks):
        # Independent reference: cut the graph at block i and differentiate the rest of the network.
        h = model.forward_stem(x)
        for _, b in blocks[:i]:
            h = b(h)
        leaf = h.detach().requires_grad_()
        h = leaf
        for _, b in blocks[i:]:
            h = b(h)
        loss = nn.functional.cross_entropy(model.forward_head(h), y)
        ref_in = torch.autograd.grad(loss, leaf, retain_graph=True)[0].norm().item()
        params = list(block.parameters())
        ref_w = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]).norm().item()
        assert _close(flow.layers[i].input_grad_norm, ref_in)
        assert _close(flow.layers[i].weight_grad_norm, ref_w)
        assert flow.layers[i].params == sum(p.numel() for p in params)


def test_any_module_by_type_and_by_name_pattern_float64():
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x, y = _batch(classes=3)
    by_type = gradient_flow(model, x, y, modules=nn.Linear)
    by_name = gradient_flow(model, x, y, modules=r"[024]")
    assert [la.name for la in by_type.layers] == ["0", "2", "4"] == [la.name for la in by_name.layers]
    leaf = x.clone().requires_grad_()
    h1 = model[1](model[0](leaf))
    h1_leaf = h1.detach().requires_grad_()
    loss = nn.functional.cross_entropy(model[4](model[3](model[2](h1_leaf))), y)
    assert _close(by_type.layers[1].input_grad_norm, torch.autograd.grad(loss, h1_leaf)[0].norm().item())
    full = nn.functional.cross_entropy(model(leaf), y)
    assert _close(by_type.layers[0].input_grad_norm, torch.autograd.grad(full, leaf)[0].norm().item())
    assert by_type.layers[2].weight_grad_norm > 0


def test_torchvision_layout_resnet_by_block_type_and_regex():
    model = imagenet_resnet(18, num_classes=10)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
    flow = gradient_flow(model, x, y, modules=BasicBlock)
    assert [la.name for la in flow.layers][:3] == ["layer1.0", "layer1.1", "layer2.0"]
    assert len(flow.layers) == 8 and all(la.input_grad_norm > 0 for la in flow.layers)
    assert len(gradient_flow(model, x, y, modules=r"layer\d\.\d").layers) == 8


def test_probe_leaves_the_model_as_it_was():
    model = create_model("resmlp20").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    gradient_flow(model, torch.randn(8, 64), torch.randint(0, 10, (8,)), num_threads=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm statistics included
    assert all(p.grad is None for p in model.parameters())
    assert torch.get_num_threads() == threads


def test_probes_leave_torch_settings_alone_unless_asked():
    from skiplab.probes import block_anatomy, bypass_metrics, compare_skip_types, gradient_by_path_length
    from skiplab.probes.common import denormals_flushed, tuned

    seen = []

    def spy(*args):
        seen.append(args)

    original = torch.set_num_threads
    torch.set_num_threads = spy
    try:
        stack_gradient_flow(StackConfig(depth=4, width=8, in_shape=(8,)), batch=4)
        bypass_metrics(layers=3)
        block_anatomy()
        compare_skip_types(depth=2, width=4)
        gradient_by_path_length(blocks=3, samples=1)
    finally:
        torch.set_num_threads = original
    assert seen == [] and not denormals_flushed()
    with tuned(1, flush_denormal=True):
        assert torch.get_num_threads() == 1 and denormals_flushed()
    assert not denormals_flushed()


@pytest.mark.parametrize(
    "skip,in_shape",
    [(s, (4,)) for s in ("none", "identity", "projection", "highway")] + [("dense", (2, 4, 4)), ("se", (2, 4, 4))],
)
def test_gradcheck_on_tiny_models_of_each_skip_type(skip, in_shape):
    model = build_stack(StackConfig(depth=2, width=4, skip=skip, in_shape=in_shape, num_classes=3)).double().eval()
    x = torch.randn(2, *in_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_the_truth_at_initialisation():
    # Measured, not the folk story: plain BN grows toward the input, plain sigmoid vanishes, preact residual is flat.
    plain_bn = stack_gradient_flow(StackConfig(depth=56, skip="none")).summary
    sigmoid = stack_gradient_flow(StackConfig(depth=56, skip="none", activation="sigmoid", norm="none")).summary
    preact = stack_gradient_flow(StackConfig(depth=56, skip="identity", preact=True)).summary
    assert plain_bn.first_last_ratio > 1e3 and plain_bn.growth_per_layer > 1.1
    assert sigmoid.growth_per_layer < 0.5
    assert 0.1 < preact.first_last_ratio < 100 and 0.9 < preact.growth_per_layer < 1.1
    assert preact.log10_variance < plain_bn.log10_variance


def test_stack_probe_is_reproducible_and_keeps_the_callers_random_state():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = stack_gradient_flow(StackConfig(depth=3, width=8), batch=4, seed=5)
    assert torch.equal(torch.rand(1), expected)
    assert a == stack_gradient_flow(StackConfig(depth=3, width=8), batch=4, seed=5)


def test_summary_of_a_geometric_sequence():
    s = summarize([8.0, 4.0, 2.0, 1.0])
    assert (s.min, s.max, s.first_last_ratio) == (1.0, 8.0, 8.0)
    assert math.isclose(s.growth_per_layer, 2.0)
    assert math.isclose(s.log10_variance, math.log10(2) ** 2 * 1.25)
    assert summarize([3.0, 0.0]).to_dict()["first_last_ratio"] is None  # inf is not JSON


def test_summary_counts_the_norms_float32_could_not_hold():
    s = summarize([math.inf, math.nan, 2.0, 1.0, 0.0, 0.0, 0.0])
    assert (s.overflowed, s.underflowed, s.count) == (2, 3, 7)
    assert (summarize([1.0, 2.0]).overflowed, summarize([1.0, 2.0]).underflowed) == (0, 0)
    assert summarize([]).to_dict()["overflowed"] == 0


def test_a_deep_plain_relu_stack_overflows_float32_and_the_summary_says_how_often():
    # ReLU + batch norm, He init: the plain stack's backward signal grows toward the input until float32 gives up.
    flow = stack_gradient_flow(StackConfig(depth=1000, width=64, skip="none"), batch=64, seed=0)
    lost = sum(1 for la in flow.layers if not math.isfinite(la.weight_grad_norm))
    assert lost > 0 and flow.weight_summary.overflowed == lost
    assert flow.weight_summary.to_dict()["overflowed"] == lost
    residual = stack_gradient_flow(StackConfig(depth=1000, width=64, skip="identity"), batch=64, seed=0)
    assert residual.weight_summary.overflowed == 0


def test_summary_leaves_out_norms_that_overflowed_or_underflowed():
    # An exploding float32 stack reports inf for its largest norms: the growth rate comes from the finite pairs.
    s = summarize([8.0, 4.0, 2.0, math.inf, 1e-3, 0.0])
    assert math.isclose(s.growth_per_layer, 2.0) and s.first_last_ratio == math.inf
    assert summarize([math.inf, 1e-30]).to_dict()["growth_per_layer"] is None


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(cfg=StackConfig(depth=1001)), "depth must be an integer from 1 to 1000"),
        (dict(cfg=StackConfig(width=2000)), "width"),
        (dict(cfg=StackConfig(), batch=1), "batch"),
    ],
)
def test_bad_stack_options_name_the_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stack_gradient_flow(**kwargs)


@pytest.mark.parametrize(
    "kwargs,match", [(dict(depth=0), "depth must be an integer >= 1"), (dict(skip="teleport"), "skip must be one of")]
)
def test_a_stack_config_is_checked_when_it_is_made(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StackConfig(**kwargs)


def test_output_that_does_not_fit_the_loss():
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ValueError, match="loss: cross_entropy needs"):
        gradient_flow(model, torch.randn(5, 4), torch.zeros(5, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        gradient_flow(model, torch.randn(5, 4), torch.full((5,), 3))
    with pytest.raises(ValueError, match="mse needs y"):
        gradient_flow(model, torch.randn(5, 4), torch.randn(5, 4))
    with pytest.raises(ValueError, match="selects no submodule"):
        gradient_flow(model, torch.randn(5, 4), torch.zeros(5, dtype=torch.long), modules="nothing")
    with pytest.raises(ValueError, match="regular expression"):
        gradient_flow(model, torch.randn(5, 4), torch.zeros(5, dtype=torch.long), modules="(")
    with pytest.raises(ValueError, match="loss must be one of"):
        gradient_flow(model, torch.randn(5, 4), torch.zeros(5, dtype=torch.long), loss="hinge")


@pytest.mark.gpu
def test_cuda_probe_equals_the_cpu_probe_in_float64():
    model = build_stack(StackConfig(depth=6, width=8, in_shape=(8,))).double().train()
    x, y = _batch()
    cpu = gradient_flow(model, x, y)
    gpu = gradient_flow(model.cuda(), x.cuda(), y.cuda())
    for a, b in zip(cpu.layers, gpu.layers):
        assert a.name == b.name
        assert math.isclose(a.input_grad_norm, b.input_grad_norm, rel_tol=1e-9)
        assert math.isclose(a.weight_grad_norm, b.weight_grad_norm, rel_tol=1e-9)


def test_flushing_denormals_changes_only_norms_that_have_vanished():
    from skiplab.probes.common import denormals_flushed

    before = denormals_flushed()
    cfg = StackConfig(depth=90, skip="none", activation="sigmoid", norm="none")
    fast = [la.input_grad_norm for la in stack_gradient_flow(cfg, batch=16, flush_denormal=True).layers]
    exact = [la.input_grad_norm for la in stack_gradient_flow(cfg, batch=16).layers]  # the default: nothing flushed
    assert denormals_flushed() == before
    assert fast != exact  # flushing did change something here, so the check below is not empty
    for a, b in zip(fast, exact):
        if b >= 1e-14 * exact[-1]:  # what has not vanished reads the same
            assert math.isclose(a, b, rel_tol=1e-6)


def test_the_folk_story_note_follows_the_measurement():
    from skiplab.probes.highway import compare_highways

    def pair(**kw):
        return [StackConfig(depth=30, skip=s, **kw) for s in ("none", "identity")]

    grows = compare_highways(*pair(activation="relu", norm="batch"))
    assert grows.plain.weight_summary.first_last_ratio > 1 and "does not vanish" in grows.note
    vanishes = compare_highways(*pair(activation="sigmoid", norm="none", preact=True))
    assert vanishes.plain.weight_summary.first_last_ratio < 1 and vanishes.note is None
    assert compare_highways(*pair()).to_dict()["plain"] == grows.to_dict()["plain"]
