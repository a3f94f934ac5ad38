"""CIFAR-10 read from a folder the user provides, in the binary release (no pickle is ever loaded).

The binary release (`cifar-10-binary.tar.gz`, unpacked to
`cifar-10-batches-bin/`) stores each example as a fixed 3,073-byte record:
one label byte (0..9) followed by 3,072 pixel bytes, the red, green and blue
32x32 planes in turn. Training examples are in `data_batch_1.bin` ..
`data_batch_5.bin`, the 10,000 test examples in `test_batch.bin` (10,000
records, 30,730,000 bytes, per file in the official release). Nothing is
downloaded: a folder that is missing files, has a file whose size is not a
whole number of records or larger than the official 10,000 records, or a
label outside 0..9 is refused with one message that names every bad file and
what is wrong with it, so one look fixes the folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from skiplab.data.dataset import Dataset

RECORD_BYTES = 1 + 3 * 32 * 32
MAX_RECORDS = 10_000  # per file in the official release; a larger file is not one of its files
TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
FOLDER = "cifar-10-batches-bin"
# Per-channel mean and standard deviation of the 50,000 training images (pixels in [0, 1]), the usual constants.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class CifarFolderError(ValueError):
    """The folder given for CIFAR-10 is not a usable binary release."""


def find_cifar_folder(root: str | Path) -> Path:
    """`root` itself if it holds the batch files, else `root/cifar-10-batches-bin`."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CifarFolderError(f"CIFAR-10 folder {str(root)!r} does not exist or is not a directory")
    for candidate in (root, root / FOLDER):
        if (candidate / TEST_FILE).exists() or (candidate / TRAIN_FILES[0]).exists():
            return candidate
    if list(root.glob("data_batch_*")) and not list(root.glob("*.bin")):
        raise CifarFolderError(
            f"{str(root)!r} looks like the Python (pickle) release of CIFAR-10; skiplab reads only the binary "
            f"release ({FOLDER}, files data_batch_1.bin .. data_batch_5.bin, test_batch.bin)"
        )
    raise CifarFolderError(
        f"{str(root)!r} holds no CIFAR-10 binary release: expected {', '.join(TRAIN_FILES)} and {TEST_FILE} "
        f"there or in {FOLDER}/ below it"
    )


def _size_fault(path: Path) -> str | None:
    """What is wrong with `path`'s presence or size, or None; nothing is read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"missing CIFAR-10 file {path.name} in {str(path.parent)!r}"
    except OSError as e:
        return f"{path.name} cannot be read ({e.strerror})"
    if not path.is_file():
        return f"{path.name} is not a regular file"
    size = st.st_size
    if size == 0 or size % RECORD_BYTES:
        return (
            f"{path.name} has {size:,} bytes, not a whole number of {RECORD_BYTES}-byte records "
            f"(the official files have 10,000 records, {10_000 * RECORD_BYTES:,} bytes): truncated or not CIFAR-10"
        )
    if size > MAX_RECORDS * RECORD_BYTES:
        return (
            f"{path.name} has {size // RECORD_BYTES:,} records, more than the {MAX_RECORDS:,} of an official file: "
            "not a CIFAR-10 binary batch"
        )
    return None


def _read_checked(path: Path) -> tuple[np.ndarray, np.ndarray] | str:
    """(images, labels) from a file whose size is right, or what is wrong with its labels."""
    try:
        raw = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    except (OSError, ValueError) as e:
        return f"{path.name} cannot be read ({e})"
    labels = raw[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        return (
            f"{path.name}: record {int(bad[0])} has label {int(labels[bad[0]])}, outside 0..9 "
            f"({bad.size} such records): not a CIFAR-10 binary file (CIFAR-100 has 2 label bytes per record)"
        )
    return raw[:, 1:].reshape(-1, 3, 32, 32), labels


def read_batch_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from one binary batch file, after checking it."""
    fault = _size_fault(path)
    out = fault if fault is not None else _read_checked(path)
    if isinstance(out, str):
        raise CifarFolderError(out)
    return out


def load_cifar10(root: str | Path, augment: bool = True) -> Dataset:
    """CIFAR-10 from `root` (the `cifar-10-batches-bin` folder or its parent): 50,000 train, 10,000 test images.

    Every file is checked before a refusal, which then names all the bad ones; a file is read only once its
    size is right (at most 10,000 records).
    """
    folder = find_cifar_folder(root)
    sized = {name: _size_fault(folder / name) for name in (*TRAIN_FILES, TEST_FILE)}
    read = {name: _read_checked(folder / name) for name, fault in sized.items() if fault is None}
    faults = [f for f in sized.values() if f is not None] + [out for out in read.values() if isinstance(out, str)]
    if faults:
        raise CifarFolderError(
            f"CIFAR-10 folder {str(folder)!r} has {len(faults)} bad file{'s' * (len(faults) > 1)}: " + "; ".join(faults)
        )
    x_test, y_test = read.pop(TEST_FILE)
    x_train = np.concatenate([read[name][0] for name in TRAIN_FILES])
    y_train = np.concatenate([read[name][1] for name in TRAIN_FILES])
    return Dataset(
        "cifar10",
        torch.from_numpy(x_train),
        torch.from_numpy(y_train),
        torch.from_numpy(np.ascontiguousarray(x_test)),
        torch.from_numpy(y_test),
        num_classes=10,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        augment=augment,
        source=f"CIFAR-10 binary release in {str(folder)!r}",
    )


def write_batch_file(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images (N, 3, 32, 32) uint8 and labels in the binary release's record layout (for tests and demos)."""
    records = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(len(labels), -1)], axis=1)
    path.write_bytes(records.astype(np.uint8).tobytes())
