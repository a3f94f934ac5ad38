"""The landscape subjects (export, shipped files, initial weights) and the study's pieces."""

import hashlib
import json

import pytest
import torch
import torch.nn.functional as F

from skiplab.data import load_dataset
from skiplab.experiments import DegradationConfig
from skiplab.experiments.landscape import (
    DEPTHS,
    KINDS,
    export_subjects,
    initial_model,
    load_subject,
    read_index,
    subject_batch,
    subjects_dir,
)
from skiplab.experiments.landscape_study import (
    PairComparison,
    SubjectMeasure,
    compare,
    finding,
    growth,
    line_of,
    line_positions,
    plane_of,
    plane_positions,
    price_landscape,
)
from skiplab.train import train
from skiplab.train.checkpoint import save_checkpoint
from skiplab.train.records import EpochMetrics

RECIPE = DegradationConfig(family="conv1d", data="mnist1d", width=16, epochs=2, lr=0.1, warmup_epochs=1, threads=1)


def test_initial_model_is_the_net_training_started_from():
    cfg = RECIPE.train_config("plain", 20, 3).replace(epochs=1)
    started = train(cfg, should_stop=lambda: True).model  # stopped before its first step: the initial weights
    data = load_dataset("mnist1d")
    rebuilt = initial_model(cfg, data).state_dict()
    assert all(torch.equal(v, rebuilt[k]) for k, v in started.state_dict().items())
    other = initial_model(cfg.replace(seed=4), data).state_dict()
    assert not torch.equal(other["conv1.weight"], rebuilt["conv1.weight"])


def _fake_runs(root, seed=0, epochs_done=1, depths=DEPTHS):
    """Run folders as a finished degradation experiment leaves them, with weights that differ from the init."""
    data = load_dataset("mnist1d")
    states = {}
    for kind in KINDS:
        for depth in depths:
            cfg = RECIPE.train_config(kind, depth, seed).replace(epochs=1)
            model = initial_model(cfg, data)
            with torch.no_grad():
                model.fc.bias.add_(0.5)
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            model(torch.randn(4, 1, 40)).sum().backward()
            opt.step()  # momentum buffers exist: the export must leave them out
            metrics = EpochMetrics(1, 0.5, 0.1, 0.6, 0.2, 0.1, 1.0, 2.0, 0.5, 1.0, 100.0).to_dict()
            meta = {"run_id": f"{kind}{depth}", "config": cfg.to_dict(), "history": [metrics] * epochs_done}
            save_checkpoint(root / f"{kind}{depth}-s{seed}", epochs_done, model, opt, meta)
            states[f"{kind}{depth}"] = {k: v.clone() for k, v in model.state_dict().items()}
    return states


def test_export_keeps_model_weights_only_and_loads_back(tmp_path):
    states = _fake_runs(tmp_path / "runs")
    out = tmp_path / "subjects"
    index = export_subjects(tmp_path / "runs", out, argv=["experiment", "landscape-subjects"])
    assert [s.name for s in index.subjects] == ["plain20-s0", "plain56-s0", "res20-s0", "res56-s0"]
    assert index.command == "skiplab experiment landscape-subjects" and index.seeds == (0,)
    on_disk = json.loads((out / "subjects.json").read_text())
    assert on_disk["subjects"][1]["model"] == "plain1d56" and on_disk["subjects"][1]["final"]["test_error"] == 0.2
    for s in index.subjects:
        blob = (out / s.file).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == s.sha256 and len(blob) == s.bytes
        assert b"optim/" not in blob and b"momentum" not in blob
    subject = load_subject("res", 20, 0, str(out))
    assert not subject.model.training
    assert all(torch.equal(v, states["res20"][k]) for k, v in subject.model.state_dict().items())
    with pytest.raises(ValueError, match="plain20-s0, plain56-s0, res20-s0, res56-s0"):
        load_subject("res", 20, 9, str(out))
    (out / "plain20-s0.safetensors").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="SHA-256"):
        load_subject("plain", 20, 0, str(out))


def test_export_refuses_unfinished_runs_and_names_them(tmp_path):
    _fake_runs(tmp_path / "runs", epochs_done=0)
    with pytest.raises(ValueError, match="no seed with all four finished runs"):
        export_subjects(tmp_path / "runs", tmp_path / "out")
    with pytest.raises(ValueError, match="not finished: epoch 0 of 1"):
        export_subjects(tmp_path / "runs", tmp_path / "out", seeds=(0,))


def test_shipped_subjects_match_their_index():
    index = read_index()
    assert len(index.seeds) >= 1 and index.command.startswith("skiplab experiment landscape-subjects")
    assert {(s.kind, s.depth) for s in index.subjects} == {(k, d) for k in KINDS for d in DEPTHS}
    for s in index.subjects:
        assert hashlib.sha256((subjects_dir() / s.file).read_bytes()).hexdigest() == s.sha256
        assert s.epoch == s.config["epochs"] and s.config["seed"] == s.seed


def test_plane_centre_of_a_shipped_net_is_its_loss():
    seed = read_index().seeds[0]
    subject = load_subject("res", 20, seed)
    *rows, plane = plane_of(subject, grid=3, span=0.5, examples=32)
    x, y = subject_batch(subject.data, "train", 32)
    with torch.no_grad():
        direct = F.cross_entropy(subject.model(x), y).item()
    assert len(rows) == 3 and plane.rows[1].loss[1] == pytest.approx(direct, rel=1e-6)


def test_init_to_trained_line_starts_at_the_rebuilt_initial_net():
    seed = read_index().seeds[0]
    subject = load_subject("plain", 20, seed)
    line = line_of(subject, points=11, examples=32)
    x, y = subject_batch(subject.data, "train", 32)
    init = initial_model(subject.config, subject.data).train()  # batch statistics, as the line uses
    with torch.no_grad():
        at_init = F.cross_entropy(init(x), y).item()
    assert line.xs[0] < 0 and line.xs[1] == 0.0 and line.xs[-2] == 1.0
    assert line.rows[0].loss[1] == pytest.approx(at_init, rel=1e-5) and line.bn == "batch"


def test_grids_and_prices():
    assert plane_positions(5, 1.0) == (-1.0, -0.5, 0.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="grid must be odd"):
        plane_positions(4, 1.0)
    t = line_positions(51)
    assert t[5] == 0.0 and t[45] == 1.0 and t[0] == pytest.approx(-0.125)
    small, big = price_landscape("plain", 56, 9), price_landscape("plain", 56, 441)
    assert big.flops == 49 * small.flops > 0 and price_landscape("res", 20, 9).flops < small.flops
    with pytest.raises(ValueError, match="depth one of"):
        price_landscape("plain", 32, 9)


def _measure(kind, depth, seed, share, lam):
    return SubjectMeasure(f"{kind}{depth}-s{seed}", kind, depth, seed, 0.1, 0.9, share, 0.5, lam, -0.1, 0.1 / lam,
                          True, 2.3, True, 1.0)  # fmt: skip


def test_comparison_and_finding_follow_the_numbers():
    measures = [
        _measure(kind, depth, seed, share, lam)
        for seed in (0, 1)
        for depth in DEPTHS
        for kind, share, lam in (("plain", 0.6 if seed == 0 else 0.1, 50.0), ("res", 0.2, 1.0))
    ]
    comparisons = compare(measures, [0, 1])
    share56 = next(c for c in comparisons if c.depth == 56 and c.measure == "non_convex_share")
    assert isinstance(share56, PairComparison) and share56.plain_higher == 1 and not share56.every_seed
    sharp = next(c for c in comparisons if c.depth == 56 and c.measure == "lambda_max")
    assert sharp.every_seed and sharp.plain == [50.0, 50.0]
    grown = growth(measures, [0, 1])
    share = next(g for g in grown if g.measure == "non_convex_share")
    assert share.shallow == pytest.approx([0.4, -0.1]) and share.deep == pytest.approx([0.4, -0.1])
    assert share.grows_on == 0 and not share.every_seed  # the same excess at both depths: not growing
    text = finding(comparisons, grown)
    assert "From 20 to 56 layers the plain net's excess grows: its excess non-convex share on 0 of 2 seeds" in text
    assert "At 56 layers the plain net has a sharper minimum (larger λmax) than the residual net on every seed" in text
    assert "but a larger non-convex share of its plane on 1 of 2 and a larger |λmin/λmax| on 0 of 2 seeds." in text
