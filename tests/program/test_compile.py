"""The compiled program (fused steps where the ops allow them) equals the op-by-op
program bit for bit, and fuses exactly the runs it should."""

from __future__ import annotations

import numpy as np
import pytest
from programhelpers import PROGRAMS, ProgramBuilder

from edgecl.program import compile_program, parse_layers, run_layers


def _first_layer(h, w, c, o, *, stride, pads, pool, bias, pad_value, seed):
    b = ProgramBuilder((h, w, c), seed)
    b.conv2d_float(o, 3, stride=stride, pads=pads, pad_value=pad_value, bias=bias)
    b.threshold("threshold_float")
    b.arrays[b.layers[-1]["thresholds"]][0] = np.inf  # a constant channel
    if pool:
        b.maxpool("maxpool_bits", 2, 2)
    return b


@pytest.mark.parametrize("o", [1, 63, 64, 65, 127])
@pytest.mark.parametrize(
    "h,w,c,stride,pads,pool,bias,pad_value",
    [
        (28, 28, 1, 1, (1, 1, 1, 1), True, False, 0.0),
        (9, 7, 3, 2, (1, 0, 0, 1), True, True, -0.4),
        (5, 6, 2, 1, (0, 0, 0, 0), False, True, 0.0),
    ],
)
def test_fused_first_layer_equals_unfused(o, h, w, c, stride, pads, pool, bias, pad_value):
    b = _first_layer(
        h, w, c, o, stride=stride, pads=pads, pool=pool, bias=bias, pad_value=pad_value, seed=o
    )
    ops = parse_layers(b.layers, b.in_shape, b.arrays)
    x = np.random.default_rng(o * 7 + h).normal(size=(3, h, w, c)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan
    keep = x.copy()
    prog = compile_program(ops, b.arrays)
    assert [name for name, _ in prog.steps] == ["+".join(op.name for op in ops)]
    np.testing.assert_array_equal(prog(x), run_layers(x, ops, b.arrays))
    np.testing.assert_array_equal(x, keep)


def test_fuses_exactly_the_runs_it_can():
    b = ProgramBuilder((6, 6, 2))
    b.conv2d_float(5, 3, pads=(1, 1, 1, 1))
    b.threshold("threshold_float", 2)  # repeat 2: the first-layer kernel does not take it
    b.conv2d_binary(7, 3)
    b.threshold("threshold")  # no pool after it: a two-op block
    b.conv2d_binary(8, 3)
    b.affine()  # a conv with no threshold after it runs alone
    b.threshold("threshold_float")
    flat_from = b.shape
    b.flatten()
    b.dense_binary(11, flat_from=flat_from)
    b.threshold("threshold", scale=3)
    ops = parse_layers(b.layers, b.in_shape, b.arrays)
    prog = compile_program(ops, b.arrays, threads=2)
    assert [name for name, _ in prog.steps] == [
        "conv2d_float",
        "threshold_float",
        "conv2d_binary+threshold",
        "conv2d_binary",
        "affine",
        "threshold_float",
        "flatten",
        "dense_binary+threshold",
    ]
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(prog(x), run_layers(x, ops, b.arrays))


@pytest.mark.parametrize("make", PROGRAMS)
def test_steps_cover_every_op_once_in_order(make):
    b = make(65)
    ops = parse_layers(b.layers, b.in_shape, b.arrays)
    names = [name for name, _ in compile_program(ops, b.arrays).steps]
    assert "+".join(names).split("+") == [op.name for op in ops]


@pytest.mark.parametrize("min_macs", [0, 1 << 62])
def test_threads_by_work_give_the_same_bits(monkeypatch, min_macs):
    """A fused binary step runs on the program's threads from PARALLEL_MIN_MACS binary MACs
    a call, on one thread below it: every step on both sides of the line, the op-by-op bits;
    at 0 the parallel kernels run, at 2^62 none does."""
    import edgecl.program.compile as compile_module

    monkeypatch.setattr(compile_module, "PARALLEL_MIN_MACS", min_macs)
    calls = {"parallel": 0}
    real = compile_module.block_runner

    def counting(blk, *, threads=1):
        run = real(blk, threads=threads)
        if threads == 1:
            return run

        def parallel(x):
            calls["parallel"] += 1
            return run(x)

        return parallel

    monkeypatch.setattr(compile_module, "block_runner", counting)
    b = ProgramBuilder((9, 7, 2), 3)
    b.threshold("threshold_float", 35)  # 70 bits a pixel
    b.conv2d_binary(66, 3)
    b.threshold("threshold")
    b.maxpool("maxpool_bits", 2, 2)
    b.conv2d_binary(65, 3)
    b.threshold("threshold")
    flat_from = b.shape
    b.flatten()
    b.dense_binary(20, flat_from=flat_from)
    b.threshold("threshold")
    ops = parse_layers(b.layers, b.in_shape, b.arrays)
    x = np.random.default_rng(1).normal(size=(5, 9, 7, 2)).astype(np.float32)
    prog = compile_program(ops, b.arrays, threads=2)
    np.testing.assert_array_equal(prog(x), run_layers(x, ops, b.arrays))
    assert (calls["parallel"] == 3) if min_macs == 0 else (calls["parallel"] == 0)
