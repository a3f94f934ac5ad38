import json

import pytest
import torch

from skiplab.train import CheckpointError, load_checkpoint, save_checkpoint
from skiplab.train.checkpoint import restore
from skiplab.train.models import build_model

META = {"run_id": "r", "config": {"model": "resconv2", "width": 4, "data": "digits"}, "history": []}


def model_and_optimizer(seed=0):
    torch.manual_seed(seed)
    model = build_model("resconv2", (1, 8, 8), 10, width=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = model(torch.randn(4, 1, 8, 8)).sum()
    loss.backward()
    opt.step()  # creates momentum buffers and moves BN running statistics
    return model, opt


def test_round_trip_restores_weights_statistics_and_momentum(tmp_path):
    model, opt = model_and_optimizer(0)
    save_checkpoint(tmp_path, 3, model, opt, META)
    other, other_opt = model_and_optimizer(1)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.epoch == 3 and ckpt.meta["run_id"] == "r"
    restore(ckpt, other, other_opt)
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k
    for p, q in zip(model.parameters(), other.parameters()):
        assert torch.equal(opt.state[p]["momentum_buffer"], other_opt.state[q]["momentum_buffer"])


def test_only_the_committed_weights_file_remains(tmp_path):
    model, opt = model_and_optimizer()
    for epoch in (1, 2):
        save_checkpoint(tmp_path, epoch, model, opt, META)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", "weights-00002.safetensors"]


def test_a_killed_write_leaves_the_previous_checkpoint_valid(tmp_path):
    model, opt = model_and_optimizer()
    save_checkpoint(tmp_path, 1, model, opt, META)
    # What a kill in the middle of the next save leaves behind: a partial temp file, and perhaps new weights
    # that no commit record names yet.
    (tmp_path / ".weights-00002.safetensors.999.tmp").write_bytes(b"\x00" * 10)
    (tmp_path / ".checkpoint.json.999.tmp").write_text('{"epoch": 2')
    assert load_checkpoint(tmp_path).epoch == 1
    assert not list(tmp_path.glob(".*.tmp"))  # leftovers cleaned on load


def test_corruption_is_detected(tmp_path):
    model, opt = model_and_optimizer()
    save_checkpoint(tmp_path, 1, model, opt, META)
    weights = tmp_path / "weights-00001.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        load_checkpoint(tmp_path)
    weights.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not a skiplab checkpoint"):
        load_checkpoint(tmp_path)
