"""backend="onnxruntime": the head update runs the bundle's ONNX head-update graph."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.device import Runtime
from edgecl.errors import BundleError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _graph(n_bits: int, n_classes: int, *, dynamic: bool) -> bytes:
    from edgecl.export.onnx_head import head_update_model

    model = head_update_model(n_bits, n_classes)
    if dynamic:  # a class axis of any size, as a device that learns classes needs
        axes = {"weight": 1, "bias": 0, "targets": 1, "new_weight": 1, "new_bias": 0}
        for v in list(model.graph.input) + list(model.graph.output):
            if v.name in axes:
                dim = v.type.tensor_type.shape.dim[axes[v.name]]
                dim.ClearField("dim_value")
                dim.dim_param = "classes"
    return model.SerializeToString()


def test_onnx_head_update_matches_numba(tmp_path, stream, bundle_maker):
    x, y, xt, yt = stream
    m = y < 3
    path = bundle_maker(
        tmp_path / "o.ecl", x[m], y[m], ["c0", "c1", "c2"], onnx_graph=_graph(96, 3, dynamic=True)
    )
    a = Runtime.load(path)
    b = Runtime.load(path, backend="onnxruntime")
    for k in (3, 4):
        ra = a.learn_class(f"c{k}", x[y == k], seed=k)
        rb = b.learn_class(f"c{k}", x[y == k], seed=k)
        assert rb.backend == "onnxruntime" and rb.steps == ra.steps
    np.testing.assert_allclose(a.head_weight, b.head_weight, atol=1e-4)
    np.testing.assert_allclose(a.head_bias, b.head_bias, atol=1e-4)
    assert np.mean(a.predict(xt) == b.predict(xt)) > 0.99


def test_fixed_class_graph_refused_when_classes_grow(tmp_path, stream, bundle_maker):
    x, y, _, _ = stream
    m = y < 3
    path = bundle_maker(
        tmp_path / "f.ecl", x[m], y[m], ["c0", "c1", "c2"], onnx_graph=_graph(96, 3, dynamic=False)
    )
    rt = Runtime.load(path, backend="onnxruntime")
    before = rt.head_weight.copy()
    with pytest.raises(BundleError, match="fixed at 3 classes"):
        rt.learn_class("c3", x[y == 3])
    assert list(rt.classes_) == ["c0", "c1", "c2"]
    np.testing.assert_array_equal(rt.head_weight, before)


def test_onnx_backend_needs_the_graph(bundle):
    with pytest.raises(BundleError, match="head-update graph"):
        Runtime.load(bundle, backend="onnxruntime")
    with pytest.raises(ValueError, match="backend"):
        Runtime.load(bundle, backend="tflite")
