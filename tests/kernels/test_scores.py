"""The fused combined score (head logits + class-memory likelihood) against its NumPy twin."""

import numpy as np
import pytest

from edgecl.kernels.float_dense import binary_float_dense
from edgecl.kernels.scores import (
    combined_scores,
    combined_scores_reference,
    combined_scores_trusted,
)


def _tables(rng, n, ks):
    a = rng.standard_normal((n, sum(ks))).astype(np.float32)
    const = rng.standard_normal(sum(ks)) * 3.0
    offsets = np.concatenate([[0], np.cumsum(ks)]).astype(np.int64)
    return a, const, offsets


@pytest.mark.parametrize("n", [1, 63, 65, 130])
@pytest.mark.parametrize("ks", [(1,), (3, 3, 3), (1, 4, 2, 7, 1)])
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("threads", [1, 2])
def test_matches_reference_ragged(words, n, ks, batch, threads):
    rng = np.random.default_rng(n * 7 + len(ks) + batch)
    z = words(rng, (batch,), n)
    hw = rng.standard_normal((n, len(ks))).astype(np.float32)
    hb = rng.standard_normal(len(ks)).astype(np.float32)
    a, const, offsets = _tables(rng, n, ks)
    for lam in (0.0, 0.3, 2.5):
        got = combined_scores(z, hw, hb, a, const, offsets, n, lam, threads=threads)
        want = combined_scores_reference(z, hw, hb, a, const, offsets, n, lam)
        assert got.dtype == np.float64 and got.shape == (batch, len(ks))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n", [1, 65, 130])
@pytest.mark.parametrize("ks", [(1,), (1, 4, 2, 7, 1)])
def test_trusted_equals_checked_and_reference(words, n, ks):
    """The unchecked entry (words the runtime made) gives the checked kernel's scores, bit
    for bit, and the twin's."""
    rng = np.random.default_rng(n + 11 * len(ks))
    z = words(rng, (3,), n)
    hw = rng.standard_normal((n, len(ks))).astype(np.float32)
    hb = rng.standard_normal(len(ks)).astype(np.float32)
    a, const, offsets = _tables(rng, n, ks)
    for lam in (0.0, 0.1, 2.5):
        got = combined_scores_trusted(z, hw, hb, a, const, offsets, lam)
        np.testing.assert_array_equal(got, combined_scores(z, hw, hb, a, const, offsets, n, lam))
        want = combined_scores_reference(z, hw, hb, a, const, offsets, n, lam)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_by_hand_against_the_unfused_kernels(words):
    """Logits summed as binary_float_dense sums them; each class its logsumexp."""
    rng = np.random.default_rng(3)
    n, ks, lam = 77, (2, 5, 1), 0.7
    z = words(rng, (4,), n)
    hw = rng.standard_normal((n, 3)).astype(np.float32)
    hb = rng.standard_normal(3).astype(np.float32)
    a, const, offsets = _tables(rng, n, ks)
    logits = (binary_float_dense(z, hw, n) + hb).astype(np.float64)
    comp = binary_float_dense(z, a, n).astype(np.float64) + const
    ll = np.stack(
        [np.logaddexp.reduce(comp[:, offsets[c] : offsets[c + 1]], axis=1) for c in range(3)],
        axis=1,
    )

    def log_softmax(v):
        return v - np.logaddexp.reduce(v, axis=1, keepdims=True)

    want = log_softmax(logits) + lam * log_softmax(ll)
    got = combined_scores(z, hw, hb, a, const, offsets, n, lam)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_impossible_component_and_empty_class(words):
    rng = np.random.default_rng(4)
    n = 10
    z = words(rng, (3,), n)
    hw = rng.standard_normal((n, 3)).astype(np.float32)
    hb = np.zeros(3, np.float32)
    a = rng.standard_normal((n, 3)).astype(np.float32)
    const = np.array([0.0, -np.inf, 1.0])
    offsets = np.array([0, 2, 2, 3], np.int64)  # class 1 has no component
    got = combined_scores(z, hw, hb, a, const, offsets, n, 1.0)
    want = combined_scores_reference(z, hw, hb, a, const, offsets, n, 1.0)
    assert np.all(got[:, 1] == -np.inf)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(
    "offsets, message",
    [([0, 2, 3], "offsets"), ([0, 3, 2, 3], "offsets"), ([1, 1, 2, 3], "offsets")],
)
def test_bad_offsets_refused(words, offsets, message):
    rng = np.random.default_rng(5)
    z = words(rng, (1,), 8)
    hw = np.zeros((8, 3), np.float32)
    a = np.zeros((8, 3), np.float32)
    with pytest.raises(ValueError, match=message):
        combined_scores(z, hw, np.zeros(3, np.float32), a, np.zeros(3), offsets, 8, 1.0)


def test_shape_mismatch_refused(words):
    rng = np.random.default_rng(6)
    z = words(rng, (1,), 8)
    with pytest.raises(ValueError, match="rows"):
        combined_scores(
            z,
            np.zeros((9, 2), np.float32),
            np.zeros(2, np.float32),
            np.zeros((8, 2), np.float32),
            np.zeros(2),
            np.array([0, 1, 2]),
            8,
            1.0,
        )
