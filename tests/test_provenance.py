"""The machine record, the rounding bound and the older-kernel environment."""

import math

import torch

from skiplab.provenance import (
    FLOAT32_UNIT_ROUNDOFF,
    machine,
    older_kernels_env,
    rounding_bound,
    same_kernels,
    versions,
)


def test_machine_names_the_cpu_its_kernels_and_threads():
    m = machine()
    assert m["cpu"] and m["arch"] and m["capability"] == torch.backends.cpu.get_cpu_capability()
    assert m["threads"] == torch.get_num_threads()
    assert versions()["torch"] == torch.__version__


def test_bit_exact_is_promised_only_on_the_same_cpu_kernels_and_threads():
    m = machine()
    assert same_kernels(m, dict(m))
    for key, other in (("threads", m["threads"] + 1), ("capability", "DEFAULT"), ("cpu", "another CPU")):
        assert not same_kernels(m, {**m, key: other})
    assert not same_kernels({}, {})  # an old record without a machine promises nothing


def test_rounding_bound_grows_with_layers_and_reduction_length():
    one = rounding_bound(1, 1)
    assert math.isclose(one, 2 * FLOAT32_UNIT_ROUNDOFF / (1 - FLOAT32_UNIT_ROUNDOFF))
    assert rounding_bound(10, 64) > rounding_bound(5, 64) > rounding_bound(5, 8)


def test_older_kernels_step_down_one_instruction_set():
    assert older_kernels_env("AVX512")["ATEN_CPU_CAPABILITY"] == "avx2"
    assert older_kernels_env("AVX2")["ATEN_CPU_CAPABILITY"] == "default"
    assert older_kernels_env("DEFAULT") == {}
