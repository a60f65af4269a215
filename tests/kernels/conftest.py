import numpy as np
import pytest

import edgecl.kernels.popcount as popcount_module
from edgecl.kernels import pack_bits


def random_words(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """Random packed words of shape ``shape + (n_words(n),)`` with zero tail bits."""
    return pack_bits(rng.integers(0, 2, size=shape + (n,), dtype=np.uint8))


@pytest.fixture
def words():
    return random_words


def asymmetric_pads(padding, kh, kw):
    """``padding``, or for ``'tf'`` TensorFlow's 'same' pads of strides 2 on an even input
    (the odd pixel bottom / right), for ``'skew'`` every pad on the bottom / left."""
    if padding == "tf":
        return (max(kh // 2 - 1, 0), kh // 2, max(kw // 2 - 1, 0), kw // 2)
    if padding == "skew":
        return (0, kh - 1, kw - 1, 0)
    return padding


@pytest.fixture
def pads_of():
    return asymmetric_pads


@pytest.fixture(params=sorted(popcount_module.STRATEGIES))
def strategy(request, monkeypatch):
    """Each popcount strategy in turn as the process default (every one runs on any
    x86-64 CPU: only speed differs); yields its name."""
    monkeypatch.setattr(
        popcount_module, "DEFAULT_STRATEGY", popcount_module.STRATEGIES[request.param]
    )
    return request.param
