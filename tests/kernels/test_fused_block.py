"""The fused binary layer (conv + threshold + pool, dense + threshold) equals its NumPy twin
(the three reference kernels in a row) on odd sizes, with every padding and pool option."""

import zlib

import numpy as np
import pytest

from edgecl.kernels import (
    binary_conv_threshold_pool,
    binary_conv_threshold_pool_reference,
    binary_dense_threshold,
    binary_dense_threshold_reference,
    n_words,
    tail_mask,
)

CASES = [
    # (N, H, W, C, O, kh, kw)
    (1, 5, 5, 1, 3, 3, 3),
    (2, 6, 7, 63, 65, 3, 3),
    (1, 6, 6, 64, 64, 1, 1),
    (2, 5, 5, 65, 1, 2, 2),
    (1, 7, 5, 127, 63, 3, 3),
    (1, 4, 4, 1000, 7, 3, 3),
    (3, 8, 8, 3, 130, 3, 2),
]


def _thresholds(rng, n_bits, fan_in):
    t = rng.integers(-fan_in, fan_in + 1, n_bits).astype(np.int32)
    t[0] = np.iinfo(np.int32).max  # a constant channel, as the exporter writes them
    return t, rng.random(n_bits) < 0.4


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(
    "padding,pad_value",
    [("same", 1), ("same", 0), ("valid", 1), ("tf", 1), ("tf", 0), ("skew", 1), ("skew", 0)],
)
@pytest.mark.parametrize("pool", [(0, 1), (2, 2), (3, 1)])
@pytest.mark.parametrize("repeat", [1, 3])
def test_conv_block_matches_reference(
    words, pads_of, case, stride, padding, pad_value, pool, repeat
):
    N, H, W, C, O, kh, kw = case
    key = repr((case, stride, padding, pad_value, pool, repeat)).encode()
    rng = np.random.default_rng(zlib.crc32(key))
    x = words(rng, (N, H, W), C)
    w = words(rng, (O, kh, kw), C)
    t, f = _thresholds(rng, O * repeat, kh * kw * C)
    padding = pads_of(padding, kh, kw)
    opts = dict(stride=stride, padding=padding, pad_value=pad_value, repeat=repeat)
    opts.update(pool=pool[0], pool_stride=pool[1])
    keep = (x.copy(), w.copy(), t.copy(), f.copy())
    try:
        want = binary_conv_threshold_pool_reference(x, w, C, t, f, **opts)
    except ValueError:  # the pool window is larger than the conv output
        with pytest.raises(ValueError):
            binary_conv_threshold_pool(x, w, C, t, f, **opts)
        return
    got = binary_conv_threshold_pool(x, w, C, t, f, **opts)
    assert got.dtype == np.uint64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert not np.any(got[..., -1] & ~tail_mask(O * repeat))
    for a, b in zip((x, w, t, f), keep, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_give_the_same_bits(words, threads):
    rng = np.random.default_rng(7)
    x = words(rng, (2, 9, 9), 70)
    w = words(rng, (33, 3, 3), 70)
    t, f = _thresholds(rng, 33, 630)
    want = binary_conv_threshold_pool_reference(x, w, 70, t, f, pool=2, pool_stride=2)
    got = binary_conv_threshold_pool(x, w, 70, t, f, pool=2, pool_stride=2, threads=threads)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [1, 63, 64, 65, 127, 1000, 2304])
@pytest.mark.parametrize("o", [1, 63, 64, 65, 512])
@pytest.mark.parametrize("offset", [0, -7])
def test_dense_block_matches_reference(words, n, o, offset):
    rng = np.random.default_rng(n * 1000 + o)
    x = words(rng, (3,), n)
    w = words(rng, (o,), n)
    t, f = _thresholds(rng, o, n)
    got = binary_dense_threshold(x, w, n, t, f, offset=offset)
    want = binary_dense_threshold_reference(x, w, n, t, f, offset=offset)
    assert got.shape == (3, n_words(o))
    np.testing.assert_array_equal(got, want)


def test_bad_inputs_are_refused(words):
    rng = np.random.default_rng(0)
    x = words(rng, (1, 5, 5), 10)
    w = words(rng, (4, 3, 3), 10)
    t, f = _thresholds(rng, 4, 90)
    with pytest.raises(ValueError, match="thresholds of shape"):
        binary_conv_threshold_pool(x, w, 10, t[:3], f)
    with pytest.raises(TypeError, match="integer thresholds"):
        binary_conv_threshold_pool(x, w, 10, t.astype(np.float32), f)
    with pytest.raises(TypeError, match="bool flip"):
        binary_conv_threshold_pool(x, w, 10, t, f.astype(np.int8))
    with pytest.raises(ValueError, match="pad_value"):
        binary_conv_threshold_pool(x, w, 10, t, f, pad_value=2)
    with pytest.raises(ValueError, match="words along the last axis"):
        binary_conv_threshold_pool(x, w, 100, t, f)
    with pytest.raises(ValueError, match="at least"):
        binary_conv_threshold_pool(x, w, 10, t, f, pool=6)
    bad = x.copy()
    bad[0, 0, 0, 0] |= np.uint64(1) << np.uint64(20)  # a tail bit past C = 10
    with pytest.raises(ValueError, match="tail bits"):
        binary_conv_threshold_pool(bad, w, 10, t, f)
