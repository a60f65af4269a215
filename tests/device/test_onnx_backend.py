"""backend="onnxruntime" needs the bundle's learning graphs (edgecl.device.ort): a bundle
with only the head-update graph, or with none, is refused with how to export one."""

from __future__ import annotations

import pytest

from edgecl.device import Runtime
from edgecl.errors import BundleError

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_a_head_graph_alone_is_not_enough(tmp_path, stream, bundle_maker):
    from edgecl.export.onnx_head import head_update_bytes

    x, y, _, _ = stream
    m = y < 3
    path = bundle_maker(
        tmp_path / "o.ecl", x[m], y[m], ["c0", "c1", "c2"], onnx_graph=head_update_bytes(96)
    )
    with pytest.raises(BundleError, match="learning graphs.*edgecl export .* --onnx"):
        Runtime.load(path, backend="onnxruntime")
    assert Runtime.load(path).backend == "numba"


def test_onnx_backend_needs_the_graphs(bundle):
    with pytest.raises(BundleError, match="learning graphs"):
        Runtime.load(bundle, backend="onnxruntime")
    with pytest.raises(ValueError, match="backend"):
        Runtime.load(bundle, backend="tflite")
