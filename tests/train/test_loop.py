import json
import math
import time

import pytest
import torch

from skiplab.store import RunStore
from skiplab.train import TrainConfig, checkpoint, device, train
from skiplab.train.device import cpu_has_native_bf16

# Tiny and fast: a 3-layer residual MLP on the digits.
TINY = TrainConfig(model="resmlp3", width=16, epochs=3, batch_size=64, lr=0.05, threads=1)


def curves(result):
    return [(e.train_loss, e.train_error, e.test_loss, e.test_error, e.lr, e.grad_norm_mean) for e in result.epochs]


def test_learns_and_reports_every_epoch(tmp_path):
    seen = []
    store = RunStore(tmp_path / "runs.db")
    result = train(TINY, on_epoch=seen.append, store=store, name="tiny")
    assert result.status == "completed" and [e.epoch for e in result.epochs] == [1, 2, 3]
    assert seen == result.epochs
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss < math.log(10) + 0.5
    assert result.epochs[-1].test_error < 0.5
    e = result.epochs[0]
    assert 0 < e.grad_norm_min <= e.grad_norm_mean <= e.grad_norm_max and e.seconds > 0
    run = store.get(result.run_id)
    assert run.status == "completed" and run.name == "tiny" and run.config == TINY.to_dict()
    assert [r["train_loss"] for r in run.epochs] == [m.train_loss for m in result.epochs]
    assert run.versions["torch"] == torch.__version__


def test_fixed_seed_gives_identical_curves_and_other_seed_differs():
    a, b = train(TINY), train(TINY)
    assert curves(a) == curves(b)
    assert curves(train(TINY.replace(seed=1))) != curves(a)


def test_resume_continues_exactly(tmp_path):
    full = train(TINY)
    done = []
    # Cancel the first session after its first epoch: the checkpoint of epoch 1 is what is left.
    first = train(TINY, run_dir=tmp_path / "run", on_epoch=done.append, should_stop=lambda: bool(done))
    assert first.status == "stopped" and len(first.epochs) == 1
    resumed = train(TINY, run_dir=tmp_path / "run", resume=True)
    assert resumed.resumed_from == 1
    assert curves(resumed) == curves(full)
    for p, q in zip(resumed.model.state_dict().values(), full.model.state_dict().values()):
        assert torch.equal(p, q)


def test_resume_refuses_a_different_config(tmp_path):
    train(TINY.replace(epochs=1), run_dir=tmp_path)
    assert train(TINY.replace(epochs=2), run_dir=tmp_path, resume=True).resumed_from == 1  # extending is allowed
    with pytest.raises(ValueError, match="lr: checkpoint 0.05 vs now 0.1"):
        train(TINY.replace(lr=0.1), run_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="no checkpoint"):
        train(TINY, run_dir=tmp_path / "empty", resume=True)


def test_divergence_stops_cleanly_and_is_stored(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    # An absurd learning rate on a plain net without normalisation overflows within a few steps.
    cfg = TrainConfig(model="plainmlp3", width=16, epochs=3, lr=100.0, momentum=0.9, threads=1)
    result = train(cfg, store=store)
    assert result.status == "diverged"
    assert "training loss became" in result.message and "lower learning rate" in result.message
    assert len(result.epochs) < 3
    assert store.get(result.run_id).status == "diverged"


def test_should_stop_is_polled_every_batch():
    calls = []

    def stop():
        calls.append(time.perf_counter())
        return len(calls) > 3

    result = train(TINY.replace(epochs=50), should_stop=stop)
    assert result.status == "stopped" and len(calls) == 4 and not result.epochs
    assert "step 4" in result.message


def test_a_big_net_stops_at_the_step_where_cancel_is_asked():
    # A real, slow step (digits ResNet-56): the run ends before the next step, whatever the machine's speed.
    # How long that takes in seconds is a benchmark's business, not a test's.
    cfg = TrainConfig(model="resnet56", epochs=1, batch_size=128, threads=1)
    steps = []

    def stop():
        return len(steps) >= 2

    result = train(cfg, should_stop=stop, on_step=lambda i, n: steps.append(i))
    assert result.status == "stopped" and steps == [1, 2] and "step 3" in result.message


def test_a_run_that_raises_is_stored_as_failed(tmp_path):
    store = RunStore(tmp_path / "runs.db")

    def boom(metrics):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        train(TINY, store=store, on_epoch=boom)
    (run,) = store.list()
    assert run.status == "failed" and "disk full" in run.message and run.epochs_done == 1


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="needs a CPU with native bfloat16 (AVX512-BF16 or AMX)")
def test_cpu_bf16_trains_a_conv_net_as_well_as_float32_but_not_identically():
    cfg = TrainConfig(model="resconv8", width=8, epochs=3, batch_size=64, lr=0.05, threads=1)
    fp32, bf16 = train(cfg), train(cfg.replace(cpu_bf16=True))
    assert curves(bf16) != curves(fp32)  # autocast really ran the convolutions in bfloat16
    assert bf16.epochs[-1].train_loss < bf16.epochs[0].train_loss
    assert abs(bf16.epochs[-1].test_error - fp32.epochs[-1].test_error) < 0.1


def test_cpu_bf16_is_refused_on_a_cpu_without_it_before_anything_is_stored(tmp_path, monkeypatch):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    store = RunStore(tmp_path / "runs.db")
    with pytest.raises(ValueError, match="cpu_bf16: this CPU has no native bfloat16"):
        train(TINY.replace(cpu_bf16=True), store=store)
    assert store.list() == []


def test_a_checkpoint_from_before_a_config_field_existed_still_resumes(tmp_path):
    train(TINY.replace(epochs=1), run_dir=tmp_path)
    record_path = tmp_path / checkpoint.CHECKPOINT_JSON
    record = json.loads(record_path.read_text())
    del record["config"]["cpu_bf16"]  # as written before the field existed
    record_path.write_text(json.dumps(record))
    resumed = train(TINY.replace(epochs=2), run_dir=tmp_path, resume=True)
    assert resumed.status == "completed" and [e.epoch for e in resumed.epochs] == [1, 2]
