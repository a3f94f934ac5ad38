"""Run folders are untrusted input: every hostile checkpoint ends in a CheckpointError naming the file and the fault."""

import hashlib
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from skiplab.data import DATASETS, load_dataset, write_batch_file
from skiplab.data.cifar import TEST_FILE, TRAIN_FILES
from skiplab.nn import list_models
from skiplab.train import CheckpointError, TrainConfig, load_checkpoint, train
from skiplab.train.checkpoint import (
    DATA_SHAPES,
    LOAD_LIMITS,
    MAX_JSON_BYTES,
    load_model_state,
    priced_config,
    run_config,
)
from skiplab.train.models import build_model
from skiplab.train.trained import load_trained

CFG = TrainConfig(model="resmlp3", width=8, epochs=1, threads=1)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pristine") / "run"
    train(CFG, run_dir=run_dir)
    return run_dir


@pytest.fixture
def run(pristine, tmp_path):
    """A copy of a real one-epoch run folder, to spoil."""
    return shutil.copytree(pristine, tmp_path / "run")


def meta_of(run_dir):
    return json.loads((run_dir / "checkpoint.json").read_text())


def write_meta(run_dir, meta):
    (run_dir / "checkpoint.json").write_text(json.dumps(meta))


def set_weights(run_dir, blob: bytes, name="weights-00001.safetensors"):
    """Replace the weights with `blob` and record its SHA-256, so that only the content can be refused."""
    (run_dir / name).write_bytes(blob)
    meta = meta_of(run_dir)
    meta.update(weights=name, sha256=hashlib.sha256(blob).hexdigest())
    write_meta(run_dir, meta)


def refused(run_dir, match):
    with pytest.raises(CheckpointError, match=match) as e:
        load_checkpoint(run_dir)
    return str(e.value)


def test_the_pristine_folder_loads(run):
    ckpt = load_checkpoint(run)
    assert ckpt.epoch == 1 and len(ckpt.meta["history"]) == 1
    trained = load_trained(run)
    assert trained.config == CFG and trained.epoch == 1


@pytest.mark.parametrize(
    "change,match",
    [
        ({"model": "resmlp1000000000"}, "model 'resmlp1000000000', deeper than depth 2,000"),
        ({"model": "resmlp" + "9" * 80}, "deeper than depth 2,000"),
        ({"model": "1" * 3_000_000 + "x"}, "model must be a name of at most 100 characters"),
        ({"width": 1_000_000_000}, "width 1,000,000,000; a run folder may ask for at most"),
        ({"model": "resmlp200", "width": 8192}, r"13,4\d\d,\d\d\d,\d\d\d parameters; a run folder may ask for at most"),
        ({"model": "denseconv1000", "width": 64}, "parameters; a run folder may ask for at most"),
        ({"model": "teleport7"}, "model 'teleport7' cannot be built"),
        ({"data": "mnist"}, "data must be one of"),
        ({"gamma": "x"}, "gamma must be a finite number"),
        ({"milestones": 5}, "milestones must be a list of numbers"),
        ({"epochs": 10**30}, "epochs must be an integer in"),
        ({"surprise": 1}, "unknown config field"),
    ],
)
def test_a_config_is_priced_before_anything_is_built(run, change, match):
    meta = meta_of(run)
    meta["config"].update(change)
    write_meta(run, meta)
    for load in (load_checkpoint, run_config, load_trained):
        with pytest.raises(CheckpointError, match=match) as e:
            load(run)
        assert "checkpoint.json" in str(e.value)


@pytest.mark.slow
def test_the_zoo_fits_the_load_limits():
    """The limits refuse only what no zoo model needs: every registered model could be loaded from a run folder."""
    for spec in list_models():
        with torch.device("meta"):
            params = sum(p.numel() for p in spec.create().parameters())
        assert params <= LOAD_LIMITS.params and spec.depth <= LOAD_LIMITS.depth, spec.name
    for model in ("resnet1202", "resnet152", "plain110"):
        assert priced_config({"model": model, "data": "cifar10"}, "x").model == model


def test_data_shapes_match_the_loaded_data(tmp_path):
    rng = np.random.default_rng(0)
    for name in (*TRAIN_FILES, TEST_FILE):
        write_batch_file(tmp_path / name, rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 2))
    assert set(DATA_SHAPES) == set(DATASETS)
    for name in DATASETS:
        data = load_dataset(name, root=str(tmp_path))
        assert DATA_SHAPES[name] == (tuple(data.input_shape), data.num_classes), name


@pytest.mark.parametrize("weights", ["/etc/passwd", "../../etc/hostname", "sub/w.safetensors", "..", ".hidden", ""])
def test_the_weights_name_must_be_a_plain_file_name(run, weights):
    meta = meta_of(run)
    meta["weights"] = weights
    write_meta(run, meta)
    refused(run, "checkpoint.json: weights must be a plain file name inside the run folder")


def test_a_link_out_of_the_folder_is_refused_unread(run, tmp_path, monkeypatch):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(2**31)  # sparse: 2 GiB that cost no disk
    (run / "w.safetensors").symlink_to(big)
    meta = meta_of(run)
    meta["weights"] = "w.safetensors"
    write_meta(run, meta)
    hashed = []
    monkeypatch.setattr(hashlib, "sha256", lambda *a: hashed.append(a) or pytest.fail("hashed"))
    refused(run, r"w\.safetensors: the weights file checkpoint.json names links out of the run folder")
    assert not hashed


def test_a_pickle_in_place_of_the_weights_is_never_unpickled(run, tmp_path):
    marker = tmp_path / "unpickled"

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    set_weights(run, pickle.dumps(Bomb(), protocol=4))
    refused(run, r"weights-00001\.safetensors: a pickle, not safetensors; skiplab never unpickles")
    assert not marker.exists()


def test_a_torch_save_file_in_place_of_the_weights_is_refused(run, tmp_path):
    torch.save({"w": torch.zeros(3)}, tmp_path / "t.pt")
    set_weights(run, (tmp_path / "t.pt").read_bytes())
    refused(run, r"weights-00001\.safetensors: a torch.save \(zip\) file, not safetensors")


def test_a_truncated_file_or_a_huge_header_length_is_refused(run):
    blob = (run / "weights-00001.safetensors").read_bytes()
    set_weights(run, blob[:-100])
    refused(run, r"weights-00001\.safetensors does not hold this run's model: .* truncated or padded")
    set_weights(run, blob[:5])
    refused(run, "too short|header length")
    set_weights(run, (2**60).to_bytes(8, "little") + b"{}")
    refused(run, r"header length 1,152,921,504,606,846,976 bytes but the file has 10")
    set_weights(run, (4).to_bytes(8, "little") + b"[[[[")
    refused(run, "the safetensors header is not valid JSON")


def spoilt(run, edit) -> bytes:
    tensors = st_load((run / "weights-00001.safetensors").read_bytes())
    edit(tensors)
    return st_save(tensors)


def test_missing_unexpected_and_misshapen_tensors_are_refused(run):
    original = (run / "weights-00001.safetensors").read_bytes()
    first = next(k for k in st_load(original) if k.startswith("model/"))
    set_weights(run, spoilt(run, lambda t: t.pop(first)))
    refused(run, f"missing tensors {first}")
    set_weights(run, original)
    set_weights(run, spoilt(run, lambda t: t.update(extra=torch.zeros(2))))
    refused(run, "unexpected tensors extra")
    set_weights(run, original)
    set_weights(run, spoilt(run, lambda t: t.update({first: t[first].double()})))
    refused(run, f"dtype or shape differ from the model's, e.g. {first}: F64")
    set_weights(run, original)
    set_weights(run, spoilt(run, lambda t: t.update({first: torch.zeros(3, 3)})))
    refused(run, f"e.g. {first}: F32 \\[3, 3\\]")


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [10**9] * 100_000, "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]},
        {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]},
        [1, 2, 3],
    ],
)
def test_a_malformed_header_entry_is_refused(run, entry):
    header = json.dumps({"model/x": entry}).encode()
    set_weights(run, len(header).to_bytes(8, "little") + header + b"\0" * 4)
    refused(run, "tensor 'model/x' has a malformed entry")


def test_a_header_that_declares_a_huge_tensor_is_refused_before_the_file_is_read(run):
    header = json.dumps({"model/x": {"dtype": "F32", "shape": [2**29], "data_offsets": [0, 2**31]}}).encode()
    path = run / "weights-00001.safetensors"
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(8 + len(header) + 2**31)
    refused(run, "does not hold this run's model: missing tensors .*unexpected tensors model/x")


@pytest.mark.parametrize(
    "change,match",
    [
        ({"epoch": "1"}, "epoch must be an integer"),
        ({"epoch": -1}, "epoch must be an integer"),
        ({"sha256": 12}, "sha256 must be 64 lowercase hexadecimal digits"),
        ({"config": []}, "config must be an object"),
        ({"run_id": {"a": 1}}, "run_id must be a printable string"),
        ({"history": {"a": 1}}, "history must be a list"),
        ({"history": [[1, 2]]}, r"history\[0\] must be an object with exactly the keys"),
        ({"history": ["x" * 100]}, r"history\[0\] must be an object"),
        ({"format": "other"}, "not a skiplab checkpoint"),
    ],
)
def test_checkpoint_json_fields_are_type_checked(run, change, match):
    meta = meta_of(run)
    meta.update(change)
    write_meta(run, meta)
    refused(run, r"checkpoint\.json.*" + match)


def test_history_values_must_be_numbers(run):
    meta = meta_of(run)
    meta["history"][0]["train_loss"] = [[[[1]]]]
    write_meta(run, meta)
    refused(run, r"history\[0\] has values that are not numbers: train_loss")


def test_deep_nesting_and_enormous_files_are_refused(run):
    (run / "checkpoint.json").write_text("[" * 200_000 + "]" * 200_000)
    refused(run, r"checkpoint\.json: the checkpoint record nests too deeply")
    with open(run / "checkpoint.json", "wb") as f:
        f.truncate(2**31)  # sparse
    refused(run, r"checkpoint\.json: larger than 8 MiB")
    (run / "checkpoint.json").write_text("not json")
    refused(run, r"checkpoint\.json: the checkpoint record is not valid JSON")


def test_an_enormous_history_is_refused_by_size(run):
    meta = meta_of(run)
    meta["history"] = meta["history"] * (MAX_JSON_BYTES // len(json.dumps(meta["history"])) + 1)
    write_meta(run, meta)
    refused(run, "larger than 8 MiB")


def test_checkpoint_json_that_is_not_a_regular_file_or_links_out(run, tmp_path):
    outside = tmp_path / "elsewhere.json"
    outside.write_text((run / "checkpoint.json").read_text())
    (run / "checkpoint.json").unlink()
    (run / "checkpoint.json").symlink_to(outside)
    refused(run, r"checkpoint\.json: the checkpoint record links out of the run folder")
    (run / "checkpoint.json").unlink()
    os.mkfifo(run / "checkpoint.json")  # reading a FIFO would block forever
    refused(run, r"checkpoint\.json: the checkpoint record is not a regular file")


def test_weights_that_do_not_fit_the_model_are_refused_not_crashed_on(run):
    ckpt = load_checkpoint(run)
    other = build_model("resmlp4", (1, 8, 8), 10, 8)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model_state(ckpt, other)
