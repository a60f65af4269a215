import numpy as np
import pytest

from edgecl.kernels import pack_bits


def random_words(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """Random packed words of shape ``shape + (n_words(n),)`` with zero tail bits."""
    return pack_bits(rng.integers(0, 2, size=shape + (n,), dtype=np.uint8))


@pytest.fixture
def words():
    return random_words
