"""EM for the Bernoulli mixture against the paper's equations (gbm §3.1, eqs. 1-3)."""

import numpy as np
import pytest

from edgecl.kernels.bits import pack_bits
from edgecl.memory.em import MU_CLIP, em_run, fit_bmm, initial_prototypes


def direct_em(z, mu, pi, steps, trainable_pi):
    """Eqs. 1-3 written out literally with products (small D, no logs)."""
    ells = []
    for _ in range(steps):
        n, _ = z.shape
        lik = np.array(
            [
                [pi[k] * np.prod(mu[k] ** z[i] * (1 - mu[k]) ** (1 - z[i])) for k in range(len(pi))]
                for i in range(n)
            ]
        )
        gamma = lik / lik.sum(axis=1, keepdims=True)  # eq. 1
        ells.append(float(np.sum(gamma * np.log(lik))))  # eq. 3
        nk = gamma.sum(axis=0)
        mu = np.clip((gamma.T @ z) / nk[:, None], MU_CLIP, 1 - MU_CLIP)  # eq. 2
        if trainable_pi:
            pi = nk / n  # eq. 2
    return mu, pi, ells


@pytest.mark.parametrize("trainable_pi", [True, False])
@pytest.mark.parametrize("d,k,n", [(6, 2, 9), (11, 3, 20), (65, 2, 15)])
def test_em_equals_direct_equations(d, k, n, trainable_pi):
    rng = np.random.default_rng(d * 10 + k)
    z = (rng.random((n, d)) < 0.4).astype(np.float64)
    mu0 = rng.uniform(0.1, 0.9, (k, d))
    pi0 = np.full(k, 1.0 / k)
    mu, pi, ell, _ = em_run(
        pack_bits(z), d, mu0, pi0, n_steps=5, epsilon=0.0, trainable_pi=trainable_pi
    )
    mu_ref, pi_ref, ell_ref = direct_em(z, mu0, pi0, 5, trainable_pi)
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pi, pi_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ell, ell_ref, rtol=1e-9)


def test_stop_rule_and_n_max():
    rng = np.random.default_rng(0)
    z = pack_bits(rng.random((200, 64)) < 0.3)
    mu0 = rng.uniform(0.2, 0.8, (3, 64))
    _, _, ell, _ = em_run(
        z, 64, mu0, np.full(3, 1 / 3), n_steps=50, epsilon=1e-3, trainable_pi=True
    )
    assert len(ell) < 50
    assert abs(ell[-1] - ell[-2]) < 1e-3 * abs(ell[-1])
    for s in range(1, len(ell) - 1):
        assert abs(ell[s] - ell[s - 1]) >= 1e-3 * abs(ell[s])
    _, _, ell2, _ = em_run(
        z, 64, mu0, np.full(3, 1 / 3), n_steps=2, epsilon=1e-3, trainable_pi=True
    )
    assert len(ell2) == 2


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("trainable_pi", [True, False])
def test_log_likelihood_never_decreases(seed, trainable_pi):
    rng = np.random.default_rng(seed)
    protos = rng.random((4, 97)) < 0.5
    k = rng.integers(0, 4, 300)
    z = pack_bits(protos[k] ^ (rng.random((300, 97)) < 0.2))
    mu0 = initial_prototypes(np.full(97, 0.5), 5, rng)
    _, _, _, ll = em_run(
        z, 97, mu0, np.full(5, 0.2), n_steps=25, epsilon=0.0, trainable_pi=trainable_pi
    )
    diffs = np.diff(ll)
    assert np.all(diffs >= -1e-9 * np.abs(ll[1:]))


def test_recovers_a_known_mixture():
    rng = np.random.default_rng(42)
    d, n = 96, 4000
    true_pi = np.array([0.5, 0.3, 0.2])
    pattern = rng.random((3, d)) < 0.5
    true_mu = np.where(pattern, 0.85, 0.1)
    comp = rng.choice(3, size=n, p=true_pi)
    z = pack_bits(rng.random((n, d)) < true_mu[comp])
    res = fit_bmm(z, d, 3, rng=np.random.default_rng(1), trainable_pi=True)
    # match fitted components to true ones by distance
    dist = np.abs(res.mu[:, None, :] - true_mu[None]).mean(axis=2)
    order = dist.argmin(axis=0)
    assert sorted(order) == [0, 1, 2]
    assert np.abs(res.mu[order] - true_mu).max() < 0.08
    assert np.abs(res.mu[order] - true_mu).mean() < 0.02
    np.testing.assert_allclose(res.pi[order], true_pi, atol=0.03)


def test_fit_schedule_and_errors():
    rng = np.random.default_rng(0)
    z = pack_bits(rng.random((50, 40)) < 0.5)
    res = fit_bmm(z, 40, 4, rng=np.random.default_rng(0), n_init=5, n_iter=3, n_max=10)
    assert len(res.warmup_ell) == 5
    assert res.n_steps == len(res.ell) <= 10
    assert res.mu.shape == (4, 40) and np.all(res.mu >= MU_CLIP) and np.all(res.mu <= 1 - MU_CLIP)
    assert res.pi.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="K <= N"):
        fit_bmm(z[:3], 40, 4, rng=np.random.default_rng(0))
    a = fit_bmm(z, 40, 4, rng=np.random.default_rng(7))
    b = fit_bmm(z, 40, 4, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.mu, b.mu)
