"""Bit-packed kernels, NumPy and Numba only (never torch).

Plain functions on arrays; each fast kernel has a NumPy ``_reference`` twin.
The bit convention lives in :mod:`edgecl.kernels.bits`.
"""

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
from edgecl.kernels.conv import binary_conv2d, binary_conv2d_reference
from edgecl.kernels.dense import binary_dense, binary_dense_reference

__all__ = [
    "binary_conv2d",
    "binary_conv2d_reference",
    "binary_dense",
    "binary_dense_reference",
    "WORD_BITS",
    "WORD_DTYPE",
    "n_words",
    "pack_bits",
    "pack_signs",
    "signs_from_bits",
    "tail_mask",
    "unpack_bits",
]
