"""The ONNX head-update graph: one SGD step of the softmax head in stock onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

ort = pytest.importorskip("onnxruntime")

from edgecl.export._onnx import IR_VERSION, OPSET  # noqa: E402
from edgecl.export.onnx_head import head_update_bytes, head_update_model  # noqa: E402


def _numpy_step(w, b, x, y, lr, wd=0.0):
    """Direct float64 NumPy: softmax cross-entropy, its gradient, one SGD step."""
    w64, b64, x64, y64 = (a.astype(np.float64) for a in (w, b, x, y))
    logits = x64 @ w64 + b64
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    g = (np.exp(logp) - y64) / x.shape[0]
    loss = -np.mean(np.sum(y64 * logp, axis=1))
    return w64 - lr * (x64.T @ g + wd * w64), b64 - lr * g.sum(axis=0), loss


def _run(model_bytes, w, b, x, y, lr):
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = {"weight": w, "bias": b, "embeddings": x, "targets": y}
    feeds["lr"] = np.array(lr, np.float32)
    return sess.run(None, feeds)


def _case(rng, d, c, batch):
    w = (rng.standard_normal((d, c)) * 0.3).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    x = (rng.random((batch, d)) < 0.5).astype(np.float32)
    y = np.eye(c, dtype=np.float32)[rng.integers(0, c, batch)]
    return w, b, x, y


def test_versions_are_pinned_and_the_model_checks():
    model = head_update_model(65, 3)
    assert model.ir_version == IR_VERSION <= 10
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    onnx.checker.check_model(model, full_check=True)
    outs = {o.name: o for o in model.graph.output}
    dims = [d.dim_value for d in outs["new_weight"].type.tensor_type.shape.dim]
    assert dims == [65, 3]


@pytest.mark.parametrize("d, c, batch", [(1, 2, 1), (63, 3, 5), (64, 10, 64), (127, 7, 33)])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_step_matches_the_equations(d, c, batch, wd):
    rng = np.random.default_rng(d * 1000 + batch)
    w, b, x, y = _case(rng, d, c, batch)
    before = (w.copy(), b.copy())
    nw, nb, loss = _run(head_update_bytes(d, c, weight_decay=wd), w, b, x, y, 0.25)
    rw, rb, rloss = _numpy_step(w, b, x, y, 0.25, wd)
    assert nw.dtype == np.float32 and nw.shape == (d, c) and nb.shape == (c,)
    np.testing.assert_allclose(nw, rw, atol=1e-5)
    np.testing.assert_allclose(nb, rb, atol=1e-5)
    np.testing.assert_allclose(loss, rloss, rtol=1e-5)
    np.testing.assert_array_equal(w, before[0])
    np.testing.assert_array_equal(b, before[1])


def test_steps_reduce_the_loss():
    rng = np.random.default_rng(3)
    w, b, x, y = _case(rng, 40, 4, 32)
    model = head_update_bytes(40, 4)
    losses = []
    for _ in range(20):
        w, b, loss = _run(model, w, b, x, y, 0.5)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_soft_targets_are_allowed():
    rng = np.random.default_rng(4)
    w, b, x, _ = _case(rng, 10, 3, 6)
    y = rng.random((6, 3)).astype(np.float32)
    y /= y.sum(axis=1, keepdims=True)
    nw, nb, loss = _run(head_update_bytes(10, 3), w, b, x, y, 0.1)
    rw, rb, rloss = _numpy_step(w, b, x, y, 0.1)
    np.testing.assert_allclose(nw, rw, atol=1e-5)
    np.testing.assert_allclose(loss, rloss, rtol=1e-5)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_sizes_refused(bad):
    with pytest.raises(ValueError, match="positive int"):
        head_update_model(bad, 3)


def test_bad_weight_decay_refused():
    with pytest.raises(ValueError, match="weight_decay"):
        head_update_model(4, 3, weight_decay=-1.0)


@pytest.mark.parametrize("d, c, batch", [(1, 2, 1), (65, 3, 7), (512, 10, 64)])
@pytest.mark.parametrize("wd", [0.0, 1e-3])
def test_onnx_step_equals_the_numba_step(d, c, batch, wd):
    """The device can retrain its head with either backend: same weights to 1e-5."""
    from edgecl.kernels import pack_bits, softmax_head_step

    rng = np.random.default_rng(d + c + batch)
    w, b, x, _ = _case(rng, d, c, batch)
    t = rng.integers(0, c, batch)
    y = np.eye(c, dtype=np.float32)[t]
    model = head_update_bytes(d, c, weight_decay=wd)
    xw = pack_bits(x.astype(np.uint8))
    w_n, b_n, w_o, b_o = w, b, w, b
    for _ in range(3):  # a few chained steps, so differences would accumulate
        w_n, b_n, loss_n = softmax_head_step(xw, d, w_n, b_n, t, 0.3, weight_decay=wd)
        w_o, b_o, loss_o = _run(model, w_o, b_o, x, y, 0.3)
        np.testing.assert_allclose(w_o, w_n, atol=1e-5)
        np.testing.assert_allclose(b_o, b_n, atol=1e-5)
        np.testing.assert_allclose(loss_o, loss_n, rtol=1e-5, atol=1e-6)


def test_dynamic_class_count_serves_a_growing_head():
    """The exported graph leaves the class count open: one graph for 3, 4, 5 classes."""
    model = head_update_bytes(20)
    rng = np.random.default_rng(5)
    for c in (3, 4, 5):
        w, b, x, y = _case(rng, 20, c, 6)
        nw, nb, loss = _run(model, w, b, x, y, 0.2)
        rw, rb, rloss = _numpy_step(w, b, x, y, 0.2)
        assert nw.shape == (20, c)
        np.testing.assert_allclose(nw, rw, atol=1e-5)
        np.testing.assert_allclose(nb, rb, atol=1e-5)
