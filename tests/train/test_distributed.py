"""The same `skiplab train` under torchrun: 2 CPU processes (gloo), each on its shard, end with identical weights."""

import json
import subprocess
import sys

import pytest

from skiplab.train import load_checkpoint


@pytest.mark.slow
def test_two_cpu_ranks_end_with_identical_weights(tmp_path):
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "skiplab", "train", "--model", "resmlp3", "--width", "16", "--epochs", "2", "--threads", "1",
        "--run-dir", str(tmp_path / "run"), "--store", str(tmp_path / "runs.db"), "--json",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)  # only rank 0 reports
    assert result["status"] == "completed" and len(result["epochs"]) == 2
    checksums = result["rank_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    # rank 0 alone wrote the checkpoint, and it holds the agreed weights
    assert load_checkpoint(tmp_path / "run").epoch == 2
    # each rank saw half the data: the throughput is per process, the loss is over both shards
    assert result["epochs"][-1]["train_loss"] < result["epochs"][0]["train_loss"]
