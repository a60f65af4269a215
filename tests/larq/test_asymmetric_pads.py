"""Binary convs with explicit (top, bottom, left, right) padding (TensorFlow's 'same' with
strides 2 on an even input): the fast kernels equal their NumPy twins on odd sizes under
every popcount strategy, the twin equals an independent ±1 correlation, and the layer
program carries the padding."""

import zlib

import numpy as np
import pytest

import edgecl.kernels.popcount as popcount_module
from edgecl.kernels import (
    binary_conv2d,
    binary_conv2d_reference,
    binary_conv_threshold_pool,
    binary_conv_threshold_pool_reference,
    pack_bits,
    tail_mask,
    unpack_bits,
)
from edgecl.kernels.conv import conv_pads
from edgecl.program import (
    FAST_KERNELS,
    REFERENCE_KERNELS,
    compile_program,
    parse_layers,
    run_layers,
)

CASES = [
    # (N, H, W, C, O, kh, kw, pads)
    (1, 6, 6, 1, 3, 3, 3, (0, 1, 0, 1)),
    (2, 8, 7, 63, 5, 3, 3, (0, 1, 1, 1)),
    (1, 6, 8, 65, 9, 3, 3, (1, 0, 0, 2)),
    (1, 5, 5, 127, 4, 2, 2, (0, 1, 0, 1)),
    (2, 4, 6, 3, 70, 5, 5, (1, 2, 2, 1)),
]


@pytest.fixture(params=sorted(popcount_module.STRATEGIES))
def strategy(request, monkeypatch):
    """Each popcount strategy in turn as the process default (all run on any x86-64 CPU)."""
    monkeypatch.setattr(
        popcount_module, "DEFAULT_STRATEGY", popcount_module.STRATEGIES[request.param]
    )
    return request.param


def _words(rng, shape, n):
    return pack_bits(rng.integers(0, 2, size=shape + (n,), dtype=np.uint8))


def _correlate(xs, ws, stride, pads, pad_value):
    """Independent ±1 cross-correlation, explicit loop over output pixels."""
    n, h, w, c = xs.shape
    o, kh, kw, _ = ws.shape
    top, bottom, left, right = pads
    xp = np.full((n, h + top + bottom, w + left + right, c), pad_value, np.int64)
    xp[:, top : top + h, left : left + w] = xs
    ho = (h + top + bottom - kh) // stride + 1
    wo = (w + left + right - kw) // stride + 1
    out = np.zeros((n, ho, wo, o), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            patch = xp[:, oy * stride : oy * stride + kh, ox * stride : ox * stride + kw]
            out[:, oy, ox] = np.einsum("nijc,oijc->no", patch, ws)
    return out


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("pad_value", [1, 0])
def test_conv_matches_reference_and_signs(strategy, case, stride, pad_value):
    n, h, w, c, o, kh, kw, pads = case
    rng = np.random.default_rng(zlib.crc32(repr((case, stride, pad_value)).encode()))
    x, wt = _words(rng, (n, h, w), c), _words(rng, (o, kh, kw), c)
    got = binary_conv2d(x, wt, c, stride=stride, padding=pads, pad_value=pad_value)
    want = binary_conv2d_reference(x, wt, c, stride=stride, padding=pads, pad_value=pad_value)
    np.testing.assert_array_equal(got, want)
    signs = _correlate(
        unpack_bits(x, c).astype(np.int64) * 2 - 1,
        unpack_bits(wt, c).astype(np.int64) * 2 - 1,
        stride,
        pads,
        pad_value,
    )
    np.testing.assert_array_equal(want, signs)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("pad_value", [1, 0])
@pytest.mark.parametrize("pool", [(0, 1), (2, 2)])
def test_fused_block_matches_reference(strategy, case, stride, pad_value, pool):
    n, h, w, c, o, kh, kw, pads = case
    rng = np.random.default_rng(zlib.crc32(repr((case, stride, pad_value, pool)).encode()))
    x, wt = _words(rng, (n, h, w), c), _words(rng, (o, kh, kw), c)
    fan_in = kh * kw * c
    t = rng.integers(-fan_in, fan_in + 1, o).astype(np.int32)
    f = rng.random(o) < 0.4
    opts = dict(stride=stride, padding=pads, pad_value=pad_value, pool=pool[0], pool_stride=pool[1])
    try:
        want = binary_conv_threshold_pool_reference(x, wt, c, t, f, **opts)
    except ValueError:  # the pool window is larger than the conv output
        with pytest.raises(ValueError):
            binary_conv_threshold_pool(x, wt, c, t, f, **opts)
        return
    got = binary_conv_threshold_pool(x, wt, c, t, f, **opts)
    np.testing.assert_array_equal(got, want)
    assert not np.any(got[..., -1] & ~tail_mask(o))


def test_same_and_valid_are_their_pads():
    assert conv_pads("same", 3, 5) == (1, 1, 2, 2)
    assert conv_pads("valid", 3, 3) == (0, 0, 0, 0)
    assert conv_pads([0, 1, 0, 1], 3, 3) == (0, 1, 0, 1)


@pytest.mark.parametrize("bad", [(0, 1, 0), (0, 1, 0, 3), (0, -1, 0, 1), (0, 1.0, 0, 1), "full"])
def test_bad_padding_is_refused(bad):
    rng = np.random.default_rng(0)
    x, wt = _words(rng, (1, 6, 6), 5), _words(rng, (2, 3, 3), 5)
    with pytest.raises(ValueError, match="padding"):
        binary_conv2d(x, wt, 5, padding=bad)


def _program(pads, stride):
    rng = np.random.default_rng(3)
    c, o = 5, 7
    wt = _words(rng, (o, 3, 3), c)
    ho = (8 + pads[0] + pads[1] - 3) // stride + 1
    wo = (8 + pads[2] + pads[3] - 3) // stride + 1
    layers = [
        {
            "op": "threshold_float",
            "in_shape": [8, 8, c],
            "thresholds": "t0",
            "flip": "f0",
            "repeat": 1,
            "out_shape": [8, 8, c],
        },
        {
            "op": "conv2d_binary",
            "in_shape": [8, 8, c],
            "weight": "w",
            "stride": stride,
            "padding": list(pads),
            "pad_value": 1,
            "out_shape": [ho, wo, o],
        },
        {
            "op": "threshold",
            "in_shape": [ho, wo, o],
            "thresholds": "t1",
            "flip": "f1",
            "repeat": 1,
            "out_shape": [ho, wo, o],
        },
    ]
    arrays = {
        "t0": np.zeros(c, np.float32),
        "f0": np.zeros(c, bool),
        "w": wt,
        "t1": rng.integers(-20, 20, o).astype(np.int32),
        "f1": rng.random(o) < 0.5,
    }
    return layers, arrays


def test_program_carries_explicit_pads():
    layers, arrays = _program((0, 1, 0, 1), 2)
    ops = parse_layers(layers, (8, 8, 5), arrays)
    assert ops[1].padding == (0, 1, 0, 1) and ops[1].to_dict()["padding"] == [0, 1, 0, 1]
    x = np.random.default_rng(1).normal(size=(3, 8, 8, 5)).astype(np.float32)
    fast = run_layers(x, ops, arrays, kernels=FAST_KERNELS)
    ref = run_layers(x, ops, arrays, kernels=REFERENCE_KERNELS)
    np.testing.assert_array_equal(fast, ref)
    np.testing.assert_array_equal(compile_program(ops, arrays)(x), ref)
    # the same program with symmetric padding computes something else
    sym = parse_layers(_program((1, 1, 1, 1), 2)[0], (8, 8, 5), arrays)
    assert not np.array_equal(run_layers(x, sym, arrays, kernels=REFERENCE_KERNELS), ref)


@pytest.mark.parametrize("bad", [[0, 1, 0], [0, 1, 0, 9], "full", [0, 1, 0, True]])
def test_program_refuses_bad_pads(bad):
    from edgecl.errors import BundleError

    layers, arrays = _program((0, 1, 0, 1), 2)
    layers[1]["padding"] = bad
    with pytest.raises(BundleError, match="padding"):
        parse_layers(layers, (8, 8, 5), arrays)
