"""A binary dense layer and its threshold in one pass: the fused block
(:mod:`edgecl.kernels.block`) over a 1x1 image, and its NumPy twin."""

from __future__ import annotations

import numpy as np

from edgecl.kernels._check import check_count, check_words
from edgecl.kernels._threads import check_threads
from edgecl.kernels.block import prepare_block, run_block
from edgecl.kernels.dense import binary_dense_reference
from edgecl.kernels.threshold import threshold_reference

_I32 = np.iinfo(np.int32)

__all__ = ["binary_dense_threshold", "binary_dense_threshold_reference"]


def binary_dense_threshold(
    x_words: np.ndarray,
    w_words: np.ndarray,
    n: int,
    thresholds: np.ndarray,
    flip: np.ndarray,
    *,
    offset: int = 0,
    repeat: int = 1,
    threads: int = 1,
) -> np.ndarray:
    """``threshold(binary_dense(x, w, n) + offset, thresholds, flip)`` in one pass:
    packed (B, n_words(O * repeat))."""
    n = check_count(n, "n")
    x = check_words(x_words, "x_words", (2,), n, "(B, W)")
    w = check_words(w_words, "w_words", (2,), n, "(O, W)")
    blk = prepare_block(
        w[:, None, None, :], n, thresholds, flip, padding="valid", repeat=repeat, offset=offset
    )
    out = run_block(x[:, None, None, :], blk, threads=check_threads(threads))
    return out.reshape(x.shape[0], -1)


def binary_dense_threshold_reference(
    x_words: np.ndarray,
    w_words: np.ndarray,
    n: int,
    thresholds: np.ndarray,
    flip: np.ndarray,
    *,
    offset: int = 0,
    repeat: int = 1,
) -> np.ndarray:
    """NumPy twin of :func:`binary_dense_threshold`."""
    acc = binary_dense_reference(x_words, w_words, n).astype(np.int64) + int(offset)
    acc = acc if repeat == 1 else np.repeat(acc, repeat, axis=-1)
    if acc.size and (acc.min() < _I32.min or acc.max() > _I32.max):
        raise ValueError("expected accumulators within the int32 range")
    return threshold_reference(acc.astype(np.int32), thresholds, flip)
