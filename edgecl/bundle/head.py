"""The stored precision of the head G: the codec between the float32 head and its arrays.

One naming rule: a head whose weight array is ``<w>`` stores an int8 head's per-class
scale as ``<w>.scale`` (:func:`scale_name`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: Precisions a stored head may have: float32, float16, or int8 with one float32 scale
#: per class (symmetric, ``w = q * scale``). The bias is float32 in every case.
HEAD_BITS = (32, 16, 8)
#: The stored dtype of the weight at each precision (NumPy ``dtype.str``).
HEAD_DTYPES = {32: "<f4", 16: "<f2", 8: "|i1"}


def scale_name(weight_name: str) -> str:
    """The array name of an int8 head's per-class scale, for a weight named ``weight_name``."""
    return f"{weight_name}.scale"


def head_bytes_per_class(n_bits: int, bits: int = 32) -> int:
    """Stored bytes of one class's head row: D weights at ``bits``, the float32 bias and,
    for int8, the float32 scale."""
    if bits not in HEAD_BITS:
        raise ValueError(f"expected head bits in {HEAD_BITS}, got {bits!r}")
    return int(n_bits) * bits // 8 + 4 + (4 if bits == 8 else 0)


def encode_head(weight: np.ndarray, bits: int) -> dict[str, np.ndarray]:
    """The stored arrays of a float head ``weight`` (D, C): ``{"weight"}`` at float32 or
    float16, or ``{"weight": int8, "scale": float32 (C,)}`` with
    ``scale[c] = max |w[:, c]| / 127`` (1 for an all-zero column) and
    ``q = round(w / scale)``."""
    if bits not in HEAD_BITS:
        raise ValueError(f"expected head bits in {HEAD_BITS}, got {bits!r}")
    w = np.asarray(weight, np.float32)
    if bits == 32:
        return {"weight": w.copy()}
    if bits == 16:
        return {"weight": w.astype(np.float16)}
    peak = np.abs(w).max(axis=0) if w.size else np.zeros(w.shape[1], np.float32)
    scale = np.where(peak > 0, peak / np.float32(127), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return {"weight": q, "scale": scale}


def decode_head(stored: Mapping[str, np.ndarray], bits: int) -> np.ndarray:
    """The float32 head (D, C) that :func:`encode_head`'s arrays stand for."""
    w = np.asarray(stored["weight"])
    if bits == 8:
        return (w.astype(np.float32) * np.asarray(stored["scale"], np.float32)).astype(np.float32)
    return np.ascontiguousarray(w, np.float32)


def round_head(weight: np.ndarray, bits: int) -> np.ndarray:
    """``decode_head(encode_head(weight, bits), bits)``: the head as it will be stored."""
    return decode_head(encode_head(weight, bits), bits)


def head_arrays(head: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A (validated) manifest head's stored arrays by role: ``weight``, ``bias``, and
    ``scale`` for an int8 head."""
    out = {"weight": arrays[head["weight"]], "bias": arrays[head["bias"]]}
    if int(head.get("bits", 32)) == 8:
        out["scale"] = arrays[head["scale"]]
    return out


def head_weight(head: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """A (validated) manifest head's weight as float32 (D, C), whatever its precision."""
    return decode_head(head_arrays(head, arrays), int(head.get("bits", 32)))
