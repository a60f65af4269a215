"""The ops of the device layer program: one frozen dataclass per op, and :data:`OPS`.

A bundle's ``layers`` list is a small program. Values flow as ``float`` (float32 NHWC
images or (N, F) vectors), ``int`` (int32 accumulators of ±1 products) or ``bits``
(uint64 words packed along the last axis, :mod:`edgecl.kernels.bits`) — the
:class:`ValueKind`. Each op knows how to read itself from its manifest entry
(:meth:`Op.from_dict`, which is the validation of that entry), write itself back
(:meth:`Op.to_dict`, the same keys in the exporter's order), the arrays it names, its
output shape and kind, the precision of its weights and how to run itself on a kernel set
(:meth:`Op.run`). :data:`OPS` maps each op name to its class; it is the only registry,
and every backend dispatches on the op class. :func:`parse_layers` reads and checks a
whole program (the chain of shapes and kinds). Torch-free.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgecl.kernels.bits import n_words
from edgecl.kernels.geometry import conv_pads
from edgecl.program.checks import ArrayLike, array_shape, need, pos_int, shape_list
from edgecl.program.kernelset import LayerKernels, fast_kernels

__all__ = [
    "INT32_MAX",
    "MAX_VALUES_PER_SAMPLE",
    "OPS",
    "Affine",
    "Conv2dBinary",
    "Conv2dFloat",
    "DenseBinary",
    "DenseFloat",
    "Flatten",
    "MaxPoolBits",
    "MaxPoolFloat",
    "Op",
    "Threshold",
    "ThresholdFloat",
    "ValueKind",
]


class ValueKind(enum.Enum):
    """What flows between two ops."""

    FLOAT = "float"  # float32 NHWC images or (N, F) vectors
    INT = "int"  # int32 accumulators of ±1 products
    BITS = "bits"  # uint64 words packed along the last axis

    def __str__(self) -> str:
        return self.value


#: Largest value an int32 accumulator holds (a dense offset must keep every sum inside).
INT32_MAX = 2**31 - 1
#: Most values one layer may output per sample (bounds the working memory of a forward).
MAX_VALUES_PER_SAMPLE = 1 << 24

_FLOAT, _INT, _BITS = ValueKind.FLOAT, ValueKind.INT, ValueKind.BITS


#: The fields every op has, written around its own in :meth:`Op.to_dict`.
_FRAME = ("in_shape", "out_shape", "source")


def _repeat(v: np.ndarray, r: int) -> np.ndarray:
    return v if r == 1 else np.repeat(v, r, axis=-1)


@dataclass(frozen=True, kw_only=True)
class Op(abc.ABC):
    """One op of the layer program: its manifest entry, read and checked.

    ``in_shape``/``out_shape`` are per sample, device layout ((H, W, C) or (F,));
    ``source`` names the torch modules it was lowered from (None where the entry has
    none). Subclasses name themselves (``name``), the value kinds they take
    (``in_kinds``) and give (``out_kind_fixed``; None: the kind they take, see
    :meth:`out_kind`), the array keys of their entry (``array_keys``: (key, optional)
    pairs) and their ``weight_bits`` (1 binary, 32 float, 0 without weights). Their
    dataclass fields are the entry's other keys, in the exporter's order."""

    name: ClassVar[str]
    in_kinds: ClassVar[tuple[ValueKind, ...]]
    out_kind_fixed: ClassVar[ValueKind | None]
    array_keys: ClassVar[tuple[tuple[str, bool], ...]] = ()
    weight_bits: ClassVar[int] = 0

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    source: str | None = None

    @classmethod
    def from_dict(
        cls,
        d: Mapping[str, Any],
        arrays: Mapping[str, ArrayLike],
        *,
        what: str | None = None,
        in_shape: tuple[int, ...] | None = None,
    ) -> Op:
        """Read and check a manifest entry (``BundleError`` saying what is wrong).

        ``arrays`` maps the array names the entry may use to the arrays (or to their
        entries in the manifest's ``arrays`` table); ``in_shape``, when given, is the
        (already checked) shape the previous op hands on; ``what`` names the entry in
        messages (``"layers[3] (conv2d_binary)"``)."""
        what = what or f"layer ({cls.name})"
        need(isinstance(d, Mapping), f"{what}: expected an object, got {d!r}")
        need(d.get("op") == cls.name, f"{what}: expected op {cls.name!r}, got {d.get('op')!r}")
        cur = shape_list(d.get("in_shape"), f"{what}.in_shape") if in_shape is None else in_shape
        out = shape_list(d.get("out_shape"), f"{what}.out_shape")
        for key, optional in cls.array_keys:
            if optional and d.get(key) is None:
                continue
            need(key in d, f"{what}: expected an array reference {key!r}")
        cls._check(d, arrays, what, tuple(cur), out)
        need(
            math.prod(out) <= MAX_VALUES_PER_SAMPLE,
            f"{what}: expected at most {MAX_VALUES_PER_SAMPLE} values per sample, got "
            f"out_shape {list(out)}",
        )
        own = {
            f.name: tuple(v) if isinstance(v := d.get(f.name), list) else v
            for f in dataclasses.fields(cls)
            if f.name not in _FRAME
        }
        return cls(in_shape=tuple(cur), out_shape=out, source=d.get("source"), **own)

    @classmethod
    @abc.abstractmethod
    def _check(
        cls,
        d: Mapping[str, Any],
        arrays: Mapping[str, ArrayLike],
        what: str,
        cur: tuple[int, ...],
        out: tuple[int, ...],
    ) -> None:
        """Check the op's own keys of its entry against its input shape ``cur`` and its
        declared output shape ``out`` (the op's fields are the entry's keys of the same
        names, lists read as tuples)."""

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry (what :meth:`from_dict` read): ``op``, ``source``,
        ``in_shape``, the op's fields in declaration order (the exporter's order; ``bits``
        left out where None), ``out_shape``."""
        d: dict[str, Any] = {"op": self.name}
        if self.source is not None:
            d["source"] = self.source
        d["in_shape"] = list(self.in_shape)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _FRAME or (f.name == "bits" and value is None):
                continue
            d[f.name] = list(value) if isinstance(value, tuple) else value
        d["out_shape"] = list(self.out_shape)
        return d

    def arrays(self) -> tuple[str, ...]:
        """The names of the arrays this op uses."""
        refs = (getattr(self, key) for key, _ in self.array_keys)
        return tuple(r for r in refs if r is not None)

    @classmethod
    def kinds_text(cls) -> str:
        """The kinds it takes, as messages name them (``"float|int"``)."""
        return "|".join(k.value for k in cls.in_kinds)

    def out_kind(self, in_kind: ValueKind) -> ValueKind:
        """The kind of value it gives for a value of ``in_kind``."""
        return in_kind if self.out_kind_fixed is None else self.out_kind_fixed

    @abc.abstractmethod
    def run(
        self,
        v: np.ndarray,
        arrays: Mapping[str, np.ndarray],
        kernels: LayerKernels | None = None,
        *,
        threads: int = 1,
    ) -> np.ndarray:
        """The op on a batch ``v`` (the previous op's value), on ``kernels`` (default
        :func:`edgecl.program.kernelset.fast_kernels`, or the reference twins); the binary
        products run on ``threads`` threads."""


def _check_bias(d, arrays, what, o) -> None:
    if d.get("bias") is not None:
        need(
            array_shape(arrays, d["bias"], f"{what}.bias", "<f4") == (o,),
            f"{what}.bias: expected shape ({o},)",
        )


def _float_out(y: np.ndarray, bias: str | None, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    if bias is not None:
        y += arrays[bias]
    return y.astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class Conv2dFloat(Op):
    """Float conv on float NHWC: ``weight`` (O, kh, kw, C) float32, ``bias`` (O,) or None,
    ``pads`` (top, bottom, left, right) filled with ``pad_value``; float64 sums rounded to
    float32 (:func:`edgecl.kernels.first_layer.conv2d_float`). ``bits``: the weight
    precision the entry records (32), None where it records none."""

    name: ClassVar[str] = "conv2d_float"
    in_kinds: ClassVar[tuple[ValueKind, ...]] = (_FLOAT,)
    out_kind_fixed: ClassVar[ValueKind | None] = _FLOAT
    array_keys: ClassVar[tuple[tuple[str, bool], ...]] = (("weight", False), ("bias", True))
    weight_bits: ClassVar[int] = 32

    weight: str
    bias: str | None
    stride: int
    pads: tuple[int, int, int, int]
    pad_value: float
    bits: int | None = None

    @classmethod
    def _check(cls, d, arrays, what, cur, out):
        need(len(cur) == 3, f"{what}: expected (H, W, C) input, got {list(cur)}")
        o, kh, kw, c = array_shape(arrays, d["weight"], f"{what}.weight", "<f4", 4)
        need(c == cur[2], f"{what}.weight: expected {cur[2]} input channels, got {c}")
        pads = d.get("pads")
        need(
            isinstance(pads, list)
            and len(pads) == 4
            and all(isinstance(p, int) and p >= 0 for p in pads),
            f"{what}.pads: expected 4 ints >= 0, got {pads!r}",
        )
        s = pos_int(d.get("stride"), f"{what}.stride")
        ho = (cur[0] + pads[0] + pads[1] - kh) // s + 1
        wo = (cur[1] + pads[2] + pads[3] - kw) // s + 1
        need(out == (ho, wo, o), f"{what}: expected out_shape {[ho, wo, o]}, got {list(out)}")
        need(
            isinstance(d.get("pad_value"), (int, float)),
            f"{what}.pad_value: expected a number",
        )
        _check_bias(d, arrays, what, o)

    def run(self, v, arrays, kernels=None, *, threads=1):
        from edgecl.kernels.first_layer import conv2d_float  # (a Numba module)

        bias = None if self.bias is None else arrays[self.bias]
        return conv2d_float(
            v,
            arrays[self.weight],
            bias,
            pads=self.pads,
            stride=self.stride,
            pad_value=self.pad_value,
        )


@dataclass(frozen=True, kw_only=True)
class DenseFloat(Op):
    """Float dense: ``weight`` (F, O) float32, ``bias`` (O,) or None; float64 sums rounded
    to float32. ``bits`` as :class:`Conv2dFloat`'s."""

    name: ClassVar[str] = "dense_float"
    in_kinds: ClassVar[tuple[ValueKind, ...]] = (_FLOAT,)
    out_kind_fixed: ClassVar[ValueKind | None] = _FLOAT
    array_keys: ClassVar[tuple[tuple[str, bool], ...]] = (("weight", False), ("bias", True))
    weight_bits: ClassVar[int] = 32

    weight: str
    bias: str | None
    bits: int | None = None

    @classmethod
    def _check(cls, d, arrays, what, cur, out):
        need(len(cur) == 1, f"{what}: expected (F,) input, got {list(cur)}")
        f, o = array_shape(arrays, d["weight"], f"{what}.weight", "<f4", 2)
        need(
            f == cur[0] and out == (o,),
            f"{what}.weight: expected ({cur[0]}, {out[0]}), got ({f}, {o})",
        )
        _check_bias(d, arrays, what, o)

    def run(self, v, arrays, kernels=None, *, threads=1):
        y = v.astype(np.float64) @ arrays[self.weight].astype(np.float64)
        return _float_out(y, self.bias, arrays)


@dataclass(frozen=True, kw_only=True)
class Affine(Op):
    """Per-channel ``y = x * scale + shift`` in float32 (a BatchNorm not followed by a
    sign): ``scale``, ``shift`` (C,) float32."""

    name: ClassVar[str] = "affine"
    in_kinds: ClassVar[tuple[ValueKind, ...]] = (_FLOAT, _INT)
    out_kind_fixed: ClassVar[ValueKind | None] = _FLOAT
    array_keys: ClassVar[tuple[tuple[str, bool], ...]] = (("scale", False), ("shift", False))

    scale: str
    shift: str

    @classmethod
    def _check(cls, d, arrays, what, cur, out):
        for key in ("scale", "shift"):
            need(
                array_shape(arrays, d[key], f"{what}.{key}", "<f4") == (cur[-1],),
                f"{what}.{key}: expected shape ({cur[-1]},)",
            )
        need(out == cur, f"{what}: expected out_shape {list(cur)}, got {list(out)}")

    def run(self, v, arrays, kernels=None, *, threads=1):
        return v.astype(np.float32) * arrays[self.scale] + arrays[self.shift]


@dataclass(frozen=True, kw_only=True)
class _MaxPool(Op):
    """Max pooling of ``size`` x ``size`` windows every ``stride`` pixels, no padding."""

    size: int
    stride: int

    @classmethod
    def _check(cls, d, arrays, what, cur, out):
        size = pos_int(d.get("size"), f"{what}.size")
        s = pos_int(d.get("stride"), f"{what}.stride")
        need(
            len(cur) == 3 and cur[0] >= size and cur[1] >= size,
            f"{what}: expected (H, W, C) input of at least {size}x{size}, got {list(cur)}",
        )
        exp = ((cur[0] - size) // s + 1, (cur[1] - size) // s + 1, cur[2])
        need(out == exp, f"{what}: expected out_shape {list(exp)}, got {list(out)}")


@dataclass(frozen=True, kw_only=True)
class MaxPoolFloat(_MaxPool):
    """Max pooling of float NHWC (:class:`_MaxPool`)."""

    name: ClassVar[str] = "maxpool_float"
    in_kinds: ClassVar[tuple[ValueKind, ...]] = (_FLOAT,)
    out_kind_fixed: ClassVar[ValueKind | None] = _FLOAT

    def run(self, v, arrays, kernels=None, *, threads=1):
        kernels = fast_kernels() if kernels is None else kernels
        return kernels.maxpool2d(v, size=self.size, stride=self.stride)


@dataclass(frozen=True, kw_only=True)
class MaxPoolBits(_MaxPool):
    """Max pooling of packed NHWC bits, an OR (:class:`_MaxPool`)."""

    name: ClassVar[str] = "maxpool_bits"
    in_kinds: ClassVar[tuple[ValueKind, ...]] = (_BITS,)
    out_kind_fixed: ClassVar[ValueKind | None] = _BITS

    def run(self, v, arrays, kernels=None, *, threads=1):
        kernels = fast_kernels() if kernels is None else kernels
        return kernels.maxpool_bits(v, size=self.size, stride=self.stride)


@dataclass(frozen=True, kw_only=True)
class Flatten(Op):
    """(H, W, C) -> (H*W*C,) in H, W, C order; bits keep n_words(C) words per pixel."""

    name: ClassVar[str] = "flatten"
    in_kinds: ClassVar[tuple[ValueKind, ...]] = (_FLOAT, _BITS)
    out_kind_fixed: ClassVar[ValueKind | None] = None

    @classmethod
    def _check(cls, d, arrays, what, cur, out):
        need(
            len(cur) == 3 and out == (cur[0] * cur[1] * cur[2],),
            f"{what}: expected (H, W, C) -> (H*W*C,), got {list(cur)} -> {list(out)}",
        )

    def run(self, v, arrays, kernels=None, *, threads=1):
        return np.ascontiguousarray(v).reshape(v.shape[0], -1)


@dataclass(frozen=True, kw_only=True)
class _ThresholdOp(Op):
    """``bit = acc >= t`` (``acc <= t`` where ``flip``), each input channel repeated
    ``repeat`` times first: ``thresholds`` and ``flip`` (C * repeat,)."""

    threshold_dtype: ClassVar[str]
    array_keys: ClassVar[tuple[tuple[str, bool], ...]] = (("thresholds", False), ("flip", False))
    out_kind_fixed: ClassVar[ValueKind | None] = _BITS

    thresholds: str
    flip: str
    repeat: int

    @classmethod
    def _check(cls, d, arrays, what, cur, out):
        r = pos_int(d.get("repeat"), f"{what}.repeat")
        n = cur[-1] * r
        need(
            array_shape(arrays, d["thresholds"], f"{what}.thresholds", cls.threshold_dtype) == (n,),
            f"{what}.thresholds: expected shape ({n},)",
        )
        need(
            array_shape(arrays, d["flip"], f"{what}.flip", "|b1") == (n,),
            f"{what}.flip: expected shape ({n},)",
        )
        need(
            out == cur[:-1] + (n,),
            f"{what}: expected out_shape {list(cur[:-1] + (n,))}, got {list(out)}",
        )


@dataclass(frozen=True, kw_only=True)
class Threshold(_ThresholdOp):
    """The threshold of int32 accumulators: int32 ``thresholds`` (:class:`_ThresholdOp`)."""

    name: ClassVar[str] = "threshold"
    in_kinds: ClassVar[tuple[ValueKind, ...]] = (_INT,)
    threshold_dtype: ClassVar[str] = "<i4"

    def run(self, v, arrays, kernels=None, *, threads=1):
        kernels = fast_kernels() if kernels is None else kernels
        y = _repeat(v, self.repeat)
        return kernels.threshold(y, arrays[self.thresholds], arrays[self.flip])


@dataclass(frozen=True, kw_only=True)
class ThresholdFloat(_ThresholdOp):
    """The threshold of float values: float32 ``thresholds`` (:class:`_ThresholdOp`)."""

    name: ClassVar[str] = "threshold_float"
    in_kinds: ClassVar[tuple[ValueKind, ...]] = (_FLOAT,)
    threshold_dtype: ClassVar[str] = "<f4"

    def run(self, v, arrays, kernels=None, *, threads=1):
        kernels = fast_kernels() if kernels is None else kernels
        y = _repeat(v, self.repeat)
        return kernels.threshold_float(y, arrays[self.thresholds], arrays[self.flip])


@dataclass(frozen=True, kw_only=True)
class Conv2dBinary(Op):
    """±1 conv on packed bits: ``weight`` (O, kh, kw, n_words(C)) uint64, ``padding``
    'same' (``k // 2`` every side), 'valid' or ``(top, bottom, left, right)`` (TensorFlow's
    'same' with strides 2 on an even input: the odd pad pixel at the bottom / right), with
    ``pad_value`` 0 or 1 (the pad bit); int32 accumulators.
    ``bits``: the weight precision the entry records (1), None where it records none."""

    name: ClassVar[str] = "conv2d_binary"
    in_kinds: ClassVar[tuple[ValueKind, ...]] = (_BITS,)
    out_kind_fixed: ClassVar[ValueKind | None] = _INT
    array_keys: ClassVar[tuple[tuple[str, bool], ...]] = (("weight", False),)
    weight_bits: ClassVar[int] = 1

    weight: str
    stride: int
    padding: str | tuple[int, int, int, int]
    pad_value: int
    bits: int | None = None

    @classmethod
    def _check(cls, d, arrays, what, cur, out):
        need(len(cur) == 3, f"{what}: expected (H, W, C) input, got {list(cur)}")
        o, kh, kw, cw = array_shape(arrays, d["weight"], f"{what}.weight", "<u8", 4)
        need(
            cw == n_words(cur[2]),
            f"{what}.weight: expected {n_words(cur[2])} words per tap, got {cw}",
        )
        padding = d.get("padding")
        try:
            top, bottom, left, right = conv_pads(padding, kh, kw)
        except ValueError:
            need(
                False,
                f"{what}.padding: expected 'same' or 'valid' or [top, bottom, left, right] ints "
                f"in [0, {max(kh, kw)}), got {padding!r:.100}",
            )
        need(d.get("pad_value") in (0, 1), f"{what}.pad_value: expected 0 or 1")
        s = pos_int(d.get("stride"), f"{what}.stride")
        exp = ((cur[0] + top + bottom - kh) // s + 1, (cur[1] + left + right - kw) // s + 1, o)
        need(out == exp, f"{what}: expected out_shape {list(exp)}, got {list(out)}")

    def run(self, v, arrays, kernels=None, *, threads=1):
        kernels = fast_kernels() if kernels is None else kernels
        return kernels.binary_conv2d(
            v,
            arrays[self.weight],
            int(self.in_shape[2]),
            stride=self.stride,
            padding=self.padding,
            pad_value=int(self.pad_value),
            threads=threads,
        )


@dataclass(frozen=True, kw_only=True)
class DenseBinary(Op):
    """±1 dense on packed bits: ``weight`` (O, n_words(n)) uint64;
    ``acc = binary_dense(x, w, n) + offset`` (the offset takes back the tail positions
    both operands hold after a :class:`Flatten` of bits). ``bits`` as
    :class:`Conv2dBinary`'s."""

    name: ClassVar[str] = "dense_binary"
    in_kinds: ClassVar[tuple[ValueKind, ...]] = (_BITS,)
    out_kind_fixed: ClassVar[ValueKind | None] = _INT
    array_keys: ClassVar[tuple[tuple[str, bool], ...]] = (("weight", False),)
    weight_bits: ClassVar[int] = 1

    weight: str
    n: int
    offset: int
    bits: int | None = None

    @classmethod
    def _check(cls, d, arrays, what, cur, out):
        need(len(cur) == 1, f"{what}: expected (F,) input, got {list(cur)}")
        o, words = array_shape(arrays, d["weight"], f"{what}.weight", "<u8", 2)
        n = pos_int(d.get("n"), f"{what}.n")
        offset = d.get("offset")
        need(
            isinstance(offset, int)
            and not isinstance(offset, bool)
            and abs(offset) + n <= INT32_MAX,
            f"{what}.offset: expected an int with |offset| + n <= {INT32_MAX} (int32 "
            f"accumulators), got {offset!r}",
        )
        need(out == (o,), f"{what}: expected out_shape [{o}], got {list(out)}")
        need(
            words == n_words(n),
            f"{what}.weight: expected {n_words(n)} words for n={n}, got {words}",
        )

    def run(self, v, arrays, kernels=None, *, threads=1):
        kernels = fast_kernels() if kernels is None else kernels
        acc = kernels.binary_dense(v, arrays[self.weight], self.n, threads=threads)
        off = int(self.offset)
        return acc if off == 0 else acc + np.int32(off)


#: Every op of the layer program by its manifest name: the only registry.
OPS: dict[str, type[Op]] = {
    cls.name: cls
    for cls in (
        Conv2dFloat,
        DenseFloat,
        Affine,
        MaxPoolFloat,
        MaxPoolBits,
        Flatten,
        Threshold,
        ThresholdFloat,
        Conv2dBinary,
        DenseBinary,
    )
}
