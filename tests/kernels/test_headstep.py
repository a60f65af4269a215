"""The learner's unchecked HeadStepper (transposed layout, work arrays reused across
steps) equals the head step's NumPy twin on odd sizes."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.kernels import pack_bits
from edgecl.kernels.head import softmax_head_step_reference
from edgecl.kernels.headstep import HeadStepper


@pytest.mark.parametrize("n_bits", [1, 63, 64, 65, 127, 1000])
@pytest.mark.parametrize("batch,n_cls", [(1, 1), (7, 2), (64, 11), (5, 3), (66, 10), (3, 7)])
def test_matches_the_reference(n_bits, batch, n_cls):
    rng = np.random.default_rng(n_bits * 100 + batch)
    x = pack_bits((rng.random((batch, n_bits)) < 0.5).astype(np.uint8))
    w = (rng.normal(size=(n_bits, n_cls)) * 0.3).astype(np.float32)
    b = rng.normal(size=n_cls).astype(np.float32)
    t = rng.integers(0, n_cls, batch)
    keep = (x.copy(), w.copy(), b.copy(), t.copy())
    step = HeadStepper(n_bits, n_cls, max(1, batch // 2))  # grows its work arrays
    for wd in (0.0, 0.01):
        wt = np.ascontiguousarray(w.T)
        new_wt, new_b = np.empty_like(wt), np.empty_like(b)
        loss = step(x, wt, b, t, 0.1, wd, new_wt, new_b)
        rw, rb, rl = softmax_head_step_reference(x, n_bits, w, b, t, 0.1, weight_decay=wd)
        np.testing.assert_allclose(new_wt.T, rw, atol=2e-6)
        np.testing.assert_allclose(new_b, rb, atol=2e-6)
        assert loss == pytest.approx(rl, abs=1e-5)
    for a, k in zip((x, w, b, t), keep, strict=True):
        np.testing.assert_array_equal(a, k)


def test_smaller_batches_after_a_large_one_reuse_the_work_arrays():
    rng = np.random.default_rng(5)
    n_bits, n_cls = 77, 4
    w = (rng.normal(size=(n_bits, n_cls)) * 0.3).astype(np.float32)
    b = np.zeros(n_cls, np.float32)
    step = HeadStepper(n_bits, n_cls, 9)
    for batch in (9, 2, 5, 1):
        x = pack_bits((rng.random((batch, n_bits)) < 0.5).astype(np.uint8))
        t = rng.integers(0, n_cls, batch)
        wt = np.ascontiguousarray(w.T)
        new_wt, new_b = np.empty_like(wt), np.empty_like(b)
        step(x, wt, b, t, 0.2, 0.0, new_wt, new_b)
        rw, rb, _ = softmax_head_step_reference(x, n_bits, w, b, t, 0.2)
        np.testing.assert_allclose(new_wt.T, rw, atol=2e-6)
        np.testing.assert_allclose(new_b, rb, atol=2e-6)
