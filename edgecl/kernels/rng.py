"""ECL-RNG, the one random-number stream of on-device learning, specified once: the
Python runtime's learner draws from it (``Learner`` turns an int seed into ``EclRng(seed)``)
and so does the C runtime's ``ecl_learn_commit`` (edgecl.codegen.c), so a given seed draws
the same pseudo-exemplars, sample orders and EM initialisations in both.

The stream is SplitMix64 (Steele et al. 2014): ``next() = mix(state += GOLDEN)``,
``uniform() = (next() >> 11) * 2**-53``. The learner's calls map onto it as the C runtime
draws (the export's README.md, "The random numbers"):

- ``choice(k, size, p)`` (a class's pseudo-exemplar components, inside one
  ``GBMMemory.sample``): the first call of a sample draws ``comp_seed = next()`` and
  ``kernel_seed = next() >> 1``; draw ``m`` (numbered over the whole sample) takes the
  first ``k`` with ``u_m < cdf[k]``, ``u_m`` a counter-based uniform of ``(comp_seed, m)``;
- ``integers(0, 2**63)`` (the sample's Bernoulli kernel seed): ``kernel_seed``;
- ``permutation(n)``: Fisher-Yates, ``j = ((next() >> 32) * (i + 1)) >> 32`` for
  ``i = n - 1 .. 1``;
- ``standard_normal(shape)``: Box-Muller, ``sqrt(-2 ln(1 - u1)) * cos(2 pi u2)``;
- for the latent buffer (Python only): ``choice(n, size, replace)`` without ``p`` (a partial
  Fisher-Yates without replacement, else one bounded draw each) and ``integers(low, high)``
  outside a sample (``low + (next() * (high - low)) >> 64``).
Torch-free, NumPy only.
"""

from __future__ import annotations

import math

import numpy as np

from edgecl.errors import InvalidTypeError, InvalidValueError

__all__ = ["GOLDEN", "EclRng", "check_seed", "ecl_generator", "splitmix_mix"]

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 6.283185307179586


def splitmix_mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 values."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


class EclRng(np.random.Generator):
    """The ECL-RNG stream as a ``Generator`` for the calls the learner makes (the module
    docstring); any other method raises ``NotImplementedError`` rather than draw from
    another stream."""

    def __init__(self, seed: int) -> None:
        super().__init__(np.random.PCG64(0))
        self.state = np.uint64(int(seed) % (1 << 64))
        self._sample: list | None = None  # [comp_seed, kernel_seed, draws so far]

    def _draws(self, n: int) -> np.ndarray:
        with np.errstate(over="ignore"):
            states = self.state + np.arange(1, n + 1, dtype=np.uint64) * GOLDEN
            self.state = self.state + np.uint64(n) * GOLDEN
        return splitmix_mix(states)

    def _uniform(self, n: int) -> np.ndarray:
        return (self._draws(n) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def _below(self, n: int) -> int:
        return (int(self._draws(1)[0]) * int(n)) >> 64

    def choice(self, a, size=None, replace=True, p=None, axis=0, shuffle=True):  # noqa: D102
        if size is None or not isinstance(a, (int, np.integer)):
            raise NotImplementedError("EclRng.choice(n, size, ...) only")
        if p is None:
            n, k = int(a), int(size)
            if replace:
                return np.array([self._below(n) for _ in range(k)], dtype=np.int64)
            pool = np.arange(n, dtype=np.int64)
            for i in range(k):
                j = i + self._below(n - i)
                pool[i], pool[j] = pool[j], pool[i]
            return pool[:k].copy()
        if self._sample is None:
            d = self._draws(2)
            self._sample = [d[0], int(d[1] >> np.uint64(1)), 0]
        comp_seed, _, start = self._sample
        m = np.arange(start + 1, start + int(size) + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            u = (splitmix_mix(comp_seed + m * GOLDEN) >> np.uint64(11)).astype(np.float64)
        u *= 2.0**-53
        self._sample[2] = start + int(size)
        cdf = np.cumsum(np.asarray(p, np.float64))
        cdf /= cdf[-1]
        return np.minimum(np.searchsorted(cdf, u, side="right"), int(a) - 1)

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):  # noqa: D102
        if size is not None or high is None:
            raise NotImplementedError("EclRng.integers(low, high) only")
        if self._sample is None:
            return int(low) + self._below(int(high) - int(low) + int(bool(endpoint)))
        seed = self._sample[1]
        self._sample = None
        return seed

    def permutation(self, x):  # noqa: D102
        if not isinstance(x, (int, np.integer)):
            raise NotImplementedError("EclRng.permutation(n) only")
        n = int(x)
        perm = np.arange(n, dtype=np.int64)
        if n > 1:
            draws = self._draws(n - 1)
            for t, i in enumerate(range(n - 1, 0, -1)):
                j = ((int(draws[t]) >> 32) * (i + 1)) >> 32
                perm[i], perm[j] = perm[j], perm[i]
        return perm

    def standard_normal(self, size=None, dtype=np.float64, out=None):  # noqa: D102
        shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size or ())
        n = math.prod(shape)
        u = self._uniform(2 * n).reshape(n, 2)
        z = np.sqrt(-2.0 * np.log(1.0 - u[:, 0])) * np.cos(_TWO_PI * u[:, 1])
        return z.reshape(shape)

    def random(self, *args, **kwargs):  # noqa: D102
        raise NotImplementedError("EclRng draws only what the learner asks for")


def check_seed(seed: object) -> None:
    """The one seed rule (the learner's stream and :func:`edgecl.validate.as_generator`):
    None, an int >= 0 or a numpy Generator."""
    if seed is None or isinstance(seed, np.random.Generator):
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidTypeError(
            f"expected a seed as an int, a numpy Generator or None, got {type(seed).__name__}"
        )
    if seed < 0:
        raise InvalidValueError(f"expected a seed >= 0, got {seed}")


def ecl_generator(seed: object) -> np.random.Generator:
    """The learner's stream for ``seed``: a Generator as given; an int >= 0 as
    ``EclRng(seed)``; None as ``EclRng`` of fresh entropy."""
    check_seed(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy) % (1 << 64)
    return EclRng(int(seed))
