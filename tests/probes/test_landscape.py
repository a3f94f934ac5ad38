"""Loss landscapes and sharpness on zoo models and a user's own model, checked against direct computations."""

import math
import threading
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skiplab.nn import get_spec
from skiplab.probes.hessian import hessian_spectrum
from skiplab.probes.landscape import (
    Landscape,
    LandscapeRow,
    filter_normalized_direction,
    landscape_stream,
    loss_landscape,
    trainable,
)
from skiplab.probes.roughness import roughness
from skiplab.probes.weightspace import PointEvaluator

GRID = [-0.5, 0.0, 0.5]


class UserNet(nn.Module):
    """A model written by a user: conv + BN + a residual add + a linear head, returning a dict."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.mix = nn.Conv2d(4, 4, 1, bias=False)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        h = h + self.mix(h)
        return {"logits": self.head(h.mean((2, 3)))}


def _trained_like(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Running statistics that are not the default 0/1, as after training."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    return model.eval()


@pytest.fixture(scope="module")
def zoo():
    torch.manual_seed(0)
    model = get_spec("resnet1d20").create()
    x, y = torch.randn(8, 1, 40), torch.randint(0, 10, (8,))
    return _trained_like(model, x), x, y


@pytest.fixture(scope="module")
def user():
    torch.manual_seed(1)
    x, y = torch.randn(12, 2, 5, 5), torch.randint(0, 3, (12,))
    return _trained_like(UserNet(), x), x, y


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_plane_centre_is_the_models_loss_and_the_model_is_untouched(zoo):
    model, x, y = zoo
    before = _state(model)
    land = loss_landscape(model, (x, y), xs=GRID, ys=GRID, seed=3)
    with torch.no_grad():
        direct = F.cross_entropy(model(x), y).item()
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert land.kind == "plane" and land.bn == "running" and "running statistics" in land.bn_statistics
    assert land.rows[1].loss[1] == pytest.approx(direct, rel=1e-6)
    assert land.base_loss == pytest.approx(direct, rel=1e-6) and land.base_accuracy == pytest.approx(acc)
    assert land.points == 9 and land.examples == 8 and land.roughness.interior_points == 1
    # Points away from the centre differ from it: the directions really move the weights.
    assert land.rows[0].loss[0] != pytest.approx(direct, rel=1e-3)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and not model.training


def test_user_model_with_dict_output_and_batch_statistics(user):
    model, x, y = user
    before = _state(model)
    land = loss_landscape(model, (x, y), xs=GRID, ys=GRID, bn="batch")
    # bn="batch": the centre is the training-mode forward, which would also move the running statistics.
    probe = UserNet()
    probe.load_state_dict(before)
    with torch.no_grad():
        direct = F.cross_entropy(probe.train()(x)["logits"], y).item()
    assert land.base_loss == pytest.approx(direct, rel=1e-6)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert "batch itself" in land.bn_statistics


def test_filter_normalised_direction_matches_each_filters_norm(zoo):
    model, _, _ = zoo
    weights = trainable(model)
    d = filter_normalized_direction(weights, torch.Generator().manual_seed(0))
    checked = 0
    for name, w in weights.items():
        if w.dim() <= 1:  # BatchNorm weights and biases, and biases: zero, as in the paper
            assert not d[name].any(), name
            continue
        per_filter_w = w.reshape(len(w), -1).norm(dim=1)
        per_filter_d = d[name].reshape(len(w), -1).norm(dim=1)
        torch.testing.assert_close(per_filter_d, per_filter_w, rtol=1e-5, atol=1e-7)
        checked += 1
    assert checked >= 19  # the stem, 18 block convolutions and the head
    again = filter_normalized_direction(weights, torch.Generator().manual_seed(0))
    assert all(torch.equal(d[k], again[k]) for k in d)


def test_vmap_over_points_matches_one_point_at_a_time(user):
    model, x, y = user
    one = loss_landscape(model, (x, y), xs=GRID, ys=GRID, seed=5)
    many = loss_landscape(model, (x, y), xs=GRID, ys=GRID, seed=5, points_per_call=2)
    for a, b in zip(one.rows, many.rows):
        assert a.loss == pytest.approx(b.loss, rel=1e-5) and a.accuracy == pytest.approx(b.accuracy)
    assert many.points_per_call == 2


@pytest.mark.parametrize("bn", ["running", "batch"])
def test_points_in_threads_equal_one_point_at_a_time(zoo, bn, monkeypatch):
    """Each thread runs its own copy of the model: a shared one would have its weights swapped mid-forward."""
    model, x, y = zoo
    one = loss_landscape(model, (x, y), xs=GRID, ys=GRID, seed=3, bn=bn)
    scored_in, score = set(), PointEvaluator.one

    def one_point(self, c):
        scored_in.add((threading.get_ident(), id(self)))
        time.sleep(0.01)  # long enough that a second thread takes the next point
        return score(self, c)

    monkeypatch.setattr(PointEvaluator, "one", one_point)
    three = loss_landscape(model, (x, y), xs=GRID, ys=GRID, seed=3, bn=bn, threads=3)
    assert threading.get_ident() not in {t for t, _ in scored_in}  # the points ran in the pool's threads
    assert len({t for t, _ in scored_in}) > 1 and len({e for _, e in scored_in}) > 1
    assert [r.loss for r in three.rows] == [r.loss for r in one.rows]  # the same numbers, not merely close
    assert [r.accuracy for r in three.rows] == [r.accuracy for r in one.rows]
    assert (three.base_loss, three.threads, one.threads) == (one.base_loss, 3, 1)
    assert len({r.loss for r in one.rows}) == 3  # the rows differ: the check above could fail


def test_line_ends_are_the_two_weight_vectors(zoo):
    model, x, y = zoo
    torch.manual_seed(7)
    other = get_spec("resnet1d20").create().eval()
    other.load_state_dict({k: v for k, v in model.state_dict().items() if "running" in k or "tracked" in k}, False)
    line = loss_landscape(model, (x, y), xs=[0.0, 0.5, 1.0], start=trainable(other), end=trainable(model), bn="batch")
    with torch.no_grad():
        at_start = F.cross_entropy(_batch_stats(other)(x), y).item()
        at_end = F.cross_entropy(_batch_stats(model)(x), y).item()
    assert line.kind == "line" and line.ys == () and line.roughness is None
    assert line.rows[0].loss[0] == pytest.approx(at_start, rel=1e-5)
    assert line.rows[0].loss[2] == pytest.approx(at_end, rel=1e-5)
    assert line.base_loss == pytest.approx(at_start, rel=1e-5)


def _batch_stats(model: nn.Module) -> nn.Module:
    import copy

    m = copy.deepcopy(model).train()
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.track_running_stats = False
            mod.running_mean = mod.running_var = None
    return m


def test_stream_yields_rows_in_order_then_the_landscape(user):
    model, x, y = user
    items = list(landscape_stream(model, (x, y), xs=GRID, ys=[-1.0, 0.0, 1.0, 2.0], seed=0))
    assert [type(i) for i in items] == [LandscapeRow] * 4 + [Landscape]
    assert [r.index for r in items[:4]] == [0, 1, 2, 3] and [r.y for r in items[:4]] == [-1.0, 0.0, 1.0, 2.0]
    assert items[-1].rows == tuple(items[:4]) and items[-1].first_row_seconds <= items[-1].seconds


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"xs": []}, "xs must hold"),
        ({"xs": [0.0, float("nan")]}, "finite"),
        ({"xs": GRID, "bn": "frozen"}, "bn must be one of"),
        ({"xs": GRID, "start": {}}, "give end too"),
        ({"xs": GRID, "ys": GRID, "directions": [{}]}, "give 2"),
        ({"xs": GRID, "ys": GRID, "directions": [{"conv.weight": torch.zeros(1)}] * 2}, "directions[0] must map"),
        ({"xs": GRID, "points_per_call": 0}, "points_per_call"),
        ({"xs": GRID, "threads": 0}, "threads"),
    ],
)
def test_bad_options_are_refused_with_their_name(user, options, message):
    model, x, y = user
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        loss_landscape(model, (x, y), **options)


def test_roughness_of_known_surfaces():
    xs = [-1.0, -0.4, 0.0, 0.3, 1.0]  # uneven spacing: the differences are exact for quadratics anyway
    ys = [-1.0, -0.5, 0.0, 0.5, 1.0]
    bowl = [[x * x + 0.5 * y * y + 0.2 * x * y for x in xs] for y in ys]
    saddle = [[x * x - y * y for x in xs] for y in ys]
    assert roughness(xs, ys, bowl).non_convex_share == 0.0
    r = roughness(xs, ys, saddle)
    assert r.non_convex_share == 1.0 and r.judged_points == 9 and r.max_ratio == pytest.approx(1.0)
    holed = [row[:] for row in saddle]
    holed[2][2] = None  # a non-finite loss: its neighbours cannot be judged
    assert roughness(xs, ys, holed).judged_points == 0


def _dense_extremes(model, x, y):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])

    def f(v):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = v[i : i + s.numel()].view(s)
            i += s.numel()
        return F.cross_entropy(torch.func.functional_call(model, params, (x,)), y)

    ev = torch.linalg.eigvalsh(torch.autograd.functional.hessian(f, flat))
    return ev[-1].item(), ev[-2].item(), ev[0].item()


def test_hessian_extremes_match_a_dense_eigendecomposition():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    x, y = torch.randn(24, 4, dtype=torch.float64), torch.randint(0, 3, (24,))
    top, second, low = _dense_extremes(model, x, y)
    h = hessian_spectrum(model, (x, y), top=2, iters=3000, tol=1e-6)
    assert low < 0  # a net whose Hessian has a negative eigenvalue, so λmin is tested for real
    assert h.lambda_max == pytest.approx(top, rel=1e-6)
    assert h.eigenvalues[1].value == pytest.approx(second, rel=1e-5)
    # The residual bound: λmin is within tol·λmax of the true value (far closer in practice).
    assert h.lambda_min == pytest.approx(low, abs=1e-6 * top)
    assert h.ratio == pytest.approx(abs(low / top), abs=1e-6)
    assert all(e.converged for e in h.eigenvalues) and h.hessian_vector_products == sum(
        e.iterations for e in h.eigenvalues
    )


def test_hessian_of_a_batchnorm_net_in_eval_mode_matches_dense():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)).double()
    x, y = torch.randn(32, 3, dtype=torch.float64), torch.randint(0, 2, (32,))
    _trained_like(model, x)
    top, _, low = _dense_extremes(model, x, y)
    h = hessian_spectrum(model, (x, y), iters=3000, tol=1e-5)
    assert low < 0
    assert h.lambda_max == pytest.approx(top, rel=1e-5)
    assert h.lambda_min == pytest.approx(low, abs=1e-5 * top)
    assert h.bn == "running" and not model.training


def test_hessian_reports_an_unconverged_run_as_such(user):
    model, x, y = user
    h = hessian_spectrum(model, (x, y), iters=2, tol=1e-9)
    top, smallest = h.eigenvalues
    assert not top.converged and top.iterations == 2 and top.residual > 1e-9 * abs(top.value)
    # One Lanczos restart at most; from a λmax that two power steps underestimate, the shifted operator's
    # dominant end may be the top one, which is then not reported as converged.
    assert smallest.iterations <= 2 * 20 + 1
    assert smallest.converged == (smallest.value <= 0.51 * h.lambda_max and smallest.converged)
    assert math.isfinite(h.lambda_max) and h.parameters == sum(p.numel() for p in model.parameters())
