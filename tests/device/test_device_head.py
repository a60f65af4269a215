"""edgecl.device.head: the head as a value (new heads from old, never changed in place), its
bytes and logits, and the Numba step backend against the NumPy reference step."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.bundle import head_bytes_per_class, round_head
from edgecl.device.head import Head, HeadSettings, NumbaHeadSteps, make_head_steps
from edgecl.errors import BundleError, InvalidValueError, UnknownClassError
from edgecl.kernels import pack_bits, unpack_bits
from edgecl.kernels.head import softmax_head_step_reference


def _head(rng, n_bits=70, classes=("a", "b", "c"), bits=32) -> Head:
    w = (rng.normal(size=(n_bits, len(classes))) * 0.2).astype(np.float32)
    b = rng.normal(size=len(classes)).astype(np.float32)
    return Head(n_bits, classes, w, b, bits=bits)


@pytest.mark.parametrize("bits", [32, 16, 8])
def test_bytes_logits_and_rounding(bits):
    rng = np.random.default_rng(bits)
    h = _head(rng, bits=bits)
    assert h.bytes_per_class == head_bytes_per_class(70, bits)
    assert h.nbytes == 3 * h.bytes_per_class
    np.testing.assert_array_equal(h.weight, round_head(h.weight, bits))  # kept as stored
    z = pack_bits(rng.random((5, 70)) < 0.5)
    want = unpack_bits(z, 70).astype(np.float64) @ h.weight + h.bias
    np.testing.assert_allclose(h.logits(z), want, rtol=1e-5, atol=1e-5)
    assert sum(a.nbytes for a in h.stored_arrays().values()) == h.nbytes


def test_new_heads_leave_the_old_one_alone():
    rng = np.random.default_rng(0)
    h = _head(rng)
    w0, b0 = h.weight.copy(), h.bias.copy()
    grown = h.with_class("d")
    assert grown.classes == ("a", "b", "c", "d") and h.classes == ("a", "b", "c")
    np.testing.assert_array_equal(grown.weight[:, :3], w0)
    assert not grown.weight[:, 3].any() and grown.bias[3] == 0
    shrunk = grown.without_class("b")
    assert shrunk.classes == ("a", "c", "d")
    np.testing.assert_array_equal(shrunk.weight[:, :2], w0[:, [0, 2]])
    np.testing.assert_array_equal(h.weight, w0)
    np.testing.assert_array_equal(h.bias, b0)
    assert shrunk.index("d") == 2
    with pytest.raises(UnknownClassError, match=r"'x' \(classes: \['a', 'c', 'd'\]\)"):
        shrunk.without_class("x")


def test_numba_steps_equal_the_reference_steps_on_odd_sizes():
    rng = np.random.default_rng(1)
    n_bits, classes = 67, ("a", "b", "c", "d", "e")
    h = _head(rng, n_bits, classes)
    batches = []
    for size in (7, 5, 7, 3):
        words = pack_bits(rng.random((size, n_bits)) < 0.5)
        batches.append((words, rng.integers(0, len(classes), size)))
    settings = HeadSettings(lr=0.3, batch_size=7, weight_decay=0.01)
    seen = []
    new, fit = h.trained(
        iter(batches),
        NumbaHeadSteps(n_bits),
        settings,
        n_batches=len(batches),
        progress=lambda i, n: seen.append((i, n)),
    )
    w, b = h.weight, h.bias
    losses = []
    for words, labels in batches:
        w, b, loss = softmax_head_step_reference(
            words, n_bits, w, b, labels, 0.3, weight_decay=0.01
        )
        losses.append(loss)
    np.testing.assert_allclose(new.weight, w, atol=1e-5)
    np.testing.assert_allclose(new.bias, b, atol=1e-5)
    assert fit.steps == 4 and seen == [(i, 4) for i in range(1, 5)]
    assert fit.loss_first == pytest.approx(losses[0], abs=1e-5)
    assert fit.loss_last == pytest.approx(losses[-1], abs=1e-5)
    assert h.classes == new.classes


def test_a_diverging_head_is_refused():
    n_bits = 64
    huge = np.full((n_bits, 3), 3e38, np.float32)  # finite, but its logits overflow
    h = Head(n_bits, ("a", "b", "c"), huge, np.zeros(3, np.float32))
    words = pack_bits(np.ones((4, n_bits), bool))
    with pytest.raises(FloatingPointError, match="finite head"):
        h.trained(
            [(words, np.array([0, 1, 2, 0]))] * 3,
            NumbaHeadSteps(n_bits),
            HeadSettings(lr=10.0),
            n_batches=3,
        )


def test_bad_heads_and_backends_are_refused():
    w = np.zeros((10, 2), np.float32)
    b = np.zeros(2, np.float32)
    with pytest.raises(InvalidValueError, match="distinct"):
        Head(10, ["a", "a"], w, b)
    with pytest.raises(InvalidValueError, match=r"\(10, 2\)"):
        Head(10, ["a", "b"], w[:5], b)
    bad = w.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidValueError, match="finite"):
        Head(10, ["a", "b"], bad, b)
    with pytest.raises(InvalidValueError, match="head_bits"):
        Head(10, ["a", "b"], w, b, bits=4)
    with pytest.raises(InvalidValueError, match="backend"):
        make_head_steps("cuda", 10, None)
    with pytest.raises(BundleError, match="learning graphs"):
        make_head_steps("onnxruntime", 10, None)
