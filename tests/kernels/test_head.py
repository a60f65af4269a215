import numpy as np
import pytest

from edgecl.kernels import softmax_head_step, softmax_head_step_reference, unpack_bits


def _problem(rng, words, batch, n, n_cls):
    x = words(rng, (batch,), n)
    w = (rng.standard_normal((n, n_cls)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(n_cls) * 0.1).astype(np.float32)
    t = rng.integers(0, n_cls, size=batch).astype(np.int64)
    return x, w, b, t


@pytest.mark.parametrize("n", [1, 63, 64, 65, 127, 1000])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_matches_reference(words, n, batch, weight_decay):
    rng = np.random.default_rng(n + batch)
    x, w, b, t = _problem(rng, words, batch, n, 10)
    args = (x, n, w, b, t, 0.5)
    nw, nb, loss = softmax_head_step(*args, weight_decay=weight_decay)
    rw, rb, rloss = softmax_head_step_reference(*args, weight_decay=weight_decay)
    assert nw.dtype == np.float32 and nb.dtype == np.float32 and isinstance(loss, float)
    np.testing.assert_allclose(nw, rw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nb, rb, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(rloss, rel=1e-5)


def test_inputs_untouched_and_loss_before_update(words):
    rng = np.random.default_rng(0)
    x, w, b, t = _problem(rng, words, 16, 96, 5)
    copies = [a.copy() for a in (x, w, b, t)]
    nw, nb, loss = softmax_head_step(x, 96, w, b, t, 0.1)
    for a, c in zip((x, w, b, t), copies, strict=True):
        np.testing.assert_array_equal(a, c)
    z = unpack_bits(x, 96).astype(np.float64) @ w + b
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-logp[np.arange(16), t].mean(), rel=1e-5)
    assert nw is not w and nb is not b


def test_steps_reduce_the_loss(words):
    rng = np.random.default_rng(1)
    x, w, b, t = _problem(rng, words, 32, 200, 4)
    first = None
    for _ in range(30):
        w, b, loss = softmax_head_step(x, 200, w, b, t, 0.5)
        first = loss if first is None else first
    _, _, last = softmax_head_step(x, 200, w, b, t, 0.0)
    assert last < 0.5 * first


def test_zero_lr_changes_nothing(words):
    rng = np.random.default_rng(2)
    x, w, b, t = _problem(rng, words, 3, 70, 3)
    nw, nb, _ = softmax_head_step(x, 70, w, b, t, 0.0, weight_decay=0.1)
    np.testing.assert_array_equal(nw, w)
    np.testing.assert_array_equal(nb, b)


def test_bad_input(words):
    rng = np.random.default_rng(3)
    x, w, b, t = _problem(rng, words, 4, 70, 3)
    with pytest.raises(ValueError, match=r"targets in \[0, 3\)"):
        softmax_head_step(x, 70, w, b, t + 3, 0.1)
    with pytest.raises(ValueError, match=r"targets of shape \(4,\)"):
        softmax_head_step(x, 70, w, b, t[:3], 0.1)
    with pytest.raises(TypeError, match="integer class indices"):
        softmax_head_step(x, 70, w, b, t.astype(np.float32), 0.1)
    with pytest.raises(ValueError, match=r"bias of shape \(3,\)"):
        softmax_head_step(x, 70, w, b[:2], t, 0.1)
    with pytest.raises(TypeError, match="float32 weight"):
        softmax_head_step(x, 70, w.astype(np.float64), b, t, 0.1)
    with pytest.raises(ValueError, match=r"weight of shape \(70, C\)"):
        softmax_head_step(x, 70, w[:60], b, t, 0.1)
    with pytest.raises(ValueError, match="lr"):
        softmax_head_step(x, 70, w, b, t, float("nan"))
    with pytest.raises(ValueError, match="weight_decay"):
        softmax_head_step(x, 70, w, b, t, 0.1, weight_decay=-1.0)
    with pytest.raises(ValueError, match="expected 2 words"):
        softmax_head_step(x[:, :1].copy(), 70, w, b, t, 0.1)


def test_large_batch_matches_reference(words):
    # more than 64 samples: the transposed bits span two words, groups of 4 end ragged
    rng = np.random.default_rng(4)
    x, w, b, t = _problem(rng, words, 70, 130, 5)
    nw, nb, loss = softmax_head_step(x, 130, w, b, t, 0.3, weight_decay=0.05)
    rw, rb, rloss = softmax_head_step_reference(x, 130, w, b, t, 0.3, weight_decay=0.05)
    np.testing.assert_allclose(nw, rw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nb, rb, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(rloss, rel=1e-5)
