"""Probes on any model, as researchers use them: raw inputs feeding skips, dict outputs, token ids, frozen layers.

Every number is checked against torch.autograd.grad in float64 or a hand computation.
"""

import math
from collections import OrderedDict

import pytest
import torch
from torch import nn

from skiplab.probes.gradflow import gradient_flow
from skiplab.probes.targets import find_blocks


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-10, abs_tol=1e-12)


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.f = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width))

    def forward(self, x):
        return x + self.f(x)


class NoStem(nn.Module):
    """x + f(x) blocks straight on the raw input: the first block's input is x itself."""

    def __init__(self, width=8, depth=3, classes=3):
        super().__init__()
        self.blocks = nn.ModuleList(Block(width) for _ in range(depth))
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def _batch(n=16, features=8, classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def _reference_input_grads(model, x, y, loss=nn.functional.cross_entropy):
    """|dL/d(input of blocks.i.f)| by autograd: the input of f is the block's input, which the skip also takes."""
    leaves, h = [], x
    for block in model.blocks:
        h = h.detach().requires_grad_() if not leaves else h
        leaves.append(h)
        h = block(h)
    value = loss(model.head(h), y)
    return [g.norm().item() for g in torch.autograd.grad(value, leaves)]


@pytest.mark.parametrize("requires_grad", [False, True])
def test_the_first_modules_input_gradient_counts_the_skip_around_it(requires_grad):
    # Bug: with x.requires_grad False, the hook handed the first f a detached copy of x and reported only the
    # gradient through f (0.0916 instead of 0.2242 in the issue), not the skip path around it.
    torch.manual_seed(0)
    model = NoStem().double()
    x, y = _batch()
    flow = gradient_flow(model, x.clone().requires_grad_(requires_grad), y, modules=r"blocks\.\d+\.f")
    assert [la.name for la in flow.layers] == ["blocks.0.f", "blocks.1.f", "blocks.2.f"]
    expected = _reference_input_grads(model, x, y)
    assert all(_close(la.input_grad_norm, e) for la, e in zip(flow.layers, expected))
    assert all(p.grad is None for p in model.parameters())


def test_repeated_blocks_are_found_and_named_in_the_result():
    torch.manual_seed(0)
    model = NoStem().double()
    x, y = _batch()
    flow = gradient_flow(model, x, y)
    assert [la.name for la in flow.layers] == ["blocks.0", "blocks.1", "blocks.2"]
    assert "blocks.0, blocks.1, blocks.2 (3)" in flow.selected and "repeated blocks" in flow.selected
    assert flow.to_dict()["selected"] == flow.selected
    expected = _reference_input_grads(model, x, y)
    assert all(_close(la.input_grad_norm, e) for la, e in zip(flow.layers, expected))


def test_a_module_list_that_is_never_called_is_refused_by_name():
    model = NoStem()
    x, y = torch.randn(4, 8), torch.randint(0, 3, (4,))
    with pytest.raises(ValueError, match=r"never calls blocks\b"):
        gradient_flow(model, x, y, modules="blocks")
    with pytest.raises(ValueError, match="never calls blocks"):
        gradient_flow(model, x, y, modules=nn.ModuleList)


def test_torchvision_and_hugging_face_layouts():
    from skiplab.nn import imagenet_resnet

    assert [n for n, _ in find_blocks(imagenet_resnet(18, num_classes=10))] == [
        f"layer{i}.{j}" for i in range(1, 5) for j in range(2)
    ]

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention, self.output = nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings = nn.Embedding(10, 4)
            self.encoder = nn.Module()
            self.encoder.layer = nn.ModuleList(Layer() for _ in range(3))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.Module()
            self.transformer.h = nn.ModuleList(Layer() for _ in range(2))
            self.lm_head = nn.Linear(4, 10)

    assert [n for n, _ in find_blocks(Bert())] == ["encoder.layer.0", "encoder.layer.1", "encoder.layer.2"]
    assert [n for n, _ in find_blocks(GPT())] == ["transformer.h.0", "transformer.h.1"]
    # A plain Sequential of layers has no blocks: a probe looks at its children, as before.
    assert find_blocks(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))) == []


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(8, 8).requires_grad_(False)
        self.act = nn.Tanh()
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.act(self.stem(x)))


def test_frozen_and_parameter_free_layers_report_no_weight_gradient():
    torch.manual_seed(0)
    model = Frozen().double()
    x, y = _batch()
    flow = gradient_flow(model, x, y)
    assert [la.name for la in flow.layers] == ["stem", "act", "head"]
    stem, act, head = flow.layers
    assert stem.weight_grad_norm is None and act.weight_grad_norm is None and stem.params == 0
    leaf = x.clone().requires_grad_()
    value = nn.functional.cross_entropy(model(leaf), y)
    grads = torch.autograd.grad(value, [leaf, *model.head.parameters()])
    assert _close(stem.input_grad_norm, grads[0].norm().item())  # the raw input's gradient, though stem is frozen
    assert _close(head.weight_grad_norm, torch.cat([g.flatten() for g in grads[1:]]).norm().item())
    assert flow.weight_summary.count == 1


class ModelOutput(OrderedDict):
    """What Hugging Face models return: an OrderedDict with attribute access."""

    def __getattr__(self, key):
        return self[key]


class TokenClassifier(nn.Module):
    """Token ids and a mask in, a ModelOutput with hidden states and logits out."""

    def __init__(self, vocab=20, width=8, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.layer = nn.ModuleList(Block(width) for _ in range(2))
        self.classifier = nn.Linear(width, classes)

    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids)
        for block in self.layer:
            h = block(h)
        pooled = (h * attention_mask[..., None]).sum(1) / attention_mask.sum(1, keepdim=True)
        return ModelOutput(last_hidden_state=h, logits=self.classifier(pooled))


def _tokens(n=6, length=5, seed=2):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 20, (n, length), generator=g)
    mask = torch.ones(n, length, dtype=torch.float64)
    mask[:, -1] = 0
    return {"input_ids": ids, "attention_mask": mask}, torch.randint(0, 3, (n,), generator=g)


def test_token_ids_in_a_dict_and_a_model_output_with_logits():
    torch.manual_seed(0)
    model = TokenClassifier().double()
    inputs, y = _tokens()
    flow = gradient_flow(model, inputs, y)
    assert [la.name for la in flow.layers] == ["layer.0", "layer.1"]
    h0 = model.embed(inputs["input_ids"])
    h1 = model.layer[0](h0)
    mask = inputs["attention_mask"]
    pooled = (model.layer[1](h1) * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    value = nn.functional.cross_entropy(model.classifier(pooled), y)
    assert torch.equal(model.classifier(pooled), model(**inputs).logits)
    g0, g1 = torch.autograd.grad(value, [h0, h1])
    assert _close(flow.layers[0].input_grad_norm, g0.norm().item())
    assert _close(flow.layers[1].input_grad_norm, g1.norm().item())
    assert _close(flow.loss, value.item())


def test_a_loss_callable_and_an_output_picker():
    torch.manual_seed(0)
    model = TokenClassifier().double()
    inputs, _ = _tokens()

    def energy(out, y):
        return out.square().mean()

    flow = gradient_flow(model, inputs, loss=energy, output=lambda out: out["last_hidden_state"])
    h0 = model.embed(inputs["input_ids"])
    value = model.layer[1](model.layer[0](h0)).square().mean()
    assert _close(flow.layers[0].input_grad_norm, torch.autograd.grad(value, h0)[0].norm().item())
    assert _close(flow.loss, value.item())
    with pytest.raises(ValueError, match="y is required"):
        gradient_flow(model, inputs)


def test_positional_inputs_in_a_tuple():
    torch.manual_seed(0)
    model = TokenClassifier().double()
    inputs, y = _tokens()
    by_tuple = gradient_flow(model, (inputs["input_ids"], inputs["attention_mask"]), y)
    assert by_tuple == gradient_flow(model, inputs, y)


# ------------------------------------------------------------------ lesions and costs of models that return dicts


class TVBasicBlock(nn.Module):
    """torchvision's BasicBlock, as written there."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class TVResNet(nn.Module):
    """torchvision's ResNet layout (conv1, bn1, relu, maxpool, layer1..2, avgpool, fc), not a SkipNet."""

    def __init__(self, classes=4):
        super().__init__()
        self.conv1, self.bn1, self.relu = nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(True)
        self.maxpool = nn.MaxPool2d(2)
        self.layer1 = nn.Sequential(TVBasicBlock(8, 8), TVBasicBlock(8, 8))
        self.layer2 = nn.Sequential(TVBasicBlock(8, 16, 2), TVBasicBlock(16, 16))
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(16, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ShortcutOnly(nn.Module):
    """A block deleted by hand: relu(downsample(x)), what Veit et al.'s lesion leaves."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return self.block.relu(x if self.block.downsample is None else self.block.downsample(x))


def test_lesion_of_a_torchvision_style_resnet_deletes_its_blocks():
    import copy

    from skiplab.probes.lesion import lesion_study

    torch.manual_seed(0)
    model = TVResNet()
    with torch.no_grad():  # give BatchNorm running statistics that are not the defaults
        model.train()
        for _ in range(3):
            model(torch.randn(16, 3, 8, 8))
    model.eval()
    x, y = torch.randn(64, 3, 8, 8), torch.randint(0, 4, (64,))
    r = lesion_study(model, x, y, batch=16)
    names = ["layer1.0", "layer1.1", "layer2.0", "layer2.1"]
    assert [b.name for b in r.blocks] == names and r.architecture == "residual"
    assert "layer1.0, layer1.1, layer2.0, layer2.1 (4)" in r.selected
    with torch.no_grad():
        assert r.intact_accuracy == (model(x).argmax(1) == y).float().mean().item()
        for b in r.blocks:
            stage, index = b.name.split(".")
            lesioned = copy.deepcopy(model)
            getattr(lesioned, stage)[int(index)] = ShortcutOnly(getattr(lesioned, stage)[int(index)])
            assert b.accuracy == (lesioned(x).argmax(1) == y).float().mean().item(), b.name


class TupleLayer(nn.Module):
    """A Hugging Face-style layer: hidden states in (by keyword), a tuple out."""

    def __init__(self, width):
        super().__init__()
        self.dense = nn.Linear(width, width)

    def forward(self, hidden_states, attention_mask=None):
        return (hidden_states + torch.tanh(self.dense(hidden_states)), None)


class TupleModel(nn.Module):
    def __init__(self, vocab=20, width=8, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.layer = nn.ModuleList(TupleLayer(width) for _ in range(3))
        self.classifier = nn.Linear(width, classes)

    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids)
        for layer in self.layer:
            h = layer(hidden_states=h, attention_mask=attention_mask)[0]
        return ModelOutput(last_hidden_state=h, logits=self.classifier(h.mean(1)))


def test_lesion_of_a_model_with_token_inputs_tuple_layers_and_a_model_output():
    from skiplab.probes.lesion import lesion_study

    torch.manual_seed(0)
    model = TupleModel()
    inputs, y = _tokens(n=40)
    r = lesion_study(model, inputs, y, batch=7)
    assert [b.name for b in r.blocks] == ["layer.0", "layer.1", "layer.2"] and r.architecture == "plain"
    with torch.no_grad():
        assert r.intact_accuracy == (model(**inputs).logits.argmax(1) == y).float().mean().item()
        for i, b in enumerate(r.blocks):
            h = model.embed(inputs["input_ids"])
            for j, layer in enumerate(model.layer):
                h = h if j == i else layer(h)[0]
            assert b.accuracy == (model.classifier(h.mean(1)).argmax(1) == y).float().mean().item()
    # the class scores picked by a callable read the same
    assert lesion_study(model, inputs, y, output=lambda out: out["logits"]) == r


def test_lesion_refuses_blocks_the_forward_never_calls():
    from skiplab.probes.lesion import lesion_study

    model = NoStem()
    with pytest.raises(ValueError, match="never calls blocks"):
        lesion_study(model, torch.randn(4, 8), torch.randint(0, 3, (4,)), modules="blocks")


def test_measure_cost_reads_the_logits_of_a_model_output():
    from skiplab.probes.cost import measure_cost

    class Plain(TupleModel):
        def forward(self, input_ids, attention_mask):
            return super().forward(input_ids, attention_mask).logits

    torch.manual_seed(0)
    model, twin = TupleModel(), Plain()
    twin.load_state_dict(model.state_dict())
    inputs, _ = _tokens(n=4)
    cost = measure_cost(model, example=inputs, peak=True)
    assert cost == measure_cost(twin, example=inputs, peak=True)
    assert cost.flops_per_example == 2 * (5 * 3 * 8 * 8 + 8 * 3)  # by hand: 3 dense layers on 5 tokens, classifier
    assert cost == measure_cost(model, example=inputs, peak=True, output=lambda out: out["logits"])
    tupled = measure_cost(model, example=(inputs["input_ids"], inputs["attention_mask"]), peak=True)
    assert tupled == cost


@pytest.mark.parametrize("wrap", ["dict", "tuple", "model_output"])
def test_tensor_in_dict_or_tuple_out(wrap):
    # Bug: lesion_study and measure_cost(peak=True) failed with raw errors on a model that does not return a tensor.
    from skiplab.probes.cost import measure_cost
    from skiplab.probes.lesion import lesion_study

    class Wrapped(NoStem):
        def forward(self, x):
            logits = super().forward(x)
            if wrap == "tuple":
                return (logits, x)
            return (ModelOutput if wrap == "model_output" else dict)(hidden=x, logits=logits)

    torch.manual_seed(0)
    model, twin = Wrapped(), NoStem()
    twin.load_state_dict(model.state_dict())
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    a, b = lesion_study(model, x, y), lesion_study(twin, x, y)
    assert (a.intact_accuracy, a.blocks) == (b.intact_accuracy, b.blocks) and len(a.blocks) == 3
    cost = measure_cost(model, (8,), batch=4, peak=True)
    assert cost.peak_bytes == measure_cost(twin, (8,), batch=4, peak=True).peak_bytes > 0
    assert cost.flops_per_example == 2 * (3 * 2 * 8 * 8 + 8 * 3)  # by hand: 3 blocks of 2 linears, the head


def test_gradient_flow_through_layers_called_by_keyword_that_return_tuples():
    torch.manual_seed(0)
    model = TupleModel().double()
    inputs, y = _tokens(n=8)
    flow = gradient_flow(model, inputs, y)
    assert [la.name for la in flow.layers] == ["layer.0", "layer.1", "layer.2"]
    hs = [model.embed(inputs["input_ids"])]
    for layer in model.layer:
        hs.append(layer(hs[-1])[0])
    value = nn.functional.cross_entropy(model.classifier(hs[-1].mean(1)), y)
    grads = torch.autograd.grad(value, hs[:3])
    assert all(_close(la.input_grad_norm, g.norm().item()) for la, g in zip(flow.layers, grads))
