"""The forward graph's ``scores`` output carries the GBM likelihood term: its argmax is
``Runtime.predict`` on the shipped sample, and it matches an independent NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgecl.bundle import read_bundle
from edgecl.device import Runtime
from edgecl.export import ExportConfig, HeadConfig, export_bundle
from edgecl.export._onnx import IR_VERSION, OPSET
from edgecl.export.onnx_forward import forward_model
from edgecl.export.onnx_gbm import gbm_tables, scores_nodes
from edgecl.kernels import pack_bits
from edgecl.memory import GBMConfig, GBMMemory, GBMSize

ort = pytest.importorskip("onnxruntime")

NAMES = [str(i) for i in range(10)]


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _log_softmax(a):
    a = np.asarray(a, np.float64)
    top = a.max(axis=1, keepdims=True)
    return a - (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))


@pytest.fixture(scope="module")
def mnist_gbm_bundle(tmp_path_factory):
    """A small model trained for about a second on the sample, exported with a GBM memory
    fitted on 1,000 calibration images and ``gbm_weight=0.1``."""
    from edgecl.data import load_mnist_sample
    from edgecl.train import fit, mnist_bnn

    x, y, xt, _ = load_mnist_sample()
    torch.manual_seed(0)
    model = mnist_bnn(10, channels=(4, 8), n_bits=32)
    fit(model, (x[:2000], y[:2000]), epochs=1, lr=3e-3, batch_size=50, progress=False)
    path = tmp_path_factory.mktemp("gbm") / "m.ecl"
    config = ExportConfig(
        memory=GBMConfig(components=3, bits=4), head=HeadConfig(gbm_weight=0.1, onnx=False)
    )
    export_bundle(model, path, config, calibration=(x[2000:3000], y[2000:3000]), class_names=NAMES)
    return path, xt[:1000]


def test_scores_argmax_is_runtime_predict_on_1000_sample_images(mnist_gbm_bundle):
    path, x = mnist_gbm_bundle
    manifest, arrays = read_bundle(path)
    assert manifest["head"]["gbm_weight"] == 0.1
    proto = forward_model(manifest, arrays)
    assert proto.ir_version == IR_VERSION <= 10 and proto.opset_import[0].version == OPSET
    logits, scores = _session(proto).run(
        ["logits", "scores"], {"x": x[..., None].astype(np.float32)}
    )
    rt = Runtime.load(path)
    want = rt.predict(x)
    log_p = np.log(rt.predict_proba(x))  # log_softmax of the device's scores
    np.testing.assert_allclose(logits, rt.logits(x), atol=1e-4, rtol=0)
    np.testing.assert_allclose(_log_softmax(scores), log_p, atol=1e-4, rtol=1e-6)
    # agreement wherever the device's two best scores are not tied within float tolerance
    top2 = np.sort(log_p, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-3
    assert clear.sum() >= 990
    got = np.asarray(NAMES)[np.argmax(scores, axis=1)]
    np.testing.assert_array_equal(got[clear], want[clear])
    # the GBM term matters here: the logits alone rank differently on some images
    by_logits = np.asarray(NAMES)[np.argmax(logits, axis=1)]
    assert np.sum(by_logits != want) >= 50  # 123-183 of 1,000 seen over 6 seeds and ISAs


def test_without_gbm_weight_scores_are_the_logits(mnist_gbm_bundle):
    path, x = mnist_gbm_bundle
    manifest, arrays = read_bundle(path)
    manifest["head"]["gbm_weight"] = 0.0
    assert gbm_tables(manifest, arrays) is None
    logits, scores = _session(forward_model(manifest, arrays)).run(
        ["logits", "scores"], {"x": x[:50, ..., None].astype(np.float32)}
    )
    np.testing.assert_array_equal(scores, logits)


def _scores_graph(manifest, arrays, n_bits, n_cls):
    from onnx import TensorProto, helper

    from edgecl.export._onnx import make_model

    nodes, init = scores_nodes(manifest, arrays, embedding="z", logits="logits")
    graph = helper.make_graph(
        nodes,
        "gbm_scores",
        [
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", n_bits]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_cls]),
        ],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", n_cls])],
        initializer=init,
    )
    return _session(make_model(graph, doc="test: gbm scores"))


@pytest.mark.parametrize("n_bits", [1, 37, 64, 65])
def test_scores_match_the_memory_log_likelihood_with_uneven_components(n_bits):
    """Classes of 1, 2 and 4 components (the padded path), against the memory's own
    likelihood (:meth:`GBMMemory.log_likelihood`, another implementation)."""
    rng = np.random.default_rng(n_bits)
    mem = GBMMemory(n_bits, GBMConfig(components=4, bits=4))
    names = ["b", "a", "c"]  # head order differs from the memory's
    for name, k in zip(names, (2, 1, 4), strict=True):
        centre = rng.random(n_bits) < 0.5
        rows = np.where(rng.random((60, n_bits)) < 0.15, ~centre, centre)
        mem.fit_class(name, pack_bits(rows), seed=0, size=GBMSize(k, 4))
    spec, mem_arrays = mem.to_state()
    head_order = ["a", "c", "b"]
    manifest = {
        "head": {"gbm_weight": 0.3},
        "classes": head_order,
        "embedding": {"bits": n_bits},
        "memory": {"spec": spec, "arrays": {k: f"memory.{k}" for k in mem_arrays}},
    }
    arrays = {f"memory.{k}": v for k, v in mem_arrays.items()}
    z = rng.random((41, n_bits)) < 0.5
    logits = rng.normal(0, 3, (41, 3)).astype(np.float32)
    (scores,) = _scores_graph(manifest, arrays, n_bits, 3).run(
        ["scores"], {"z": z.astype(np.float32), "logits": logits}
    )
    ll = mem.log_likelihood(pack_bits(z))[:, [mem.classes.index(c) for c in head_order]]
    want = _log_softmax(logits) + 0.3 * _log_softmax(ll)
    np.testing.assert_allclose(scores, want, atol=1e-4, rtol=1e-5)
    # a head class without a mixture: the device ranks the logits alone
    manifest["classes"] = [*head_order, "d"]
    assert gbm_tables(manifest, arrays) is None
