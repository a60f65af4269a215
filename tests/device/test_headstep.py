"""The learner's transposed head step equals the head kernel's NumPy twin."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.device.headstep import head_step_t
from edgecl.kernels import pack_bits
from edgecl.kernels.head import softmax_head_step_reference


@pytest.mark.parametrize("n_bits", [1, 63, 64, 65, 127, 1000])
@pytest.mark.parametrize("batch,n_cls", [(1, 1), (7, 2), (64, 11), (5, 3), (66, 10), (3, 7)])
def test_matches_the_reference(n_bits, batch, n_cls):
    rng = np.random.default_rng(n_bits * 100 + batch)
    x = pack_bits((rng.random((batch, n_bits)) < 0.5).astype(np.uint8))
    w = (rng.normal(size=(n_bits, n_cls)) * 0.3).astype(np.float32)
    b = rng.normal(size=n_cls).astype(np.float32)
    t = rng.integers(0, n_cls, batch)
    keep = (x.copy(), w.copy(), b.copy(), t.copy())
    for wd in (0.0, 0.01):
        nw, nb, loss = head_step_t(x, n_bits, w, b, t, 0.1, weight_decay=wd)
        rw, rb, rl = softmax_head_step_reference(x, n_bits, w, b, t, 0.1, weight_decay=wd)
        np.testing.assert_allclose(nw, rw, atol=2e-6)
        np.testing.assert_allclose(nb, rb, atol=2e-6)
        assert loss == pytest.approx(rl, abs=1e-5)
    for a, k in zip((x, w, b, t), keep, strict=True):
        np.testing.assert_array_equal(a, k)


def test_boundary_checks():
    x = pack_bits(np.ones((2, 10), np.uint8))
    w = np.zeros((10, 3), np.float32)
    b = np.zeros(3, np.float32)
    with pytest.raises(ValueError):
        head_step_t(x, 11, w, b, np.array([0, 1]), 0.1)
    with pytest.raises(ValueError):
        head_step_t(x, 10, w, b, np.array([0, 3]), 0.1)
    with pytest.raises(ValueError):
        head_step_t(x, 10, w, b, np.array([0.0, 1.0]), 0.1)
    with pytest.raises(ValueError):
        head_step_t(x, 10, w, b, np.array([0, 1]), float("nan"))
    with pytest.raises(ValueError):
        head_step_t(x.astype(np.int64), 10, w, b, np.array([0, 1]), 0.1)
