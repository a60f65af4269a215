"""The fused first-layer kernel (kernels/first_layer.py) equals its NumPy twin bit for bit
on odd sizes, ties and NaN included, keeps tail bits zero and refuses wrong arrays."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import llvmlite.binding as ll
import numpy as np
import pytest

from edgecl.kernels.bits import n_words
from edgecl.kernels.first_layer import (
    TAIL_TAPS,
    conv2d_float,
    conv_threshold_pool,
    conv_threshold_pool_reference,
    default_pass_taps,
    prepare_first_layer,
    sum_thresholds,
)


def _layer(rng, o, c, k, *, bias):
    w = rng.normal(size=(o, k, k, c)).astype(np.float32)
    b = rng.normal(size=o).astype(np.float32) if bias else None
    t = rng.normal(size=o).astype(np.float32)
    flip = rng.random(o) < 0.3
    t[0], flip[0] = np.inf, False  # a channel that never fires
    return w, b, t, flip


CASES = [
    (28, 28, 1, 3, 1, (1, 1, 1, 1), (2, 2), False, 0.0),
    (9, 7, 3, 3, 2, (1, 0, 0, 1), (2, 1), True, -0.4),
    (5, 6, 2, 1, 1, (0, 0, 0, 0), (0, 1), True, 0.0),  # fewer taps than TAIL_TAPS
    (7, 5, 5, 2, 1, (0, 1, 1, 0), (3, 2), True, 1.5),  # head taps before the tail
    (6, 13, 3, 3, 1, (1, 1, 1, 1), (0, 1), True, 0.0),  # no pool: 4 pixels + 1 a row
    (10, 9, 5, 3, 2, (1, 1, 0, 2), (0, 1), False, 0.25),  # 45 taps, strided, 2 + 1
    (12, 11, 2, 3, 2, (1, 1, 1, 1), (2, 2), True, 0.3),  # 2x2 windows of a strided conv
]
OUTS = [1, 63, 64, 65, 127]


@pytest.mark.parametrize("o", OUTS)
@pytest.mark.parametrize("h,w,c,k,stride,pads,pool,bias,pad_value", CASES)
@pytest.mark.parametrize("pass_taps", [3, 9])
def test_fused_equals_twin(o, h, w, c, k, stride, pads, pool, bias, pad_value, pass_taps):
    _check_case(o, h, w, c, k, stride, pads, pool, bias, pad_value, pass_taps)


def _check_case(o, h, w, c, k, stride, pads, pool, bias, pad_value, pass_taps):
    rng = np.random.default_rng(o * 31 + h)
    weight, b, t, flip = _layer(rng, o, c, k, bias=bias)
    opts = dict(pads=pads, stride=stride, pad_value=pad_value, pool=pool[0], pool_stride=pool[1])
    x = rng.normal(size=(3, h, w, c)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan
    x[1, 2:4, 2:4, 0] = np.nan  # whole pool windows of NaN outputs
    keep = x.copy()
    layer = prepare_first_layer(weight, b, t, flip, pass_taps=pass_taps, **opts)
    assert layer.pass_taps == pass_taps
    got = conv_threshold_pool(x, layer)
    want = conv_threshold_pool_reference(x, weight, b, t, flip, **opts)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(x, keep)
    assert got.dtype == np.uint64 and got.shape[-1] == n_words(o)
    if o % 64:
        assert not (got[..., -1] >> np.uint64(o % 64)).any()  # tail bits stay zero
    assert not (got[..., 0] & np.uint64(1)).any()  # the +inf threshold channel


_AVX2_CHILD = r"""
import json, sys
import edgecl.kernels.first_layer_gemm as gemm
sys.path.insert(0, sys.argv[1])
from test_first_layer import CASES, OUTS, _check_case
assert not gemm._WIDE and gemm._W == 8, "expected the AVX2 tiles"
for case in CASES:
    for o in OUTS:
        _check_case(o, *case, 9)
print(json.dumps(len(CASES) * len(OUTS)))
"""


@pytest.mark.skipif(
    platform.machine() != "x86_64" or not ll.get_host_cpu_features().get("avx2"),
    reason="needs an x86-64 AVX2 host",
)
def test_avx2_tiles_equal_twin(tmp_path):
    """The register tiles as an AVX2-only core compiles them (4 patches x 2 vectors of 8
    float32) give the twin's bits on every case, in a child with AVX-512 turned off."""
    from edgecl.machine import avx2_only_env

    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    env.update(avx2_only_env(), NUMBA_CACHE_DIR=str(tmp_path))
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", _AVX2_CHILD, here], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == len(CASES) * len(OUTS)


def test_ties_fire_on_both_sides():
    """Integer images and weights give exact conv outputs: a threshold equal to an output
    fires (y >= t), and flipped (y <= t) too."""
    rng = np.random.default_rng(5)
    o, c, k = 65, 2, 3
    weight = rng.integers(-2, 3, size=(o, k, k, c)).astype(np.float32)
    x = rng.integers(0, 4, size=(2, 6, 6, c)).astype(np.float32)
    y = conv2d_float(x, weight, None)
    t = y[0, 1, 1].copy()  # every channel's threshold an actual output
    for flip in (np.zeros(o, bool), np.ones(o, bool)):
        got = conv_threshold_pool(x, prepare_first_layer(weight, None, t, flip))
        np.testing.assert_array_equal(got, conv_threshold_pool_reference(x, weight, None, t, flip))
        bits = np.unpackbits(got[0, 1, 1].view(np.uint8), bitorder="little")[:o]
        assert bits.all()


def test_twin_is_conv_then_threshold():
    rng = np.random.default_rng(2)
    weight, b, t, flip = _layer(rng, 10, 3, 3, bias=True)
    x = rng.normal(size=(2, 5, 5, 3)).astype(np.float32)
    y = conv2d_float(x, weight, b, pads=(1, 1, 1, 1))
    bits = np.where(flip, y <= t, y >= t)
    got = conv_threshold_pool_reference(x, weight, b, t, flip, pads=(1, 1, 1, 1))
    want = np.unpackbits(got.view(np.uint8), axis=-1, bitorder="little")[..., :10]
    np.testing.assert_array_equal(want.astype(bool), bits)
    assert TAIL_TAPS == 3
    assert default_pass_taps() == 9


def test_wrong_arrays_are_refused():
    rng = np.random.default_rng(0)
    weight, b, t, flip = _layer(rng, 8, 2, 3, bias=True)
    with pytest.raises(ValueError, match="expected a float32 weight"):
        prepare_first_layer(weight.astype(np.float64), b, t, flip)
    with pytest.raises(ValueError, match=r"expected thresholds float32 \(8,\)"):
        prepare_first_layer(weight, b, t[:3], flip)
    with pytest.raises(ValueError, match=r"expected flip bool \(8,\)"):
        prepare_first_layer(weight, b, t, flip.astype(np.int8))
    with pytest.raises(ValueError, match="expected 4 pads"):
        prepare_first_layer(weight, b, t, flip, pads=(1, 1))
    with pytest.raises(ValueError, match="expected stride >= 1"):
        prepare_first_layer(weight, b, t, flip, stride=0)
    with pytest.raises(ValueError, match="expected pass_taps 3 or 9"):
        prepare_first_layer(weight, b, t, flip, pass_taps=4)
    layer = prepare_first_layer(weight, b, t, flip, pool=4, pool_stride=4)
    with pytest.raises(ValueError, match=r"expected \(N, H, W, 2\) samples"):
        conv_threshold_pool(np.zeros((1, 5, 5, 3), np.float32), layer)
    with pytest.raises(ValueError, match="expected a conv output of at least"):
        conv_threshold_pool(np.zeros((1, 5, 5, 2), np.float32), layer)
    with pytest.raises(ValueError, match="large enough for a 3x3 kernel"):
        conv_threshold_pool(np.zeros((1, 2, 2, 2), np.float32), layer)


def _neighbours(m: np.ndarray, rng) -> list[np.ndarray]:
    """Sums around each channel's threshold (a few float64 steps either side), random sums
    of every scale, the infinities, zeros and NaN."""
    out, up, down = [], m.copy(), m.copy()
    for _ in range(4):
        out += [up, down]
        up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
    n = len(m)
    out.append(rng.normal(size=n) * 10.0 ** rng.integers(-40, 40, n))
    for v in (np.inf, -np.inf, 0.0, -0.0, np.nan, 5e-324, -5e-324):
        out.append(np.full(n, v))
    return out


def test_sum_thresholds_are_the_float32_threshold_exactly():
    """``sum >= m`` fires exactly where ``float32(sum + bias) >= sthr`` does, on sums next to
    ``m`` and everywhere else, for thresholds and biases of every kind (ties of the
    float32 rounding, subnormals, overflow to inf, +-inf thresholds, zero and huge biases)."""
    rng = np.random.default_rng(11)
    f32 = np.finfo(np.float32)
    t = np.concatenate(
        [
            rng.normal(size=200).astype(np.float32) * np.float32(10) ** rng.integers(-30, 30, 200),
            np.array([0, -0.0, np.inf, -np.inf, f32.max, -f32.max, f32.tiny, 1e-45, 1, -1]),
        ]
    ).astype(np.float32)
    b = rng.normal(size=len(t)) * 10.0 ** rng.integers(-30, 30, len(t))
    b[::7] = 0.0
    b[3::11] = np.float32(rng.normal()) * 1e38
    m = sum_thresholds(b, t)
    assert m is not None and m.dtype == np.float64
    for s in _neighbours(m, rng):
        with np.errstate(over="ignore", invalid="ignore"):
            want = (s + b).astype(np.float32) >= t
            np.testing.assert_array_equal(s >= m, want)


@pytest.mark.filterwarnings("ignore:invalid value encountered in add")
def test_a_bias_of_minus_inf_falls_back_to_three_taps():
    """With a bias of -inf the bit is not a compare of the sum (``+inf + -inf`` is NaN):
    no sum thresholds, and the layer runs the 3-tap core with the twin's bits."""
    assert sum_thresholds(np.array([-np.inf]), np.array([-np.inf], np.float32)) is None
    rng = np.random.default_rng(4)
    weight, b, t, flip = _layer(rng, 5, 1, 3, bias=True)
    b[1], t[1], flip[1] = -np.inf, -np.inf, False
    x = rng.normal(size=(2, 6, 6, 1)).astype(np.float32)
    x[0, 2, 2, 0] = np.inf
    layer = prepare_first_layer(weight, b, t, flip, pads=(1, 1, 1, 1), pool=2, pool_stride=2)
    assert layer.pass_taps == TAIL_TAPS and layer.sum_thr is None
    want = conv_threshold_pool_reference(
        x, weight, b, t, flip, pads=(1, 1, 1, 1), pool=2, pool_stride=2
    )
    np.testing.assert_array_equal(conv_threshold_pool(x, layer), want)


def test_float32_sums_near_the_threshold_are_decided_exactly():
    """Thresholds at actual outputs of random float data put float64 sums within float32
    rounding of them (outputs the float32 tiles cannot decide): the bits stay the twin's."""
    from edgecl.kernels.first_layer_gemm import image_bounds

    rng = np.random.default_rng(11)
    o, c, k = 70, 3, 3
    weight = rng.normal(size=(o, k, k, c)).astype(np.float32)
    x = rng.normal(size=(2, 9, 9, c)).astype(np.float32)
    y = conv2d_float(x, weight, None, pads=(1, 1, 1, 1))
    t = y[0, 4, 4].copy()
    for flip in (np.zeros(o, bool), rng.random(o) < 0.5):
        for pool in ((0, 1), (2, 2)):
            opts = dict(pads=(1, 1, 1, 1), pool=pool[0], pool_stride=pool[1])
            layer = prepare_first_layer(weight, None, t, flip, **opts)
            got = conv_threshold_pool(x, layer)
            want = conv_threshold_pool_reference(x, weight, None, t, flip, **opts)
            np.testing.assert_array_equal(got, want)
    # the case reaches the exact decision: a float32 sum between the bounds
    xp = np.pad(x[0], ((1, 1), (1, 1), (0, 0))).reshape(-1)
    hi, lo = np.empty(128, np.float32), np.empty(128, np.float32)
    assert image_bounds(xp, layer.wk_l1, layer.sum_thr, layer.wk_signed32.shape[0], hi, lo)
    s32 = conv2d_float(x[:1], weight * layer.sgn[:o, None, None, None], None, pads=(1, 1, 1, 1))
    assert ((s32 >= lo[:o]) & (s32 < hi[:o])).any()


def test_images_that_overflow_float32_and_infinite_weights_are_decided_exactly():
    rng = np.random.default_rng(12)
    o, c, k = 65, 1, 3
    weight = rng.normal(size=(o, k, k, c)).astype(np.float32) * 8
    t = rng.normal(size=o).astype(np.float32) * 1e37
    flip = rng.random(o) < 0.5
    x = rng.normal(size=(2, 8, 8, c)).astype(np.float32) * np.float32(3e37)  # products overflow
    x[1] = rng.normal(size=(8, 8, c))  # the second image: float32 tiles
    x[1, 0, 0, 0] = np.inf
    for w in (weight, np.where(np.arange(o)[:, None, None, None] == 3, np.inf, weight)):
        for pool in ((0, 1), (2, 2)):
            opts = dict(pads=(1, 1, 1, 1), pool=pool[0], pool_stride=pool[1])
            w32 = w.astype(np.float32)
            got = conv_threshold_pool(x, prepare_first_layer(w32, None, t, flip, **opts))
            with np.errstate(over="ignore", invalid="ignore"):
                want = conv_threshold_pool_reference(x, w32, None, t, flip, **opts)
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_pixel_sends_the_image_to_the_exact_decision(bad):
    """The tiles compare a pool window's largest float32 sum, which needs finite sums: an
    image with a NaN or an infinity is decided from float64 sums throughout, the twin's bits
    (a -inf threshold fires on any non-NaN sum, never on a window of NaN sums)."""
    from edgecl.kernels.first_layer_gemm import image_bounds

    rng = np.random.default_rng(13)
    o, c = 66, 2
    weight = rng.normal(size=(o, 3, 3, c)).astype(np.float32)
    t = rng.normal(size=o).astype(np.float32)
    t[5] = -np.inf
    flip = rng.random(o) < 0.5
    flip[5] = False
    x = rng.normal(size=(2, 8, 8, c)).astype(np.float32)
    x[0, 2:4, 2:4, :] = bad  # a whole pool window reads it
    opts = dict(pads=(1, 1, 1, 1), pool=2, pool_stride=2)
    layer = prepare_first_layer(weight, None, t, flip, **opts)
    hi, lo = np.empty(128, np.float32), np.empty(128, np.float32)
    n_taps = layer.wk_signed32.shape[0]
    for s, finite in ((0, False), (1, True)):
        xp = np.pad(x[s], ((1, 1), (1, 1), (0, 0))).reshape(-1)
        assert image_bounds(xp, layer.wk_l1, layer.sum_thr, n_taps, hi, lo) is finite
    with np.errstate(invalid="ignore", over="ignore"):
        want = conv_threshold_pool_reference(x, weight, None, t, flip, **opts)
    np.testing.assert_array_equal(conv_threshold_pool(x, layer), want)
