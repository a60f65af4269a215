"""q-bit mid-point prototype quantization and its packed storage."""

import numpy as np
import pytest

from edgecl.memory.quantize import (
    ALLOWED_BITS,
    dequantize,
    pack_levels,
    quantize,
    thresholds,
    unpack_levels,
)


@pytest.mark.parametrize("q", [1, 2, 3, 4, 5, 6, 7, 8])
def test_levels_round_trip_and_mid_points(q):
    levels = np.arange(2**q, dtype=np.uint8)
    p = dequantize(levels, q)
    np.testing.assert_array_equal(quantize(p, q), levels)
    np.testing.assert_allclose(p, (levels + 0.5) / 2**q)
    assert p.min() > 0 and p.max() < 1
    mu = np.random.default_rng(q).random(1000)
    assert np.abs(dequantize(quantize(mu, q), q) - mu).max() <= 2.0 ** -(q + 1) + 1e-12
    assert np.all(quantize(np.array([0.0, 1.0]), q) == [0, 2**q - 1])
    np.testing.assert_array_equal(thresholds(levels, q) / 65536.0, p)


def test_q1_levels_are_not_end_points():
    np.testing.assert_allclose(dequantize(quantize(np.array([0.01, 0.99]), 1), 1), [0.25, 0.75])


def test_float32_passes_through():
    mu = np.random.default_rng(0).random((3, 5))
    lv = quantize(mu, 32)
    assert lv.dtype == np.float32
    np.testing.assert_array_equal(dequantize(lv, 32), mu.astype(np.float32).astype(np.float64))


@pytest.mark.parametrize("q", ALLOWED_BITS)
@pytest.mark.parametrize("k,d", [(1, 1), (3, 63), (2, 65), (5, 127)])
def test_pack_round_trip(q, k, d):
    rng = np.random.default_rng(q * 1000 + k * d)
    lv = quantize(rng.random((k, d)), q)
    words = pack_levels(lv, q)
    assert words.shape == ((k * d * q + 63) // 64,)
    back = unpack_levels(words, k, d, q)
    assert back.dtype == lv.dtype
    np.testing.assert_array_equal(back, lv)


def test_bad_bits_and_values():
    for q in (0, 9, 16, True, 2.0):
        with pytest.raises(ValueError, match="bits"):
            quantize(np.zeros(2), q)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quantize(np.array([1.5]), 8)
    with pytest.raises(ValueError, match="words"):
        unpack_levels(np.zeros(4, np.uint64), 2, 10, 8)
