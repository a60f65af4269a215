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
from edgecl.kernels.fused import BinaryBlock, prepare_block, run_block

__all__ = ["Program", "compile_program", "conv_threshold_pool"]


@njit(cache=True, fastmath={"contract"})
def _conv_thr_pool(
    x, wk, kh, kw, bias, top, left, stride, pad_value, sgn, sthr, pool, pstride, out
):
    """For each pooled output: gather the patches of the ``win x win`` conv outputs it
    covers, ``acc[p, q] = sum_k patch[p, k] * wk[k, q]`` in float64 (k in (di, dj, c)
    order; each float32 x float32 product is exact in float64, so contracting it into an
    FMA rounds exactly as a multiply then an add), then ``y = float32(acc + bias)``,
    ``hit[q] |= sgn[q] * y >= sthr[q]``, packed 64 channels to a word."""
    n, h, wd, c = x.shape
    n_k, o = wk.shape
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_pix = win * win
    acc = np.empty((n_pix, o), np.float64)
    patch = np.empty((n_pix, n_k), np.float64)
    hit = np.empty(o, np.uint8)
    for s in range(n):
        for pi in range(out.shape[1]):
            for pj in range(out.shape[2]):
                for p in range(n_pix):
                    i = pi * step + p // win
                    j = pj * step + p % win
                    k = 0
                    for di in range(kh):
                        yi = i * stride + di - top
                        for dj in range(kw):
                            xj = j * stride + dj - left
                            inside = 0 <= yi < h and 0 <= xj < wd
                            for cc in range(c):
                                patch[p, k] = np.float64(x[s, yi, xj, cc]) if inside else pad_value
                                k += 1
                acc[:, :] = 0.0
                for k in range(n_k):
                    for p in range(n_pix):
                        pk = patch[p, k]
                        ap = acc[p]
                        for q in range(o):
                            ap[q] += pk * wk[k, q]
                for q in range(o):
                    hit[q] = 0
                for p in range(n_pix):
                    ap = acc[p]
                    for q in range(o):
                        hit[q] |= np.uint8(sgn[q] * np.float32(ap[q] + bias[q]) >= sthr[q])
                for kk in range(out.shape[3]):
                    word = np.uint64(0)
                    for q in range(kk * 64, min(o, kk * 64 + 64)):
                        word |= np.uint64(hit[q]) << np.uint64(q - kk * 64)
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
        cache["w"] = np.ascontiguousarray(
            w.transpose(1, 2, 3, 0).reshape(kh * kw * c, o).astype(np.float64)
        )
        cache["k"] = (kh, kw)
        b = conv.get("bias")
        cache["b"] = (
            arrays[b].astype(np.float64) if b is not None else np.zeros(w.shape[0], np.float64)
        )
        # y <= t  <=>  -y >= -t exactly (IEEE negation); NaN compares false either way
        flip = np.asarray(arrays[thr["flip"]], np.bool_)
        t = np.asarray(arrays[thr["thresholds"]], np.float32)
        cache["sgn"] = np.where(flip, np.float32(-1), np.float32(1)).astype(np.float32)
        cache["sthr"] = np.where(flip, -t, t).astype(np.float32)
    w = cache["w"]
    top, _, left, _ = (int(p) for p in conv["pads"])
    ho, wo, o = (int(s) for s in conv["out_shape"])  # noqa: F841 (ho, wo: no pool)
    size = int(pool["size"]) if pool is not None else 0
    stride = int(pool["stride"]) if pool is not None else 1
    oh, ow = (int(pool["out_shape"][0]), int(pool["out_shape"][1])) if pool else (ho, wo)
    out = np.empty((x.shape[0], oh, ow, n_words(o)), np.uint64)
    _conv_thr_pool(
        np.ascontiguousarray(x, np.float32),
        w,
        *cache["k"],
        cache["b"],
        top,
        left,
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
