"""Compile a layer program into the steps the runtime runs: runs of ops fused where a
fused kernel exists, every other op alone.

Fused steps (constants laid out once, here): ``conv2d_float -> threshold_float (repeat 1)
[-> maxpool_bits]`` (:func:`edgecl.kernels.first_layer.conv_threshold_pool`),
``conv2d_binary -> threshold [-> maxpool_bits]`` and ``dense_binary -> threshold``
(:func:`edgecl.kernels.block.run_block`, through its per-block
:func:`~edgecl.kernels.block.block_runner`). The compiled :class:`Program` equals
:func:`edgecl.program.run.run_layers` bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edgecl.kernels.block import BinaryBlock, block_runner, prepare_block
from edgecl.kernels.dense_bits import dense_bits_runner, prepare_dense_bits
from edgecl.kernels.first_layer import FirstLayer, conv_threshold_pool, prepare_first_layer
from edgecl.program.kernelset import fast_kernels
from edgecl.program.ops import (
    Conv2dBinary,
    Conv2dFloat,
    DenseBinary,
    MaxPoolBits,
    Op,
    Threshold,
    ThresholdFloat,
)

__all__ = ["Program", "compile_program"]

Step = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Program:
    """A layer program as the runtime runs it: ``steps``, each ``(name, fn)``, where
    ``name`` lists the ops the step runs (``"conv2d_binary+threshold+maxpool_bits"`` for a
    fused block) and ``fn`` maps the previous step's value to the next. Calling it runs
    every step in order."""

    steps: tuple[tuple[str, Step], ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        v = x
        for _, step in self.steps:
            v = step(v)
        return v


def _first_layer(
    conv: Conv2dFloat, thr: ThresholdFloat, pool: MaxPoolBits | None, arrays
) -> FirstLayer:
    """The fused kernel's constants for ``conv2d_float -> threshold_float [-> maxpool_bits]``."""
    return prepare_first_layer(
        arrays[conv.weight],
        None if conv.bias is None else arrays[conv.bias],
        arrays[thr.thresholds],
        arrays[thr.flip],
        pads=conv.pads,
        stride=conv.stride,
        pad_value=float(conv.pad_value),
        pool=pool.size if pool is not None else 0,
        pool_stride=pool.stride if pool is not None else 1,
    )


def _binary_block(
    conv: Conv2dBinary, thr: Threshold, pool: MaxPoolBits | None, arrays
) -> BinaryBlock:
    """The fused kernel's constants for ``conv2d_binary -> threshold [-> maxpool_bits]``."""
    return prepare_block(
        arrays[conv.weight],
        int(conv.in_shape[2]),
        arrays[thr.thresholds],
        arrays[thr.flip],
        stride=conv.stride,
        padding=conv.padding,
        pad_value=int(conv.pad_value),
        repeat=thr.repeat,
        pool=pool.size if pool is not None else 0,
        pool_stride=pool.stride if pool is not None else 1,
    )


def _dense_block(dense: DenseBinary, thr: Threshold, arrays) -> BinaryBlock:
    """The fused kernel's constants for ``dense_binary -> threshold`` (a 1x1 image)."""
    w = arrays[dense.weight]
    return prepare_block(
        w.reshape(w.shape[0], 1, 1, w.shape[1]),
        dense.n,
        arrays[thr.thresholds],
        arrays[thr.flip],
        padding="valid",
        repeat=thr.repeat,
        offset=int(dense.offset),
    )


def _first_layer_step(layer: FirstLayer) -> Step:
    return lambda v: conv_threshold_pool(v, layer)


#: binary MACs a call from which a fused binary step runs on the runtime's threads; below
#: it, one thread (the thread pool's fork/join costs more than the split saves: the MNIST
#: BNN's 14.5 M-MAC blocks, a few pooled rows each, ran slower on 2 threads than on 1)
PARALLEL_MIN_MACS = 1 << 25


def _by_work(serial: Step, parallel: Step | None, macs_per_sample: int) -> Step:
    """``parallel`` for a batch of at least :data:`PARALLEL_MIN_MACS` binary MACs, else
    ``serial`` (the same bits either way)."""
    if parallel is None:
        return serial
    min_batch = -(-PARALLEL_MIN_MACS // max(macs_per_sample, 1))
    return lambda v: (parallel if v.shape[0] >= min_batch else serial)(v)


def _conv_step(blk: BinaryBlock, threads: int, macs: int) -> Step:
    def on(run: Callable[[np.ndarray], np.ndarray]) -> Step:
        return lambda v: run(np.ascontiguousarray(v))

    serial = on(block_runner(blk, threads=1))
    return _by_work(serial, on(block_runner(blk, threads=threads)) if threads > 1 else None, macs)


def _dense_step(blk: BinaryBlock, threads: int, macs: int) -> Step:
    def on(run: Callable[[np.ndarray], np.ndarray]) -> Step:
        def step(v: np.ndarray) -> np.ndarray:
            n = v.shape[0]
            return run(np.ascontiguousarray(v).reshape(n, 1, 1, -1)).reshape(n, -1)

        return step

    if blk.repeat == 1:  # the counts thresholded in the registers
        serial = dense_bits_runner(prepare_dense_bits(blk))
    else:
        serial = on(block_runner(blk, threads=1))
    return _by_work(serial, on(block_runner(blk, threads=threads)) if threads > 1 else None, macs)


def _plain_step(op: Op, arrays: Mapping[str, np.ndarray], threads: int) -> Step:
    return lambda v: op.run(v, arrays, fast_kernels(), threads=threads)


def compile_program(
    ops: Sequence[Op], arrays: Mapping[str, np.ndarray], *, threads: int = 1
) -> Program:
    """The :class:`Program` running the (checked) ops on normalised input on the fast
    kernels, fused where the program allows it (the module's docstring lists the runs);
    any other op runs alone. The result equals ``run_layers(x, ops, arrays)`` bit for bit."""
    steps: list[tuple[str, Step]] = []
    i = 0
    while i < len(ops):
        op = ops[i]
        nxt = ops[i + 1] if i + 1 < len(ops) else None
        after = ops[i + 2] if i + 2 < len(ops) else None
        pool = after if isinstance(after, MaxPoolBits) else None
        if isinstance(op, Conv2dFloat) and isinstance(nxt, ThresholdFloat) and nxt.repeat == 1:
            fn, n = _first_layer_step(_first_layer(op, nxt, pool, arrays)), 3 if pool else 2
        elif isinstance(op, Conv2dBinary) and isinstance(nxt, Threshold):
            macs = int(np.prod(op.out_shape)) * int(np.prod(arrays[op.weight].shape[1:3]))
            macs *= int(op.in_shape[2])
            blk = _binary_block(op, nxt, pool, arrays)
            fn, n = _conv_step(blk, threads, macs), 3 if pool else 2
        elif isinstance(op, DenseBinary) and isinstance(nxt, Threshold):
            macs = int(op.n) * int(arrays[op.weight].shape[0])
            fn, n = _dense_step(_dense_block(op, nxt, arrays), threads, macs), 2
        else:
            fn, n = _plain_step(op, arrays, threads), 1
        steps.append(("+".join(o.name for o in ops[i : i + n]), fn))
        i += n
    return Program(tuple(steps))
