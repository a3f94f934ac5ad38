"""The safetensors header checks on their own: each kind of fault, and which are reported together."""

from skiplab.train.untrusted import _header_faults

EXPECTED = {
    "model/a": ((2, 3), "F32"),
    "model/b": ((4,), "F16"),
    "optim/0/momentum_buffer": ((2, 3), "F32"),
}


def header(**changes):
    """A header that fits EXPECTED (24 + 8 + 24 bytes of tensors), with some entries replaced or removed (None)."""
    out = {
        "__metadata__": {"format": "skiplab-checkpoint-1"},
        "model/a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "model/b": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]},
        "optim/0/momentum_buffer": {"dtype": "F32", "shape": [2, 3], "data_offsets": [32, 56]},
    }
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def test_a_fitting_header_has_no_faults():
    assert _header_faults(header(), EXPECTED, 56) == []
    assert _header_faults(header(**{"optim/0/momentum_buffer": None}), EXPECTED, 32) == []


def test_a_malformed_or_mis_sized_entry_is_the_only_fault_reported():
    bad = {"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]}
    assert _header_faults(header(extra=bad), EXPECTED, 0) == [
        "tensor 'extra' has a malformed entry (dtype, shape, data_offsets)"
    ]
    for dtype in (["F32"], "F8", None):
        faults = _header_faults(header(**{"model/b": {"dtype": dtype, "shape": [4], "data_offsets": [24, 32]}}), {}, 0)
        assert faults == ["tensor 'model/b' has a malformed entry (dtype, shape, data_offsets)"]
    sized = {"dtype": "F16", "shape": [4], "data_offsets": [24, 40]}
    assert _header_faults(header(**{"model/b": sized}), EXPECTED, 0) == [
        "tensor 'model/b' declares 16 bytes for shape [4]"
    ]


def test_name_shape_and_layout_faults_are_reported_together():
    faults = _header_faults(
        header(**{"model/a": None, "model/b": {"dtype": "F32", "shape": [4], "data_offsets": [24, 40]}}),
        EXPECTED,
        56,
    )
    assert faults == [
        "missing tensors model/a",
        "1 tensors whose dtype or shape differ from the model's, e.g. model/b: F32 [4] where the model has F16 [4]",
        "tensor byte ranges overlap or leave gaps",
    ]
    extra = {f"x{i}": {"dtype": "U8", "shape": [1], "data_offsets": [56 + i, 57 + i]} for i in range(6)}
    assert _header_faults(header(**extra), EXPECTED, 62) == ["unexpected tensors x0, x1, x2, x3, x4 ..."]


def test_the_size_is_checked_only_when_nothing_else_is_wrong():
    assert _header_faults(header(), EXPECTED, 57) == [
        "its header declares 56 bytes of tensors but 57 follow it: truncated or padded"
    ]
    extra = {"dtype": "U8", "shape": [1], "data_offsets": [56, 57]}
    assert _header_faults(header(extra=extra), EXPECTED, 100) == ["unexpected tensors extra"]
