"""The Keras / Larq layers edgecl imports, read from their configs and weights into small
typed specs, each with its float32 forward in NumPy (what TensorFlow computes in
inference; :mod:`edgecl.larq.reference` chains them, :mod:`edgecl.larq.lower` reads the
thresholds off them).

Larq's sign quantizers (``ste_sign``, ``approx_sign``, ``swish_sign``) are all
``sign(x)`` with ``sign(0) = +1`` in the forward pass; they differ only in their
gradients. Padding follows TensorFlow: ``'same'`` gives ``ceil(H / stride)`` outputs with
``max((out - 1) * stride + k - H, 0)`` pad pixels, the odd one at the bottom / right;
Larq's ``pad_values`` fills them (1.0 after a sign quantizer: +1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecl.errors import ExportError
from edgecl.kernels.first_layer import conv2d_float
from edgecl.kernels.pool import maxpool2d_reference
from edgecl.larq.keras_h5 import KerasLayer, KerasModel

__all__ = [
    "ACTIVATIONS",
    "SIGN_QUANTIZERS",
    "SUPPORTED_LAYERS",
    "Activation",
    "BatchNorm",
    "Conv",
    "Dense",
    "Flatten",
    "Pool",
    "Rescale",
    "Spec",
    "parse_model",
    "tf_pads",
]

#: The quantizers read as sign (forward pass), by config name and class name.
SIGN_QUANTIZERS = frozenset(
    {"ste_sign", "approx_sign", "swish_sign", "SteSign", "ApproxSign", "SwishSign"}
)

_F32 = np.float32

#: Element-wise activations on float32, all non-decreasing (so a sign after them gives one
#: threshold, and a max-pool commutes with them). ``linear`` is the identity.
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, _F32(0)),
    "relu6": lambda x: np.clip(x, _F32(0), _F32(6)),
    "tanh": lambda x: np.tanh(x).astype(_F32),
    "sigmoid": lambda x: (_F32(1) / (_F32(1) + np.exp(-x))).astype(_F32),
    "hard_tanh": lambda x: np.clip(x, _F32(-1), _F32(1)),
    "htanh": lambda x: np.clip(x, _F32(-1), _F32(1)),
}

SUPPORTED_LAYERS: tuple[str, ...] = (
    "QuantConv2D / Conv2D (groups 1, dilation 1, strides equal, 'same' or 'valid'; input "
    "quantizer none or a sign, kernel quantizer none or a sign, pad_values 0 or 1)",
    "QuantDense / Dense (input and kernel quantizer none or a sign)",
    "BatchNormalization (last axis)",
    "MaxPool2D / MaxPooling2D ('valid')",
    "Flatten",
    "Activation (" + ", ".join(sorted(ACTIVATIONS)) + ", a sign quantizer; softmax last)",
    "Rescaling (first layer)",
    "Dropout (skipped)",
)


def _fail(layer: KerasLayer, why: str) -> ExportError:
    return ExportError(
        f"cannot import layer {layer.name!r} ({layer.class_name}): {why}; supported: "
        + "; ".join(SUPPORTED_LAYERS),
        module_path=layer.name,
        module_type=layer.class_name,
        supported=SUPPORTED_LAYERS,
    )


def sign(x: np.ndarray) -> np.ndarray:
    """Larq's sign: +1 where ``x >= 0`` (sign(0) = +1), else -1, float32."""
    return np.where(np.asarray(x) >= 0, _F32(1), _F32(-1))


def _quantizer(layer: KerasLayer, key: str) -> bool:
    """True for a sign quantizer, False for none; anything else is refused."""
    q = layer.config.get(key)
    if q is None:
        return False
    name = q if isinstance(q, str) else q.get("class_name") if isinstance(q, Mapping) else None
    inner = q.get("config", {}).get("name") if isinstance(q, Mapping) else None
    if name in SIGN_QUANTIZERS or inner in SIGN_QUANTIZERS:
        return True
    raise _fail(
        layer, f"{key} {name or q!r} (expected none or one of ste_sign, approx_sign, swish_sign)"
    )


def _activation(layer: KerasLayer, value: Any) -> str:
    name = value if isinstance(value, str) else None
    if isinstance(value, Mapping):
        name = value.get("config", {}).get("name") or value.get("class_name")
    if name in ACTIVATIONS or name in SIGN_QUANTIZERS or name == "softmax":
        return str(name)
    raise _fail(layer, f"activation {value!r}")


def tf_pads(padding: str, size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow's (before, after) padding of one spatial axis."""
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _pair(layer: KerasLayer, key: str, default: Any = None) -> tuple[int, int]:
    v = layer.config.get(key, default)
    if isinstance(v, int):
        return v, v
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return int(v[0]), int(v[1])
    raise _fail(layer, f"{key} {v!r}")


@dataclass(frozen=True)
class Conv:
    """A 2-D conv: ``kernel`` (kh, kw, C, O) float32 as the layer uses it (signs where the
    kernel quantizer is a sign), ``bias`` (O,) or None."""

    layer: KerasLayer
    kernel: np.ndarray
    bias: np.ndarray | None
    stride: int
    padding: str
    pad_value: float
    input_sign: bool
    binary_kernel: bool
    activation: str

    def pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) on an h x w input."""
        kh, kw = self.kernel.shape[:2]
        return (
            *tf_pads(self.padding, h, kh, self.stride),
            *tf_pads(self.padding, w, kw, self.stride),
        )

    def conv(self, x: np.ndarray) -> np.ndarray:
        """The conv alone (no bias): float64 sums of float32 products, to float32."""
        if self.input_sign:
            x = sign(x)
        weight = np.ascontiguousarray(self.kernel.transpose(3, 0, 1, 2))
        return conv2d_float(
            x.astype(_F32),
            weight,
            None,
            pads=self.pads(*x.shape[1:3]),
            stride=self.stride,
            pad_value=self.pad_value,
        )


@dataclass(frozen=True)
class Dense:
    """A dense layer: ``kernel`` (F, O) float32 as the layer uses it, ``bias`` (O,) or None."""

    layer: KerasLayer
    kernel: np.ndarray
    bias: np.ndarray | None
    input_sign: bool
    binary_kernel: bool
    activation: str

    def dense(self, x: np.ndarray) -> np.ndarray:
        """The product alone (no bias), float64 sums to float32."""
        if self.input_sign:
            x = sign(x)
        return (x.astype(np.float64) @ self.kernel.astype(np.float64)).astype(_F32)


@dataclass(frozen=True)
class BatchNorm:
    """Inference BatchNormalization over the last axis, as TensorFlow computes it in float32:
    ``(x - mean) * (rsqrt(var + eps) * gamma) + beta`` (the fused kernel, 4-D inputs) or
    ``x * inv + (beta - mean * inv)`` (``tf.nn.batch_normalization``, other ranks)."""

    layer: KerasLayer
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float
    axis: int = -1

    def __call__(self, x: np.ndarray, *, rank: int) -> np.ndarray:
        inv = (_F32(1) / np.sqrt(self.var + _F32(self.eps))).astype(_F32) * self.gamma
        if rank == 4:
            return ((x - self.mean) * inv + self.beta).astype(_F32)
        return (x * inv + (self.beta - self.mean * inv)).astype(_F32)


@dataclass(frozen=True)
class Pool:
    """Max pooling, 'valid': ``size`` x ``size`` windows every ``stride`` pixels."""

    layer: KerasLayer
    size: int
    stride: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return maxpool2d_reference(
            np.ascontiguousarray(x, _F32), size=self.size, stride=self.stride
        )


@dataclass(frozen=True)
class Flatten:
    """(H, W, C) -> (H*W*C,), channels last (the device's order too)."""

    layer: KerasLayer


@dataclass(frozen=True)
class Activation:
    """An element-wise activation (:data:`ACTIVATIONS`), a sign, or a final softmax."""

    layer: KerasLayer
    name: str

    @property
    def is_sign(self) -> bool:
        return self.name in SIGN_QUANTIZERS

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return sign(x) if self.is_sign else ACTIVATIONS[self.name](x)


@dataclass(frozen=True)
class Rescale:
    """Keras' Rescaling: ``x * scale + offset`` (first layer only)."""

    layer: KerasLayer
    scale: float
    offset: float


Spec = Conv | Dense | BatchNorm | Pool | Flatten | Activation | Rescale


def _weights(layer: KerasLayer, n: int) -> tuple[np.ndarray, ...]:
    if len(layer.weights) != n:
        raise _fail(layer, f"expected {n} weight arrays, got {len(layer.weights)}")
    return tuple(np.asarray(w, _F32) for w in layer.weights)


def _conv(layer: KerasLayer) -> Conv:
    cfg = layer.config
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise _fail(layer, f"data_format {cfg.get('data_format')!r}")
    if _pair(layer, "dilation_rate", 1) != (1, 1) or int(cfg.get("groups", 1)) != 1:
        raise _fail(layer, "dilation or groups other than 1")
    sh, sw = _pair(layer, "strides", 1)
    if sh != sw:
        raise _fail(layer, f"unequal strides ({sh}, {sw})")
    padding = cfg.get("padding")
    if padding not in ("same", "valid"):
        raise _fail(layer, f"padding {padding!r}")
    input_sign = _quantizer(layer, "input_quantizer")
    binary_kernel = _quantizer(layer, "kernel_quantizer")
    pad_value = float(cfg.get("pad_values", 0.0))
    if pad_value not in (0.0, 1.0):
        raise _fail(layer, f"pad_values {pad_value} (expected 0 or 1)")
    use_bias = bool(cfg.get("use_bias", True))
    ws = _weights(layer, 2 if use_bias else 1)
    kernel = ws[0]
    if kernel.ndim != 4:
        raise _fail(layer, f"a kernel of shape {kernel.shape}")
    if binary_kernel:
        kernel = sign(kernel)
    return Conv(
        layer,
        kernel,
        ws[1] if use_bias else None,
        sh,
        padding,
        pad_value,
        input_sign,
        binary_kernel,
        _activation(layer, cfg.get("activation", "linear")),
    )


def _dense(layer: KerasLayer) -> Dense:
    cfg = layer.config
    input_sign = _quantizer(layer, "input_quantizer")
    binary_kernel = _quantizer(layer, "kernel_quantizer")
    use_bias = bool(cfg.get("use_bias", True))
    ws = _weights(layer, 2 if use_bias else 1)
    kernel = sign(ws[0]) if binary_kernel else ws[0]
    if kernel.ndim != 2:
        raise _fail(layer, f"a kernel of shape {kernel.shape}")
    return Dense(
        layer,
        kernel,
        ws[1] if use_bias else None,
        input_sign,
        binary_kernel,
        _activation(layer, cfg.get("activation", "linear")),
    )


def _batchnorm(layer: KerasLayer) -> BatchNorm:
    cfg = layer.config
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    scale, center = bool(cfg.get("scale", True)), bool(cfg.get("center", True))
    ws = list(_weights(layer, 2 + scale + center))
    gamma = ws.pop(0) if scale else None
    beta = ws.pop(0) if center else None
    mean, var = ws
    gamma = np.ones_like(mean) if gamma is None else gamma
    beta = np.zeros_like(mean) if beta is None else beta
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise _fail(layer, f"axis {axis!r} (expected the last axis)")
    return BatchNorm(layer, gamma, beta, mean, var, float(cfg.get("epsilon", 1e-3)), axis)


def _pool(layer: KerasLayer) -> Pool:
    cfg = layer.config
    k = _pair(layer, "pool_size", 2)
    s = _pair(layer, "strides", None) if cfg.get("strides") is not None else k
    if k[0] != k[1] or s[0] != s[1] or cfg.get("padding", "valid") != "valid":
        raise _fail(layer, "expected square windows and strides, padding 'valid'")
    if cfg.get("data_format", "channels_last") not in (None, "channels_last"):
        raise _fail(layer, f"data_format {cfg.get('data_format')!r}")
    return Pool(layer, k[0], s[0])


def _parse(layer: KerasLayer, first: bool) -> Spec | None:
    kind = layer.class_name
    if kind in ("QuantConv2D", "Conv2D"):
        return _conv(layer)
    if kind in ("QuantDense", "Dense"):
        return _dense(layer)
    if kind == "BatchNormalization":
        return _batchnorm(layer)
    if kind in ("MaxPool2D", "MaxPooling2D"):
        return _pool(layer)
    if kind == "Flatten":
        if layer.config.get("data_format", "channels_last") not in (None, "channels_last"):
            raise _fail(layer, f"data_format {layer.config.get('data_format')!r}")
        return Flatten(layer)
    if kind == "Activation":
        return Activation(layer, _activation(layer, layer.config.get("activation")))
    if kind == "Rescaling":
        if not first:
            raise _fail(layer, "Rescaling is supported as the first layer only")
        return Rescale(
            layer, float(layer.config.get("scale", 1.0)), float(layer.config.get("offset", 0.0))
        )
    if kind == "Dropout":
        return None
    raise _fail(layer, "unsupported layer type")


def parse_model(model: KerasModel) -> tuple[Spec, ...]:
    """Every layer of ``model`` as a spec (Dropout left out); :class:`ExportError` names the
    first layer edgecl cannot import, with its type."""
    specs = []
    for i, layer in enumerate(model.layers):
        spec = _parse(layer, first=i == 0)
        if spec is not None:
            specs.append(spec)
    return tuple(specs)
