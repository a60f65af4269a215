"""The op registry: every op reads and writes its manifest entry exactly, refuses a wrong
one with BundleError, and runs the same on the fast and the reference kernels."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from programhelpers import PROGRAMS, ProgramBuilder, bits_program, float_program

from edgecl.bundle import read_bundle
from edgecl.errors import BundleError
from edgecl.program import (
    OPS,
    REFERENCE_KERNELS,
    Conv2dFloat,
    Threshold,
    ValueKind,
    compile_program,
    output_kind,
    parse_layers,
    run_layers,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "v1_bundle.ecl"
SIZES = [1, 63, 64, 65, 127]


def test_registry_names_every_op_once():
    assert sorted(OPS) == [
        "affine",
        "conv2d_binary",
        "conv2d_float",
        "dense_binary",
        "dense_float",
        "flatten",
        "maxpool_bits",
        "maxpool_float",
        "threshold",
        "threshold_float",
    ]
    assert all(cls.name == name for name, cls in OPS.items())
    bits = {name: cls.weight_bits for name, cls in OPS.items()}
    assert {n for n, b in bits.items() if b == 1} == {"conv2d_binary", "dense_binary"}
    assert {n for n, b in bits.items() if b == 32} == {"conv2d_float", "dense_float"}


def test_fixture_bundle_round_trips():
    manifest, arrays = read_bundle(FIXTURE)
    shape = manifest["input"]["shape"]
    ops = parse_layers(manifest["layers"], shape, arrays)
    assert [op.to_dict() for op in ops] == manifest["layers"]
    # the arrays table of the manifest checks the same as the arrays themselves
    assert parse_layers(manifest["layers"], shape, manifest["arrays"]) == ops
    for op in ops:
        assert type(op).from_dict(op.to_dict(), arrays) == op  # alone, in_shape read
        assert set(op.arrays()) <= set(arrays)
    assert output_kind(ops) is ValueKind.BITS
    assert ops[-1].out_shape == (manifest["embedding"]["bits"],)


@pytest.mark.parametrize("make", PROGRAMS)
def test_hand_made_programs_round_trip_in_order(make):
    b = make(65)
    ops = parse_layers(b.layers, b.in_shape, b.arrays)
    assert {op.name for op in ops} <= set(OPS)
    for op, entry in zip(ops, b.layers, strict=True):
        assert op.to_dict() == entry
        assert list(op.to_dict()) == list(entry)  # the exporter's key order
        refs = [v for v in entry.values() if isinstance(v, str) and v in b.arrays]
        assert list(op.arrays()) == refs


def test_the_programs_use_every_op():
    used = {e["op"] for make in PROGRAMS for e in make(3).layers}
    assert used == set(OPS)


@pytest.mark.parametrize("o", SIZES)
@pytest.mark.parametrize("make", PROGRAMS)
def test_fast_reference_and_compiled_agree(make, o):
    b = make(o, seed=o)
    ops = parse_layers(b.layers, b.in_shape, b.arrays)
    x = np.random.default_rng(o).normal(size=(3, *b.in_shape)).astype(np.float32)
    keep = x.copy()
    fast = run_layers(x, ops, b.arrays)
    ref = run_layers(x, ops, b.arrays, kernels=REFERENCE_KERNELS)
    np.testing.assert_array_equal(fast, ref)
    np.testing.assert_array_equal(compile_program(ops, b.arrays)(x), fast)
    np.testing.assert_array_equal(run_layers(x, ops, b.arrays, threads=2), fast)
    np.testing.assert_array_equal(x, keep)
    assert fast.shape == (3, (o + 63) // 64)
    if o > 1:
        assert fast.any()  # the program computes something, not all zeros


def test_every_op_runs_alone_on_both_kernel_sets():
    for make in (float_program, bits_program):
        b = make(65, seed=3)
        ops = parse_layers(b.layers, b.in_shape, b.arrays)
        v = np.random.default_rng(1).normal(size=(2, *b.in_shape)).astype(np.float32)
        kind = ValueKind.FLOAT
        for op in ops:
            fast = op.run(v, b.arrays)
            np.testing.assert_array_equal(fast, op.run(v, b.arrays, REFERENCE_KERNELS))
            kind = op.out_kind(kind)
            if kind is ValueKind.BITS:  # packed along the last axis
                assert fast.dtype == np.uint64 and fast.shape[:-1] == (2, *op.out_shape[:-1])
            else:
                assert fast.shape == (2, *op.out_shape), op.name
                assert fast.dtype == (np.int32 if kind is ValueKind.INT else np.float32)
            v = fast


def _set(layer_index, key, value):
    def edit(layers):
        if value is _DROP:
            del layers[layer_index][key]
        else:
            layers[layer_index][key] = value

    return edit


_DROP = object()

# (program, edit, message of the BundleError)
BAD = [
    (float_program, _set(0, "pads", [1, 1, 1]), "layers[0] (conv2d_float).pads: expected 4 ints"),
    (float_program, _set(0, "stride", 0), "layers[0] (conv2d_float).stride: expected an integer"),
    (float_program, _set(0, "pad_value", "x"), "(conv2d_float).pad_value: expected a number"),
    (
        float_program,
        _set(0, "out_shape", [5, 5, 65]),
        "(conv2d_float): expected out_shape [4, 4, 65], got [5, 5, 65]",
    ),
    (float_program, _set(0, "weight", "layers.0.bias"), "(conv2d_float).weight (layers.0.bias)"),
    (float_program, _set(0, "bias", "layers.5.thresholds"), "(conv2d_float).bias: expected shape"),
    (float_program, _set(0, "weight", _DROP), "expected an array reference 'weight'"),
    (
        float_program,
        _set(1, "scale", "layers.5.thresholds"),
        "layers[1] (affine).scale: expected shape",
    ),
    (float_program, _set(1, "shift", "nope"), "(affine).shift: expected an array name, got 'nope'"),
    (float_program, _set(2, "size", 100), "(maxpool_float): expected (H, W, C) input of at least"),
    (
        float_program,
        _set(3, "out_shape", [7]),
        "layers[3] (flatten): expected (H, W, C) -> (H*W*C,)",
    ),
    (float_program, _set(4, "weight", "layers.6.weight"), "(dense_float).weight (layers.6.weight)"),
    (float_program, _set(5, "repeat", True), "(threshold_float).repeat: expected an integer >= 1"),
    (float_program, _set(5, "flip", "layers.5.thresholds"), "(threshold_float).flip (layers.5"),
    (
        float_program,
        _set(6, "n", 7),
        "layers[6] (dense_binary).weight: expected 1 words for n=7, got 3",
    ),
    (float_program, _set(6, "offset", 2**31), "(dense_binary).offset: expected an int with"),
    (float_program, _set(6, "offset", True), "(dense_binary).offset: expected an int with"),
    (float_program, _set(7, "thresholds", "layers.5.thresholds"), "expected dtype <i4, got <f4"),
    (bits_program, _set(1, "padding", "full"), "(conv2d_binary).padding: expected 'same' or"),
    (bits_program, _set(1, "pad_value", 2), "layers[1] (conv2d_binary).pad_value: expected 0 or 1"),
    (bits_program, _set(3, "stride", 0), "layers[3] (maxpool_bits).stride: expected an integer"),
    (bits_program, _set(1, "op", "conv2d_float"), "layers[1] (conv2d_float): expected float input"),
    (
        bits_program,
        _set(2, "op", "threshold_float"),
        "(threshold_float): expected float input, got int",
    ),
    (bits_program, _set(1, "op", "conv3d"), "layers[1]: expected op in ['affine', 'conv2d_binary'"),
    (bits_program, _set(1, "op", ["conv2d_binary"]), "layers[1]: expected op in"),
    (bits_program, _set(2, "in_shape", [9, 11, 3]), "(threshold): expected in_shape [9, 11,"),
    (
        bits_program,
        _set(2, "out_shape", [9, 11]),
        "(threshold).out_shape: expected [F] or [H, W, C]",
    ),
]


@pytest.mark.parametrize("make,edit,message", BAD)
def test_wrong_entries_are_refused_with_what_was_expected(make, edit, message):
    b = make(65)
    layers = copy.deepcopy(b.layers)
    edit(layers)
    before = copy.deepcopy(layers)
    with pytest.raises(BundleError) as info:
        parse_layers(layers, b.in_shape, b.arrays)
    assert message in str(info.value)
    assert layers == before  # a failed parse changes nothing


def test_wrong_lists_are_refused():
    b = float_program(3)
    for layers in ([], None, "layers", {"op": "flatten"}):
        with pytest.raises(BundleError, match="manifest 'layers': expected a non-empty list"):
            parse_layers(layers, b.in_shape, b.arrays)
    with pytest.raises(BundleError, match=r"layers\[1\]: expected an object"):
        parse_layers([b.layers[0], "flatten"], b.in_shape, b.arrays)


def test_too_many_values_per_sample_are_refused():
    # shapes only (no arrays needed): a (shape, dtype) table entry stands for an array
    specs = {"t": ((2,), "<f4"), "f": ((2,), "|b1")}
    layer = {
        "op": "threshold_float",
        "in_shape": [4096, 4097, 1],
        "out_shape": [4096, 4097, 2],
        "thresholds": "t",
        "flip": "f",
        "repeat": 2,
    }
    with pytest.raises(BundleError, match="expected at most 16777216 values per sample"):
        parse_layers([layer], (4096, 4097, 1), specs)


def test_from_dict_alone_checks_its_name_and_in_shape():
    b = float_program(3)
    conv = b.layers[0]
    assert Conv2dFloat.from_dict(conv, b.arrays).in_shape == (9, 7, 3)
    with pytest.raises(BundleError, match="expected op 'threshold', got 'conv2d_float'"):
        Threshold.from_dict(conv, b.arrays)
    with pytest.raises(BundleError, match=r"layer \(conv2d_float\)\.in_shape: expected"):
        Conv2dFloat.from_dict({**conv, "in_shape": [9, 7]}, b.arrays)
    with pytest.raises(BundleError, match=r"layer \(conv2d_float\): expected an object"):
        Conv2dFloat.from_dict(["conv2d_float"], b.arrays)  # type: ignore[arg-type]


def test_kinds_follow_the_chain():
    b = ProgramBuilder((4, 4, 2))
    b.threshold("threshold_float")
    b.flatten()
    ops = parse_layers(b.layers, b.in_shape, b.arrays)
    assert output_kind(ops) is ValueKind.BITS  # flatten hands on the kind it takes
    assert output_kind(ops[:0]) is ValueKind.FLOAT
    b = ProgramBuilder((4, 4, 2))
    b.flatten()
    assert output_kind(parse_layers(b.layers, b.in_shape, b.arrays)) is ValueKind.FLOAT
    assert str(ValueKind.INT) == "int"
