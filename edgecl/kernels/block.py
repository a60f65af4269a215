"""A binary layer in one pass: XNOR-popcount convolution, BatchNorm+sign threshold and bit
max-pool, from packed bits to packed bits (no int32 feature map, no im2col buffer).

``binary_conv2d -> threshold [-> maxpool_bits]`` is what the exporter emits for every
binary conv block (BN folded into per-channel integer thresholds, the pool moved after
the sign, where max-pooling bits is an OR). A binary dense layer followed by its
threshold is the same product over a 1x1 image (:mod:`edgecl.kernels.dense_block`).

The kernel walks output pixels; for each it adds, tap by tap and word by word,
``popcount(x_word XOR w[tap, word, o])`` for every output channel ``o`` at once (the
weights transposed to ``(kh, kw, Cw, O)``: LLVM vectorises the XOR + ``ctpop`` across
channels; on AVX2 / NEON byte accumulators stay in registers across the patch,
:mod:`edgecl.kernels.fused_bytes`). Pad taps: +1 padding adds the tap's precomputed
count against an all-+1 pixel; zero padding skips the tap and counts it out of ``n``
(``dot = n_in - 2 * popcount``, ``n_in`` the bits of the taps inside), both exact.
Then ``bit = acc >= thr`` (``acc <= thr`` where ``flip``), ORed over the pool window,
packed 64 channels to a word. Its NumPy twin is the three reference kernels in a
row (:func:`binary_conv_threshold_pool_reference`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit, prange, types
from numba.core import errors
from numba.core.extending import overload

from edgecl.kernels._check import check_count
from edgecl.kernels._threads import check_threads, num_threads
from edgecl.kernels.bits import WORD_DTYPE, n_words, tail_mask
from edgecl.kernels.block_gemm import gemm_block_parallel, gemm_block_serial, padded_ranges
from edgecl.kernels.conv import _check_conv, binary_conv2d_reference, check_kernel, conv_out_size
from edgecl.kernels.fused_bytes import (
    count_ranges,
    fast_input,
    fast_row_bytes,
    gather_patch,
    ge_form,
    nibble_split,
    pad_counts,
    pixel_counts_bytes,
    tap_offsets,  # (the first layer's kernels import it from here)
)
from edgecl.kernels.pool import _out_size, maxpool_bits_reference
from edgecl.kernels.popcount import (
    WORD_WIDE,
    get_strategy,
    numba_target,
    popcount64,
    token_mode,
)
from edgecl.kernels.threshold import _check_flip, check_int_thresholds, threshold_reference
from edgecl.kernels.wordvec import BYTE_STEPS

_I32 = np.iinfo(np.int32)


@dataclass(frozen=True)
class BinaryBlock:
    """The constants of one fused binary layer, prepared once (:func:`prepare_block`).

    ``wt``: weights as ``(kh, kw, Cw, O)`` words; ``pad_pc``: popcount of each tap against
    an all-+1 pixel ``(kh * kw, O)``, what a +1 pad tap adds; ``sgn``/``sthr``:
    ``sgn * acc >= sthr`` is the bit, over ``O * repeat`` output channels (``acc`` of
    channel ``q // repeat``).
    """

    wt: np.ndarray
    pad_pc: np.ndarray
    sgn: np.ndarray
    sthr: np.ndarray
    #: the one-padded fast path (None with zero padding, repeat > 1 or more than
    #: FAST_WORDS patch words): weights as
    #: (max(kh * kw * Cw, 9), O64) words for the word cores (None past 2 * TAIL_WORDS
    #: patch words, which only the byte cores take), sgn/sthr padded to whole words of
    #: outputs, the +1 pad words, and the byte cores' weights, whole and in nibbles
    #: (``nibble_split``), and count ranges ``lo``/``width``, all in ``ge_form``
    fast: tuple | None
    #: an all-+1 pixel's words (the last one's tail bits 0): what a +1 pad tap reads
    ones: np.ndarray
    n_channels: int
    n_out: int
    repeat: int
    stride: int
    #: (top, bottom, left, right) pad pixels
    pads: tuple[int, int, int, int]
    zero_pad: bool
    pool: int
    pool_stride: int


@njit(cache=True, inline="always")
def _pixel(x, img, oy, ox, wt, pad_pc, geom, acc):
    """``acc[o]`` = popcount of the XOR over the taps counted; returns how many taps count."""
    _, _, stride, top, left, zero_pad, _, _ = geom
    H = x.shape[1]
    W = x.shape[2]
    kh, kw, cw, n_out = wt.shape
    for o in range(n_out):
        acc[o] = 0
    taps = 0
    for dy in range(kh):
        iy = oy * stride - top + dy
        for dx in range(kw):
            ix = ox * stride - left + dx
            if 0 <= iy < H and 0 <= ix < W:
                for c in range(cw):
                    xv = x[img, iy, ix, c]
                    for o in range(n_out):
                        acc[o] += popcount64(xv ^ wt[dy, dx, c, o])
                taps += 1
            elif not zero_pad:
                t = dy * kw + dx
                for o in range(n_out):
                    acc[o] += pad_pc[t, o]
                taps += 1
    return taps


def pixel_counts(x, img, oy, ox, wt, pad_pc, geom, acc, token):
    """``_pixel`` or its byte twin, by ``token``'s strategy (at compile time; @njit only)."""
    raise TypeError("pixel_counts is only callable from @njit code")


@overload(pixel_counts, jit_options={"cache": True})
def _pixel_counts_impl(x, img, oy, ox, wt, pad_pc, geom, acc, token):
    if not isinstance(token, types.BaseTuple):
        raise errors.TypingError(f"expected a popcount strategy token (a tuple), got {token}")
    lanes = token_mode(token)
    if lanes > 0:

        def impl(x, img, oy, ox, wt, pad_pc, geom, acc, token):
            return pixel_counts_bytes(x, img, oy, ox, wt, pad_pc, geom, acc, lanes)

    else:

        def impl(x, img, oy, ox, wt, pad_pc, geom, acc, token):
            return _pixel(x, img, oy, ox, wt, pad_pc, geom, acc)

    return impl


@njit(cache=True, inline="always")
def _block_row(x, r, consts, geom, out, acc, dots, hit, token):
    """Output row ``r`` (image ``r // Po``, pooled row ``r % Po``) of the fused block.

    ``consts`` = ``(wt, pad_pc, sgn, sthr)``; ``geom`` = ``(n_channels, repeat, stride,
    top, left, zero_pad, pool, pool_stride)`` (the pads above / left of the image: taps
    are tested against the image's bounds, so the bottom / right pads only size ``out``);
    ``acc``, ``dots``, ``hit``: work arrays."""
    wt, pad_pc, sgn, sthr = consts
    n_ch, repeat, _, _, _, _, pool, pstride = geom
    po = out.shape[1]
    img = r // po
    py = r % po
    n_out = wt.shape[3]
    n_bits = n_out * repeat
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    for px in range(out.shape[2]):
        for q in range(n_bits):
            hit[q] = 0
        for a in range(win):
            for b in range(win):
                taps = pixel_counts(
                    x, img, py * step + a, px * step + b, wt, pad_pc, geom, acc, token
                )
                n_in = np.int64(taps * n_ch)
                if repeat == 1:
                    for q in range(n_bits):
                        dot = n_in - 2 * np.int64(acc[q])
                        hit[q] |= np.uint8(sgn[q] * dot >= sthr[q])
                else:
                    for o in range(n_out):
                        dots[o] = n_in - 2 * np.int64(acc[o])
                    for q in range(n_bits):
                        hit[q] |= np.uint8(sgn[q] * dots[q // repeat] >= sthr[q])
        for k in range(out.shape[3]):
            word = np.uint64(0)
            c0 = k * 64
            for q in range(c0, min(n_bits, c0 + 64)):
                word |= np.uint64(hit[q]) << np.uint64(q - c0)
            out[img, py, px, k] = word


@njit(cache=True)
def _work_arrays(n_out, repeat):
    return np.empty(n_out, np.uint64), np.empty(n_out, np.int64), np.empty(n_out * repeat, np.uint8)


@njit(cache=True)
def _block_serial(x, consts, geom, out, token):
    acc, dots, hit = _work_arrays(consts[0].shape[3], geom[1])
    for r in range(out.shape[0] * out.shape[1]):
        _block_row(x, r, consts, geom, out, acc, dots, hit, token)


@njit(cache=True, parallel=True)
def _block_parallel(x, consts, geom, out, token):
    for r in prange(out.shape[0] * out.shape[1]):
        acc, dots, hit = _work_arrays(consts[0].shape[3], geom[1])
        _block_row(x, r, consts, geom, out, acc, dots, hit, token)


#: Most bytes of nibble weights the byte cores' fast path takes (half a 48 KiB L1).
NIBBLE_BYTES = 24 * 1024

#: Patch words summed (with the threshold and the bit packing) in one store-free pass of
#: the one-padded fast path; the words before them go through an accumulator row first.
TAIL_WORDS = 9
#: Most patch words of the one-padded fast path: the byte cores widen their byte lanes
#: every BYTE_STEPS words in the registers; the word cores take it up to 2 * TAIL_WORDS
#: (measured, AVX2 on an Intel core: VGG-small's 16x16 256-channel block 463 -> 407 us
#: at 36 words; with two patches a weight load, AVX2 build on a Zen 4 core, its 72-word
#: 8x8 512-channel pooled block 435 -> 351 us against the per-pixel path)
FAST_WORDS = 8 * TAIL_WORDS


@njit(cache=True, inline="always")
def _tail_counts(acc, wk, k0, patch, p, q):
    """``acc[p, q]`` plus the popcounts of the last 9 patch words against ``wk[:, q]``."""
    c = acc[p, q] + popcount64(patch[p, k0] ^ wk[k0, q])
    c += popcount64(patch[p, k0 + 1] ^ wk[k0 + 1, q])
    c += popcount64(patch[p, k0 + 2] ^ wk[k0 + 2, q])
    c += popcount64(patch[p, k0 + 3] ^ wk[k0 + 3, q])
    c += popcount64(patch[p, k0 + 4] ^ wk[k0 + 4, q])
    c += popcount64(patch[p, k0 + 5] ^ wk[k0 + 5, q])
    c += popcount64(patch[p, k0 + 6] ^ wk[k0 + 6, q])
    c += popcount64(patch[p, k0 + 7] ^ wk[k0 + 7, q])
    c += popcount64(patch[p, k0 + 8] ^ wk[k0 + 8, q])
    return c


@njit(cache=True, inline="always")
def _fast_word(acc, wk, k0, patch, p, n_pix, n_bits, sgn, sthr, q0):
    """Bits ``q0..q0 + 63`` of ``sgn * (n_bits - 2 * popcount) >= sthr``, ORed over the
    conv outputs ``p .. p + n_pix - 1`` (n_pix 1 or 4): a reduction with no store and a
    fixed trip count, so LLVM vectorises it across output channels."""
    word = np.uint64(0)
    n = np.int64(n_bits)
    if n_pix == 4:
        for t in range(64):
            q = q0 + t
            g, th = sgn[q], sthr[q]
            h0 = g * (n - 2 * np.int64(_tail_counts(acc, wk, k0, patch, p, q))) >= th
            h1 = g * (n - 2 * np.int64(_tail_counts(acc, wk, k0, patch, p + 1, q))) >= th
            h2 = g * (n - 2 * np.int64(_tail_counts(acc, wk, k0, patch, p + 2, q))) >= th
            h3 = g * (n - 2 * np.int64(_tail_counts(acc, wk, k0, patch, p + 3, q))) >= th
            word |= np.uint64(h0 | h1 | h2 | h3) << np.uint64(t)
    else:
        for t in range(64):
            q = q0 + t
            h0 = sgn[q] * (n - 2 * np.int64(_tail_counts(acc, wk, k0, patch, p, q))) >= sthr[q]
            word |= np.uint64(h0) << np.uint64(t)
    return word


@njit(cache=True, inline="always")
def _fast_row(xflat, r, wk, offs, sgn, sthr, geom, out, patch, acc):
    """Pooled output row ``r`` of the one-padded fast path; ``xflat`` (N, Hp * Wp * Cw) is
    the padded input, ``geom`` = ``(n_bits, kh, kw, stride, pool, pool_stride, Wp, Cw,
    nibbles)`` (``nibbles``: the byte cores' weight layout, unused here)."""
    n_bits, kh, kw, stride, pool, pstride, wp, cw, _ = geom
    n_k = wk.shape[0]
    head = n_k - TAIL_WORDS
    po = out.shape[1]
    img, py = r // po, r % po
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_pix = win * win
    for px in range(out.shape[2]):
        for p in range(n_pix):
            i = (py * step + p // win) * stride
            j = (px * step + p % win) * stride
            gather_patch(patch, p, xflat[img], (i * wp + j) * cw, offs, kh * kw * cw)
            if head > 0:
                for q in range(wk.shape[1]):
                    acc[p, q] = 0
                for k in range(head):
                    xv = patch[p, k]
                    for q in range(wk.shape[1]):
                        acc[p, q] += popcount64(xv ^ wk[k, q])
        for kk in range(out.shape[3]):
            word = np.uint64(0)
            p = 0
            while p < n_pix:
                m = 4 if p + 4 <= n_pix else 1
                word |= _fast_word(acc, wk, head, patch, p, m, n_bits, sgn, sthr, kk * 64)
                p += m
            out[img, py, px, kk] = word


@njit(cache=True)
def _fast_work(wk, pool, wo):
    """A patch row per conv output of a pooled output row, an accumulator row per pixel."""
    n_pix = max(pool, 1) ** 2
    patch = np.zeros((wo * n_pix, wk.shape[0]), np.uint64)
    return patch, np.zeros((n_pix, wk.shape[1]), np.uint64)


def fast_row(xflat, r, wk, offs, sgn, sthr, geom, out, patch, acc, token):
    """``_fast_row`` or its byte twin, by ``token``'s strategy (at compile time; @njit only)."""
    raise TypeError("fast_row is only callable from @njit code")


@overload(fast_row, jit_options={"cache": True})
def _fast_row_impl(xflat, r, wk, offs, sgn, sthr, geom, out, patch, acc, token):
    if not isinstance(token, types.BaseTuple):
        raise errors.TypingError(f"expected a popcount strategy token (a tuple), got {token}")
    lanes = token_mode(token)
    if lanes > 0:

        def impl(xflat, r, wk, offs, sgn, sthr, geom, out, patch, acc, token):
            fast_row_bytes(xflat, r, wk, offs, sgn, sthr, geom, out, patch, acc, lanes)

    else:

        def impl(xflat, r, wk, offs, sgn, sthr, geom, out, patch, acc, token):
            _fast_row(xflat, r, wk, offs, sgn, sthr, geom, out, patch, acc)

    return impl


@njit(cache=True)
def _fast_serial(x, wk, sgn, sthr, ones, geom, out, token):
    xflat, offs, g = fast_input(x, ones, geom)
    patch, acc = _fast_work(wk, g[4], out.shape[2])
    for r in range(out.shape[0] * out.shape[1]):
        fast_row(xflat, r, wk, offs, sgn, sthr, g, out, patch, acc, token)


@njit(cache=True, parallel=True)
def _fast_parallel(x, wk, sgn, sthr, ones, geom, out, token):
    xflat, offs, g = fast_input(x, ones, geom)
    for r in prange(out.shape[0] * out.shape[1]):
        patch, acc = _fast_work(wk, g[4], out.shape[2])
        fast_row(xflat, r, wk, offs, sgn, sthr, g, out, patch, acc, token)


def _check_thresholds(thresholds, flip, n_bits, offset):
    thresholds = check_int_thresholds(thresholds, n_bits)
    flip = _check_flip(flip, n_bits)
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise TypeError(f"expected an integer offset, got {type(offset).__name__}")
    # (acc + offset) >= t  <=>  acc >= t - offset; flipped: -acc >= -(t - offset)
    sgn = np.where(flip, -1, 1).astype(np.int64)
    return sgn, sgn * (thresholds - int(offset))


def prepare_block(
    w: np.ndarray,
    n_channels: int,
    thresholds: np.ndarray,
    flip: np.ndarray,
    *,
    stride: int = 1,
    padding: str | tuple[int, int, int, int] = "same",
    pad_value: int = 1,
    repeat: int = 1,
    offset: int = 0,
    pool: int = 0,
    pool_stride: int = 1,
) -> BinaryBlock:
    """Check one fused layer's constants and lay them out for the kernel (once per layer).

    ``w`` (O, kh, kw, Cw) words; ``thresholds``/``flip`` over ``O * repeat`` channels (the
    accumulator of channel ``o`` is compared with thresholds ``o * repeat ...``);
    ``offset`` is added to every accumulator first (the exporter's dense offset);
    ``pool`` 0 means no pooling.
    """
    w, n_channels, stride, pads = check_kernel(w, n_channels, stride, padding, pad_value)
    n_out, kh, kw, cw = w.shape
    repeat = check_count(repeat, "repeat")
    pool = check_count(pool, "pool", minimum=0)
    pool_stride = check_count(pool_stride, "pool_stride")
    sgn, sthr = _check_thresholds(thresholds, flip, n_out * repeat, offset)
    wt = np.ascontiguousarray(w.transpose(1, 2, 3, 0))
    ones = np.full(cw, np.uint64(0xFFFFFFFFFFFFFFFF), WORD_DTYPE)
    ones[-1] = tail_mask(n_channels)
    fast = None
    n_k = kh * kw * cw
    # up to FAST_WORDS patch words (the word cores use it up to 2 * TAIL_WORDS, _plan)
    if pad_value == 1 and repeat == 1 and n_k <= FAST_WORDS:
        o64 = n_words(n_out) * 64
        wk = np.zeros((max(n_k, TAIL_WORDS), o64), WORD_DTYPE)  # zero words add nothing
        wk[:n_k, :n_out] = w.reshape(n_out, n_k).T
        sgn64 = np.ones(o64, np.int64)
        sgn64[:n_out] = sgn
        sthr64 = np.full(o64, np.iinfo(np.int64).max, np.int64)  # padded outputs: bit 0
        sthr64[:n_out] = sthr
        lo, width = count_ranges(sgn64, sthr64, kh * kw * n_channels)
        wk_ge, lo, width = ge_form(wk, sgn64, lo, width, ones, n_k, kh * kw * n_channels)
        # nibble weights save the byte cores a shift and two masks a step, but take twice
        # the bytes: only while they stay in L1 and only without GFNI, whose gf2p8affine
        # takes the high nibbles in one instruction (measured AVX2 on an Intel core, the
        # MNIST BNN's 14x14 block: 41.4 vs 42.2 us without GFNI, 40.5 vs 38.1 with it)
        nibbles = 2 * wk.nbytes <= NIBBLE_BYTES and "gfni" not in numba_target().features
        nibbles = nibbles and n_k <= BYTE_STEPS  # the nibble core never widens on the way
        wn = nibble_split(wk_ge) if nibbles else None
        words = wk if n_k <= 2 * TAIL_WORDS else None  # the word cores' (see _plan)
        fast = (words, sgn64, sthr64, ones, wk_ge, wn, lo, width)
    return BinaryBlock(
        wt=wt,
        pad_pc=pad_counts(wt, ones),
        sgn=sgn,
        sthr=sthr,
        fast=fast,
        ones=ones,
        n_channels=n_channels,
        n_out=n_out,
        repeat=repeat,
        stride=stride,
        pads=pads,
        zero_pad=pad_value == 0,
        pool=pool,
        pool_stride=pool_stride,
    )


def block_out_shape(blk: BinaryBlock, h: int, w: int) -> tuple[int, int, int]:
    """(Ho, Wo, n_words(O * repeat)) of the fused block on an (h, w) input."""
    kh, kw = blk.wt.shape[:2]
    ho, wo = conv_out_size(h, w, kh, kw, blk.stride, blk.pads)
    if ho < 1 or wo < 1:
        raise ValueError(f"expected an input large enough for a {kh}x{kw} kernel, got ({h}, {w})")
    if blk.pool:
        if ho < blk.pool or wo < blk.pool:
            raise ValueError(
                f"expected a conv output of at least ({blk.pool}, {blk.pool}) pixels for "
                f"pool={blk.pool}, got ({ho}, {wo})"
            )
        ho = (ho - blk.pool) // blk.pool_stride + 1
        wo = (wo - blk.pool) // blk.pool_stride + 1
    return ho, wo, n_words(blk.n_out * blk.repeat)


def run_block(x: np.ndarray, blk: BinaryBlock, *, threads: int = 1) -> np.ndarray:
    """Run a prepared block on packed NHWC bits ``x`` (N, H, W, Cw): packed (N, Ho, Wo, Ow).

    ``x`` must be C-contiguous ``uint64`` with ``Cw == n_words(n_channels)`` and zero tail
    bits (the callers' layer program guarantees it; :func:`binary_conv_threshold_pool`
    checks it)."""
    return run_block_strategy(x, blk, threads, None)


def _plan(blk, strat, threads):
    """The core that runs ``blk`` with ``strat`` and its arguments: ``core(x, *args, out,
    token)``."""
    kh, kw = blk.wt.shape[:2]
    if strat.mode == WORD_WIDE and not blk.zero_pad and blk.repeat == 1:
        # vpopcntq: a pooled row at a time through the register-tiled GEMM (block_gemm)
        geom = (kh * kw * blk.n_channels, kh, kw, blk.stride, *blk.pads)
        wt = blk.wt.reshape(-1, blk.n_out)  # (kh, kw, Cw, O) is the (K, O) matrix
        core = gemm_block_serial if threads == 1 else gemm_block_parallel
        lo, width = padded_ranges(blk.sgn, blk.sthr, geom[0])
        args = (wt, lo, width, blk.ones, geom + (blk.pool, blk.pool_stride))
        return core, args, strat.token
    if blk.fast is not None and (strat.byte_lanes or kh * kw * blk.wt.shape[2] <= 2 * TAIL_WORDS):
        wk, sgn64, sthr64, ones, wk_ge, wn, lo, width = blk.fast
        nib = 0
        if strat.byte_lanes:  # the byte cores: counts in ge_form, nibble weights
            sgn64, sthr64 = lo, width
            wk, nib = (wk_ge, 0) if wn is None else (wn, 1)
        geom = (kh * kw * blk.n_channels, kh, kw, blk.stride, blk.pool, blk.pool_stride, nib)
        core = _fast_serial if threads == 1 else _fast_parallel
        return core, (wk, sgn64, sthr64, ones, geom + blk.pads), strat.token
    consts = (blk.wt, blk.pad_pc, blk.sgn, blk.sthr)
    # the kernel indexes from the top-left pad
    geom = (blk.n_channels, blk.repeat, blk.stride, blk.pads[0], blk.pads[2], blk.zero_pad)
    core = _block_serial if threads == 1 else _block_parallel
    return core, (consts, geom + (blk.pool, blk.pool_stride)), strat.token


def run_block_strategy(x, blk, threads, strategy):
    """:func:`run_block` with a popcount strategy by name (None: this CPU's)."""
    core, args, token = _plan(blk, get_strategy(strategy), threads)
    n, h, w, _ = x.shape
    out = np.empty((n, *block_out_shape(blk, h, w)), WORD_DTYPE)
    if threads == 1:  # the serial cores never touch Numba's thread pool
        core(x, *args, out, token)
    else:
        with num_threads(threads):
            core(x, *args, out, token)
    return out


def block_runner(blk: BinaryBlock, *, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`run_block` on ``blk`` as a function of ``x`` alone, its per-call work done
    once (the core and its arguments; the output shape once per input shape)."""
    core, args, token = _plan(blk, get_strategy(None), threads)
    shapes: dict[tuple[int, ...], tuple[int, ...]] = {}

    def run(x: np.ndarray) -> np.ndarray:
        shape = shapes.get(x.shape)
        if shape is None:
            shape = shapes[x.shape] = (x.shape[0], *block_out_shape(blk, *x.shape[1:3]))
        out = np.empty(shape, WORD_DTYPE)
        if threads == 1:
            core(x, *args, out, token)
        else:
            with num_threads(threads):
                core(x, *args, out, token)
        return out

    return run


def binary_conv_threshold_pool(
    x: np.ndarray,
    w: np.ndarray,
    n_channels: int,
    thresholds: np.ndarray,
    flip: np.ndarray,
    *,
    stride: int = 1,
    padding: str | tuple[int, int, int, int] = "same",
    pad_value: int = 1,
    repeat: int = 1,
    pool: int = 0,
    pool_stride: int = 1,
    threads: int = 1,
) -> np.ndarray:
    """``maxpool_bits(threshold(binary_conv2d(x, w), thresholds, flip))`` in one pass.

    Arguments as :func:`edgecl.kernels.binary_conv2d` and :func:`edgecl.kernels.threshold`
    (the accumulators repeated ``repeat`` times along channels first); ``pool`` 0 skips
    the pooling. Returns packed ``uint64`` (N, Ho, Wo, n_words(O * repeat)).
    """
    x, *_ = _check_conv(x, w, n_channels, stride, padding, pad_value)
    blk = prepare_block(
        w,
        n_channels,
        thresholds,
        flip,
        stride=stride,
        padding=padding,
        pad_value=pad_value,
        repeat=repeat,
        pool=pool,
        pool_stride=pool_stride,
    )
    return run_block(x, blk, threads=check_threads(threads))


def binary_conv_threshold_pool_reference(
    x: np.ndarray,
    w: np.ndarray,
    n_channels: int,
    thresholds: np.ndarray,
    flip: np.ndarray,
    *,
    stride: int = 1,
    padding: str | tuple[int, int, int, int] = "same",
    pad_value: int = 1,
    repeat: int = 1,
    pool: int = 0,
    pool_stride: int = 1,
) -> np.ndarray:
    """NumPy twin of :func:`binary_conv_threshold_pool`: the three reference kernels."""
    acc = binary_conv2d_reference(
        x, w, n_channels, stride=stride, padding=padding, pad_value=pad_value
    )
    acc = acc if repeat == 1 else np.repeat(acc, repeat, axis=-1)
    bits = threshold_reference(acc, thresholds, flip)
    if pool:
        _out_size(bits.shape, pool, pool_stride)
        bits = maxpool_bits_reference(bits, size=pool, stride=pool_stride)
    return bits


__all__ = [
    "BinaryBlock",
    "binary_conv_threshold_pool",
    "binary_conv_threshold_pool_reference",
    "block_out_shape",
    "block_runner",
    "prepare_block",
    "run_block",
    "run_block_strategy",
    "tap_offsets",
]
