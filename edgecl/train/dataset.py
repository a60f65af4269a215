"""Torch views of the NumPy arrays from :mod:`edgecl.data` (which never imports torch)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from edgecl.data.splits import to_nchw

__all__ = ["ArrayDataset", "images_to_tensor", "remap_labels"]


def images_to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 images ``(n, H, W)`` / ``(n, H, W, C)`` / ``(n, C, H, W)`` (float32 raw pixel
    values 0..255 too) -> float32 tensor ``(n, C, H, W)`` of raw pixel values."""
    if isinstance(x, torch.Tensor):
        if x.dim() != 4:
            raise ValueError(f"expected a tensor of shape (n, C, H, W), got {tuple(x.shape)}")
        return x.float()
    a = np.asarray(x)
    if a.ndim == 3 or (a.ndim == 4 and a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3)):
        a = to_nchw(a)
    if a.ndim != 4:
        raise ValueError(
            f"expected images of shape (n, H, W), (n, H, W, C) or (n, C, H, W), got {a.shape}"
        )
    return torch.from_numpy(np.ascontiguousarray(a)).float()


def remap_labels(y: np.ndarray, classes: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """``(keep_mask, new_labels)``: the samples whose label is in ``classes`` and their
    labels as indices into ``classes`` (``classes=None`` keeps all, labels unchanged)."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"expected integer labels of shape (n,), got {y.dtype.name} {y.shape}")
    if classes is None:
        return np.ones(y.shape, bool), y.astype(np.int64)
    cls = [int(c) for c in classes]
    if not cls or len(set(cls)) != len(cls):
        raise ValueError(f"expected a non-empty list of distinct classes, got {list(classes)}")
    lut = {c: i for i, c in enumerate(cls)}
    keep = np.isin(y, np.asarray(cls))
    new = np.fromiter((lut[int(v)] for v in y[keep]), dtype=np.int64, count=int(keep.sum()))
    return keep, new


class ArrayDataset(torch.utils.data.Dataset):
    """A ``Dataset`` over images and labels held in memory, optionally restricted to
    ``classes`` (labels become indices into ``classes``). Items: ``(float image (C, H, W)
    of raw pixel values, int64 label)``; ``.x`` and ``.y`` are the whole tensors."""

    def __init__(
        self, x: np.ndarray, y: np.ndarray, *, classes: Sequence[int] | None = None
    ) -> None:
        y = np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"expected {len(y)} images to match the labels, got {len(x)}")
        keep, labels = remap_labels(y, classes)
        xa = x[keep] if classes is not None else x
        self.x = images_to_tensor(xa)
        self.y = torch.from_numpy(labels)
        self.classes = None if classes is None else [int(c) for c in classes]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]
