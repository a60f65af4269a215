"""The ONNX forward graphs: the bit-packed dense variant (b) and graph hygiene of (a)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgecl.export._onnx import IR_VERSION
from edgecl.export.onnx_forward import bitpacked_dense_model
from edgecl.kernels import binary_dense, pack_signs

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("n", [1, 63, 64, 65, 127, 1000])
@pytest.mark.parametrize("batch", [1, 5])
def test_bitpacked_dense_equals_binary_dense(n, batch):
    rng = np.random.default_rng(n * 10 + batch)
    o = 7
    w = np.where(rng.random((o, n)) < 0.5, -1.0, 1.0).astype(np.float32)
    x = np.where(rng.random((batch, n)) < 0.5, -1.0, 1.0).astype(np.float32)
    model = bitpacked_dense_model(w)
    assert model.ir_version == IR_VERSION <= 10
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x_bytes = np.packbits(x > 0, axis=1, bitorder="little")
    (acc,) = sess.run(None, {"x_bytes": x_bytes})
    assert acc.dtype == np.int32 and acc.shape == (batch, o)
    np.testing.assert_array_equal(acc, binary_dense(pack_signs(x), pack_signs(w), n))
    np.testing.assert_array_equal(acc, (x @ w.T).astype(np.int32))
