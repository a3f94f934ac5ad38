import json
import math

import pytest
import torch

from skiplab.nn import StackConfig, build_stack, create_model
from skiplab.probes.paths import gradient_by_path_length, path_length_distribution


@pytest.mark.parametrize("n", [1, 2, 3, 10, 54, 1000])
def test_path_counts_sum_to_two_to_the_n(n):
    d = path_length_distribution(n)
    assert sum(d.counts) == d.total == 2**n
    assert d.counts == d.counts[::-1] and len(d.counts) == n + 1
    assert math.isclose(sum(d.fractions), 1.0)
    assert math.isclose(sum(k * f for k, f in enumerate(d.fractions)), d.mean)
    json.dumps(d.to_dict())
    assert int(d.to_dict()["total_str"]) == 2**n


def test_gradient_by_path_length_on_a_real_network():
    r = gradient_by_path_length(blocks=10, samples=4)
    assert len(r.lengths) == 11 and math.isclose(sum(p.share for p in r.lengths), 1.0)
    assert r.lengths[0].per_path > r.lengths[-1].per_path  # each branch passed shrinks the gradient
    lo, hi = r.effective_range
    assert sum(p.share for p in r.lengths[lo : hi + 1]) >= 0.9
    assert 0 < r.mean_length < 10 / 2  # short paths carry most of the gradient (Veit et al. 2016)


def test_the_all_shortcut_path_carries_the_top_gradient():
    # In a pre-activation stack the path through no branch is the identity: its gradient is dL/d(last output).
    cfg = StackConfig(depth=4, width=16, in_shape=(16,), preact=True)
    torch.manual_seed(0)
    model = build_stack(cfg).train()
    x, y = torch.randn(8, 16), torch.randint(0, 10, (8,))
    r = gradient_by_path_length(model, x, y, samples=2)
    h = model.forward_features(x).detach().requires_grad_()
    top = torch.autograd.grad(torch.nn.functional.cross_entropy(model.forward_head(h), y), h)[0]
    assert r.lengths[0].per_path == pytest.approx(top.norm().item(), rel=1e-5)


def test_bad_options():
    with pytest.raises(ValueError, match="n must be an integer from 1 to 1000"):
        path_length_distribution(0)
    with pytest.raises(ValueError, match="samples"):
        gradient_by_path_length(samples=0)
    with pytest.raises(ValueError, match="residual block with a shortcut"):
        gradient_by_path_length(create_model("plainmlp20"), torch.randn(4, 64), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="x and y are required"):
        gradient_by_path_length(create_model("resmlp20"))


def test_a_model_in_training_mode_leaves_with_every_buffer_bit_equal():
    # Bug: the forward moved BatchNorm's running statistics of a model in training mode.
    torch.manual_seed(0)
    model = create_model("resnet20").train()
    before = {k: v.clone() for k, v in model.named_buffers()}
    assert len(before) == 57
    gradient_by_path_length(model, torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,)), samples=1)
    after = dict(model.named_buffers())
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)
    assert model.training and all(p.grad is None for p in model.parameters())


def _through_every_branch(model, x, y):
    """|dL/dx| along the one path through every residual branch, by plain autograd in float64."""
    h, inputs = model.forward_stem(x).detach(), []
    for _, block in model.named_blocks():
        inputs.append(h)
        h = block(h).detach()
    h.requires_grad_()
    grad = torch.autograd.grad(torch.nn.functional.cross_entropy(model.forward_head(h), y), h)[0]
    for (_, block), inp in zip(reversed(model.named_blocks()), reversed(inputs)):
        leaf = inp.clone().requires_grad_()
        pre = (block.residual(leaf) + block.shortcut(leaf)).detach().requires_grad_()
        grad = torch.autograd.grad(block.post(pre), pre, grad)[0]
        leaf = inp.clone().requires_grad_()
        grad = torch.autograd.grad(block.residual(leaf), leaf, grad)[0]
    return grad.norm().item()


@pytest.mark.parametrize("skip,preact", [("identity", True), ("identity", False), ("projection", False)])
def test_the_all_branch_path_equals_autograd_in_float64(skip, preact, monkeypatch):
    from skiplab.probes import paths

    torch.manual_seed(0)
    cfg = StackConfig(depth=4, width=8, in_shape=(8,), skip=skip, preact=preact)
    model = build_stack(cfg).double().train()
    x, y = torch.randn(6, 8, dtype=torch.float64), torch.randint(0, 10, (6,))
    r = gradient_by_path_length(model, x, y, samples=3)
    assert r.lengths[-1].per_path == pytest.approx(_through_every_branch(model, x, y), rel=1e-10)
    # Chunks of one path at a time give the same numbers as all paths at once.
    monkeypatch.setattr(paths, "PATH_CHUNK_ELEMENTS", 1)
    assert gradient_by_path_length(model, x, y, samples=3) == r


class DeclaredBlock(torch.nn.Module):
    """A user's block that declares its form: y = post(residual(x) + shortcut(x))."""

    def __init__(self, width: int, post: bool = False) -> None:
        super().__init__()
        linear = torch.nn.Linear
        self.residual = torch.nn.Sequential(linear(width, width), torch.nn.Tanh(), linear(width, width))
        self.shortcut = torch.nn.Identity()
        if post:
            self.post = torch.nn.Tanh()

    def forward(self, x):
        out = self.residual(x) + self.shortcut(x)
        return self.post(out) if hasattr(self, "post") else out


class UserNet(torch.nn.Module):
    """Not a SkipNet: keyword inputs, a dict out, and a layer between two blocks that every path crosses."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(5, width)
        self.first = torch.nn.ModuleList([DeclaredBlock(width), DeclaredBlock(width, post=True)])
        self.between = torch.nn.Linear(width, width)
        self.second = DeclaredBlock(width)
        self.head = torch.nn.Linear(width, 3)

    def forward(self, features, scale):
        h = self.embed(features) * scale
        for block in self.first:
            h = block(h)
        h = self.second(self.between(h))
        return {"logits": self.head(h)}


def test_gradient_by_path_length_on_a_users_own_model_matches_autograd():
    from skiplab.probes.paths import residual_blocks

    torch.manual_seed(0)
    net = UserNet().double()
    x = {"features": torch.randn(6, 5, dtype=torch.float64), "scale": 1.5}
    y = torch.randint(0, 3, (6,))
    assert [name for name, _ in residual_blocks(net)] == ["first.0", "first.1", "second"]
    result = gradient_by_path_length(net, x, y, samples=3)
    assert result.blocks == 3 and result.lengths[1].paths == 3

    # Independently: the full forward's activations, then vector-Jacobian products by hand.
    h0 = net.embed(x["features"]) * x["scale"]
    h1 = net.first[0](h0)
    pre1 = net.first[1].residual(h1) + h1
    h2 = torch.tanh(pre1)
    b = net.between(h2)
    h3 = net.second(b)
    top = torch.autograd.grad(torch.nn.functional.cross_entropy(net.head(h3), y), h3)[0]

    def vjp(fn, at, grad):
        at = at.detach().requires_grad_()
        return torch.autograd.grad(fn(at), at, grad)[0]

    def back(through_branch: tuple[bool, bool, bool]) -> float:
        g = top
        g = vjp(net.second.residual, b, g) if through_branch[2] else g
        g = vjp(net.between, h2, g)
        g = vjp(torch.tanh, pre1, g)
        g = vjp(net.first[1].residual, h1, g) if through_branch[1] else g
        g = vjp(net.first[0].residual, h0, g) if through_branch[0] else g
        return float(g.norm())

    assert result.lengths[0].per_path == pytest.approx(back((False, False, False)), rel=1e-9)
    assert result.lengths[3].per_path == pytest.approx(back((True, True, True)), rel=1e-9)


def test_path_lengths_refuse_blocks_that_do_not_compute_their_declared_form():

    class Hidden(DeclaredBlock):
        def forward(self, x):  # a ReLU after the sum that the block does not declare as `post`
            return torch.relu(self.residual(x) + self.shortcut(x))

    net = torch.nn.Sequential(Hidden(4), Hidden(4), torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="block 0 does not compute post"):
        gradient_by_path_length(net, torch.randn(8, 4), torch.randint(0, 2, (8,)))
    with pytest.raises(ValueError, match="no residual blocks found"):
        plain = torch.nn.Sequential(torch.nn.Linear(4, 2))
        gradient_by_path_length(plain, torch.randn(8, 4), torch.randint(0, 2, (8,)))
