"""The device program run with the NumPy ``_reference`` twins of every kernel: the slow,
obviously-correct path that ``edgecl bench latency`` checks the fast one against."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgecl.device.runtime import CHUNK, Runtime, _conv2d_float, _repeat
from edgecl.kernels import (
    binary_conv2d_reference,
    binary_dense_reference,
    binary_float_dense_reference,
    maxpool2d_reference,
    maxpool_bits_reference,
    threshold_float_reference,
    threshold_reference,
)

__all__ = ["embed_reference", "logits_reference", "run_layers_reference"]


def run_layers_reference(
    x: np.ndarray, layers: list[Mapping[str, Any]], arrays: Mapping[str, np.ndarray]
) -> np.ndarray:
    """:func:`edgecl.device.runtime.run_layers` with the reference kernels."""
    v = x
    for layer in layers:
        op = layer["op"]
        if op == "conv2d_float":
            v = _conv2d_float(v, layer, arrays)
        elif op == "dense_float":
            y = v.astype(np.float64) @ arrays[layer["weight"]].astype(np.float64)
            if layer.get("bias") is not None:
                y += arrays[layer["bias"]]
            v = y.astype(np.float32)
        elif op == "affine":
            v = v.astype(np.float32) * arrays[layer["scale"]] + arrays[layer["shift"]]
        elif op == "maxpool_float":
            v = maxpool2d_reference(v, size=int(layer["size"]), stride=int(layer["stride"]))
        elif op == "maxpool_bits":
            v = maxpool_bits_reference(v, size=int(layer["size"]), stride=int(layer["stride"]))
        elif op == "flatten":
            v = np.ascontiguousarray(v).reshape(v.shape[0], -1)
        elif op == "threshold":
            r = int(layer["repeat"])
            v = threshold_reference(
                _repeat(v, r), arrays[layer["thresholds"]], arrays[layer["flip"]]
            )
        elif op == "threshold_float":
            r = int(layer["repeat"])
            v = threshold_float_reference(
                _repeat(v, r), arrays[layer["thresholds"]], arrays[layer["flip"]]
            )
        elif op == "conv2d_binary":
            v = binary_conv2d_reference(
                v,
                arrays[layer["weight"]],
                int(layer["in_shape"][2]),
                stride=int(layer["stride"]),
                padding=layer["padding"],
                pad_value=int(layer["pad_value"]),
            ).astype(np.int32)
        elif op == "dense_binary":
            acc = binary_dense_reference(v, arrays[layer["weight"]], int(layer["n"]))
            v = (acc + int(layer["offset"])).astype(np.int32)
        else:
            raise ValueError(f"unknown layer op {op!r}")
    return v


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
