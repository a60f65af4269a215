"""Fused layers for the batch-1 forward path: the first float conv, its BatchNorm+sign
threshold and the bit max-pool in one Numba pass (no im2col, no float feature map kept).

``conv2d_float -> threshold_float (repeat 1) [-> maxpool_bits]`` is what the exporter
emits for a float first layer (BN folded into per-channel thresholds, the pool moved after
the sign, where max-pooling {0,1} bits is an OR). The fused kernel computes each conv
output as :func:`edgecl.device.runtime.run_layers` does — float64 sums of the float32
products, plus the bias, rounded to float32 — then ``y >= t`` (``y <= t`` where flipped;
NaN gives 0) and ORs the bits of every pool window. Its reference is the unfused program
(tests compare them bit for bit). :func:`compile_program` returns a callable that runs a
layer list with the fused prefix when the pattern is there, else plain ``run_layers``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from edgecl.kernels.bits import n_words
from edgecl.kernels.fused import BinaryBlock, gather_patch, prepare_block, run_block, tap_offsets

__all__ = ["Program", "compile_program", "conv_threshold_pool"]


#: Taps summed (with the threshold and the bit packing) in one vectorised pass; the taps
#: before them are added into a float64 accumulator row first. A first layer with fewer
#: taps gets zero taps appended (0 * 0 adds nothing).
TAIL_TAPS = 9


@njit(cache=True, fastmath={"contract"}, inline="always")
def _tail_word(acc, wk, k0, patch, p, bias, sgn, sthr, q0):
    """Bits ``q0..q0 + 63`` (one word) of ``sgn * float32(acc + the last 9 taps + bias) >=
    sthr`` for the conv output of ``patch[p]``: a reduction with no store and a fixed trip
    count, so LLVM vectorises it across channels (channels are padded to whole words)."""
    p0, p1, p2 = patch[p, k0], patch[p, k0 + 1], patch[p, k0 + 2]
    p3, p4, p5 = patch[p, k0 + 3], patch[p, k0 + 4], patch[p, k0 + 5]
    p6, p7, p8 = patch[p, k0 + 6], patch[p, k0 + 7], patch[p, k0 + 8]
    word = np.uint64(0)
    for t in range(64):
        q = q0 + t
        a = acc[p, q] + p0 * wk[k0, q] + p1 * wk[k0 + 1, q] + p2 * wk[k0 + 2, q]
        a = a + p3 * wk[k0 + 3, q] + p4 * wk[k0 + 4, q] + p5 * wk[k0 + 5, q]
        a = a + p6 * wk[k0 + 6, q] + p7 * wk[k0 + 7, q] + p8 * wk[k0 + 8, q]
        word |= np.uint64(sgn[q] * np.float32(a + bias[q]) >= sthr[q]) << np.uint64(t)
    return word


@njit(cache=True, fastmath={"contract"}, inline="always")
def _tail_word4(acc, wk, k0, patch, p, bias, sgn, sthr, q0):
    """:func:`_tail_word` for the outputs of ``patch[p .. p + 3]`` at once, ORed: four
    independent sums per channel (each in the same order as alone) share the weight
    loads and hide the FMA latency."""
    a0, a1, a2 = patch[p, k0], patch[p, k0 + 1], patch[p, k0 + 2]
    a3, a4, a5 = patch[p, k0 + 3], patch[p, k0 + 4], patch[p, k0 + 5]
    a6, a7, a8 = patch[p, k0 + 6], patch[p, k0 + 7], patch[p, k0 + 8]
    b0, b1, b2 = patch[p + 1, k0], patch[p + 1, k0 + 1], patch[p + 1, k0 + 2]
    b3, b4, b5 = patch[p + 1, k0 + 3], patch[p + 1, k0 + 4], patch[p + 1, k0 + 5]
    b6, b7, b8 = patch[p + 1, k0 + 6], patch[p + 1, k0 + 7], patch[p + 1, k0 + 8]
    c0, c1, c2 = patch[p + 2, k0], patch[p + 2, k0 + 1], patch[p + 2, k0 + 2]
    c3, c4, c5 = patch[p + 2, k0 + 3], patch[p + 2, k0 + 4], patch[p + 2, k0 + 5]
    c6, c7, c8 = patch[p + 2, k0 + 6], patch[p + 2, k0 + 7], patch[p + 2, k0 + 8]
    d0, d1, d2 = patch[p + 3, k0], patch[p + 3, k0 + 1], patch[p + 3, k0 + 2]
    d3, d4, d5 = patch[p + 3, k0 + 3], patch[p + 3, k0 + 4], patch[p + 3, k0 + 5]
    d6, d7, d8 = patch[p + 3, k0 + 6], patch[p + 3, k0 + 7], patch[p + 3, k0 + 8]
    word = np.uint64(0)
    for t in range(64):
        q = q0 + t
        w0, w1, w2 = wk[k0, q], wk[k0 + 1, q], wk[k0 + 2, q]
        w3, w4, w5 = wk[k0 + 3, q], wk[k0 + 4, q], wk[k0 + 5, q]
        w6, w7, w8 = wk[k0 + 6, q], wk[k0 + 7, q], wk[k0 + 8, q]
        sa = acc[p, q] + a0 * w0 + a1 * w1 + a2 * w2 + a3 * w3 + a4 * w4
        sa = sa + a5 * w5 + a6 * w6 + a7 * w7 + a8 * w8
        sb = acc[p + 1, q] + b0 * w0 + b1 * w1 + b2 * w2 + b3 * w3 + b4 * w4
        sb = sb + b5 * w5 + b6 * w6 + b7 * w7 + b8 * w8
        sc = acc[p + 2, q] + c0 * w0 + c1 * w1 + c2 * w2 + c3 * w3 + c4 * w4
        sc = sc + c5 * w5 + c6 * w6 + c7 * w7 + c8 * w8
        sd = acc[p + 3, q] + d0 * w0 + d1 * w1 + d2 * w2 + d3 * w3 + d4 * w4
        sd = sd + d5 * w5 + d6 * w6 + d7 * w7 + d8 * w8
        g, t0, bq = sgn[q], sthr[q], bias[q]
        hit = (g * np.float32(sa + bq) >= t0) | (g * np.float32(sb + bq) >= t0)
        hit |= (g * np.float32(sc + bq) >= t0) | (g * np.float32(sd + bq) >= t0)
        word |= np.uint64(hit) << np.uint64(t)
    return word


@njit(cache=True, fastmath={"contract"})
def _conv_thr_pool(x, wk, kh, kw, bias, pads, stride, pad_value, sgn, sthr, pool, pstride, out):
    """For each pooled output and each conv output of its ``win x win`` window: the patch
    (k in (di, dj, c) order, from the image padded once with ``pad_value``), then
    ``sum_k patch[k] * wk[k, q]`` in float64, k in order (each float32 x float32 product
    is exact in float64, so contracting it into an FMA rounds exactly as a multiply then
    an add), ``y = float32(sum + bias)``, and the bits ``sgn * y >= sthr`` ORed over the
    window into packed words."""
    n, h, wd, c = x.shape
    n_k, o = wk.shape
    head = n_k - TAIL_TAPS
    top, bottom, left, right = pads
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_pix = win * win
    hp, wp = h + top + bottom, wd + left + right
    xp = np.full(hp * wp * c, pad_value, np.float64)  # one padded image, flat
    offs = tap_offsets(kh, kw, wp, c)
    patch = np.zeros((n_pix, n_k), np.float64)  # taps past kh * kw * c stay 0
    acc = np.zeros((n_pix, o), np.float64)
    for s in range(n):
        for i in range(h):
            for j in range(wd):
                for cc in range(c):
                    xp[((i + top) * wp + j + left) * c + cc] = x[s, i, j, cc]
        for pi in range(out.shape[1]):
            for pj in range(out.shape[2]):
                for p in range(n_pix):
                    i = (pi * step + p // win) * stride
                    j = (pj * step + p % win) * stride
                    gather_patch(patch, p, xp, (i * wp + j) * c, offs, kh * kw * c)
                    if head > 0:
                        for q in range(o):
                            acc[p, q] = 0.0
                        for k in range(head):
                            pk = patch[p, k]
                            for q in range(o):
                                acc[p, q] += pk * wk[k, q]
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


def conv_threshold_pool(
    x: np.ndarray,
    conv: Mapping[str, Any],
    thr: Mapping[str, Any],
    pool: Mapping[str, Any] | None,
    arrays: Mapping[str, np.ndarray],
    cache: dict[str, Any] | None = None,
) -> np.ndarray:
    """The fused ``conv2d_float -> threshold_float [-> maxpool_bits]`` on NHWC float32."""
    cache = {} if cache is None else cache
    if "w" not in cache:
        w = arrays[conv["weight"]]  # (O, kh, kw, C)
        o, kh, kw, c = w.shape
        n_k = kh * kw * c
        # taps: zero taps appended up to TAIL_TAPS; channels: padded to whole words with
        # zero weights, zero bias and threshold +inf (their bits stay 0)
        o64 = n_words(o) * 64
        wk = np.zeros((max(n_k, TAIL_TAPS), o64), np.float64)
        wk[:n_k, :o] = w.transpose(1, 2, 3, 0).reshape(n_k, o)
        cache["w"] = wk
        cache["k"] = (kh, kw)
        b = conv.get("bias")
        cache["b"] = np.zeros(o64, np.float64)
        if b is not None:
            cache["b"][:o] = arrays[b]
        # y <= t  <=>  -y >= -t exactly (IEEE negation); NaN compares false either way
        flip = np.asarray(arrays[thr["flip"]], np.bool_)
        t = np.asarray(arrays[thr["thresholds"]], np.float32)
        cache["sgn"] = np.ones(o64, np.float32)
        cache["sgn"][:o] = np.where(flip, np.float32(-1), np.float32(1))
        cache["sthr"] = np.full(o64, np.inf, np.float32)
        cache["sthr"][:o] = np.where(flip, -t, t)
    w = cache["w"]
    pads = tuple(int(p) for p in conv["pads"])
    ho, wo, o = (int(s) for s in conv["out_shape"])
    size = int(pool["size"]) if pool is not None else 0
    stride = int(pool["stride"]) if pool is not None else 1
    oh, ow = (int(pool["out_shape"][0]), int(pool["out_shape"][1])) if pool else (ho, wo)
    out = np.empty((x.shape[0], oh, ow, n_words(o)), np.uint64)
    _conv_thr_pool(
        np.ascontiguousarray(x, np.float32),
        w,
        *cache["k"],
        cache["b"],
        pads,
        int(conv["stride"]),
        float(conv["pad_value"]),
        cache["sgn"],
        cache["sthr"],
        size,
        stride,
        out,
    )
    return out


def _binary_block(conv, thr, pool, arrays) -> BinaryBlock:
    """The fused kernel's constants for ``conv2d_binary -> threshold [-> maxpool_bits]``."""
    return prepare_block(
        arrays[conv["weight"]],
        int(conv["in_shape"][2]),
        arrays[thr["thresholds"]],
        arrays[thr["flip"]],
        stride=int(conv["stride"]),
        padding=conv["padding"],
        pad_value=int(conv["pad_value"]),
        repeat=int(thr["repeat"]),
        pool=int(pool["size"]) if pool is not None else 0,
        pool_stride=int(pool["stride"]) if pool is not None else 1,
    )


def _dense_block(dense, thr, arrays) -> BinaryBlock:
    """The fused kernel's constants for ``dense_binary -> threshold`` (a 1x1 image)."""
    w = arrays[dense["weight"]]
    return prepare_block(
        w.reshape(w.shape[0], 1, 1, w.shape[1]),
        int(dense["n"]),
        arrays[thr["thresholds"]],
        arrays[thr["flip"]],
        padding="valid",
        repeat=int(thr["repeat"]),
        offset=int(dense["offset"]),
    )


def _op(layers: list[Mapping[str, Any]], i: int) -> str | None:
    return layers[i]["op"] if i < len(layers) else None


@dataclass(frozen=True)
class Program:
    """A layer program as the runtime runs it: ``steps``, each ``(name, fn)``, where
    ``name`` lists the ops the step runs (``"conv2d_binary+threshold+maxpool_bits"`` for a
    fused block) and ``fn`` maps the previous step's value to the next. Calling it runs
    every step in order."""

    steps: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        v = x
        for _, step in self.steps:
            v = step(v)
        return v


def compile_program(
    layers: list[Mapping[str, Any]],
    arrays: Mapping[str, np.ndarray],
    run_layers: Callable[..., np.ndarray],
    *,
    threads: int = 1,
) -> Program:
    """The :class:`Program` running ``layers`` on normalised input, with fused steps where
    the program has them: ``conv2d_float -> threshold_float (repeat 1) [-> maxpool_bits]``
    (:func:`conv_threshold_pool`), ``conv2d_binary -> threshold [-> maxpool_bits]`` and
    ``dense_binary -> threshold`` (:func:`edgecl.kernels.fused.run_block`, constants laid
    out once here); any other layer runs alone through ``run_layers``. The result equals
    ``run_layers(x, layers, arrays)`` bit for bit."""
    Step = Callable[[np.ndarray], np.ndarray]

    def float_step(conv, thr, pool) -> Step:
        cache: dict[str, Any] = {}
        return lambda v: conv_threshold_pool(v, conv, thr, pool, arrays, cache)

    def conv_step(blk: BinaryBlock) -> Step:
        return lambda v: run_block(np.ascontiguousarray(v), blk, threads=threads)

    def dense_step(blk: BinaryBlock) -> Step:
        def run(v: np.ndarray) -> np.ndarray:
            x4 = np.ascontiguousarray(v).reshape(v.shape[0], 1, 1, -1)
            return run_block(x4, blk, threads=threads).reshape(v.shape[0], -1)

        return run

    def plain_step(layer) -> Step:
        return lambda v: run_layers(v, [layer], arrays, threads=threads)

    steps: list[tuple[str, Step]] = []
    i = 0
    while i < len(layers):
        op = layers[i]["op"]
        nxt = _op(layers, i + 1)
        pool = layers[i + 2] if _op(layers, i + 2) == "maxpool_bits" else None
        if op == "conv2d_float" and nxt == "threshold_float" and int(layers[i + 1]["repeat"]) == 1:
            fn, n = float_step(layers[i], layers[i + 1], pool), 3 if pool else 2
        elif op == "conv2d_binary" and nxt == "threshold":
            blk = _binary_block(layers[i], layers[i + 1], pool, arrays)
            fn, n = conv_step(blk), 3 if pool else 2
        elif op == "dense_binary" and nxt == "threshold":
            fn, n = dense_step(_dense_block(layers[i], layers[i + 1], arrays)), 2
        else:
            fn, n = plain_step(layers[i]), 1
        steps.append(("+".join(la["op"] for la in layers[i : i + n]), fn))
        i += n
    return Program(tuple(steps))
