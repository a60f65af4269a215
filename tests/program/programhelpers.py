"""Hand-made layer programs for the program tests (no torch): a builder that appends
manifest entries with random arrays of the right shapes, and two programs that between
them use every op, at odd sizes. (A unique module name: a plain ``conftest`` import would
be shadowed by another folder's conftest.)"""

from __future__ import annotations

import numpy as np

from edgecl.kernels.bits import n_words, pack_bits


class ProgramBuilder:
    """Append layers to a program on samples of ``in_shape``; ``layers`` and ``arrays``
    are a valid manifest ``layers`` list and its arrays."""

    def __init__(self, in_shape: tuple[int, ...], seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.in_shape = tuple(in_shape)
        self.shape = tuple(in_shape)
        self.layers: list[dict] = []
        self.arrays: dict[str, np.ndarray] = {}

    def _array(self, key: str, value: np.ndarray) -> str:
        name = f"layers.{len(self.layers)}.{key}"
        self.arrays[name] = value
        return name

    def _add(self, op: str, out_shape, **entry) -> None:
        self.layers.append(
            {
                "op": op,
                "source": f"m.{len(self.layers)}",
                "in_shape": list(self.shape),
                **entry,
                "out_shape": [int(s) for s in out_shape],
            }
        )
        self.shape = tuple(int(s) for s in out_shape)

    def conv2d_float(self, o, k, *, stride=1, pads=(0, 0, 0, 0), pad_value=0.0, bias=True):
        h, w, c = self.shape
        weight = self._array("weight", self.rng.normal(size=(o, k, k, c)).astype(np.float32))
        b = self._array("bias", self.rng.normal(size=o).astype(np.float32)) if bias else None
        ho = (h + pads[0] + pads[1] - k) // stride + 1
        wo = (w + pads[2] + pads[3] - k) // stride + 1
        self._add(
            "conv2d_float",
            (ho, wo, o),
            weight=weight,
            bias=b,
            stride=stride,
            pads=list(pads),
            pad_value=pad_value,
            bits=32,
        )

    def dense_float(self, o, *, bias=True):
        (f,) = self.shape
        weight = self._array("weight", self.rng.normal(size=(f, o)).astype(np.float32))
        b = self._array("bias", self.rng.normal(size=o).astype(np.float32)) if bias else None
        self._add("dense_float", (o,), weight=weight, bias=b, bits=32)

    def affine(self):
        c = self.shape[-1]
        scale = self._array("scale", self.rng.normal(size=c).astype(np.float32))
        shift = self._array("shift", self.rng.normal(size=c).astype(np.float32))
        self._add("affine", self.shape, scale=scale, shift=shift)

    def maxpool(self, op, size, stride):
        h, w, c = self.shape
        out = ((h - size) // stride + 1, (w - size) // stride + 1, c)
        self._add(op, out, size=size, stride=stride)

    def flatten(self):
        h, w, c = self.shape
        self._add("flatten", (h * w * c,))

    def threshold(self, op, repeat=1, *, scale=1.0):
        n = self.shape[-1] * repeat
        if op == "threshold":
            t = self.rng.integers(-int(scale), int(scale) + 1, size=n).astype(np.int32)
        else:
            t = (self.rng.normal(size=n) * scale).astype(np.float32)
        thresholds = self._array("thresholds", t)
        flip = self._array("flip", self.rng.random(n) < 0.3)
        self._add(op, (*self.shape[:-1], n), thresholds=thresholds, flip=flip, repeat=repeat)

    def conv2d_binary(self, o, k, *, stride=1, padding="same", pad_value=1):
        h, w, c = self.shape
        signs = self.rng.random((o, k, k, c)) < 0.5
        weight = self._array("weight", pack_bits(signs))
        ph = k // 2 if padding == "same" else 0
        ho, wo = (h + 2 * ph - k) // stride + 1, (w + 2 * ph - k) // stride + 1
        self._add(
            "conv2d_binary",
            (ho, wo, o),
            weight=weight,
            stride=stride,
            padding=padding,
            pad_value=pad_value,
            bits=1,
        )

    def dense_binary(self, o, *, flat_from=None):
        """A binary dense layer; after a Flatten of bits (``flat_from`` = its (H, W, C))
        the weights hold n_words(C) words per pixel and ``offset`` counts the tails back."""
        (f,) = self.shape
        if flat_from is None:
            weight, n = pack_bits(self.rng.random((o, f)) < 0.5), f
        else:
            h, w, c = flat_from
            weight = pack_bits(self.rng.random((o, h * w, c)) < 0.5).reshape(o, -1)
            n = h * w * n_words(c) * 64
        name = self._array("weight", np.ascontiguousarray(weight))
        self._add("dense_binary", (o,), weight=name, n=n, offset=-(n - f), bits=1)


def float_program(o: int, seed: int = 0) -> ProgramBuilder:
    """conv2d_float (fused with its threshold and pool where it can) and the float ops,
    ending in ``o`` embedding bits."""
    b = ProgramBuilder((9, 7, 3), seed)
    b.conv2d_float(o, 3, stride=2, pads=(1, 0, 2, 1), pad_value=-0.5)
    b.affine()
    b.maxpool("maxpool_float", 2, 1)
    b.flatten()
    b.dense_float(o, bias=False)
    b.threshold("threshold_float", 2)
    b.dense_binary(o)
    b.threshold("threshold", scale=3)
    return b


def bits_program(o: int, seed: int = 0) -> ProgramBuilder:
    """The binary ops: a thermometer-like first threshold, binary convs with +1 and 0
    padding, a bit pool, an affine on accumulators, a flatten of bits and a binary dense
    with a tail offset; ends in ``o`` embedding bits."""
    b = ProgramBuilder((9, 11, 2), seed)
    b.threshold("threshold_float", 33)
    b.conv2d_binary(o, 3)
    b.threshold("threshold", scale=20)
    b.maxpool("maxpool_bits", 3, 2)
    b.conv2d_binary(65, 3, stride=2, padding="valid", pad_value=0)
    b.affine()
    b.threshold("threshold_float")
    flat_from = b.shape
    b.flatten()
    b.dense_binary(o, flat_from=flat_from)
    b.threshold("threshold", scale=30)
    return b


def first_layer_program(o: int, seed: int = 0) -> ProgramBuilder:
    """The exporter's usual shape: a float first conv with its threshold and bit pool
    (one fused step), a binary conv block, a binary dense block."""
    b = ProgramBuilder((11, 9, 1), seed)
    b.conv2d_float(o, 3, pads=(1, 1, 1, 1), bias=False)
    b.threshold("threshold_float")
    b.maxpool("maxpool_bits", 2, 2)
    b.conv2d_binary(o, 3)
    b.threshold("threshold", scale=10)
    flat_from = b.shape
    b.flatten()
    b.dense_binary(o, flat_from=flat_from)
    b.threshold("threshold", scale=10)
    return b


PROGRAMS = (float_program, bits_program, first_layer_program)
