"""The kernel sets a layer program runs on: the fast Numba kernels (:data:`FAST_KERNELS`)
and their NumPy reference twins (:data:`REFERENCE_KERNELS`), the slow, obviously-correct
path that tests and ``edgecl bench latency`` check the fast one against."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgecl.kernels import (
    binary_conv2d,
    binary_conv2d_reference,
    binary_dense,
    binary_dense_reference,
    maxpool2d,
    maxpool2d_reference,
    maxpool_bits,
    maxpool_bits_reference,
    threshold,
    threshold_float,
    threshold_float_reference,
    threshold_reference,
)

__all__ = ["FAST_KERNELS", "REFERENCE_KERNELS", "LayerKernels"]


@dataclass(frozen=True)
class LayerKernels:
    """The kernels a layer program runs on (:data:`FAST_KERNELS` or
    :data:`REFERENCE_KERNELS`). The binary products take ``threads`` and return ``int32``."""

    binary_conv2d: Callable[..., np.ndarray]
    binary_dense: Callable[..., np.ndarray]
    threshold: Callable[..., np.ndarray]
    threshold_float: Callable[..., np.ndarray]
    maxpool_bits: Callable[..., np.ndarray]
    maxpool2d: Callable[..., np.ndarray]


FAST_KERNELS = LayerKernels(
    binary_conv2d=binary_conv2d,
    binary_dense=binary_dense,
    threshold=threshold,
    threshold_float=threshold_float,
    maxpool_bits=maxpool_bits,
    maxpool2d=maxpool2d,
)


def _conv_reference(x, w, n_channels, *, threads=1, **options):
    return binary_conv2d_reference(x, w, n_channels, **options).astype(np.int32)


def _dense_reference(x, w, n, *, threads=1):
    return binary_dense_reference(x, w, n).astype(np.int32)


REFERENCE_KERNELS = LayerKernels(
    binary_conv2d=_conv_reference,
    binary_dense=_dense_reference,
    threshold=threshold_reference,
    threshold_float=threshold_float_reference,
    maxpool_bits=maxpool_bits_reference,
    maxpool2d=maxpool2d_reference,
)
"""The reference twins as a kernel set (``threads`` is accepted and ignored: the twins
are single-threaded)."""
