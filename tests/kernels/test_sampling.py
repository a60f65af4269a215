"""Bernoulli sampling into packed words: bit-exact against the NumPy twin, frequencies, tails."""

import numpy as np
import pytest

from edgecl.kernels.bits import tail_mask, unpack_bits
from edgecl.kernels.sampling import (
    PROB_ONE,
    sample_bernoulli_words,
    sample_bernoulli_words_reference,
)

SIZES = [1, 63, 64, 65, 127, 1000]


@pytest.mark.parametrize("d", SIZES)
def test_matches_reference_bit_exactly_and_tail_is_zero(d):
    rng = np.random.default_rng(d)
    th = rng.integers(0, PROB_ONE + 1, (4, d)).astype(np.uint32)
    rows = rng.integers(0, 4, 33)
    out = sample_bernoulli_words(th, rows, d, seed=12345)
    np.testing.assert_array_equal(out, sample_bernoulli_words_reference(th, rows, d, seed=12345))
    assert out.dtype == np.uint64 and out.shape == (33, (d + 63) // 64)
    assert not np.any(out[:, -1] & ~tail_mask(d))


def test_extreme_thresholds_and_frequencies():
    d = 130
    th = np.zeros((3, d), np.uint32)
    th[1] = PROB_ONE
    th[2] = np.linspace(0, PROB_ONE, d).astype(np.uint32)
    m = 20000
    out = sample_bernoulli_words(th, np.repeat([0, 1, 2], m), d, seed=7)
    bits = unpack_bits(out, d).reshape(3, m, d)
    assert bits[0].sum() == 0
    assert bits[1].min() == 1
    p = th[2] / PROB_ONE
    freq = bits[2].mean(axis=0)
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / m) + 1e-9)


def test_seeded_and_seed_sensitive():
    th = np.full((1, 64), PROB_ONE // 2, np.uint32)
    rows = np.zeros(10, np.int64)
    a = sample_bernoulli_words(th, rows, 64, seed=1)
    np.testing.assert_array_equal(a, sample_bernoulli_words(th, rows, 64, seed=1))
    assert not np.array_equal(a, sample_bernoulli_words(th, rows, 64, seed=2))
    assert len({int(w) for w in a[:, 0]}) == 10  # rows get distinct streams


def test_bad_inputs():
    th = np.zeros((2, 10), np.uint32)
    with pytest.raises(TypeError, match="uint32"):
        sample_bernoulli_words(th.astype(np.float32), np.zeros(1, np.int64), 10, 0)
    with pytest.raises(ValueError, match="shape"):
        sample_bernoulli_words(th, np.zeros(1, np.int64), 11, 0)
    with pytest.raises(ValueError, match="rows"):
        sample_bernoulli_words(th, np.array([2]), 10, 0)
    with pytest.raises(ValueError, match="thresholds <="):
        sample_bernoulli_words(th + PROB_ONE + 1, np.array([0]), 10, 0)
