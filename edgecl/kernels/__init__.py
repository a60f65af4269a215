"""Bit-packed kernels, NumPy and Numba only (never torch).

Plain functions on arrays; each fast kernel has a NumPy ``_reference`` twin.
The bit convention lives in :mod:`edgecl.kernels.bits`. Nothing compiles at import:
each Numba core compiles (or loads from Numba's cache) on its first call.

Importing this package does not import Numba: the bit convention (:mod:`~.bits`) is
loaded eagerly, every other name on first access (PEP 562), so a device that runs the
onnxruntime backend (:mod:`edgecl.device.ort`) and has no Numba can still use the bits.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from edgecl.kernels.bits import (
    WORD_BITS,
    WORD_DTYPE,
    n_words,
    pack_bits,
    pack_signs,
    signs_from_bits,
    tail_mask,
    unpack_bits,
)

#: The module of every Numba-backed name (imported on first access).
_LAZY = {
    "bmm_em_stats": "bmm",
    "bmm_em_stats_reference": "bmm",
    "bmm_log_likelihood": "bmm",
    "bmm_log_likelihood_reference": "bmm",
    "bmm_responsibilities": "bmm",
    "bmm_responsibilities_reference": "bmm",
    "hamming_distances": "bmm",
    "hamming_distances_reference": "bmm",
    "binary_conv2d": "conv",
    "binary_conv2d_reference": "conv",
    "binary_dense": "dense",
    "binary_dense_reference": "dense",
    "binary_dense_prepared": "dense",
    "prepare_dense": "dense",
    "DenseWeights": "dense",
    "binary_float_dense": "float_dense",
    "binary_float_dense_reference": "float_dense",
    "binary_conv_threshold_pool": "block",
    "binary_conv_threshold_pool_reference": "block",
    "binary_dense_threshold": "dense_block",
    "binary_dense_threshold_reference": "dense_block",
    "softmax_head_step": "head",
    "softmax_head_step_reference": "head",
    "pack_float_signs": "signs",
    "pack_float_signs_reference": "signs",
    "normalize_uint8": "pixels",
    "normalize_uint8_reference": "pixels",
    "maxpool2d": "pool",
    "maxpool2d_reference": "pool",
    "maxpool_bits": "pool",
    "maxpool_bits_reference": "pool",
    "PROB_ONE": "sampling",
    "sample_bernoulli_words": "sampling",
    "sample_bernoulli_words_reference": "sampling",
    "threshold": "threshold",
    "threshold_float": "threshold",
    "threshold_float_reference": "threshold",
    "threshold_reference": "threshold",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgecl.kernels' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"edgecl.kernels.{module}"), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _LazyPackage(types.ModuleType):
    """This package, where a loaded submodule does not hide the function of its name.

    The import system binds every submodule it loads on its package (``threshold`` the
    module once anything imports :mod:`edgecl.kernels.threshold`), which would shadow the
    lazy ``threshold`` function; as with eager imports, the function wins."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _LazyPackage


__all__ = [
    "WORD_BITS",
    "WORD_DTYPE",
    "n_words",
    "pack_bits",
    "pack_signs",
    "signs_from_bits",
    "tail_mask",
    "unpack_bits",
    *_LAZY,
]
