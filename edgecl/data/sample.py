"""The MNIST sample shipped with the package: the 10,000 original test images."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from edgecl.data.idx import load_idx_pair
from edgecl.data.splits import stratified_split

__all__ = ["load_mnist_sample", "sample_dir"]


def sample_dir() -> Path:
    """The folder of the shipped sample (``t10k-*-ubyte.gz`` and a README with the licence)."""
    return Path(str(resources.files("edgecl.data") / "sample"))


def load_mnist_sample(
    *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: the shipped 10,000 MNIST images split
    stratified by class (``test_fraction`` of each class in the test part), reproducibly
    for a ``seed``; uint8 images ``(n, 28, 28)``, int64 labels."""
    d = sample_dir()
    x, y = load_idx_pair(d / "t10k-images-idx3-ubyte.gz", d / "t10k-labels-idx1-ubyte.gz")
    tr, te = stratified_split(y, test_fraction, seed=seed)
    return x[tr], y[tr], x[te], y[te]
