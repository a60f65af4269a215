"""IDX files (MNIST, Fashion-MNIST, KMNIST), gzip-compressed or raw. NumPy only.

IDX format: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a
big-endian int32, then the values in row-major, big-endian order. Gzip is recognised
by its magic bytes, not by the file name. Every size is checked against the header:
a truncated, over-long or corrupt file raises :class:`~edgecl.errors.DataFormatError`
naming the file and what was expected.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from edgecl.errors import DataFormatError

__all__ = ["IDX_FILES", "find_idx_file", "load_idx_dataset", "load_idx_pair", "read_idx"]

_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: The standard four file names (without ``.gz``) of MNIST, Fashion-MNIST and KMNIST.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_MAX_BYTES = 1 << 34  # refuse headers that promise more than 16 GiB


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise DataFormatError(
                f"{path}: expected a complete gzip stream, got a truncated or corrupt one ({e})"
            ) from e
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a native-endian array of its shape."""
    p = Path(path)
    data = _read_bytes(p)
    if len(data) < 4:
        raise DataFormatError(f"{p}: expected an IDX header of at least 4 bytes, got {len(data)}")
    if data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataFormatError(
            f"{p}: expected an IDX magic number (0x00 0x00 <type> <ndim>), got {data[:4].hex()}"
        )
    dtype = _TYPES[data[2]]
    ndim = data[3]
    head = 4 + 4 * ndim
    if ndim == 0 or len(data) < head:
        raise DataFormatError(
            f"{p}: expected a header with {ndim} dimension(s) ({head} bytes), got {len(data)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if n_bytes > _MAX_BYTES:
        raise DataFormatError(f"{p}: header promises {n_bytes} bytes of data, refusing")
    if len(data) - head != n_bytes:
        raise DataFormatError(
            f"{p}: expected {n_bytes} data bytes for shape {shape} of {dtype.name}, "
            f"got {len(data) - head} (truncated or corrupt file)"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=head).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def find_idx_file(folder: str | os.PathLike[str], stem: str) -> Path:
    """``folder/stem.gz`` or ``folder/stem``, whichever exists (gzip first)."""
    d = Path(folder)
    for name in (stem + ".gz", stem):
        if (d / name).is_file():
            return d / name
    raise FileNotFoundError(f"expected {stem}.gz or {stem} in {d}, found neither")


def load_idx_pair(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, rows, cols)`` uint8 and labels ``(n,)`` int64 from two IDX files."""
    x = read_idx(images_path)
    y = read_idx(labels_path)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise DataFormatError(
            f"{images_path}: expected uint8 images of shape (n, rows, cols), "
            f"got {x.dtype.name} of shape {x.shape}"
        )
    if y.dtype != np.uint8 or y.ndim != 1:
        raise DataFormatError(
            f"{labels_path}: expected uint8 labels of shape (n,), "
            f"got {y.dtype.name} of shape {y.shape}"
        )
    if x.shape[0] != y.shape[0]:
        raise DataFormatError(
            f"{labels_path}: expected {x.shape[0]} labels (one per image in {images_path}), "
            f"got {y.shape[0]}"
        )
    return x, y.astype(np.int64)


def load_idx_dataset(
    folder: str | os.PathLike[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` from a folder holding the standard four
    MNIST-style files (:data:`IDX_FILES`, each ``.gz`` or raw): uint8 images
    ``(n, 28, 28)`` and int64 labels."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"expected a folder of IDX files, got {d}")
    f = {k: find_idx_file(d, v) for k, v in IDX_FILES.items()}
    x_train, y_train = load_idx_pair(f["train_images"], f["train_labels"])
    x_test, y_test = load_idx_pair(f["test_images"], f["test_labels"])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataFormatError(
            f"{f['test_images']}: expected images of shape {x_train.shape[1:]} like the "
            f"training images, got {x_test.shape[1:]}"
        )
    return x_train, y_train, x_test, y_test
