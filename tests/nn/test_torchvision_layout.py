"""The ImageNet ResNets load torchvision checkpoints.

torchvision cannot be installed beside this torch, so the expected layout is
written out here independently from torchvision/models/resnet.py: a stem
(conv1, bn1), four `layerN` stages of blocks named conv1/bn1, conv2/bn2
(conv3/bn3 for bottlenecks), a `downsample` (1x1 conv, BN) on the first block
of a stage whose shape changes, and `fc`.
"""

import pytest
import torch

from skiplab.nn import create_model

LAYOUT = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
    "resnet101": ("bottleneck", [3, 4, 23, 3]),
    "resnet152": ("bottleneck", [3, 8, 36, 3]),
}


def bn(prefix, c):
    return {
        f"{prefix}.weight": (c,),
        f"{prefix}.bias": (c,),
        f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,),
        f"{prefix}.num_batches_tracked": (),
    }


def torchvision_shapes(kind, layers, num_classes=1000):
    shapes = {"conv1.weight": (64, 3, 7, 7), **bn("bn1", 64)}
    expansion = 1 if kind == "basic" else 4
    cin = 64
    for i, (n, width) in enumerate(zip(layers, [64, 128, 256, 512])):
        for j in range(n):
            p = f"layer{i + 1}.{j}"
            cout = width * expansion
            if kind == "basic":
                shapes |= {f"{p}.conv1.weight": (width, cin, 3, 3), **bn(f"{p}.bn1", width)}
                shapes |= {f"{p}.conv2.weight": (width, width, 3, 3), **bn(f"{p}.bn2", width)}
            else:
                shapes |= {f"{p}.conv1.weight": (width, cin, 1, 1), **bn(f"{p}.bn1", width)}
                shapes |= {f"{p}.conv2.weight": (width, width, 3, 3), **bn(f"{p}.bn2", width)}
                shapes |= {f"{p}.conv3.weight": (cout, width, 1, 1), **bn(f"{p}.bn3", cout)}
            stride = 2 if (i > 0 and j == 0) else 1
            if stride != 1 or cin != cout:
                shapes |= {f"{p}.downsample.0.weight": (cout, cin, 1, 1), **bn(f"{p}.downsample.1", cout)}
            cin = cout
    shapes |= {"fc.weight": (num_classes, cin), "fc.bias": (num_classes,)}
    return shapes


@pytest.mark.parametrize("name", LAYOUT)
def test_state_dict_matches_torchvision_layout(name):
    model = create_model(name)
    expected = torchvision_shapes(*LAYOUT[name])
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == expected


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_checkpoint_loads_and_is_used(name):
    expected = torchvision_shapes(*LAYOUT[name])
    g = torch.Generator().manual_seed(1)
    checkpoint = {
        k: (torch.tensor(3) if k.endswith("num_batches_tracked") else torch.rand(s, generator=g) + 0.5)
        for k, s in expected.items()
    }
    model = create_model(name)
    model.load_state_dict(checkpoint, strict=True)
    assert torch.equal(model.layer1[0].residual.conv1.weight, checkpoint["layer1.0.conv1.weight"])
    assert torch.equal(model.layer2[0].shortcut[0].weight, checkpoint["layer2.0.downsample.0.weight"])
    # a round trip keeps every tensor
    again = model.state_dict()
    assert all(torch.equal(again[k], v) for k, v in checkpoint.items())


def test_wrong_checkpoint_is_refused():
    model = create_model("resnet18")
    sd = model.state_dict()
    sd["layer1.0.conv9.weight"] = sd.pop("layer1.0.conv1.weight")
    with pytest.raises(RuntimeError, match="conv"):
        model.load_state_dict(sd, strict=True)
