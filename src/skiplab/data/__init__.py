"""skiplab.data: the embedded digits, MNIST-1D (generated locally), small synthetic sets and CIFAR-10 from a
user folder (imports no skiplab layer).

`load_dataset(name, seed=..., root=...)` is the one entry point the trainer uses.
"""

from __future__ import annotations

from skiplab.data.augment import pad_crop_flip
from skiplab.data.cifar import CifarFolderError, load_cifar10, read_batch_file, write_batch_file
from skiplab.data.dataset import Dataset, split_by_seed
from skiplab.data.digits import load_digits
from skiplab.data.mnist1d import load_mnist1d
from skiplab.data.synthetic import SYNTHETIC, synthetic

DATASETS: tuple[str, ...] = ("digits", "mnist1d", "cifar10", *SYNTHETIC)


def load_dataset(name: str, seed: int = 0, root: str | None = None, held_out: float = 0.2) -> Dataset:
    """A data set by name: digits (embedded), mnist1d (its fixed split), cifar10 (needs `root`), or a synthetic one."""
    if name == "digits":
        return load_digits(seed=seed, held_out=held_out)
    if name == "mnist1d":
        return load_mnist1d()
    if name == "cifar10":
        if not root:
            raise ValueError("data cifar10 needs a folder: give the cifar-10-batches-bin folder (--data-root)")
        return load_cifar10(root)
    if name in SYNTHETIC:
        return synthetic(name, seed=seed, held_out=held_out)
    raise ValueError(f"data must be one of {', '.join(DATASETS)}; got {name!r}")


__all__ = [
    "DATASETS",
    "CifarFolderError",
    "Dataset",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_mnist1d",
    "pad_crop_flip",
    "read_batch_file",
    "split_by_seed",
    "synthetic",
    "write_batch_file",
]
