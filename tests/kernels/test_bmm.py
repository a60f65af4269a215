"""BMM kernels against their NumPy twins (eqs. 1-3), odd sizes included."""

import numpy as np
import pytest

from edgecl.kernels.bits import pack_bits, tail_mask
from edgecl.kernels.bmm import (
    bmm_em_stats,
    bmm_em_stats_reference,
    bmm_log_likelihood,
    bmm_log_likelihood_reference,
    bmm_responsibilities,
    bmm_responsibilities_reference,
    hamming_distances,
    hamming_distances_reference,
)

SIZES = [1, 63, 64, 65, 127, 1000]


@pytest.fixture(autouse=True, params=["set-bit walk", "byte tables"])
def em_path(request, monkeypatch):
    """Every test runs on both E+M kernels (few samples: set bits; many: byte tables)."""
    import edgecl.kernels.bmm as bmm

    monkeypatch.setattr(bmm, "SMALL_N", 10**9 if request.param == "set-bit walk" else 0)
    return request.param


def _case(d, k, n=41, seed=0):
    rng = np.random.default_rng(seed + d + 100 * k)
    words = pack_bits(rng.random((n, d)) < 0.3)
    mu = rng.uniform(0.02, 0.98, (k, d))
    pi = rng.dirichlet(np.ones(k))
    return words, mu, pi


@pytest.mark.parametrize("d", SIZES)
@pytest.mark.parametrize("k", [1, 3, 8, 9])
def test_em_stats_matches_reference(d, k):
    words, mu, pi = _case(d, k)
    fast = bmm_em_stats(words, d, mu, pi)
    ref = bmm_em_stats_reference(words, d, mu, pi)
    for a, b in zip(fast, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("d", SIZES)
def test_responsibilities_match_reference_and_sum_to_one(d):
    words, mu, pi = _case(d, 4)
    g, ll = bmm_responsibilities(words, d, mu, pi)
    g_ref, ll_ref = bmm_responsibilities_reference(words, d, mu, pi)
    np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-12)
    assert ll == pytest.approx(ll_ref, rel=1e-12)
    np.testing.assert_allclose(g.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("d", SIZES)
def test_per_sample_log_likelihood_matches_reference(d):
    words, mu, pi = _case(d, 5)
    ll = bmm_log_likelihood(words, d, mu, pi)
    np.testing.assert_allclose(ll, bmm_log_likelihood_reference(words, d, mu, pi), rtol=1e-11)
    assert ll.sum() == pytest.approx(bmm_em_stats(words, d, mu, pi)[3], rel=1e-12)


def test_dead_component_gets_no_responsibility():
    words, mu, pi = _case(65, 3)
    pi = np.array([0.5, 0.0, 0.5])
    stats, nk, ell, ll = bmm_em_stats(words, 65, mu, pi)
    assert nk[1] == 0.0 and np.all(stats[1] == 0.0)
    assert np.isfinite(ell) and np.isfinite(ll)
    ref = bmm_em_stats_reference(words, 65, mu, pi)
    np.testing.assert_allclose(stats, ref[0], rtol=1e-10, atol=1e-9)


def test_em_stats_on_a_hand_case():
    # one sample z = (1, 0), one component mu = (0.8, 0.4): a = log 0.8 + log 0.6
    words = pack_bits(np.array([[1, 0]]))
    stats, nk, ell, ll = bmm_em_stats(words, 2, np.array([[0.8, 0.4]]), np.array([1.0]))
    np.testing.assert_allclose(stats, [[1.0, 0.0]])
    assert nk[0] == pytest.approx(1.0)
    assert ell == pytest.approx(np.log(0.8) + np.log(0.6))
    assert ll == pytest.approx(np.log(0.8 * 0.6))


@pytest.mark.parametrize("d", SIZES)
def test_hamming_matches_reference(d):
    rng = np.random.default_rng(d)
    x = pack_bits(rng.random((17, d)) < 0.5)
    p = pack_bits(rng.random((5, d)) < 0.5)
    np.testing.assert_array_equal(hamming_distances(x, p, d), hamming_distances_reference(x, p, d))


def test_bad_inputs_are_refused():
    words, mu, pi = _case(65, 2)
    with pytest.raises(TypeError, match="uint64"):
        bmm_em_stats(words.astype(np.int64), 65, mu, pi)
    with pytest.raises(ValueError, match="shape"):
        bmm_em_stats(words[:, :1], 65, mu, pi)
    bad = words.copy()
    bad[0, -1] |= ~tail_mask(65)
    with pytest.raises(ValueError, match="tail bits"):
        bmm_em_stats(bad, 65, mu, pi)
    mu0 = mu.copy()
    mu0[0, 0] = 0.0
    with pytest.raises(ValueError, match="clip"):
        bmm_em_stats(words, 65, mu0, pi)
    with pytest.raises(ValueError, match="pi"):
        bmm_em_stats(words, 65, mu, np.array([0.5, -0.1]))
    with pytest.raises(ValueError, match="pi of shape"):
        bmm_em_stats(words, 65, mu, np.array([1.0]))
