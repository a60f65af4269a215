"""torch -> ONNX forward graphs, built from the device program of a bundle.

(a) :func:`forward_model`: raw samples ``x`` float32 (N, H, W, C) (0..255, as the data
loaders give them, cast to float32) -> ``logits`` (N, n_classes) and ``embedding``
(N, D) {0,1} float32, and ``scores`` (N, n_classes): what ``Runtime.predict`` ranks (the
logits, or with the head's ``gbm_weight`` the GBM term added, :mod:`edgecl.export.onnx_gbm`),
in standard ops only. Binary layers are ±1 ``Conv``/``MatMul`` in
float32 (their sums are integers of magnitude <= fan-in, exact below 2^24), the folded
BatchNorm + sign thresholds are comparisons (``s * v >= s * t`` with ``s = -1`` where
the channel flips), activations between binary layers are ±1 floats and max-pools
run on them (max of ±1 == OR of bits). Binary 'same' convs pad with +1 through ``Pad``.

(b) :func:`bitpacked_dense_model`: one binary dense layer on bit-packed bytes with
ONNX bitwise ops (``BitwiseXor``, a 256-entry popcount table through ``Gather`` and
``ReduceSum``) — measured against (a)'s ``MatMul`` in ``benchmarks/onnx_variants.py``.

Both are checked with ``onnx.checker`` and strict shape inference and carry an explicit
IR version and opset (:mod:`edgecl.export._onnx`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgecl.bundle import Manifest, head_weight, read_bundle
from edgecl.export._onnx import make_model
from edgecl.export.onnx_gbm import scores_nodes
from edgecl.kernels.bits import WORD_BITS, unpack_bits
from edgecl.kernels.geometry import conv_pads
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

__all__ = ["bitpacked_dense_model", "export_onnx", "forward_model"]


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.init: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.init.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _signs(words: np.ndarray, n: int) -> np.ndarray:
    """Unpack words along the last axis into ±1 float32."""
    return unpack_bits(words, n).astype(np.float32) * 2 - 1


@dataclass(frozen=True)
class _At:
    """Where an op stands in the program: ``last``, the op whose bits are the embedding
    ({0,1} floats rather than ±1: the last op but trailing bit pools and a Flatten), and
    the (H, W, C) a Flatten right before it flattened."""

    last: bool
    flat_from: tuple[int, ...] | None


def _conv(g: _Graph, v: str, wt, bias, pads4, pad_value: float, stride: int) -> str:
    """``Conv`` (NCHW) with pads (top, bottom, left, right); a non-zero pad value goes
    through an explicit ``Pad``."""
    top, bottom, left, right = pads4
    inputs = [v, g.const(np.ascontiguousarray(wt), "w")]
    if bias is not None:
        inputs.append(g.const(np.asarray(bias, np.float32), "b"))
    pads = [top, left, bottom, right]
    if any(pads) and pad_value != 0.0:
        pad_spec = np.array([0, 0, top, left, 0, 0, bottom, right], np.int64)
        inputs[0] = g.op(
            "Pad", [v, g.const(pad_spec, "pads"), g.const(np.float32(pad_value), "pv")]
        )
        pads = [0, 0, 0, 0]
    return g.op("Conv", inputs, strides=[stride] * 2, pads=pads)


def _conv2d_float(g: _Graph, op: Conv2dFloat, arrays, v: str, at: _At) -> str:
    wt = np.asarray(arrays[op.weight], np.float32).transpose(0, 3, 1, 2)
    bias = None if op.bias is None else arrays[op.bias]
    return _conv(g, v, wt, bias, op.pads, float(op.pad_value), op.stride)


def _conv2d_binary(g: _Graph, op: Conv2dBinary, arrays, v: str, at: _At) -> str:
    wt = _signs(arrays[op.weight], op.in_shape[2]).transpose(0, 3, 1, 2)
    kh, kw = wt.shape[2:]
    return _conv(g, v, wt, None, conv_pads(op.padding, kh, kw), float(op.pad_value), op.stride)


def _dense_float(g: _Graph, op: DenseFloat, arrays, v: str, at: _At) -> str:
    wt = np.asarray(arrays[op.weight], np.float32)  # (F, O)
    v = g.op("MatMul", [v, g.const(wt, "w")])
    if op.bias is not None:
        v = g.op("Add", [v, g.const(np.asarray(arrays[op.bias], np.float32), "b")])
    return v


def _dense_binary(g: _Graph, op: DenseBinary, arrays, v: str, at: _At) -> str:
    words = arrays[op.weight]
    (f,) = op.in_shape
    if at.flat_from is not None and words.shape[1] * WORD_BITS != f:
        fh, fw, fc = at.flat_from  # pixel-padded (H, W, n_words(C)) layout
        s = _signs(words.reshape(words.shape[0], fh * fw, -1), fc)
        s = s.reshape(words.shape[0], f)
    else:
        s = _signs(words, f)
    return g.op("MatMul", [v, g.const(np.ascontiguousarray(s.T), "w")])


def _affine(g: _Graph, op: Affine, arrays, v: str, at: _At) -> str:
    shape = (1, -1, 1, 1) if len(op.in_shape) == 3 else (1, -1)
    sc = np.asarray(arrays[op.scale], np.float32).reshape(shape)
    sh = np.asarray(arrays[op.shift], np.float32).reshape(shape)
    return g.op("Add", [g.op("Mul", [v, g.const(sc, "scale")]), g.const(sh, "shift")])


def _maxpool(g: _Graph, op: MaxPoolFloat | MaxPoolBits, arrays, v: str, at: _At) -> str:
    k, s = op.size, op.stride
    return g.op("MaxPool", [v], kernel_shape=[k, k], strides=[s, s])


def _flatten(g: _Graph, op: Flatten, arrays, v: str, at: _At) -> str:
    return g.op("Flatten", [g.op("Transpose", [v], perm=[0, 2, 3, 1])], axis=1)


def _threshold(g: _Graph, op: Threshold | ThresholdFloat, arrays, v: str, at: _At) -> str:
    r = op.repeat
    rank4 = len(op.in_shape) == 3
    cin = op.in_shape[-1]
    thr = np.asarray(arrays[op.thresholds], np.float32).reshape(cin, r)
    sign = np.where(arrays[op.flip], -1.0, 1.0).astype(np.float32).reshape(cin, r)
    tail = (1, 1) if rank4 else ()
    if r > 1:
        v = g.op("Unsqueeze", [v, g.const(np.array([2], np.int64), "ax")])
        shape = (1, cin, r, *tail)
    else:
        shape = (1, cin, *tail)
    st = g.const((sign * thr).reshape(shape), "st")
    cond = g.op("GreaterOrEqual", [g.op("Mul", [v, g.const(sign.reshape(shape), "s")]), st])
    if at.last:
        v = g.op("Cast", [cond], to=TensorProto.FLOAT)
    else:
        v = g.op(
            "Where",
            [cond, g.const(np.float32(1.0), "one"), g.const(np.float32(-1.0), "mone")],
        )
    if r > 1:
        out = [0, cin * r, *op.in_shape[:2]] if rank4 else [0, cin * r]
        v = g.op("Reshape", [v, g.const(np.array(out, np.int64), "shape")])
    return v


#: The ONNX nodes of each op (NCHW float32 values; bits as ±1, the last op's as {0,1}).
_BUILDERS: dict[type[Op], Callable[..., str]] = {
    Conv2dFloat: _conv2d_float,
    Conv2dBinary: _conv2d_binary,
    DenseFloat: _dense_float,
    DenseBinary: _dense_binary,
    Affine: _affine,
    MaxPoolFloat: _maxpool,
    MaxPoolBits: _maxpool,
    Flatten: _flatten,
    Threshold: _threshold,
    ThresholdFloat: _threshold,
}


def forward_model(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """The forward graph (a) of a bundle's manifest and arrays."""
    ops = Manifest.from_dict(manifest, arrays).layers  # the validation
    g = _Graph()
    spec = manifest["input"]
    h, w, c = spec["shape"]
    # Normalize exactly as torch: (x * scale - mean) / std in float32, channels last.
    v = g.op("Mul", ["x", g.const(np.float32(spec["scale"]), "scale")])
    v = g.op("Sub", [v, g.const(np.asarray(spec["mean"], np.float32), "mean")])
    v = g.op("Div", [v, g.const(np.asarray(spec["std"], np.float32), "std")])
    v = g.op("Transpose", [v], "nchw", perm=[0, 3, 1, 2])
    flat_from: tuple[int, ...] | None = None
    # the embedding's bits are those of the last op but trailing bit pools and a Flatten
    # (an imported Larq program may end in them; they keep {0,1} floats {0,1})
    last = max(i for i, op in enumerate(ops) if not isinstance(op, (MaxPoolBits, Flatten)))
    for i, op in enumerate(ops):
        v = _BUILDERS[type(op)](g, op, arrays, v, _At(i == last, flat_from))
        flat_from = op.in_shape if isinstance(op, Flatten) else None
    emb = g.op("Identity", [v], "embedding_out")
    head = manifest["head"]
    logits = g.op("MatMul", [emb, g.const(head_weight(head, arrays), "hw")])
    logits = g.op("Add", [logits, g.const(np.asarray(arrays[head["bias"]], np.float32), "hb")])
    g.nodes.append(helper.make_node("Identity", [emb], ["embedding"]))
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    nodes, init = scores_nodes(manifest, arrays, embedding=emb, logits=logits)
    g.nodes += nodes
    g.init += init
    d, n_cls = int(manifest["embedding"]["bits"]), len(manifest["classes"])
    graph = helper.make_graph(
        g.nodes,
        "edgecl_forward",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", h, w, c])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_cls]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", d]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", n_cls]),
        ],
        initializer=g.init,
    )
    return make_model(
        graph, doc="edgecl forward graph: raw samples -> logits, embedding bits, scores"
    )


def export_onnx(
    bundle: str | os.PathLike[str], path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write the forward graph (a) of the bundle at ``bundle`` to ``path`` (atomically)."""
    from edgecl.bundle import write_atomic

    manifest, arrays = read_bundle(bundle)
    data = forward_model(manifest, arrays).SerializeToString()
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    write_atomic(path, data, overwrite=overwrite)
    return path


def bitpacked_dense_model(w_signs: np.ndarray) -> onnx.ModelProto:
    """(b) One binary dense layer on packed bits with ONNX bitwise ops (opset 18).

    Input ``x_bytes`` uint8 (N, ceil(n/8)): the ±1 inputs packed little-endian (bit 1 =
    +1, tail bits 0); output ``acc`` int32 (N, O) = ``n - 2 * popcount(x XOR w)``, the
    same integers as the ±1 ``MatMul`` of (a). ``w_signs``: ±1 weights (O, n).
    """
    w_signs = np.asarray(w_signs)
    o, n = w_signs.shape
    wb = np.packbits(w_signs > 0, axis=1, bitorder="little")  # (O, nb) uint8
    g = _Graph()
    table = np.array([bin(i).count("1") for i in range(256)], np.int32)
    x3 = g.op("Unsqueeze", ["x_bytes", g.const(np.array([1], np.int64), "ax")])  # (N,1,nb)
    xor = g.op("BitwiseXor", [x3, g.const(wb[None], "w")])  # (N, O, nb)
    idx = g.op("Cast", [xor], to=TensorProto.INT32)
    pop = g.op("Gather", [g.const(table, "popcount_table"), idx], axis=0)
    total = g.op("ReduceSum", [pop, g.const(np.array([2], np.int64), "ax")], keepdims=0)
    two = g.op("Mul", [total, g.const(np.int32(2), "two")])
    g.nodes.append(helper.make_node("Sub", [g.const(np.int32(n), "n"), two], ["acc"]))
    graph = helper.make_graph(
        g.nodes,
        "edgecl_bitpacked_dense",
        [helper.make_tensor_value_info("x_bytes", TensorProto.UINT8, ["batch", wb.shape[1]])],
        [helper.make_tensor_value_info("acc", TensorProto.INT32, ["batch", o])],
        initializer=g.init,
    )
    return make_model(
        graph, doc="edgecl: binary dense layer with BitwiseXor + popcount table", opset=18
    )
