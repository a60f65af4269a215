"""The device program on the reference kernels equals the fast path, on every backbone."""

from __future__ import annotations

import numpy as np

from edgecl.device import Runtime
from edgecl.device.runtime import embed_reference, logits_reference
from edgecl.export import export_bundle, lower_model
from edgecl.program import FAST_KERNELS, parse_layers, run_layers

from .conftest import random_samples


def test_reference_program_equals_fast_program(random_model, tmp_path):
    name, model, shape = random_model
    x = random_samples(shape, 24)
    k = model.head.out_features
    path = tmp_path / "m.ecl"
    export_bundle(
        model, path, calibration=(x, np.arange(24) % k), class_names=[f"c{i}" for i in range(k)]
    )
    rt = Runtime.load(path)
    np.testing.assert_array_equal(embed_reference(rt, x[:5]), rt.embed(x[:5]))
    np.testing.assert_allclose(logits_reference(rt, x[:5]), rt.logits(x[:5]), atol=1e-4, rtol=0)
    # the unfused fast program too (Runtime.embed fuses the first layers where it can)
    xn = rt.input_spec.normalize(rt.input_spec.check(x[:5]))
    ops = parse_layers(rt.layers, rt.input_spec.shape, rt.arrays)
    fast = run_layers(xn, ops, rt.arrays, kernels=FAST_KERNELS)
    np.testing.assert_array_equal(fast, rt.embed(x[:5]))


def test_program_steps_cover_every_layer_once(random_model, tmp_path):
    """The runtime's program runs each layer exactly once, in order, binary blocks fused;
    the layers round-trip through the op classes."""
    name, model, shape = random_model
    x = random_samples(shape, 8)
    k = model.head.out_features
    path = tmp_path / "m.ecl"
    export_bundle(
        model, path, calibration=(x, np.arange(8) % k), class_names=[f"c{i}" for i in range(k)]
    )
    rt = Runtime.load(path)
    # the ops the exporter lowered are the bundle's layers, read back exactly
    ops = parse_layers(rt.layers, shape, rt.arrays)
    assert lower_model(model, shape).layers == ops
    assert [op.to_dict() for op in ops] == rt.layers
    assert all(type(op).from_dict(op.to_dict(), rt.arrays) == op for op in ops)
    names = [n for n, _ in rt._program.steps]
    assert "+".join(names).split("+") == [layer["op"] for layer in rt.layers]
    ops = [layer["op"] for layer in rt.layers]
    for i, op in enumerate(ops[:-1]):
        if op in ("conv2d_binary", "dense_binary") and ops[i + 1] == "threshold":
            assert any(n.startswith(f"{op}+threshold") for n in names), (name, names)
