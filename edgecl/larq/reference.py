"""The Keras / Larq model's forward pass in plain float32 NumPy, layer by layer, as
TensorFlow computes it in inference: the oracle an import is verified against (it shares
nothing with the lowering but the layer specs: no thresholds, no packed bits)."""

from __future__ import annotations

import numpy as np

from edgecl.larq.layers import (
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Flatten,
    Pool,
    Rescale,
    Spec,
    sign,
)

__all__ = ["reference_forward"]


def reference_forward(
    specs: tuple[Spec, ...], x: np.ndarray, *, input_scale: float = 1.0, mean=0.0, std=1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(bits, logits)`` of raw samples ``x`` (n, H, W[, C]): the signs at the head's input
    (uint8 (n, D), 1 for +1) and the head's output before any softmax (float32).
    ``(x * input_scale - mean) / std`` is fed to the model first."""
    x = np.asarray(x, np.float32)
    if x.ndim == 3:
        x = x[..., None]
    v = (x * np.float32(input_scale) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    v = v.astype(np.float32)
    layers = list(specs)
    while isinstance(layers[-1], Activation) and layers[-1].name in ("softmax", "linear"):
        layers.pop()
    *body, head = layers
    for spec in body:
        v = _step(spec, v)
    z = v.reshape(len(v), -1)
    return (z >= 0).astype(np.uint8), _step(head, z)


def _step(spec: Spec, v: np.ndarray) -> np.ndarray:
    if isinstance(spec, Conv):
        y = spec.conv(v)
    elif isinstance(spec, Dense):
        y = spec.dense(v)
    elif isinstance(spec, BatchNorm):
        return spec(v, rank=v.ndim)
    elif isinstance(spec, Pool):
        return spec(v)
    elif isinstance(spec, Flatten):
        return v.reshape(len(v), -1)
    elif isinstance(spec, Activation):
        return sign(v) if spec.is_sign else spec(v)
    elif isinstance(spec, Rescale):
        return (v * np.float32(spec.scale) + np.float32(spec.offset)).astype(np.float32)
    else:  # pragma: no cover - parse_model gives no other spec
        raise TypeError(f"unexpected spec {type(spec).__name__}")
    if spec.bias is not None:
        y = (y + spec.bias).astype(np.float32)
    if spec.activation not in ("linear", "softmax"):
        y = Activation(spec.layer, spec.activation)(y)
    return y
