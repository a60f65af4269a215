"""The kernel sets a layer program runs on: the fast Numba kernels (:func:`fast_kernels`,
also ``FAST_KERNELS``) and their NumPy reference twins (:func:`reference_kernels`, also
``REFERENCE_KERNELS``), the slow, obviously-correct path that tests and
``edgecl bench latency`` check the fast one against.

Both are built on first use (their modules import Numba), so parsing and checking a layer
program never imports Numba (the onnxruntime backend, :mod:`edgecl.device.ort`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LayerKernels", "fast_kernels", "reference_kernels"]


@dataclass(frozen=True)
class LayerKernels:
    """The kernels a layer program runs on (:func:`fast_kernels` or
    :func:`reference_kernels`). The binary products take ``threads`` and return ``int32``."""

    binary_conv2d: Callable[..., np.ndarray]
    binary_dense: Callable[..., np.ndarray]
    threshold: Callable[..., np.ndarray]
    threshold_float: Callable[..., np.ndarray]
    maxpool_bits: Callable[..., np.ndarray]
    maxpool2d: Callable[..., np.ndarray]


@functools.cache
def fast_kernels() -> LayerKernels:
    """The Numba kernels (imported on the first call)."""
    from edgecl.kernels import (
        binary_conv2d,
        binary_dense,
        maxpool2d,
        maxpool_bits,
        threshold,
        threshold_float,
    )

    return LayerKernels(
        binary_conv2d=binary_conv2d,
        binary_dense=binary_dense,
        threshold=threshold,
        threshold_float=threshold_float,
        maxpool_bits=maxpool_bits,
        maxpool2d=maxpool2d,
    )


@functools.cache
def reference_kernels() -> LayerKernels:
    """The reference twins as a kernel set (``threads`` is accepted and ignored: the twins
    are single-threaded)."""
    from edgecl.kernels import (
        binary_conv2d_reference,
        binary_dense_reference,
        maxpool2d_reference,
        maxpool_bits_reference,
        threshold_float_reference,
        threshold_reference,
    )

    def conv_reference(x, w, n_channels, *, threads=1, **options):
        return binary_conv2d_reference(x, w, n_channels, **options).astype(np.int32)

    def dense_reference(x, w, n, *, threads=1):
        return binary_dense_reference(x, w, n).astype(np.int32)

    return LayerKernels(
        binary_conv2d=conv_reference,
        binary_dense=dense_reference,
        threshold=threshold_reference,
        threshold_float=threshold_float_reference,
        maxpool_bits=maxpool_bits_reference,
        maxpool2d=maxpool2d_reference,
    )


def __getattr__(name: str) -> Any:
    if name == "FAST_KERNELS":
        return fast_kernels()
    if name == "REFERENCE_KERNELS":
        return reference_kernels()
    raise AttributeError(f"module 'edgecl.program.kernelset' has no attribute {name!r}")
