"""Lower a Keras / Larq model (:mod:`edgecl.larq.layers` specs) to edgecl's layer program.

The rules are the torch exporter's (:mod:`edgecl.export.lower`), with TensorFlow's float32
forward (:mod:`edgecl.larq.layers`) as the function the thresholds are read off:

- **BatchNorm + sign -> one threshold per channel.** A binary layer's accumulator is an
  integer in ``[-n, n]`` (n = fan-in; TensorFlow sums ±1 exactly in float32). The bias,
  BatchNorms and monotone activations between it and the next sign are evaluated on every
  integer of that range and the threshold read off: ``acc >= t`` (``acc <= t`` where the
  bit falls, the flip), with extreme thresholds for constant channels. After a float
  layer the same is done by bisection over all float32 values.
- **Max-pool after the threshold.** sign is monotone, so ``sign(max(.)) == max(sign(.))``:
  the pool runs on bits as an OR. A BatchNorm after a pool makes the value float first
  (an exact ``affine``, a float pool), then thresholds it.
- **The head reads signs.** The last Dense takes ``s = 2 z - 1`` of the embedding bits
  ``z``: ``s @ W + b == z @ (2 W) + (b - sum(W))``, the {0,1} head edgecl stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecl.errors import ExportError
from edgecl.kernels.bits import WORD_BITS, pack_signs
from edgecl.larq.layers import (
    SUPPORTED_LAYERS,
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Flatten,
    Pool,
    Rescale,
    Spec,
)
from edgecl.larq.layers import _fail as _layer_error
from edgecl.program.lowering import (
    append_op,
    binary_dense,
    bisect_float_thresholds,
    int_thresholds_from_bits,
)
from edgecl.program.ops import (
    Affine,
    Conv2dBinary,
    Conv2dFloat,
    DenseBinary,
    DenseFloat,
    MaxPoolBits,
    MaxPoolFloat,
    Op,
    Threshold,
    ThresholdFloat,
)
from edgecl.program.ops import Flatten as FlattenOp

__all__ = ["Imported", "lower_specs"]

_F32 = np.float32
Fn = Callable[[np.ndarray], np.ndarray]


def _fail(spec: Any, why: str) -> ExportError:
    """The ExportError naming ``spec``'s Keras layer (:mod:`edgecl.larq.layers`' rule)."""
    return _layer_error(spec.layer, why)


@dataclass
class Imported:
    """The device program of a Keras model: ``layers`` (ops), their ``arrays``, the input
    spec (``input``, a manifest dict), the ``embedding`` spec, the {0,1} head
    (``head_weight`` (D, C), ``head_bias`` (C,)), the layer names of the embedding and the
    head."""

    layers: tuple[Op, ...]
    arrays: dict[str, np.ndarray]
    input: dict[str, Any]
    embedding: dict[str, Any]
    head_weight: np.ndarray
    head_bias: np.ndarray
    embedding_layer: str
    head_layer: str


@dataclass
class _Value:
    kind: str  # "float" | "int" | "bits"
    shape: tuple[int, ...]  # per sample: (H, W, C) or (F,)
    fan_in: int = 0
    # pending element-wise transforms: (layer name, fn, (scale, shift) if affine else None)
    fx: list[tuple[str, Fn, tuple[np.ndarray, np.ndarray] | None]] = field(default_factory=list)
    struct: list[Pool | Flatten] = field(default_factory=list)
    flat_from: tuple[int, int, int] | None = None


def _int_thresholds(fn: Fn, c: int, n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds of integer accumulators in [-n, n], read off ``fn`` on every integer."""
    vals = np.arange(-n, n + 1, dtype=np.int64)
    # fn is element-wise per channel: every integer for all channels at once, in blocks of
    # rows that keep a (rows, C) table near 4M values
    rows = max(1, (1 << 22) // c)
    bits = np.empty((c, len(vals)), bool)
    for k0 in range(0, len(vals), rows):
        part = vals[k0 : k0 + rows].astype(_F32)
        bits[:, k0 : k0 + len(part)] = np.asarray(fn(np.repeat(part[:, None], c, axis=1))).T
    return int_thresholds_from_bits(
        bits, n, lambda o: f"{what}: channel {o}: the sign is not monotone in the accumulator"
    )


def _float_thresholds(fn: Fn, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds on float32 inputs, by bisection over every float32 value per channel."""

    def g(vals: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # the float32 extremes overflow
            return np.asarray(fn(vals[None, :].astype(_F32)))[0]

    return bisect_float_thresholds(g, c)


def _binary_padding(spec: Conv, pads: tuple[int, int, int, int]) -> str | tuple[int, ...]:
    kh, kw = spec.kernel.shape[:2]
    if pads == (0, 0, 0, 0):
        return "valid"
    if pads == (kh // 2, kh // 2, kw // 2, kw // 2):
        return "same"
    return pads


class _Lowerer:
    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.ops: list[Op] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.v = _Value("float", shape)

    def emit(self, op: type[Op], source: str, out_shape, arrays: dict, **params) -> None:
        self.v.shape = append_op(
            self.ops, self.arrays, op, source, self.v.shape, out_shape, arrays, **params
        )

    def _struct(self, pool_op: type[MaxPoolBits | MaxPoolFloat]) -> None:
        for s in self.v.struct:
            if isinstance(s, Pool):
                if len(self.v.shape) != 3:
                    raise _fail(s, f"a pool on a flat value of shape {self.v.shape}")
                h, w, c = self.v.shape
                if h < s.size or w < s.size:
                    raise _fail(s, f"a {s.size}x{s.size} pool on a {h}x{w} input")
                out = ((h - s.size) // s.stride + 1, (w - s.size) // s.stride + 1, c)
                self.emit(pool_op, s.layer.name, out, {}, size=s.size, stride=s.stride)
            elif len(self.v.shape) == 3:
                h, w, c = self.v.shape
                self.emit(FlattenOp, s.layer.name, (h * w * c,), {})
                self.v.flat_from = (h, w, c)
        self.v.struct = []

    def to_bits(self, source: str) -> None:
        """Make the current value bits: threshold the pending transforms + sign."""
        v = self.v
        if v.kind != "bits":
            fx = [f for _, f, _ in v.fx]

            def fn(x: np.ndarray) -> np.ndarray:
                for f in fx:
                    x = f(x)
                return np.asarray(x) >= 0

            c = v.shape[-1]
            if v.kind == "int":
                thr, flip = _int_thresholds(fn, c, v.fan_in, source)
                op: type[Threshold | ThresholdFloat] = Threshold
            else:
                thr, flip = _float_thresholds(fn, c)
                op = ThresholdFloat
            where = "+".join(dict.fromkeys([name for name, _, _ in v.fx] + [source]))
            self.emit(op, where, v.shape, {"thresholds": thr, "flip": flip}, repeat=1)
            v.kind, v.fx = "bits", []
        self._struct(MaxPoolBits)

    def to_float(self, spec: Any) -> None:
        """Make the current value float: pending affine transforms become one affine op."""
        v = self.v
        if v.kind == "bits":
            raise _fail(
                spec,
                "a float layer on binary activations (expected a sign "
                "quantizer on its input and a sign kernel quantizer)",
            )
        for name, _, affine in v.fx:
            if affine is None:
                raise _fail(spec, f"an activation ({name}) on float values no sign follows")
        c = v.shape[-1]
        scale, shift = np.ones(c), np.zeros(c)
        for _, _, (a, b) in v.fx:  # type: ignore[misc]
            scale, shift = scale * a, shift * a + b
        if v.kind == "int" or v.fx:
            arrays = {"scale": scale.astype(_F32), "shift": shift.astype(_F32)}
            self.emit(Affine, spec.layer.name, v.shape, arrays)
        v.kind, v.fx = "float", []
        self._struct(MaxPoolFloat)

    def _bias_activation(self, spec: Conv | Dense, rank: int) -> None:
        if spec.bias is not None:
            b = spec.bias
            self.v.fx.append(
                (
                    spec.layer.name,
                    lambda y, b=b: (y + b).astype(_F32),
                    (np.ones(len(b)), b.astype(np.float64)),
                )
            )
        if spec.activation in ("linear", "softmax"):
            if spec.activation == "softmax":
                raise _fail(spec, "a softmax activation before the head")
            return
        act = Activation(spec.layer, spec.activation)
        self.activation(act)

    def conv(self, spec: Conv) -> None:
        if spec.input_sign and not spec.binary_kernel:
            raise _fail(spec, "a sign input quantizer with a float kernel")
        binary = spec.input_sign
        if binary:
            self.to_bits(spec.layer.name)
        else:
            self.to_float(spec)
        if len(self.v.shape) != 3:
            raise _fail(spec, f"a conv on a flat value of shape {self.v.shape}")
        h, w, c = self.v.shape
        kh, kw, cin, o = spec.kernel.shape
        if cin != c:
            raise _fail(spec, f"{cin} input channels for a value with {c}")
        pads = spec.pads(h, w)
        s = spec.stride
        ho = (h + pads[0] + pads[1] - kh) // s + 1
        wo = (w + pads[2] + pads[3] - kw) // s + 1
        if ho < 1 or wo < 1:
            raise _fail(spec, f"a {kh}x{kw} kernel on a {h}x{w} input")
        weight = np.ascontiguousarray(spec.kernel.transpose(3, 0, 1, 2))  # (O, kh, kw, C)
        if binary:
            self.emit(
                Conv2dBinary,
                spec.layer.name,
                (ho, wo, o),
                {"weight": pack_signs(weight, axis=-1)},
                stride=s,
                padding=_binary_padding(spec, pads),
                pad_value=int(spec.pad_value),
                bits=1,
            )
            self.v.kind, self.v.fan_in = "int", c * kh * kw
        else:
            self.emit(
                Conv2dFloat,
                spec.layer.name,
                (ho, wo, o),
                {"weight": weight.astype(_F32), "bias": None},
                stride=s,
                pads=pads,
                pad_value=float(spec.pad_value),
                bits=32,
            )
            self.v.kind = "float"
        self._bias_activation(spec, 4)

    def dense(self, spec: Dense) -> None:
        if spec.input_sign and not spec.binary_kernel:
            raise _fail(spec, "a sign input quantizer with a float kernel (only the head)")
        binary = spec.input_sign
        if binary:
            self.to_bits(spec.layer.name)
        else:
            self.to_float(spec)
        if len(self.v.shape) != 1:
            raise _fail(spec, f"a dense layer on a value of shape {self.v.shape} (no Flatten)")
        (f,) = self.v.shape
        fin, o = spec.kernel.shape
        if fin != f:
            raise _fail(spec, f"{fin} inputs for a value with {f}")
        if binary:
            # spec.kernel.T: (O, F), F in (H, W, C) order
            arrays, params = binary_dense(spec.kernel.T, self.v.flat_from)
            self.emit(DenseBinary, spec.layer.name, (o,), arrays, **params)
            self.v.kind, self.v.fan_in = "int", f
        else:
            self.emit(
                DenseFloat,
                spec.layer.name,
                (o,),
                {"weight": np.ascontiguousarray(spec.kernel, _F32), "bias": None},
                bits=32,
            )
            self.v.kind = "float"
        self.v.flat_from = None
        self._bias_activation(spec, 2)

    def batchnorm(self, spec: BatchNorm) -> None:
        v = self.v
        rank = len(v.shape) + 1
        if spec.axis not in (-1, rank - 1):
            raise _fail(spec, f"axis {spec.axis} (expected the last axis of a rank-{rank} value)")
        if v.kind == "bits":
            raise _fail(spec, "a BatchNormalization on binary activations")
        if v.struct:
            self.to_float(spec)  # a pool before the BatchNorm: pool the float values
        if spec.gamma.shape != (v.shape[-1],):
            raise _fail(spec, f"{spec.gamma.shape[0]} features for a value of shape {v.shape}")
        inv = spec.gamma.astype(np.float64) / np.sqrt(spec.var.astype(np.float64) + spec.eps)
        affine = (inv, spec.beta.astype(np.float64) - spec.mean.astype(np.float64) * inv)
        v.fx.append((spec.layer.name, lambda x, bn=spec, r=rank: bn(x, rank=r), affine))

    def structural(self, spec: Pool | Flatten) -> None:
        if self.v.kind == "bits":
            self.v.struct.append(spec)
            self._struct(MaxPoolBits)
        else:
            self.v.struct.append(spec)

    def activation(self, spec: Activation) -> None:
        if spec.name == "linear":
            return
        if spec.is_sign:
            self.to_bits(spec.layer.name)
            return
        if spec.name == "softmax":
            raise _fail(spec, "a softmax before the head")
        if self.v.kind == "bits":
            raise _fail(spec, f"activation {spec.name} on binary activations")
        self.v.fx.append((spec.layer.name, spec, None))


def _input(specs: list[Spec], shape: tuple[int, int, int], scale, mean, std) -> dict[str, Any]:
    c = shape[2]

    def per_channel(v: Any, what: str) -> list[float]:
        vals = [float(v)] if np.isscalar(v) else [float(a) for a in v]
        if len(vals) not in (1, c):
            raise ValueError(f"expected 1 or {c} {what} values, got {len(vals)}")
        return [vals[i % len(vals)] for i in range(c)]

    spec = {
        "shape": list(shape),
        "layout": "NHWC",
        "scale": float(scale),
        "mean": per_channel(mean, "mean"),
        "std": per_channel(std, "std"),
    }
    if specs and isinstance(specs[0], Rescale):
        r = specs.pop(0)
        plain = (
            float(scale) == 1.0
            and all(m == 0 for m in spec["mean"])
            and all(s == 1 for s in spec["std"])
        )
        if not plain:
            raise ValueError(
                f"the model rescales its input itself (layer {r.layer.name!r}, Rescaling "
                f"scale {r.scale}, offset {r.offset}): expected no input scale, mean or std"
            )
        # (x * scale - mean) / std with mean = -offset, std = 1: x * scale + offset
        spec.update(scale=r.scale, mean=[-r.offset] * c, std=[1.0] * c)
    return spec


def _head(specs: list[Spec]) -> Dense:
    while specs and isinstance(specs[-1], Activation) and specs[-1].name in ("softmax", "linear"):
        specs.pop()
    if not specs or not isinstance(specs[-1], Dense):
        last = specs[-1] if specs else None
        raise ExportError(
            "expected the model to end in a Dense / QuantDense head (then an optional "
            f"softmax), got {last.layer.name!r} ({last.layer.class_name})"
            if last
            else "expected the model to end in a Dense / QuantDense head, got no layers",
            module_path=None if last is None else last.layer.name,
            module_type=None if last is None else last.layer.class_name,
            supported=SUPPORTED_LAYERS,
        )
    head = specs.pop()
    if head.activation not in ("linear", "softmax"):
        raise _fail(head, f"a head activation {head.activation!r} (expected linear or softmax)")
    return head


def lower_specs(
    specs: tuple[Spec, ...],
    input_shape: tuple[int, ...],
    *,
    embedding_layer: str | None = None,
    input_scale: float = 1.0,
    mean: Any = 0.0,
    std: Any = 1.0,
) -> Imported:
    """Lower the model's specs (:func:`edgecl.larq.layers.parse_model`) for samples of
    ``input_shape`` (H, W, C) to the device program; the head is the last Dense, the
    embedding the bits of its input. ``embedding_layer`` names the layer whose output bits
    are the embedding (default: the last conv or dense layer before the head); layers
    between it and the head may only be BatchNorm, activations, pools and Flatten."""
    if len(input_shape) != 3 or not all(int(s) > 0 for s in input_shape):
        raise ExportError(f"expected an (H, W, C) image input, got {tuple(input_shape)}")
    shape = tuple(int(s) for s in input_shape)
    rest = list(specs)
    inp = _input(rest, shape, input_scale, mean, std)  # type: ignore[arg-type]
    head = _head(rest)
    computes = [s for s in rest if isinstance(s, (Conv, Dense))]
    if not computes:
        raise _fail(head, "a head with no conv or dense layer before it")
    default = computes[-1].layer.name
    names = [s.layer.name for s in rest]
    if embedding_layer is not None and embedding_layer != default:
        if embedding_layer not in names:
            raise ExportError(
                f"--embedding-layer {embedding_layer!r}: expected a layer of the model "
                f"before the head, one of {names}"
            )
        after = [
            s.layer.name
            for s in rest[names.index(embedding_layer) + 1 :]
            if isinstance(s, (Conv, Dense))
        ]
        if after:
            raise ExportError(
                f"--embedding-layer {embedding_layer!r}: the layers {after} compute after it; "
                "edgecl's head G is one float Dense on the embedding bits (the model's head "
                f"{head.layer.name!r} reads the output of {default!r})"
            )
    low = _Lowerer(shape)  # type: ignore[arg-type]
    for spec in rest:
        if isinstance(spec, Conv):
            low.conv(spec)
        elif isinstance(spec, Dense):
            low.dense(spec)
        elif isinstance(spec, BatchNorm):
            low.batchnorm(spec)
        elif isinstance(spec, (Pool, Flatten)):
            low.structural(spec)
        elif isinstance(spec, Activation):
            low.activation(spec)
        else:  # a Rescaling not first
            raise _fail(spec, "Rescaling is supported as the first layer only")
    if not head.input_sign and low.v.kind != "bits":
        raise _fail(
            head,
            "a head on float values: edgecl's head reads the embedding bits; give it a sign "
            "input quantizer (QuantDense(input_quantizer='ste_sign', kernel_quantizer=None)) "
            "or put Activation('ste_sign') before it",
        )
    low.to_bits(head.layer.name)
    if len(low.v.shape) != 1:
        raise _fail(head, f"a head on a value of shape {low.v.shape} (expected a Flatten)")
    flat = low.v.flat_from
    if flat is not None and flat[2] % WORD_BITS:
        raise _fail(
            head,
            f"a head on the flattened bits of a {flat[0]}x{flat[1]}x{flat[2]} feature map: "
            f"edgecl packs an embedding {WORD_BITS} bits to a word, which needs the channels "
            f"a multiple of {WORD_BITS} (or a dense embedding layer before the head)",
        )
    (d,) = low.v.shape
    w = head.kernel.astype(np.float64)
    if w.shape[0] != d:
        raise _fail(head, f"{w.shape[0]} inputs for a {d}-bit embedding")
    b = np.zeros(w.shape[1]) if head.bias is None else head.bias.astype(np.float64)
    return Imported(
        layers=tuple(low.ops),
        arrays=low.arrays,
        input=inp,
        embedding={
            "bits": d,
            "kind": "heaviside",
            "levels": 1,
            "source": embedding_layer or default,
        },
        head_weight=(2.0 * w).astype(_F32),
        head_bias=(b - w.sum(axis=0)).astype(_F32),
        embedding_layer=embedding_layer or default,
        head_layer=head.layer.name,
    )
