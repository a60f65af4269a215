"""What the torch exporter (:mod:`edgecl.export.lower`) and the Larq importer
(:mod:`edgecl.larq.lower`) share in lowering a model to the layer program, torch-free:
BatchNorm + sign folded into thresholds, read off the bits each one's own forward computes,
the packed weight of a binary dense layer (:func:`binary_dense`) and the op appended with its
arrays (:func:`append_op`).

A binary layer's accumulator is an integer in ``[-n, n]`` (n = fan-in). The bit that the
biases, BatchNorms and step after it compute is evaluated on every integer of that range
and the threshold read off (:func:`int_thresholds_from_bits`): ``acc >= t``, or
``acc <= t`` where the bit falls (the flip), ties included, with extreme thresholds for
constant channels. A float input (a float first layer) is bisected over all float32 values
instead (:func:`bisect_float_thresholds`), so the threshold is the exact float32 at which
the bit changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgecl.errors import ExportError
from edgecl.kernels.bits import WORD_BITS, pack_signs
from edgecl.program.ops import Op

__all__ = ["append_op", "binary_dense", "bisect_float_thresholds", "int_thresholds_from_bits"]

_F32_MAX = float(np.finfo(np.float32).max)


def int_thresholds_from_bits(
    bits: np.ndarray, n: int, not_monotone: Callable[[int], str]
) -> tuple[np.ndarray, np.ndarray]:
    """``(thresholds int32 (m,), flip bool (m,))`` from ``bits`` (m, 2n+1), the bit of
    each of m outputs at every accumulator -n..n; ``not_monotone(o)`` is the message of the
    ExportError raised when output o's bit is not monotone in the accumulator."""
    vals = np.arange(-n, n + 1, dtype=np.int64)
    m = bits.shape[0]
    thr = np.empty(m, np.int64)
    flip = np.zeros(m, bool)
    d = np.diff(bits.astype(np.int8), axis=1)
    for o in range(m):
        row = bits[o]
        if row.all():
            thr[o] = -n
        elif not row.any():
            thr[o] = n + 1
        elif (d[o] >= 0).all():
            thr[o] = vals[np.argmax(row)]
        elif (d[o] <= 0).all():
            thr[o], flip[o] = vals[len(row) - 1 - np.argmax(row[::-1])], True
        else:
            raise ExportError(not_monotone(o))
    return thr.astype(np.int32), flip


def _f32_key(x: np.ndarray) -> np.ndarray:
    """float32 -> int64 keys in the floats' order (-0.0 just below +0.0)."""
    i = np.asarray(x, np.float32).view(np.int32).astype(np.int64)
    return np.where(i >= 0, i, -(i & 0x7FFFFFFF) - 1)


def _key_f32(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, np.int64)
    bits = np.where(k >= 0, k, (-k - 1) | 0x80000000).astype(np.uint32)
    return bits.view(np.float32)


def bisect_float_thresholds(
    bit_at: Callable[[np.ndarray], np.ndarray], m: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(thresholds float32 (m,), flip bool (m,))`` of m outputs whose bit
    ``bit_at(values)`` (values float32 (m,), one per output -> bool (m,)) is monotone in
    its float32 input: bisection over every float32 value between -max and +max."""
    lo = np.full(m, _f32_key(np.float32(-_F32_MAX)))
    hi = np.full(m, _f32_key(np.float32(_F32_MAX)))
    g_lo, g_hi = bit_at(_key_f32(lo)), bit_at(_key_f32(hi))
    moving = g_lo != g_hi
    while True:
        active = moving & (hi - lo > 1)
        if not active.any():
            break
        mid = (lo + hi) // 2
        gm = bit_at(_key_f32(np.where(active, mid, lo)))
        to_hi = active & (gm == g_hi)
        to_lo = active & (gm != g_hi)
        hi = np.where(to_hi, mid, hi)
        lo = np.where(to_lo, mid, lo)
    thr = np.where(g_lo & g_hi, -np.inf, np.inf).astype(np.float32)
    inc = moving & g_hi
    dec = moving & g_lo
    thr[inc] = _key_f32(hi[inc])
    thr[dec] = _key_f32(lo[dec])
    return thr, dec.copy()


def append_op(
    ops: list[Op],
    arrays: dict[str, np.ndarray],
    op: type[Op],
    source: str,
    in_shape: tuple[int, ...],
    out_shape: Sequence[int],
    members: dict[str, np.ndarray | None],
    **params: Any,
) -> tuple[int, ...]:
    """Append ``op`` (from ``source``, ``in_shape`` -> ``out_shape``) to ``ops``: each array
    of ``members`` goes into ``arrays`` as ``layers.<i>.<key>`` (i = the op's index) and the
    op names it there (None stays None). Returns the out shape, as ints."""
    i = len(ops)
    refs: dict[str, str | None] = {}
    for key, value in members.items():
        if value is None:
            refs[key] = None
            continue
        name = f"layers.{i}.{key}"
        arrays[name] = value
        refs[key] = name
    shape = tuple(int(s) for s in out_shape)
    ops.append(op(in_shape=in_shape, out_shape=shape, source=source, **refs, **params))
    return shape


def binary_dense(
    weight: np.ndarray, flat_from: tuple[int, int, int] | None
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """``(arrays, params)`` of a ``DenseBinary`` op on f input bits: ``weight`` (O, F) the
    ±1 (sign-quantized) weight with F in the device's (H, W, C) order (or (O, H, W, C)),
    ``flat_from`` the (H, W, C) the input bits were flattened from (None: not flattened).

    After a Flatten of bits each pixel holds n_words(C) words: the kernel counts every word
    (tail bits are 0 in both operands, so they agree) and ``offset`` removes the (n - f)
    agreeing tail positions from the ±1 dot product."""
    o = weight.shape[0]
    f = int(np.prod(weight.shape[1:]))
    if flat_from is not None:
        packed = pack_signs(weight.reshape(o, *flat_from), axis=-1).reshape(o, -1)
        n = packed.shape[1] * WORD_BITS  # (O, H*W*n_words(C)) words
    else:
        packed, n = pack_signs(weight, axis=-1), f
    return {"weight": np.ascontiguousarray(packed)}, {"n": int(n), "offset": -int(n - f), "bits": 1}
