"""ECL-RNG (edgecl.kernels.rng): SplitMix64's reference outputs, and the draws the learner
asks for keep their contracts (permutations, choices, normals)."""

import numpy as np
import pytest

from edgecl.errors import InvalidTypeError, InvalidValueError
from edgecl.kernels.rng import EclRng, ecl_generator


def test_stream_is_splitmix64():
    rng = EclRng(1234567)
    # SplitMix64 from state 1234567 (Vigna's splitmix64.c): the first outputs
    expected = [6457827717110365317, 3203168211198807973, 9817491932198370423]
    assert [int(v) for v in rng._draws(3)] == expected


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_permutation_and_choice(n):
    rng = EclRng(3)
    assert sorted(rng.permutation(n).tolist()) == list(range(n))
    picked = rng.choice(n, size=n // 2 + 1 if n > 1 else 1, replace=False)
    assert len(set(picked.tolist())) == len(picked) and picked.max() < n
    assert 0 <= rng.integers(0, n) < n


def test_components_follow_p_and_normals_are_standard():
    rng = EclRng(0)
    comp = rng.choice(3, size=20000, p=np.array([0.2, 0.0, 0.8]))
    assert rng.integers(0, 2**63) < 2**63  # the sample's kernel seed closes it
    counts = np.bincount(comp, minlength=3) / comp.size
    assert counts[1] == 0 and abs(counts[0] - 0.2) < 0.02
    z = rng.standard_normal((50, 100))
    assert z.shape == (50, 100) and abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05


def test_the_same_seed_draws_the_same():
    a, b = EclRng(9), EclRng(9)
    assert np.array_equal(a.standard_normal(10), b.standard_normal(10))
    assert np.array_equal(a.permutation(50), b.permutation(50))


def test_seeds_are_checked():
    assert isinstance(ecl_generator(5), EclRng) and isinstance(ecl_generator(None), EclRng)
    g = np.random.default_rng(0)
    assert ecl_generator(g) is g
    with pytest.raises(InvalidValueError):
        ecl_generator(-1)
    with pytest.raises(InvalidTypeError):
        ecl_generator("1")
