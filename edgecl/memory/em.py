"""EM for a Bernoulli mixture on packed binary embeddings (GBM paper §3.1, eqs. 1-3).

- E-step eq. 1 and the M-step statistics come from :func:`edgecl.kernels.bmm.bmm_em_stats`
  (log space, log-sum-exp, bit-select sums on packed words).
- M-step eq. 2: ``mu_k = S_k / N_k`` clipped to ``[MU_CLIP, 1 - MU_CLIP]`` (the clipped value is
  the maximiser of the M-step objective on that box, so EM stays monotone); ``pi_k = N_k / N``
  when ``pi`` is trainable, else fixed at ``1/K`` as the paper initialises it. A component that
  receives no responsibility (``N_k == 0``) keeps its ``mu``.
- Stop rule: after an E-step ``s >= 1``, stop when ``|l_s - l_{s-1}| / |l_s| < epsilon`` (``l``
  is eq. 3) or after ``n_max`` M-steps.
- Initialisation: the class centroid ``c`` perturbed per feature by its standard deviation
  ``sqrt(c (1 - c))`` (``mu_k = clip(c + std * N(0, 1))``), ``N_init`` warm-up rounds of
  ``N_iter`` iterations each; the round with the highest eq. 3 is then run to the stop rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgecl.errors import InvalidValueError
from edgecl.kernels.bits import unpack_bits

MU_CLIP = 1e-3


@dataclass(frozen=True)
class EMResult:
    """A fitted mixture: ``mu`` (K, D) float64, ``pi`` (K,) float64 and the run's history.

    ``ell`` holds eq. 3 and ``loglik`` the data log-likelihood at each E-step of the final
    run (the parameters before that step's M-step); ``warmup_ell`` the last eq. 3 of each
    warm-up round; ``n_steps`` the M-steps of the final run.
    """

    mu: np.ndarray
    pi: np.ndarray
    ell: tuple[float, ...]
    loglik: tuple[float, ...]
    warmup_ell: tuple[float, ...]
    n_steps: int


def em_run(
    words: np.ndarray,
    n_bits: int,
    mu0: np.ndarray,
    pi0: np.ndarray,
    *,
    n_steps: int,
    epsilon: float,
    trainable_pi: bool,
    clip: float = MU_CLIP,
    stats: Callable[..., tuple] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[float], list[float]]:
    """Run EM from ``(mu0, pi0)`` for at most ``n_steps`` M-steps (eqs. 1-3).

    ``epsilon <= 0`` disables the stop rule. ``stats`` computes eq. 1-3's statistics
    (default :func:`edgecl.kernels.bmm.bmm_em_stats`). Returns ``(mu, pi, ell, loglik)``.
    """
    if stats is None:
        from edgecl.kernels.bmm import bmm_em_stats as stats  # (Numba, loaded on first use)
    n = words.shape[0]
    mu = np.clip(np.array(mu0, dtype=np.float64), clip, 1.0 - clip)
    pi = np.array(pi0, dtype=np.float64)
    ell: list[float] = []
    loglik: list[float] = []
    for _ in range(int(n_steps)):
        s_k, nk, l3, ll = stats(words, n_bits, mu, pi)
        ell.append(l3)
        loglik.append(ll)
        alive = nk > 0.0
        new_mu = mu.copy()
        new_mu[alive] = s_k[alive] / nk[alive, None]
        mu = np.clip(new_mu, clip, 1.0 - clip)
        if trainable_pi:
            pi = nk / n
        if epsilon > 0 and len(ell) >= 2 and abs(ell[-1] - ell[-2]) < epsilon * abs(ell[-1]):
            break
    return mu, pi, ell, loglik


def initial_prototypes(
    centroid: np.ndarray, k: int, rng: np.random.Generator, clip: float = MU_CLIP
) -> np.ndarray:
    """The paper's initialisation: centroid perturbed by its per-feature standard deviation."""
    std = np.sqrt(centroid * (1.0 - centroid))
    mu = centroid[None, :] + std[None, :] * rng.standard_normal((int(k), centroid.shape[0]))
    return np.clip(mu, clip, 1.0 - clip)


def fit_bmm(
    words: np.ndarray,
    n_bits: int,
    k: int,
    *,
    rng: np.random.Generator,
    trainable_pi: bool = True,
    n_init: int = 5,
    n_iter: int = 3,
    epsilon: float = 1e-3,
    n_max: int = 10,
    clip: float = MU_CLIP,
    stats: Callable[..., tuple] | None = None,
) -> EMResult:
    """Fit a K-component Bernoulli mixture to packed ``words`` with the paper's schedule.

    ``words`` must be validated packed rows (see :func:`edgecl.memory._common.check_words`)
    with ``K <= N``; ``stats`` as in :func:`em_run`.
    """
    n = words.shape[0]
    k = int(k)
    if k < 1 or k > n:
        raise InvalidValueError(f"expected 1 <= K <= N components, got K={k} for N={n} samples")
    centroid = unpack_bits(words, n_bits).mean(axis=0, dtype=np.float64)
    pi0 = np.full(k, 1.0 / k)
    best = None
    warm: list[float] = []
    for _ in range(int(n_init)):
        mu0 = initial_prototypes(centroid, k, rng, clip)
        mu, pi, ell, _ = em_run(
            words,
            n_bits,
            mu0,
            pi0,
            n_steps=n_iter,
            epsilon=0.0,
            trainable_pi=trainable_pi,
            clip=clip,
            stats=stats,
        )
        warm.append(ell[-1])
        if best is None or ell[-1] > best[0]:
            best = (ell[-1], mu, pi)
    assert best is not None  # n_init >= 1 is validated by the config
    mu, pi, ell, loglik = em_run(
        words,
        n_bits,
        best[1],
        best[2],
        n_steps=n_max,
        epsilon=epsilon,
        trainable_pi=trainable_pi,
        clip=clip,
        stats=stats,
    )
    return EMResult(mu, pi, tuple(ell), tuple(loglik), tuple(warm), len(ell))


__all__ = ["EMResult", "MU_CLIP", "em_run", "fit_bmm", "initial_prototypes"]
