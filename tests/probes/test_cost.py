import torch
from torch import nn

from skiplab.nn import create_model
from skiplab.probes import measure_cost
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
