"""The fused first layer equals the unfused device program bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.program import compile_program, parse_layers, run_layers


def _program(rng, h, w, c, o, *, stride, pads, pool, bias, pad_value):
    kh = kw = 3
    ho = (h + pads[0] + pads[1] - kh) // stride + 1
    wo = (w + pads[2] + pads[3] - kw) // stride + 1
    arrays = {
        "w": rng.normal(size=(o, kh, kw, c)).astype(np.float32),
        "t": rng.normal(size=o).astype(np.float32),
        "f": rng.random(o) < 0.3,
    }
    if bias:
        arrays["b"] = rng.normal(size=o).astype(np.float32)
    arrays["t"][0] = np.inf  # a constant channel
    layers = [
        {
            "op": "conv2d_float",
            "in_shape": [h, w, c],
            "out_shape": [ho, wo, o],
            "weight": "w",
            "bias": "b" if bias else None,
            "pads": list(pads),
            "stride": stride,
            "pad_value": pad_value,
        },
        {
            "op": "threshold_float",
            "in_shape": [ho, wo, o],
            "out_shape": [ho, wo, o],
            "repeat": 1,
            "thresholds": "t",
            "flip": "f",
        },
    ]
    if pool:
        layers.append(
            {
                "op": "maxpool_bits",
                "in_shape": [ho, wo, o],
                "out_shape": [(ho - 2) // 2 + 1, (wo - 2) // 2 + 1, o],
                "size": 2,
                "stride": 2,
            }
        )
    return layers, arrays


@pytest.mark.parametrize("o", [1, 63, 64, 65, 127])
@pytest.mark.parametrize(
    "h,w,c,stride,pads,pool,bias,pad_value",
    [
        (28, 28, 1, 1, (1, 1, 1, 1), True, False, 0.0),
        (9, 7, 3, 2, (1, 0, 0, 1), True, True, -0.4),
        (5, 6, 2, 1, (0, 0, 0, 0), False, True, 0.0),
    ],
)
def test_fused_equals_unfused(o, h, w, c, stride, pads, pool, bias, pad_value):
    rng = np.random.default_rng(o * 7 + h)
    layers, arrays = _program(
        rng, h, w, c, o, stride=stride, pads=pads, pool=pool, bias=bias, pad_value=pad_value
    )
    x = rng.normal(size=(3, h, w, c)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan
    keep = x.copy()
    ops = parse_layers(layers, (h, w, c), arrays)
    prog = compile_program(ops, arrays)
    assert prog.steps[0][0].startswith("conv2d_float+threshold_float")
    np.testing.assert_array_equal(prog(x), run_layers(x, ops, arrays))
    np.testing.assert_array_equal(x, keep)


def test_other_programs_run_unfused(bundle):
    from edgecl.device import Runtime

    rt = Runtime.load(bundle)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32)
    ops = parse_layers(rt.layers, rt.input_spec.shape, rt.arrays)
    prog = compile_program(ops, rt.arrays)
    assert [name for name, _ in prog.steps] == [op.name for op in ops]
    np.testing.assert_array_equal(prog(x), run_layers(x, ops, rt.arrays))
