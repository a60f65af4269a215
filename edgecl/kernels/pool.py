"""Max pooling: on packed ±1 or {0,1} bits it is the OR of words; a float twin for float layers.

Both take NHWC and give torch's ``MaxPool2d(size, stride)`` output size,
``floor((H - size) / stride) + 1`` (no padding). OR keeps zero tail bits zero.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels._check import check_count, check_float32, check_words


@njit(cache=True)
def _maxpool_bits_core(x, size, stride, out):
    n_img, ho, wo, cw = out.shape
    for i in range(n_img):
        for oy in range(ho):
            for ox in range(wo):
                for c in range(cw):
                    out[i, oy, ox, c] = x[i, oy * stride, ox * stride, c]
                for dy in range(size):
                    for dx in range(size):
                        iy = oy * stride + dy
                        ix = ox * stride + dx
                        for c in range(cw):
                            out[i, oy, ox, c] |= x[i, iy, ix, c]


@njit(cache=True)
def _maxpool_float_core(x, size, stride, out):
    n_img, ho, wo, n_ch = out.shape
    for i in range(n_img):
        for oy in range(ho):
            for ox in range(wo):
                for c in range(n_ch):
                    out[i, oy, ox, c] = x[i, oy * stride, ox * stride, c]
                for dy in range(size):
                    for dx in range(size):
                        iy = oy * stride + dy
                        ix = ox * stride + dx
                        for c in range(n_ch):
                            v = x[i, iy, ix, c]
                            # NaN propagates, as torch's max pooling
                            if v > out[i, oy, ox, c] or v != v:
                                out[i, oy, ox, c] = v


def _out_size(shape, size, stride):
    size = check_count(size, "size")
    stride = check_count(stride, "stride")
    _, H, W, _ = shape
    if H < size or W < size:
        raise ValueError(
            f"expected an input of at least ({size}, {size}) pixels for size={size}, got ({H}, {W})"
        )
    return size, stride, (H - size) // stride + 1, (W - size) // stride + 1


def maxpool_bits(x_words: np.ndarray, *, size: int = 2, stride: int = 2) -> np.ndarray:
    """Max pooling of packed NHWC bits (N, H, W, Cw): the OR of the words in each window."""
    x = check_words(x_words, "x_words", (4,), None, "(N, H, W, Cw)")
    size, stride, ho, wo = _out_size(x.shape, size, stride)
    out = np.empty((x.shape[0], ho, wo, x.shape[3]), x.dtype)
    _maxpool_bits_core(x, size, stride, out)
    return out


def maxpool_bits_reference(x_words: np.ndarray, *, size: int = 2, stride: int = 2) -> np.ndarray:
    """NumPy twin of :func:`maxpool_bits`."""
    x = check_words(x_words, "x_words", (4,), None, "(N, H, W, Cw)")
    size, stride, ho, wo = _out_size(x.shape, size, stride)
    out = np.zeros((x.shape[0], ho, wo, x.shape[3]), x.dtype)
    for dy in range(size):
        for dx in range(size):
            out |= x[
                :,
                dy : dy + stride * (ho - 1) + 1 : stride,
                dx : dx + stride * (wo - 1) + 1 : stride,
            ]
    return out


def maxpool2d(x: np.ndarray, *, size: int = 2, stride: int = 2) -> np.ndarray:
    """Max pooling of float32 NHWC data, as torch's ``MaxPool2d(size, stride)``."""
    x = check_float32(x, "x", (4,), "(N, H, W, C)")
    size, stride, ho, wo = _out_size(x.shape, size, stride)
    out = np.empty((x.shape[0], ho, wo, x.shape[3]), np.float32)
    _maxpool_float_core(x, size, stride, out)
    return out


def maxpool2d_reference(x: np.ndarray, *, size: int = 2, stride: int = 2) -> np.ndarray:
    """NumPy twin of :func:`maxpool2d`."""
    x = check_float32(x, "x", (4,), "(N, H, W, C)")
    size, stride, ho, wo = _out_size(x.shape, size, stride)
    out = np.full((x.shape[0], ho, wo, x.shape[3]), -np.inf, np.float32)
    for dy in range(size):
        for dx in range(size):
            win = x[
                :,
                dy : dy + stride * (ho - 1) + 1 : stride,
                dx : dx + stride * (wo - 1) + 1 : stride,
            ]
            out = np.maximum(out, win)
    return out


__all__ = ["maxpool2d", "maxpool2d_reference", "maxpool_bits", "maxpool_bits_reference"]
