"""Binary 2-D convolution on channel-packed NHWC activations.

Packed im2col + register-tiled XNOR-popcount GEMM (the dense core): for each image the
patches are gathered once into rows of ``kh * kw * Cw`` words (taps laid out as the
weights' ``(kh, kw, Cw)``), then every output pixel is a ±1 dot product
``n - 2 * popcount(patch XOR w)`` with ``n = kh * kw * C``.

Padding: ``'same'`` pads ``k // 2`` on every side, as torch's ``Conv2d(padding=k // 2)``,
so the output size is ``floor((H + 2 * (k // 2) - k) / stride) + 1``; ``'valid'`` pads
nothing; ``(top, bottom, left, right)`` pads as stated (TensorFlow's 'same' with strides 2
on an even input puts the odd pad pixel at the bottom / right). Pad pixels are +1 in
every channel (``pad_value=1``, larq's ``pad_values=1``): exact on the packed path.
``pad_value=0`` (zero padding) subtracts, for every out-of-bounds tap, that tap's
contribution against an all-+1 pixel, ``2 * popcount(w[o, tap]) - C``.
"""

from __future__ import annotations

import numbers

import numpy as np
from numba import njit, prange

from edgecl.kernels._check import check_count, check_words
from edgecl.kernels._threads import check_threads, num_threads
from edgecl.kernels.bits import WORD_DTYPE, tail_mask, unpack_bits
from edgecl.kernels.dense import _dense_parallel, dense_range
from edgecl.kernels.geometry import conv_out_size, conv_pads
from edgecl.kernels.outvec import SHORT_K, outvec_range
from edgecl.kernels.popcount import WORD_WIDE, get_strategy, popcount64

# Patch rows are padded with zero words to a multiple of this, so the vectorised inner
# loop of the GEMM has no scalar remainder (zero XOR zero counts nothing).
_K_ALIGN = 8
# Output channels handed to one parallel task of the output-vectorised GEMM (whole tiles).
_OUT_CHUNK = 64


@njit(cache=True, inline="always")
def im2col_row(x, img, oy, n_cols, kh, kw, stride, top, left, ones, buf, r0):
    """The patches of conv outputs ``(oy, 0 .. n_cols - 1)`` of image ``img`` into rows
    ``r0 ..`` of ``buf`` (taps in (dy, dx, c) order, as the weights; pads are ``ones``)."""
    H = x.shape[1]
    W = x.shape[2]
    cw = x.shape[3]
    for ox in range(n_cols):
        r = r0 + ox
        col = 0
        for dy in range(kh):
            iy = oy * stride - top + dy
            inside_y = 0 <= iy < H
            for dx in range(kw):
                ix = ox * stride - left + dx
                if inside_y and 0 <= ix < W:
                    for c in range(cw):
                        buf[r, col + c] = x[img, iy, ix, c]
                else:
                    for c in range(cw):
                        buf[r, col + c] = ones[c]
                col += cw


@njit(cache=True)
def _im2col(x, img, kh, kw, stride, top, left, ho, wo, ones, buf):
    """Gather the patches of image ``img`` into ``buf`` (ho * wo, Kp); pads are ``ones``."""
    for oy in range(ho):
        im2col_row(x, img, oy, wo, kh, kw, stride, top, left, ones, buf, oy * wo)


@njit(cache=True)
def _zero_pad_correction(out, img, wsum, kh, kw, stride, top, left, H, W):
    """Remove the contribution of out-of-bounds taps (pad_value=0) from ``out[img]``."""
    ho = out.shape[1]
    wo = out.shape[2]
    n_out = out.shape[3]
    for oy in range(ho):
        for ox in range(wo):
            for dy in range(kh):
                iy = oy * stride - top + dy
                for dx in range(kw):
                    ix = ox * stride - left + dx
                    if not (0 <= iy < H and 0 <= ix < W):
                        t = dy * kw + dx
                        for o in range(n_out):
                            out[img, oy, ox, o] -= wsum[o, t]


@njit(cache=True)
def _conv_serial(x, wmat, wsum, kh, kw, stride, top, left, nbits, zero_pad, ones, buf, out, token):
    ho = out.shape[1]
    wo = out.shape[2]
    for img in range(x.shape[0]):
        _im2col(x, img, kh, kw, stride, top, left, ho, wo, ones, buf)
        res = out[img].reshape((ho * wo, wmat.shape[0]))
        dense_range(buf, wmat, nbits, res, 0, wmat.shape[0], token)
        if zero_pad:
            _zero_pad_correction(out, img, wsum, kh, kw, stride, top, left, x.shape[1], x.shape[2])


@njit(cache=True)
def _conv_parallel(
    x, wmat, wsum, kh, kw, stride, top, left, nbits, zero_pad, ones, buf, out, token
):
    ho = out.shape[1]
    wo = out.shape[2]
    for img in range(x.shape[0]):
        _im2col(x, img, kh, kw, stride, top, left, ho, wo, ones, buf)
        _dense_parallel(buf, wmat, nbits, out[img].reshape((ho * wo, wmat.shape[0])), token)
        if zero_pad:
            _zero_pad_correction(out, img, wsum, kh, kw, stride, top, left, x.shape[1], x.shape[2])


@njit(cache=True, parallel=True)
def _outvec_parallel(buf, wt, nbits, res):
    n_out = wt.shape[1]
    n_chunks = (n_out + _OUT_CHUNK - 1) // _OUT_CHUNK
    for c in prange(n_chunks):
        o0 = c * _OUT_CHUNK
        outvec_range(buf, wt, nbits, res, o0, min(o0 + _OUT_CHUNK, n_out))


@njit(cache=True)
def _conv_outvec(x, wt, wsum, kh, kw, stride, top, left, nbits, zero_pad, ones, buf, out, parallel):
    """The conv with the output-vectorised GEMM (``wt`` the weights as (Kp, O) words)."""
    ho = out.shape[1]
    wo = out.shape[2]
    n_out = wt.shape[1]
    for img in range(x.shape[0]):
        _im2col(x, img, kh, kw, stride, top, left, ho, wo, ones, buf)
        res = out[img].reshape((ho * wo, n_out))
        if parallel:
            _outvec_parallel(buf, wt, nbits, res)
        else:
            outvec_range(buf, wt, nbits, res, 0, n_out)
        if zero_pad:
            _zero_pad_correction(out, img, wsum, kh, kw, stride, top, left, x.shape[1], x.shape[2])


@njit(cache=True)
def _tap_sums(w, n_channels):
    """``2 * popcount(w[o, tap]) - C``: tap ``tap``'s ±1 dot product with an all-+1 pixel."""
    n_out, kh, kw, cw = w.shape
    s = np.empty((n_out, kh * kw), np.int32)
    for o in range(n_out):
        for dy in range(kh):
            for dx in range(kw):
                a = np.uint64(0)
                for c in range(cw):
                    a += popcount64(w[o, dy, dx, c])
                s[o, dy * kw + dx] = 2 * np.int64(a) - n_channels
    return s


def check_kernel(w, n_channels, stride, padding, pad_value):
    """A binary conv's weights and options: ``(w, n_channels, stride, pads)`` with
    ``pads`` = (top, bottom, left, right) (:func:`conv_pads`)."""
    n_channels = check_count(n_channels, "n_channels")
    w = check_words(w, "w", (4,), n_channels, "(O, kh, kw, Cw) packed along channels")
    stride = check_count(stride, "stride")
    if isinstance(pad_value, bool) or not isinstance(pad_value, numbers.Real):
        raise TypeError(f"expected pad_value 1 or 0, got {pad_value!r}")
    if pad_value not in (0, 1):
        raise ValueError(f"expected pad_value 1 or 0, got {pad_value!r}")
    _, kh, kw, _ = w.shape
    if kh < 1 or kw < 1 or w.shape[0] < 1:
        raise ValueError(f"expected a kernel with O, kh, kw >= 1, got shape {w.shape}")
    return w, n_channels, stride, conv_pads(padding, kh, kw)


def _check_conv(x, w, n_channels, stride, padding, pad_value):
    n_channels = check_count(n_channels, "n_channels")
    x = check_words(x, "x", (4,), n_channels, "(N, H, W, Cw) packed along channels")
    w, n_channels, stride, pads = check_kernel(w, n_channels, stride, padding, pad_value)
    _, H, W, _ = x.shape
    _, kh, kw, _ = w.shape
    ho, wo = conv_out_size(H, W, kh, kw, stride, pads)
    if ho < 1 or wo < 1:
        raise ValueError(
            f"expected an input of at least ({kh - pads[0] - pads[1]}, "
            f"{kw - pads[2] - pads[3]}) pixels for a {kh}x{kw} kernel with padding "
            f"{padding!r}, got ({H}, {W})"
        )
    return x, w, n_channels, stride, pads, ho, wo


def binary_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    n_channels: int,
    *,
    stride: int = 1,
    padding: str | tuple[int, int, int, int] = "same",
    pad_value: int = 1,
    threads: int = 1,
) -> np.ndarray:
    """±1 convolution of channel-packed NHWC bits; returns ``int32`` (N, Ho, Wo, O).

    ``x`` (N, H, W, Cw) and ``w`` (O, kh, kw, Cw) are ``uint64`` words with
    ``Cw == n_words(n_channels)``. ``padding`` is ``'same'`` (``k // 2`` on every side, as
    torch), ``'valid'`` or ``(top, bottom, left, right)``; ``pad_value`` is 1 (pad pixels
    +1, exact) or 0 (zero padding, by a correction term). ``threads > 1`` splits output
    channels over Numba threads.
    """
    x, w, n_channels, stride, pads, ho, wo = _check_conv(
        x, w, n_channels, stride, padding, pad_value
    )
    return conv_words(x, w, n_channels, stride, pads, ho, wo, pad_value, check_threads(threads))


def conv_words(x, w, n_channels, stride, pads, ho, wo, pad_value, threads, strategy=None):
    """Checked-elsewhere core of :func:`binary_conv2d` (the arguments as ``_check_conv``
    returns them, ``pads`` = (top, bottom, left, right)); ``strategy`` a popcount strategy
    name (None: this CPU's). The cores index patches from the top-left pad and test every
    tap against the image bounds, so the bottom / right pads need no argument of their
    own: ``ho`` / ``wo`` (:func:`conv_out_size`) already carry them."""
    top, left = pads[0], pads[2]  # bottom / right are in ho / wo
    n_out, kh, kw, cw = w.shape
    k = kh * kw * cw
    kp = -(-k // _K_ALIGN) * _K_ALIGN
    wmat = np.zeros((n_out, kp), WORD_DTYPE)
    wmat[:, :k] = w.reshape(n_out, k)
    ones = np.full(cw, np.uint64(0xFFFFFFFFFFFFFFFF), WORD_DTYPE)
    ones[-1] = tail_mask(n_channels)
    zero_pad = pad_value == 0
    wsum = _tap_sums(w, n_channels) if zero_pad else np.zeros((n_out, kh * kw), np.int32)
    buf = np.zeros((ho * wo, kp), WORD_DTYPE)
    out = np.empty((x.shape[0], ho, wo, n_out), np.int32)
    nbits = kh * kw * n_channels
    strat = get_strategy(strategy)
    if strat.mode == WORD_WIDE and kp <= SHORT_K:
        # short patches with vpopcntq: vectorise across output channels instead of K
        wt = np.ascontiguousarray(wmat.T)
        args = (x, wt, wsum, kh, kw, stride, top, left, nbits, zero_pad, ones, buf, out)
        if threads == 1:
            _conv_outvec(*args, False)
        else:
            with num_threads(threads):
                _conv_outvec(*args, True)
        return out
    args = (x, wmat, wsum, kh, kw, stride, top, left, nbits, zero_pad, ones, buf, out, strat.token)
    if threads == 1:
        _conv_serial(*args)
    else:
        with num_threads(threads):
            _conv_parallel(*args)
    return out


def binary_conv2d_reference(
    x: np.ndarray,
    w: np.ndarray,
    n_channels: int,
    *,
    stride: int = 1,
    padding: str | tuple[int, int, int, int] = "same",
    pad_value: int = 1,
) -> np.ndarray:
    """NumPy twin of :func:`binary_conv2d`: unpack to ±1, pad, and sum taps in int64."""
    x, w, n_channels, stride, pads, ho, wo = _check_conv(
        x, w, n_channels, stride, padding, pad_value
    )
    top, bottom, left, right = pads
    xs = unpack_bits(x, n_channels).astype(np.int64) * 2 - 1
    ws = unpack_bits(w, n_channels).astype(np.int64) * 2 - 1
    xs = np.pad(xs, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=int(pad_value))
    n_out, kh, kw, _ = ws.shape
    out = np.zeros((x.shape[0], ho, wo, n_out), np.int64)
    for dy in range(kh):
        for dx in range(kw):
            patch = xs[
                :,
                dy : dy + stride * (ho - 1) + 1 : stride,
                dx : dx + stride * (wo - 1) + 1 : stride,
            ]
            out += patch @ ws[:, dy, dx, :].T
    return out.astype(np.int32)


__all__ = ["binary_conv2d", "binary_conv2d_reference", "conv_out_size", "conv_pads"]
