"""The device program run with the NumPy ``_reference`` twins of every kernel: the slow,
obviously-correct path that ``edgecl bench latency`` checks the fast one against."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgecl.device.runtime import CHUNK, LayerKernels, Runtime, run_layers
from edgecl.kernels import (
    binary_conv2d_reference,
    binary_dense_reference,
    binary_float_dense_reference,
    maxpool2d_reference,
    maxpool_bits_reference,
    threshold_float_reference,
    threshold_reference,
)

__all__ = ["REFERENCE_KERNELS", "embed_reference", "logits_reference", "run_layers_reference"]


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
"""The reference twins as a kernel set for :func:`edgecl.device.runtime.run_layers`
(``threads`` is accepted and ignored: the twins are single-threaded)."""


def run_layers_reference(
    x: np.ndarray, layers: list[Mapping[str, Any]], arrays: Mapping[str, np.ndarray]
) -> np.ndarray:
    """:func:`edgecl.device.runtime.run_layers` with the reference kernels."""
    return run_layers(x, layers, arrays, kernels=REFERENCE_KERNELS)


def embed_reference(rt: Runtime, x: object) -> np.ndarray:
    """The packed embeddings of raw samples through the reference kernels."""
    xf = rt.input_spec.check(x)
    parts = [
        run_layers_reference(rt.input_spec.normalize(xf[i : i + CHUNK]), rt.layers, rt.arrays)
        for i in range(0, xf.shape[0], CHUNK)
    ]
    return np.concatenate(parts)


def logits_reference(rt: Runtime, x: object) -> np.ndarray:
    """Head logits through the reference kernels (float32)."""
    z = embed_reference(rt, x)
    return binary_float_dense_reference(z, rt.head_weight, rt.n_bits) + rt.head_bias
