"""The first layer in one pass: float convolution, BatchNorm+sign threshold and bit max-pool,
from float32 NHWC to packed bits (no im2col, no float feature map kept).

``conv2d_float -> threshold_float (repeat 1) [-> maxpool_bits]`` is what the exporter
emits for a float first layer (BN folded into per-channel thresholds, the pool moved after
the sign, where max-pooling {0,1} bits is an OR). The fused kernel computes each conv
output as the unfused program does (:func:`conv2d_float`): float64 sums of the float32
products, plus the bias, rounded to float32; then ``y >= t`` (``y <= t`` where flipped;
NaN gives 0) and ORs the bits of every pool window. Its NumPy twin is the unfused path,
:func:`conv_threshold_pool_reference` (:func:`conv2d_float`, then the reference threshold
and pool); tests compare them bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from edgecl.kernels.bits import WORD_DTYPE, n_words
from edgecl.kernels.block import gather_patch, tap_offsets
from edgecl.kernels.first_layer_gemm import fill_padded, first_layer_rows
from edgecl.kernels.pool import maxpool_bits_reference
from edgecl.kernels.threshold import threshold_float_reference

__all__ = [
    "TAIL_TAPS",
    "FirstLayer",
    "conv2d_float",
    "conv_threshold_pool",
    "conv_threshold_pool_reference",
    "default_pass_taps",
    "prepare_first_layer",
    "sum_thresholds",
]


#: Taps summed per pass: the last 3 with the threshold and the bit packing, the ones before
#: them 3 per pass over a float64 accumulator row (few enough broadcast patch values for
#: four outputs to stay in AVX2's 16 registers). A first layer's taps are padded with zero
#: taps to a multiple of 3 (0 * 0 adds nothing).
TAIL_TAPS = 3
#: A layer's taps are padded with zero taps to a multiple of 9: both cores (3 taps per
#: pass, or the register tiles of :mod:`edgecl.kernels.first_layer_gemm`,
#: :func:`default_pass_taps`) run on the same layout.
PAD_TAPS = 9
#: ``pass_taps`` that selects the register-tile core (all taps through register tiles).
WIDE_TAPS = 9


@njit(cache=True, fastmath={"contract"}, inline="always")
def _tail_word(acc, wk, k0, patch, p, bias, sgn, sthr, q0):
    """Bits ``q0..q0 + 63`` (one word) of ``sgn * float32(acc + the last 3 taps + bias) >=
    sthr`` for the conv output of ``patch[p]``: a reduction with no store and a fixed trip
    count, so LLVM vectorises it across channels (channels are padded to whole words)."""
    p0, p1, p2 = patch[p, k0], patch[p, k0 + 1], patch[p, k0 + 2]
    word = np.uint64(0)
    for t in range(64):
        q = q0 + t
        a = acc[p, q] + p0 * wk[k0, q] + p1 * wk[k0 + 1, q] + p2 * wk[k0 + 2, q]
        word |= np.uint64(sgn[q] * np.float32(a + bias[q]) >= sthr[q]) << np.uint64(t)
    return word


@njit(cache=True, fastmath={"contract"}, inline="always")
def _tail_sums4(acc, wk, k0, patch, p, q):
    """The four float64 sums of channel ``q`` for ``patch[p .. p + 3]``: accumulator plus
    the last 3 taps, in order."""
    w0, w1, w2 = wk[k0, q], wk[k0 + 1, q], wk[k0 + 2, q]
    sa = acc[p, q] + patch[p, k0] * w0 + patch[p, k0 + 1] * w1 + patch[p, k0 + 2] * w2
    sb = acc[p + 1, q] + patch[p + 1, k0] * w0 + patch[p + 1, k0 + 1] * w1
    sb = sb + patch[p + 1, k0 + 2] * w2
    sc = acc[p + 2, q] + patch[p + 2, k0] * w0 + patch[p + 2, k0 + 1] * w1
    sc = sc + patch[p + 2, k0 + 2] * w2
    sd = acc[p + 3, q] + patch[p + 3, k0] * w0 + patch[p + 3, k0 + 1] * w1
    sd = sd + patch[p + 3, k0 + 2] * w2
    return sa, sb, sc, sd


@njit(cache=True, fastmath={"contract"}, inline="always")
def _tail_word4(acc, wk, k0, patch, p, bias, sgn, sthr, q0):
    """:func:`_tail_word` for the outputs of ``patch[p .. p + 3]`` at once, ORed: four
    independent sums per channel (each in the same order as alone) share the weight
    loads and hide the FMA latency."""
    word = np.uint64(0)
    for t in range(64):
        q = q0 + t
        sa, sb, sc, sd = _tail_sums4(acc, wk, k0, patch, p, q)
        g, t0, bq = sgn[q], sthr[q], bias[q]
        hit = (g * np.float32(sa + bq) >= t0) | (g * np.float32(sb + bq) >= t0)
        hit |= (g * np.float32(sc + bq) >= t0) | (g * np.float32(sd + bq) >= t0)
        word |= np.uint64(hit) << np.uint64(t)
    return word


@njit(cache=True, fastmath={"contract"}, inline="always")
def _tail_words4(acc, wk, k0, patch, p, bias, sgn, sthr, q0):
    """:func:`_tail_word4` with the four words kept apart (four conv outputs, no pool)."""
    wa = np.uint64(0)
    wb = np.uint64(0)
    wc = np.uint64(0)
    wd = np.uint64(0)
    for t in range(64):
        q = q0 + t
        sa, sb, sc, sd = _tail_sums4(acc, wk, k0, patch, p, q)
        g, t0, bq = sgn[q], sthr[q], bias[q]
        sh = np.uint64(t)
        wa |= np.uint64(g * np.float32(sa + bq) >= t0) << sh
        wb |= np.uint64(g * np.float32(sb + bq) >= t0) << sh
        wc |= np.uint64(g * np.float32(sc + bq) >= t0) << sh
        wd |= np.uint64(g * np.float32(sd + bq) >= t0) << sh
    return wa, wb, wc, wd


@njit(cache=True, fastmath={"contract"}, inline="always")
def _head3(acc, wk, k0, patch, p):
    """``acc[p, q] += patch[p, k] * wk[k, q]`` for the 3 taps ``k0 .. k0 + 2``, k in order
    (one pass over the accumulator row for 3 taps: the same sums as tap by tap)."""
    a0, a1, a2 = patch[p, k0], patch[p, k0 + 1], patch[p, k0 + 2]
    for q in range(wk.shape[1]):
        acc[p, q] = acc[p, q] + a0 * wk[k0, q] + a1 * wk[k0 + 1, q] + a2 * wk[k0 + 2, q]


@njit(cache=True, fastmath={"contract"}, inline="always")
def _head3x4(acc, wk, k0, patch, p):
    """``acc[p + i, q] += patch[p + i, k] * wk[k, q]`` for the 3 taps ``k0 .. k0 + 2`` and
    the four outputs ``i < 4``, k in order."""
    a0, a1, a2 = patch[p, k0], patch[p, k0 + 1], patch[p, k0 + 2]
    b0, b1, b2 = patch[p + 1, k0], patch[p + 1, k0 + 1], patch[p + 1, k0 + 2]
    c0, c1, c2 = patch[p + 2, k0], patch[p + 2, k0 + 1], patch[p + 2, k0 + 2]
    d0, d1, d2 = patch[p + 3, k0], patch[p + 3, k0 + 1], patch[p + 3, k0 + 2]
    for q in range(wk.shape[1]):
        w0, w1, w2 = wk[k0, q], wk[k0 + 1, q], wk[k0 + 2, q]
        acc[p, q] = acc[p, q] + a0 * w0 + a1 * w1 + a2 * w2
        acc[p + 1, q] = acc[p + 1, q] + b0 * w0 + b1 * w1 + b2 * w2
        acc[p + 2, q] = acc[p + 2, q] + c0 * w0 + c1 * w1 + c2 * w2
        acc[p + 3, q] = acc[p + 3, q] + d0 * w0 + d1 * w1 + d2 * w2


@njit(cache=True, fastmath={"contract"}, inline="always")
def _heads(acc, wk, head, patch, m):
    """The accumulators of ``patch[0 .. m - 1]``: their first ``head`` taps (a multiple of
    TAIL_TAPS), summed in order from 0.0, four outputs at a time."""
    for p in range(m):
        for q in range(wk.shape[1]):
            acc[p, q] = 0.0
    p = 0
    while p + 4 <= m:
        for k0 in range(0, head, TAIL_TAPS):
            _head3x4(acc, wk, k0, patch, p)
        p += 4
    while p < m:
        for k0 in range(0, head, TAIL_TAPS):
            _head3(acc, wk, k0, patch, p)
        p += 1


@njit(cache=True, fastmath={"contract"})
def _conv_thr_pool(x, wk, kh, kw, bias, pads, stride, pad_value, sgn, sthr, pool, pstride, out):
    """For each pooled output and each conv output of its ``win x win`` window (without a
    pool: for every four conv outputs of a row): the patch (k in (di, dj, c) order, from the
    image padded once with ``pad_value``), then ``sum_k patch[k] * wk[k, q]`` in float64, k
    in order (each float32 x float32 product is exact in float64, so contracting it into an
    FMA rounds exactly as a multiply then an add), ``y = float32(sum + bias)``, and the bits
    ``sgn * y >= sthr`` (ORed over the pool window) into packed words. Four conv outputs
    share every weight load, the channels are the vector lanes."""
    n, h, wd, c = x.shape
    n_k, o = wk.shape
    head = n_k - TAIL_TAPS
    top, bottom, left, right = pads
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_pix = win * win if pool > 0 else 4
    hp, wp = h + top + bottom, wd + left + right
    xp = np.full(hp * wp * c, pad_value, np.float64)  # one padded image, flat
    offs = tap_offsets(kh, kw, wp, c)
    patch = np.zeros((n_pix, n_k), np.float64)  # taps past kh * kw * c stay 0
    acc = np.zeros((n_pix, o), np.float64)
    for s in range(n):
        fill_padded(xp, x, s, top, left, wp)
        for pi in range(out.shape[1]):
            if pool == 0:
                pj = 0
                while pj < out.shape[2]:
                    m = min(4, out.shape[2] - pj)
                    for p in range(m):
                        corner = (pi * stride * wp + (pj + p) * stride) * c
                        gather_patch(patch, p, xp, corner, offs, kh * kw * c)
                    _heads(acc, wk, head, patch, m)
                    for kk in range(out.shape[3]):
                        if m == 4:
                            w0, w1, w2, w3 = _tail_words4(
                                acc, wk, head, patch, 0, bias, sgn, sthr, kk * 64
                            )
                            out[s, pi, pj, kk] = w0
                            out[s, pi, pj + 1, kk] = w1
                            out[s, pi, pj + 2, kk] = w2
                            out[s, pi, pj + 3, kk] = w3
                        else:
                            for p in range(m):
                                out[s, pi, pj + p, kk] = _tail_word(
                                    acc, wk, head, patch, p, bias, sgn, sthr, kk * 64
                                )
                    pj += m
                continue
            for pj in range(out.shape[2]):
                for p in range(n_pix):
                    i = (pi * step + p // win) * stride
                    j = (pj * step + p % win) * stride
                    gather_patch(patch, p, xp, (i * wp + j) * c, offs, kh * kw * c)
                _heads(acc, wk, head, patch, n_pix)
                for kk in range(out.shape[3]):
                    word = np.uint64(0)
                    p = 0
                    while p + 4 <= n_pix:
                        word |= _tail_word4(acc, wk, head, patch, p, bias, sgn, sthr, kk * 64)
                        p += 4
                    while p < n_pix:
                        word |= _tail_word(acc, wk, head, patch, p, bias, sgn, sthr, kk * 64)
                        p += 1
                    out[s, pi, pj, kk] = word


def conv2d_float(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    stride: int = 1,
    pad_value: float = 0.0,
) -> np.ndarray:
    """Float conv on NHWC float32 ``x`` with ``weight`` (O, kh, kw, C): float64 sums of the
    products, plus ``bias`` (O,), rounded to float32 (N, Ho, Wo, O). ``pads`` are (top,
    bottom, left, right), filled with ``pad_value``. NumPy (im2col and one matmul): the
    layer program's float conv and the twin's."""
    o, kh, kw, c = weight.shape
    top, bottom, left, right = pads
    s = int(stride)
    if top or bottom or left or right:
        x = np.pad(
            x,
            ((0, 0), (top, bottom), (left, right), (0, 0)),
            constant_values=np.float32(pad_value),
        )
    n, hp, wp, _ = x.shape
    ho, wo = (hp - kh) // s + 1, (wp - kw) // s + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    win = win[:, : s * (ho - 1) + 1 : s, : s * (wo - 1) + 1 : s]  # (N, Ho, Wo, C, kh, kw)
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * c)
    y = cols.astype(np.float64) @ weight.reshape(o, kh * kw * c).T.astype(np.float64)
    if bias is not None:
        y += bias
    return y.astype(np.float32).reshape(n, ho, wo, o)


@dataclass(frozen=True)
class FirstLayer:
    """The constants of one fused first layer, laid out once (:func:`prepare_first_layer`).

    ``wk``: weights as (kh * kw * C rounded up to a multiple of PAD_TAPS, O64) float64,
    taps in (di, dj, c) order, zero taps appended and the outputs padded to whole words
    with zero weights; ``bias`` (O64,) float64; ``sgn``/``sthr``: ``sgn * y >= sthr`` is
    the bit (padded outputs: threshold +inf, bit 0); ``pass_taps``: taps per pass, 3 or 9
    (:func:`default_pass_taps`); ``wk_signed``: ``wk`` times each output's ``sgn`` and
    ``sum_thr``: :func:`sum_thresholds`, ``wk_signed32`` the same weights in float32 and
    ``wk_l1`` (O64,) each channel's ``sum |w|`` (the register tiles' constants; None with 3
    taps per pass)."""

    wk: np.ndarray
    bias: np.ndarray
    sgn: np.ndarray
    sthr: np.ndarray
    kh: int
    kw: int
    n_channels: int
    n_out: int
    pads: tuple[int, int, int, int]
    stride: int
    pad_value: float
    pool: int
    pool_stride: int
    pass_taps: int = TAIL_TAPS
    wk_signed: np.ndarray | None = None
    sum_thr: np.ndarray | None = None
    wk_signed32: np.ndarray | None = None
    wk_l1: np.ndarray | None = None

    def out_shape(self, h: int, w: int) -> tuple[int, int, int]:
        """(Ho, Wo, n_words(O)) of the fused layer on an (h, w) input."""
        top, bottom, left, right = self.pads
        ho = (h + top + bottom - self.kh) // self.stride + 1
        wo = (w + left + right - self.kw) // self.stride + 1
        if ho < 1 or wo < 1:
            raise ValueError(
                f"expected an input large enough for a {self.kh}x{self.kw} kernel, got ({h}, {w})"
            )
        if self.pool:
            if ho < self.pool or wo < self.pool:
                raise ValueError(
                    f"expected a conv output of at least ({self.pool}, {self.pool}) pixels for "
                    f"pool={self.pool}, got ({ho}, {wo})"
                )
            ho = (ho - self.pool) // self.pool_stride + 1
            wo = (wo - self.pool) // self.pool_stride + 1
        return ho, wo, n_words(self.n_out)


def default_pass_taps() -> int:
    """Taps per pass by default: 9, the register tiles of
    :mod:`edgecl.kernels.first_layer_gemm` on every target (float32 tiles of 4 patches x
    64 channels with AVX-512, 4 x 16 with AVX2's 16 registers), measured faster than 3 taps
    per pass on both (MNIST's first layer: 36 -> 10 us with AVX-512, 39 -> 16 us with
    AVX2). 3 stays selectable: the bits are the same."""
    return WIDE_TAPS


def _ordered(v: np.ndarray) -> np.ndarray:
    """float64 (no NaN) as uint64 keys in the same order (-0.0 just below +0.0)."""
    bits = v.view(np.uint64)
    return np.where(bits >> np.uint64(63), ~bits, bits | np.uint64(1 << 63))


def _from_ordered(k: np.ndarray) -> np.ndarray:
    bits = np.where(k >> np.uint64(63), k & np.uint64((1 << 63) - 1), ~k)
    return bits.view(np.float64)


def _fires(s: np.ndarray, bias: np.ndarray, sthr: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return (s + bias).astype(np.float32) >= sthr


def sum_thresholds(bias: np.ndarray, sthr: np.ndarray) -> np.ndarray | None:
    """Per channel the least float64 sum ``m`` with ``float32(m + bias) >= sthr`` (float64
    ``bias``, float32 ``sthr``): float64 addition and the float32 rounding are monotone, so
    the bit is ``sum >= m`` for every sum, NaN included (its compare is false), and a pool
    window's bit is ``any(sum >= m)``. ``m`` is found by bisection over the float64 values
    in order (NaN: no sum fires). None where a channel's bit is not of that form (a bias
    of -inf: ``+inf + -inf`` is NaN); checked at the infinities, around zero and at ``m``."""
    b = np.asarray(bias, np.float64)
    t = np.asarray(sthr, np.float32)
    inf = np.full(len(b), np.inf)
    lo, hi = _ordered(-inf), _ordered(inf)  # fires(hi) wherever any sum fires
    never = ~_fires(inf, b, t)
    for _ in range(64):
        mid = lo + (hi - lo) // np.uint64(2)
        up = _fires(_from_ordered(mid), b, t)
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    m = np.where(_fires(-inf, b, t), -np.inf, _from_ordered(hi))
    m[never] = np.nan
    big = np.finfo(np.float64).max
    probes = [-inf, inf, -big * (inf > 0), big * (inf > 0), -0.0 * (inf > 0), 0.0 * (inf > 0)]
    probes += [m, np.where(np.isfinite(m), np.nextafter(m, -np.inf), m)]
    with np.errstate(invalid="ignore"):
        if any((_fires(s, b, t) != (s >= m)).any() for s in probes):
            return None
    return m


def _check_layer(weight, bias, thresholds, flip, pads, stride, pool, pool_stride):
    w = np.asarray(weight)
    if w.ndim != 4 or w.dtype != np.float32:
        raise ValueError(f"expected a float32 weight (O, kh, kw, C), got {w.dtype} {w.shape}")
    o = w.shape[0]
    for name, a, dtype in (
        ("bias", bias, np.float32),
        ("thresholds", thresholds, np.float32),
        ("flip", flip, np.bool_),
    ):
        if a is not None and (np.asarray(a).dtype != dtype or np.asarray(a).shape != (o,)):
            a = np.asarray(a)
            raise ValueError(f"expected {name} {np.dtype(dtype)} ({o},), got {a.dtype} {a.shape}")
    if len(pads) != 4 or any(int(p) < 0 for p in pads):
        raise ValueError(f"expected 4 pads >= 0 (top, bottom, left, right), got {pads!r}")
    if int(stride) < 1 or int(pool) < 0 or int(pool_stride) < 1:
        raise ValueError(
            "expected stride >= 1, pool >= 0 and pool_stride >= 1, got "
            f"{stride}, {pool}, {pool_stride}"
        )
    return w


def prepare_first_layer(
    weight: np.ndarray,
    bias: np.ndarray | None,
    thresholds: np.ndarray,
    flip: np.ndarray,
    *,
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    stride: int = 1,
    pad_value: float = 0.0,
    pool: int = 0,
    pool_stride: int = 1,
    pass_taps: int | None = None,
) -> FirstLayer:
    """Check the layer's arrays and lay them out for :func:`conv_threshold_pool` (once).

    ``weight`` (O, kh, kw, C) float32, ``bias`` (O,) float32 or None, ``thresholds``
    (O,) float32 and ``flip`` (O,) bool (the bit is ``y >= t``, ``y <= t`` where
    flipped); ``pool`` 0 means no pooling; ``pass_taps`` 3 or 9 (None:
    :func:`default_pass_taps`; the bits are the same either way; 9 becomes 3 where a
    bias of -inf leaves no :func:`sum_thresholds`)."""
    ptaps = default_pass_taps() if pass_taps is None else pass_taps
    if ptaps not in (3, 9) or isinstance(ptaps, bool):
        raise ValueError(f"expected pass_taps 3 or 9 (or None), got {pass_taps!r}")
    w = _check_layer(weight, bias, thresholds, flip, pads, stride, pool, pool_stride)
    o, kh, kw, c = w.shape
    n_k = kh * kw * c
    # taps: zero taps appended up to TAIL_TAPS; channels: padded to whole words with
    # zero weights, zero bias and threshold +inf (their bits stay 0)
    o64 = n_words(o) * 64
    wk = np.zeros((-(-n_k // PAD_TAPS) * PAD_TAPS, o64), np.float64)
    wk[:n_k, :o] = w.transpose(1, 2, 3, 0).reshape(n_k, o)
    b = np.zeros(o64, np.float64)
    if bias is not None:
        b[:o] = bias
    # y <= t  <=>  -y >= -t exactly (IEEE negation); NaN compares false either way
    flip = np.asarray(flip, np.bool_)
    t = np.asarray(thresholds, np.float32)
    sgn = np.ones(o64, np.float32)
    sgn[:o] = np.where(flip, np.float32(-1), np.float32(1))
    sthr = np.full(o64, np.inf, np.float32)
    sthr[:o] = np.where(flip, -t, t)
    signs = sgn.astype(np.float64)
    sum_thr = sum_thresholds(b * signs, sthr) if ptaps == WIDE_TAPS else None
    if sum_thr is None:
        ptaps = TAIL_TAPS  # a bias of -inf: the bit is not a compare of the sum
    wide = ptaps == WIDE_TAPS
    wk_signed = wk * signs if wide else None
    return FirstLayer(
        wk=wk,
        bias=b,
        sgn=sgn,
        sthr=sthr,
        kh=kh,
        kw=kw,
        n_channels=c,
        n_out=o,
        pads=tuple(int(p) for p in pads),  # type: ignore[arg-type]
        stride=int(stride),
        pad_value=float(pad_value),
        pool=int(pool),
        pool_stride=int(pool_stride),
        pass_taps=ptaps,
        wk_signed=wk_signed,
        sum_thr=sum_thr,
        wk_signed32=wk_signed.astype(np.float32) if wide else None,
        wk_l1=np.abs(wk_signed).sum(axis=0) if wide else None,
    )


def conv_threshold_pool(x: np.ndarray, layer: FirstLayer) -> np.ndarray:
    """The fused ``conv2d_float -> threshold_float [-> maxpool_bits]`` on NHWC float32 ``x``
    (N, H, W, C): packed bits (N, Ho, Wo, n_words(O)). ``x`` is never modified."""
    if x.ndim != 4 or x.shape[3] != layer.n_channels:
        raise ValueError(f"expected (N, H, W, {layer.n_channels}) samples, got {x.shape}")
    oh, ow, ow_words = layer.out_shape(x.shape[1], x.shape[2])
    out = np.empty((x.shape[0], oh, ow, ow_words), WORD_DTYPE)
    xc = np.ascontiguousarray(x, np.float32)
    geom = (layer.kh, layer.kw, layer.pads, layer.stride, layer.pad_value)
    if layer.pass_taps == WIDE_TAPS:
        first_layer_rows(
            xc,
            layer.wk_signed32,
            layer.wk_signed,
            layer.wk_l1,
            layer.sum_thr,
            *geom,
            layer.pool,
            layer.pool_stride,
            out,
        )
        return out
    _conv_thr_pool(
        xc,
        layer.wk,
        layer.kh,
        layer.kw,
        layer.bias,
        layer.pads,
        layer.stride,
        layer.pad_value,
        layer.sgn,
        layer.sthr,
        layer.pool,
        layer.pool_stride,
        out,
    )
    return out


def conv_threshold_pool_reference(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    thresholds: np.ndarray,
    flip: np.ndarray,
    *,
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    stride: int = 1,
    pad_value: float = 0.0,
    pool: int = 0,
    pool_stride: int = 1,
) -> np.ndarray:
    """NumPy twin of :func:`conv_threshold_pool` (arguments as :func:`prepare_first_layer`):
    :func:`conv2d_float`, the reference threshold, the reference bit pool."""
    _check_layer(weight, bias, thresholds, flip, pads, stride, pool, pool_stride)
    y = conv2d_float(
        np.asarray(x, np.float32), weight, bias, pads=pads, stride=stride, pad_value=pad_value
    )
    bits = threshold_float_reference(y, thresholds, flip)
    return bits if not pool else maxpool_bits_reference(bits, size=pool, stride=pool_stride)
