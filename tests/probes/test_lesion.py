import pytest
import torch
import torch.nn.functional as F

from skiplab.nn import StackConfig, build_stack, create_model
from skiplab.probes.common import threads
from skiplab.probes.lesion import lesion_study


def _blobs(n, seed, classes=4, features=16):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, features, generator=torch.Generator().manual_seed(99)) * 2
    y = torch.randint(0, classes, (n,), generator=g)
    return centres[y] + torch.randn(n, features, generator=g), y


def _trained(skip):
    torch.manual_seed(0)
    model = build_stack(StackConfig(depth=8, width=32, skip=skip, in_shape=(16,), num_classes=4))
    x, y = _blobs(256, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with threads(1):  # small tensors: one thread is fastest, and steady when the machine is busy
        for _ in range(40):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return model


@pytest.mark.slow
def test_a_residual_net_survives_single_deletions_a_plain_one_does_not():
    x, y = _blobs(512, 2)
    res = lesion_study(_trained("identity"), x, y)
    plain = lesion_study(_trained("none"), x, y)
    assert res.intact_accuracy > 0.9 and plain.intact_accuracy > 0.9
    assert (res.architecture, plain.architecture) == ("residual", "plain")
    # Veit et al. 2016: one deleted block costs a residual net little; a plain net falls toward chance (1/4).
    assert res.intact_accuracy - res.mean_accuracy < 0.05
    assert plain.mean_accuracy < 0.6


def test_deleting_a_zero_initialised_residual_block_changes_nothing():
    model = create_model("resnet20")
    model.zero_init_residuals()
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    r = lesion_study(model, x, y)
    assert len(r.blocks) == 9 and all(b.kind == "residual" and b.drop == 0.0 for b in r.blocks)


def test_the_model_leaves_the_study_as_it_came():
    model = create_model("resmlp20").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lesion_study(model, torch.randn(32, 64), torch.randint(0, 10, (32,)))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules())


def test_blocks_that_change_shape_are_kept():
    model = build_stack(StackConfig(depth=3, width=4, skip="dense", in_shape=(1, 4, 4)))
    r = lesion_study(model, torch.randn(8, 1, 4, 4), torch.randint(0, 10, (8,)))
    assert r.architecture == "mixed" or all(b.kind == "kept" for b in r.blocks)
    assert all(b.accuracy is None for b in r.blocks if b.kind == "kept")


def test_bad_input():
    model = create_model("resmlp20")
    with pytest.raises(ValueError, match="same length"):
        lesion_study(model, torch.randn(4, 64), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch"):
        lesion_study(model, torch.randn(4, 64), torch.zeros(4, dtype=torch.long), batch=0)
