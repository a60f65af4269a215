"""Lower a trained :class:`~edgecl.train.backbones.BinaryNet` to the device layer program.

The program is a tuple of op dataclasses (:mod:`edgecl.program.ops`), written into a
bundle's ``layers`` list with ``to_dict()``. Two
rules make the device output equal torch's eval output:

- **BatchNorm + sign -> one threshold per channel, read off torch itself.** A binary
  layer's accumulator is an integer in ``[-n, n]`` (n = fan-in). For every channel the
  exporter evaluates torch's own float32 modules (conv bias, BatchNorm, the next sign or
  the embedding's step) on every integer of that range and reads off where the bit
  turns on: ``acc >= t`` (``acc <= t`` where gamma < 0, the flip), ties included, with
  extreme thresholds for constant channels (gamma == 0). For a float input to the step
  (the float first layer) the same is done by bisection over all float32 values.
- **MaxPool after the threshold.** sign is monotone, so ``sign(max(.)) == max(sign(.))``:
  the pool runs on bits as an OR.

Weights are packed with :func:`edgecl.kernels.pack_signs` per the bit convention; conv
kernels go from torch's (O, I, kh, kw) to (O, kh, kw, I) packed along I, and the dense
layer after a ``Flatten`` is permuted from torch's (C, H, W) order to the device's
(H, W, C) order with ``n_words(C)`` words per pixel (the unused tail bits are zero in
both operands and counted back by a constant ``offset``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from edgecl.errors import ExportError
from edgecl.export.thresholds import StepFn, float_thresholds, int_thresholds
from edgecl.kernels.bits import pack_signs
from edgecl.program.lowering import append_op, binary_dense
from edgecl.program.ops import (
    Affine,
    Conv2dBinary,
    Conv2dFloat,
    DenseBinary,
    DenseFloat,
    Flatten,
    MaxPoolBits,
    MaxPoolFloat,
    Op,
    Threshold,
    ThresholdFloat,
)
from edgecl.train.binarizers import HeavisideBinarizer, ThermometerBinarizer, ThermometerEncoder
from edgecl.train.layers import Normalize, QuantConv2d, QuantLinear

__all__ = ["SUPPORTED_MODULES", "Lowered", "check_model", "lower_model"]

SUPPORTED_MODULES: tuple[str, ...] = (
    "Normalize (first module of features)",
    "nn.Conv2d (float; groups=1, dilation=1, zero padding)",
    "nn.Linear (float)",
    "QuantConv2d (binary input and kernel, or both float; pad_value 0 or 1 when binary)",
    "QuantLinear (binary input and kernel, or both float)",
    "nn.BatchNorm1d / nn.BatchNorm2d (with running statistics, before any pool)",
    "nn.MaxPool2d (no padding, dilation 1, floor mode)",
    "nn.Flatten (start_dim=1)",
    "nn.Identity / nn.Dropout (skipped in eval)",
    "ThermometerEncoder",
    "HeavisideBinarizer / ThermometerBinarizer (last module of features)",
    "head: nn.Linear",
)


def _fail(path: str, module: nn.Module, why: str) -> ExportError:
    return ExportError(
        f"cannot export {path} ({type(module).__name__}): {why}; supported: "
        + "; ".join(SUPPORTED_MODULES),
        module_path=path,
        module_type=type(module).__name__,
        supported=SUPPORTED_MODULES,
    )


def _binary(m: QuantConv2d | QuantLinear) -> bool | None:
    """True for binary input+kernel, False for float input+kernel, None for a mix."""
    pi, pk = m.input_quantizer.precision, m.kernel_quantizer.precision
    if pi == 1 and pk == 1:
        return True
    if pi == 32 and pk == 32:
        return False
    return None


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _check_module(path: str, m: nn.Module, *, first: bool, last: bool) -> None:
    if isinstance(m, Normalize):
        if not first:
            raise _fail(path, m, "Normalize is supported only as the first module")
        return
    if first:
        raise _fail(path, m, "expected Normalize as the first module of features")
    if isinstance(m, (HeavisideBinarizer, ThermometerBinarizer)):
        if not last:
            raise _fail(path, m, "a binarizer is supported only as the last module")
        _check_module(f"{path}.proj", m.proj, first=False, last=False)
        if m.bn is not None:
            _check_module(f"{path}.bn", m.bn, first=False, last=False)
        return
    if last:
        raise _fail(path, m, "expected a HeavisideBinarizer or ThermometerBinarizer last")
    if isinstance(m, (QuantConv2d, QuantLinear)):
        kind = _binary(m)
        if kind is None:
            raise _fail(
                path,
                m,
                f"input precision {m.input_quantizer.precision} with kernel precision "
                f"{m.kernel_quantizer.precision} (expected both 1 or both 32)",
            )
        if isinstance(m, QuantConv2d) and kind and m.pad_value not in (0.0, 1.0):
            raise _fail(path, m, f"binary pad_value {m.pad_value} (expected 0 or 1)")
        return
    if isinstance(m, nn.Conv2d):
        if m.groups != 1 or _pair(m.dilation) != (1, 1) or m.padding_mode != "zeros":
            raise _fail(path, m, "groups, dilation or padding_mode other than 1, 1, 'zeros'")
        s = _pair(m.stride)
        if s[0] != s[1]:
            raise _fail(path, m, f"unequal strides {s}")
        return
    if isinstance(m, nn.Linear):
        return
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if m.running_mean is None or m.running_var is None:
            raise _fail(path, m, "BatchNorm without running statistics")
        return
    if isinstance(m, nn.MaxPool2d):
        k, s = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
        if (
            k[0] != k[1]
            or s[0] != s[1]
            or _pair(m.padding) != (0, 0)
            or _pair(m.dilation) != (1, 1)
            or m.ceil_mode
            or m.return_indices
        ):
            raise _fail(path, m, "square kernel and stride, no padding, dilation 1, floor mode")
        return
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise _fail(path, m, f"start_dim={m.start_dim}, end_dim={m.end_dim}")
        return
    if isinstance(m, (nn.Identity, nn.Dropout, ThermometerEncoder)):
        return
    raise _fail(path, m, "unsupported module type")


def check_model(model: nn.Module) -> None:
    """Raise :class:`ExportError` naming the first module the exporter cannot lower."""
    features = getattr(model, "features", None)
    head = getattr(model, "head", None)
    if not isinstance(features, nn.Sequential) or len(features) < 2:
        raise ExportError(
            f"expected a BinaryNet-like model with .features (nn.Sequential) and .head, "
            f"got {type(model).__name__}",
            module_path="features",
            module_type=type(features).__name__,
            supported=SUPPORTED_MODULES,
        )
    children = list(features.named_children())
    for i, (name, m) in enumerate(children):
        _check_module(f"features.{name}", m, first=i == 0, last=i == len(children) - 1)
    if not isinstance(head, nn.Linear):
        raise _fail("head", head if isinstance(head, nn.Module) else nn.Identity(), "not nn.Linear")
    if head.in_features != features[-1].n_bits:
        raise _fail(
            "head", head, f"{head.in_features} inputs for a {features[-1].n_bits}-bit embedding"
        )


# -- the lowering state machine ---------------------------------------------------------


@dataclass
class Lowered:
    """The device program: ``layers`` (the ops; ``op.to_dict()`` is the manifest entry),
    their ``arrays``, the input spec and the embedding spec."""

    layers: tuple[Op, ...] = ()
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    embedding: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Value:
    kind: str  # "float" | "int" | "bits"
    shape: tuple[int, ...]  # per sample, device layout: (H, W, C) or (F,)
    fan_in: int = 0  # int values lie in [-fan_in, fan_in]
    spatial_size: int = 1  # H*W of the value the pending transforms act on
    # pending value transforms: (path, torch function, the BatchNorm or the bias tensor)
    fx: list[tuple[str, Callable[[torch.Tensor], torch.Tensor], Any]] = field(default_factory=list)
    struct: list[tuple[str, nn.Module]] = field(default_factory=list)
    flat_from: tuple[int, int, int] | None = None


class _Lowerer:
    def __init__(self, input_shape: tuple[int, int, int]) -> None:
        self.out = Lowered()
        self.ops: list[Op] = []
        self.v = _Value("float", tuple(input_shape), spatial_size=input_shape[0] * input_shape[1])

    # emit one op; array arguments become members "layers.<i>.<key>"
    def emit(
        self, op: type[Op], source: str, out_shape, arrays: dict[str, np.ndarray], **params
    ) -> None:
        self.v.shape = append_op(
            self.ops, self.out.arrays, op, source, self.v.shape, out_shape, arrays, **params
        )

    def layout(self) -> str:
        if len(self.v.shape) == 1:
            return "1d"
        return "2d_spatial" if self.v.spatial_size > 1 else "2d_point"

    def step_fn(self, final: Callable[[torch.Tensor], torch.Tensor]) -> StepFn:
        fx = [f for _, f, _ in self.v.fx]

        def fn(x: torch.Tensor) -> torch.Tensor:
            for f in fx:
                x = f(x)
            return final(x)

        return fn

    def emit_struct_bits(self) -> None:
        for path, m in self.v.struct:
            if isinstance(m, nn.MaxPool2d):
                self._pool(path, m, MaxPoolBits)
            else:
                self._flatten(path)
        self.v.struct = []

    def _pool(self, path: str, m: nn.MaxPool2d, op: type[MaxPoolBits | MaxPoolFloat]) -> None:
        if len(self.v.shape) != 3:
            raise _fail(path, m, f"a pool on a flat value of shape {self.v.shape}")
        k = _pair(m.kernel_size)[0]
        s = _pair(m.stride if m.stride is not None else m.kernel_size)[0]
        h, w, c = self.v.shape
        if h < k or w < k:
            raise _fail(path, m, f"a {k}x{k} pool on a {h}x{w} input")
        self.emit(op, path, ((h - k) // s + 1, (w - k) // s + 1, c), {}, size=k, stride=s)

    def _flatten(self, path: str) -> None:
        if len(self.v.shape) == 3:
            h, w, c = self.v.shape
            self.emit(Flatten, path, (h * w * c,), {})
            self.v.flat_from = (h, w, c)

    def to_bits(self, source: str, final: StepFn | None, r: int) -> None:
        """Make the current value bits: threshold the pending transforms + step."""
        v = self.v
        if v.kind == "bits":
            if v.fx:
                raise ExportError(f"{v.fx[0][0]}: a BatchNorm on binary activations")
            if final is not None:
                raise ExportError(f"{source}: a float step on binary activations is not supported")
        else:
            fn = self.step_fn(final if final is not None else (lambda y: (y >= 0).float()))
            c = v.shape[-1]
            if v.kind == "int":
                thr, flip = int_thresholds(fn, c, r, v.fan_in, self.layout())
                op: type[Threshold | ThresholdFloat] = Threshold
            else:
                thr, flip = float_thresholds(fn, c, r, self.layout())
                op = ThresholdFloat
            out = v.shape[:-1] + (c * r,)
            # name the modules folded into the threshold (BatchNorms, biases) and the step
            folded = [path for path, _, _ in v.fx]
            where = "+".join(dict.fromkeys([*folded, source]))
            self.emit(op, where, out, {"thresholds": thr, "flip": flip}, repeat=r)
            v.kind, v.fx = "bits", []
        self.emit_struct_bits()

    def to_float(self, source: str) -> None:
        """Make the current value float: pending BatchNorms become one affine op."""
        v = self.v
        if v.kind == "bits":
            raise ExportError(
                f"{source}: a float layer on binary activations is not supported "
                "(expected a binary layer after a threshold)"
            )
        c = v.shape[-1]
        scale = np.ones(c, np.float64)
        shift = np.zeros(c, np.float64)
        for _, _, m in v.fx:
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                a, b = _bn_affine(m)
            else:  # a conv/dense bias tensor
                a, b = np.ones(c), m.double().numpy()
            scale, shift = scale * a, shift * a + b
        if v.kind == "int" or v.fx:
            self.emit(
                Affine,
                source,
                v.shape,
                {"scale": scale.astype(np.float32), "shift": shift.astype(np.float32)},
            )
        v.kind, v.fx = "float", []
        for path, m in v.struct:
            if isinstance(m, nn.MaxPool2d):
                self._pool(path, m, MaxPoolFloat)
            else:
                self._flatten(path)
        v.struct = []

    # -- consumers --------------------------------------------------------------------

    def conv(self, path: str, m: nn.Module) -> None:
        binary = isinstance(m, QuantConv2d) and _binary(m)
        if binary:
            self.to_bits(path, None, 1)
        else:
            self.to_float(path)
        if len(self.v.shape) != 3:
            raise _fail(path, m, f"a conv on a flat value of shape {self.v.shape}")
        h, w, c = self.v.shape
        o, cin, kh, kw = m.weight.shape
        if cin != c:
            raise _fail(path, m, f"{cin} input channels for a value with {c}")
        with torch.no_grad():
            wq = m.kernel_quantizer(m.weight) if isinstance(m, QuantConv2d) else m.weight
            wq = wq.detach().float().permute(0, 2, 3, 1).contiguous().numpy()  # (O,kh,kw,I)
        bias = None if m.bias is None else m.bias.detach().float().numpy().copy()
        if isinstance(m, QuantConv2d):
            s = m.stride
            left, right, top, bottom = m.pads
            pad_value = float(m.pad_value)
        else:
            s = _pair(m.stride)[0]
            if isinstance(m.padding, str):
                if m.padding == "valid":
                    top = bottom = left = right = 0
                else:  # 'same' (stride 1): torch puts the extra pad at the end
                    top, left = (kh - 1) // 2, (kw - 1) // 2
                    bottom, right = kh - 1 - top, kw - 1 - left
            else:
                ph, pw = _pair(m.padding)
                top = bottom = ph
                left = right = pw
            pad_value = 0.0
        ho = (h + top + bottom - kh) // s + 1
        wo = (w + left + right - kw) // s + 1
        if ho < 1 or wo < 1:
            raise _fail(path, m, f"a {kh}x{kw} kernel on a {h}x{w} input")
        if binary:
            self.emit(
                Conv2dBinary,
                path,
                (ho, wo, o),
                {"weight": pack_signs(wq, axis=-1)},
                stride=s,
                padding=m.padding,
                pad_value=int(pad_value),
                bits=1,
            )
            self.v.kind, self.v.fan_in = "int", c * kh * kw
            if bias is not None:
                t = torch.from_numpy(bias)
                self.v.fx.append((path, lambda y, t=t: y + t.view(1, -1, 1, 1), t))
        else:
            self.emit(
                Conv2dFloat,
                path,
                (ho, wo, o),
                {"weight": wq.astype(np.float32), "bias": bias},
                stride=s,
                pads=(top, bottom, left, right),
                pad_value=pad_value,
                bits=32,
            )
            self.v.kind = "float"
        self.v.spatial_size = ho * wo

    def dense(self, path: str, m: nn.Module) -> None:
        binary = isinstance(m, QuantLinear) and _binary(m)
        if binary:
            self.to_bits(path, None, 1)
        else:
            self.to_float(path)
        if len(self.v.shape) != 1:
            raise _fail(path, m, f"a dense layer on a value of shape {self.v.shape} (no Flatten)")
        (f,) = self.v.shape
        o, fin = m.weight.shape
        if fin != f:
            raise _fail(path, m, f"{fin} inputs for a value with {f}")
        with torch.no_grad():
            wq = m.kernel_quantizer(m.weight) if isinstance(m, QuantLinear) else m.weight
            wq = wq.detach().float().numpy()  # (O, F) in torch order
        flat = self.v.flat_from
        if flat is not None:  # torch flattened (C, H, W); the device holds (H, W, C)
            h, w, c = flat
            wq = wq.reshape(o, c, h, w).transpose(0, 2, 3, 1)  # (O, H, W, C)
        bias = None if m.bias is None else m.bias.detach().float().numpy().copy()
        if binary:
            arrays, params = binary_dense(wq, flat)
            self.emit(DenseBinary, path, (o,), arrays, **params)
            self.v.kind, self.v.fan_in = "int", f
            if bias is not None:
                t = torch.from_numpy(bias)
                self.v.fx.append((path, lambda y, t=t: y + t.view(1, -1), t))
        else:
            w2 = np.ascontiguousarray(wq.reshape(o, f).T, np.float32)  # (F, O)
            self.emit(DenseFloat, path, (o,), {"weight": w2, "bias": bias}, bits=32)
            self.v.kind = "float"
        self.v.flat_from = None
        self.v.spatial_size = 1

    def batchnorm(self, path: str, m: nn.Module) -> None:
        v = self.v
        if v.struct:
            raise _fail(path, m, "a BatchNorm after a pool or flatten")
        if v.kind == "bits":
            raise _fail(path, m, "a BatchNorm on binary activations")
        rank = 4 if isinstance(m, nn.BatchNorm2d) else 2
        if (rank == 4) != (len(v.shape) == 3) or m.num_features != v.shape[-1]:
            raise _fail(path, m, f"{m.num_features} features for a value of shape {v.shape}")
        v.fx.append((path, m, m))


def _bn_affine(m: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    rm = m.running_mean.detach().double().numpy()
    rv = m.running_var.detach().double().numpy()
    w = m.weight.detach().double().numpy() if m.weight is not None else np.ones_like(rm)
    b = m.bias.detach().double().numpy() if m.bias is not None else np.zeros_like(rm)
    a = w / np.sqrt(rv + m.eps)
    return a, b - rm * a


def lower_model(model: nn.Module, input_shape: tuple[int, int, int]) -> Lowered:
    """Lower ``model`` (checked with :func:`check_model`, in eval mode) for samples of
    ``input_shape`` (H, W, C) to the device program."""
    check_model(model)
    children = list(model.features.named_children())
    norm = children[0][1]
    h, w, c = (int(s) for s in input_shape)
    mean, std = norm.mean, norm.std
    if len(mean) not in (1, c) or len(std) not in (1, c):
        raise _fail(f"features.{children[0][0]}", norm, f"mean/std for {c} input channels")
    low = _Lowerer((h, w, c))
    low.out.input = {
        "shape": [h, w, c],
        "layout": "NHWC",
        "scale": float(norm.scale),
        "mean": [float(mean[i % len(mean)]) for i in range(c)],
        "std": [float(std[i % len(std)]) for i in range(c)],
    }
    for name, m in children[1:]:
        path = f"features.{name}"
        if isinstance(m, (nn.Identity, nn.Dropout)):
            continue
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            low.batchnorm(path, m)
        elif isinstance(m, (nn.MaxPool2d, nn.Flatten)):
            if low.v.fx and low.v.kind == "bits":
                raise _fail(path, m, "a pool after a BatchNorm on bits")
            low.v.struct.append((path, m))
        elif isinstance(m, ThermometerEncoder):
            if low.v.kind != "float" or len(low.v.shape) != 3:
                raise _fail(path, m, "expected float (H, W, C) input")

            def enc(x: torch.Tensor, m: ThermometerEncoder = m) -> torch.Tensor:
                return (m(x) > 0).float()

            low.to_bits(path, enc, m.levels)
        elif isinstance(m, (QuantConv2d, nn.Conv2d)):
            low.conv(path, m)
        elif isinstance(m, (QuantLinear, nn.Linear)):
            low.dense(path, m)
        elif isinstance(m, (HeavisideBinarizer, ThermometerBinarizer)):
            low.dense(f"{path}.proj", m.proj)
            if m.bn is not None:
                low.batchnorm(f"{path}.bn", m.bn)
            if isinstance(m, HeavisideBinarizer):

                def step(y: torch.Tensor) -> torch.Tensor:
                    return (y >= 0).float()

                r = 1
            else:

                def step(y: torch.Tensor, m: ThermometerBinarizer = m) -> torch.Tensor:
                    return m.code(y)

                r = m.levels
            low.to_bits(path, step, r)
            low.out.embedding = {
                "bits": int(m.n_bits),
                "kind": m.kind,
                "levels": int(getattr(m, "levels", 1)),
                "source": path,
            }
        else:  # check_model refused it already
            raise _fail(path, m, "unsupported module type")
    if low.v.shape != (low.out.embedding.get("bits"),):
        raise ExportError(f"expected the program to end in the embedding, got {low.v.shape}")
    low.out.layers = tuple(low.ops)
    return low.out
