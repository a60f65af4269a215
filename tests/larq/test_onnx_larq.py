"""The ONNX forward graph of an imported Larq bundle (explicit, asymmetric binary-conv
padding included) gives the device's embedding bits and logits under ONNX Runtime."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from edgecl.device import Runtime  # noqa: E402
from edgecl.export import export_onnx  # noqa: E402
from edgecl.kernels import unpack_bits  # noqa: E402
from edgecl.larq import import_larq  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures" / "larq"


@pytest.mark.parametrize("name", ["quicknet_like.h5", "zero_pad_rgb.h5"])
def test_onnx_graph_of_an_imported_bundle(tmp_path, name):
    d = np.load(FIXTURES / f"{name.split('.')[0]}.npz")
    x, bits, logits = d["x"], d["bits"], d["logits"]
    bundle = tmp_path / "b.ecl"
    import_larq(FIXTURES / name, bundle, calibration=(x, np.arange(len(x)) % logits.shape[1]))
    path = export_onnx(bundle, tmp_path / "b.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = x if x.ndim == 4 else x[..., None]
    got_logits, got_bits = sess.run(["logits", "embedding"], {"x": feed.astype(np.float32)})
    np.testing.assert_array_equal((got_bits > 0).astype(np.uint8), bits)  # ±1 values
    rt = Runtime.load(bundle)
    np.testing.assert_array_equal(unpack_bits(rt.embed(x), rt.n_bits), bits)
    np.testing.assert_allclose(got_logits, logits, atol=1e-4 * max(1, np.abs(logits).max()))
