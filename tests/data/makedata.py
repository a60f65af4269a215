"""Small labelled data sets generated for the tests, written in every form ``--data`` takes
(IDX folder, CIFAR python batches, image folder, ``.npz``). Not a test module."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def images(
    n_per_class: int, n_classes: int, shape: tuple[int, ...], *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(n, H, W)`` or ``(n, H, W, C)``: class k is a bright block at its own
    place (and, with channels, its own colour) over noise; labels 0..n_classes-1."""
    rng = np.random.default_rng(seed)
    h, w = shape[0], shape[1]
    x = rng.integers(0, 60, (n_per_class * n_classes, *shape), dtype=np.uint8)
    y = np.repeat(np.arange(n_classes), n_per_class)
    bh, bw = max(1, h // 3), max(1, w // 3)
    for i, k in enumerate(y):
        r, c = (k * bh) % (h - bh + 1), (k * 2 * bw) % (w - bw + 1)
        block = x[i, r : r + bh, c : c + bw]
        if x.ndim == 4:
            block[..., k % shape[2]] = 250
        else:
            block[...] = 250
    return x, y.astype(np.int64)


def _idx_bytes(a: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return head + np.ascontiguousarray(a, np.uint8).tobytes()


def write_idx(folder: Path, x_tr, y_tr, x_te, y_te) -> Path:
    """The four standard IDX files (gzip-compressed) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, a in (
        ("train-images-idx3-ubyte", x_tr),
        ("train-labels-idx1-ubyte", y_tr),
        ("t10k-images-idx3-ubyte", x_te),
        ("t10k-labels-idx1-ubyte", y_te),
    ):
        (folder / f"{stem}.gz").write_bytes(gzip.compress(_idx_bytes(np.asarray(a, np.uint8))))
    return folder


def write_cifar10(folder: Path, x_tr, y_tr, x_te, y_te, names) -> Path:
    """A CIFAR-10 python-batches folder (5 data batches, test_batch, batches.meta) of
    32x32x3 images, pickled dicts of bytes keys as the official files are."""
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, x: np.ndarray, y: np.ndarray) -> None:
        data = np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072))
        d = {b"batch_label": name.encode(), b"labels": [int(v) for v in y], b"data": data}
        (folder / name).write_bytes(pickle.dumps(d, protocol=4))

    for i, part in enumerate(np.array_split(np.arange(len(y_tr)), 5), start=1):
        dump(f"data_batch_{i}", x_tr[part], y_tr[part])
    dump("test_batch", x_te, y_te)
    meta = {b"label_names": [n.encode() for n in names], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=4))
    return folder


def write_folder(folder: Path, x: np.ndarray, y: np.ndarray, names, suffix: str = ".png") -> Path:
    """``folder/<class name>/<i>.png`` with Pillow."""
    from PIL import Image

    for i, (im, k) in enumerate(zip(x, y, strict=True)):
        sub = folder / names[int(k)]
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(sub / f"{i:04d}{suffix}")
    return folder


SHAPES = ("disk", "square", "triangle", "cross", "ring")


def shapes(n_per_class: int, size: int = 32, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An RGB data set of 10 classes, harder than :func:`images`: 5 shapes (disk, square,
    triangle, cross, ring) x 2 colour families (warm, cool), at a random place, size and
    hue over a noisy background; uint8 ``(n, size, size, 3)``, labels shape·2 + colour."""
    rng = np.random.default_rng(seed)
    n = n_per_class * 2 * len(SHAPES)
    y = np.repeat(np.arange(2 * len(SHAPES)), n_per_class)
    x = rng.integers(0, 90, (n, size, size, 3)).astype(np.uint8)
    rr, cc = np.mgrid[0:size, 0:size]
    for i, k in enumerate(y):
        shape, warm = SHAPES[k // 2], k % 2 == 0
        r = rng.uniform(0.2, 0.35) * size
        cy, cx = rng.uniform(r, size - r, 2)
        dy, dx = (rr - cy) / r, (cc - cx) / r
        if shape == "disk":
            mask = dy**2 + dx**2 <= 1
        elif shape == "square":
            mask = (abs(dy) <= 0.8) & (abs(dx) <= 0.8)
        elif shape == "triangle":
            mask = (dy <= 0.8) & (dy >= -0.8) & (abs(dx) <= (dy + 0.8) / 1.6)
        elif shape == "cross":
            mask = ((abs(dy) <= 0.25) | (abs(dx) <= 0.25)) & (abs(dy) <= 1) & (abs(dx) <= 1)
        else:
            mask = (dy**2 + dx**2 <= 1) & (dy**2 + dx**2 >= 0.4)
        base = np.array([230, 120, 40] if warm else [40, 120, 230], float)
        colour = np.clip(base + rng.normal(0, 25, 3), 0, 255).astype(np.uint8)
        x[i][mask] = colour
    return x, y.astype(np.int64)
