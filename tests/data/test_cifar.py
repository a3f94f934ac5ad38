import numpy as np
import pytest
import torch

from skiplab.data import CifarFolderError, load_cifar10, load_dataset, write_batch_file
from skiplab.data.cifar import TEST_FILE, TRAIN_FILES


def make_release(root, n=20, seed=0):
    """A tiny CIFAR-10 binary release: n records per file, written in the official layout."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir()
    written = {}
    for name in (*TRAIN_FILES, TEST_FILE):
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, n)
        write_batch_file(folder / name, images, labels)
        written[name] = (images, labels)
    return folder, written


def test_reads_records_exactly(tmp_path):
    folder, written = make_release(tmp_path)
    for root in (tmp_path, folder):  # the folder itself or its parent
        d = load_cifar10(root)
        assert d.x_train.shape == (100, 3, 32, 32) and d.x_train.dtype == torch.uint8
        assert torch.equal(d.x_train[:20], torch.from_numpy(written["data_batch_1.bin"][0]))
        assert torch.equal(d.y_train[20:40], torch.from_numpy(written["data_batch_2.bin"][1]))
        assert torch.equal(d.x_test, torch.from_numpy(written[TEST_FILE][0]))
    x = d.prepare(d.x_train[:8], train=True, generator=torch.Generator().manual_seed(0))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32


def test_truncated_file_is_named(tmp_path):
    folder, _ = make_release(tmp_path)
    path = folder / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CifarFolderError, match="data_batch_3.bin.*not a whole number of 3073-byte records"):
        load_cifar10(tmp_path)


def test_label_out_of_range_is_named(tmp_path):
    folder, _ = make_release(tmp_path)
    raw = bytearray((folder / TEST_FILE).read_bytes())
    raw[3073 * 5] = 42
    (folder / TEST_FILE).write_bytes(bytes(raw))
    with pytest.raises(CifarFolderError, match="test_batch.bin: record 5 has label 42, outside 0..9"):
        load_cifar10(tmp_path)


def test_missing_file_and_missing_folder(tmp_path):
    folder, _ = make_release(tmp_path)
    (folder / "data_batch_5.bin").unlink()
    with pytest.raises(CifarFolderError, match="missing CIFAR-10 file data_batch_5.bin"):
        load_cifar10(tmp_path)
    with pytest.raises(CifarFolderError, match="does not exist"):
        load_cifar10(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CifarFolderError, match="holds no CIFAR-10 binary release"):
        load_cifar10(tmp_path / "empty")


def test_pickle_release_is_refused_without_loading(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(b"\x80\x04not-unpickled")
    with pytest.raises(CifarFolderError, match="pickle"):
        load_cifar10(tmp_path)


def test_cifar_needs_a_root():
    with pytest.raises(ValueError, match="--data-root"):
        load_dataset("cifar10")


def test_every_bad_file_is_named_in_one_message(tmp_path):
    folder, _ = make_release(tmp_path)
    (folder / "data_batch_2.bin").unlink()
    path = folder / "data_batch_4.bin"
    path.write_bytes(path.read_bytes()[:-7])
    raw = bytearray((folder / TEST_FILE).read_bytes())
    raw[0] = 200
    (folder / TEST_FILE).write_bytes(bytes(raw))
    with pytest.raises(CifarFolderError) as e:
        load_cifar10(tmp_path)
    message = str(e.value)
    assert "has 3 bad files" in message
    assert "missing CIFAR-10 file data_batch_2.bin" in message
    assert "data_batch_4.bin has 61,453 bytes, not a whole number" in message
    assert "test_batch.bin: record 0 has label 200" in message
    assert "data_batch_1.bin" not in message


def test_a_file_larger_than_an_official_batch_is_refused_before_it_is_read(tmp_path, monkeypatch):
    folder, _ = make_release(tmp_path)
    with open(folder / "data_batch_1.bin", "r+b") as f:
        f.truncate(10_001 * 3073)  # sparse: costs no disk
    read = []
    monkeypatch.setattr(np, "fromfile", lambda path, **kw: read.append(path) or np.zeros(0, np.uint8))
    with pytest.raises(CifarFolderError, match="data_batch_1.bin has 10,001 records, more than the 10,000"):
        load_cifar10(tmp_path)
    assert folder / "data_batch_1.bin" not in read
