"""torch eval == device runtime == onnxruntime, on random models of every backbone."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgecl.bundle import read_bundle
from edgecl.device import Runtime
from edgecl.export import export_bundle, torch_reference
from edgecl.export._onnx import IR_VERSION, OPSET
from edgecl.export.onnx_forward import export_onnx, forward_model
from edgecl.kernels import unpack_bits

from .conftest import random_samples

ort = pytest.importorskip("onnxruntime")


def _export(model, shape, tmp_path, n=160):
    x = random_samples(shape, n)
    k = model.head.out_features
    y = np.arange(n) % k
    path = tmp_path / "m.ecl"
    info = export_bundle(model, path, calibration=(x, y), class_names=[f"c{i}" for i in range(k)])
    return path, info, x


def _ort_run(model_proto, x):
    sess = ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    xf = np.asarray(x, np.float32)
    if xf.ndim == 3:
        xf = xf[..., None]
    return sess.run(["logits", "embedding"], {"x": xf})


def test_torch_equals_device_equals_onnxruntime(random_model, tmp_path):
    name, model, shape = random_model
    path, info, x = _export(model, shape, tmp_path)
    ref_bits, ref_logits = torch_reference(model, x)
    rt = Runtime.load(path)
    dev_bits = unpack_bits(rt.embed(x), rt.n_bits)
    np.testing.assert_array_equal(dev_bits, ref_bits)
    np.testing.assert_allclose(rt.logits(x), ref_logits, atol=1e-4, rtol=0)
    assert info.manifest["export"]["verified"] is True

    manifest, arrays = read_bundle(path)
    proto = forward_model(manifest, arrays)
    assert proto.ir_version == IR_VERSION <= 10
    assert proto.opset_import[0].version == OPSET
    logits, emb = _ort_run(proto, x)
    np.testing.assert_array_equal(emb.astype(np.uint8), ref_bits)
    np.testing.assert_allclose(logits, ref_logits, atol=1e-4, rtol=0)


def test_the_random_models_exercise_flips_and_constant_channels(tmp_path):
    """The folded thresholds of the test models include flips (gamma < 0) and extreme
    thresholds (gamma == 0: constant channels), so parity above covers them."""
    from .conftest import BACKBONES, randomize_batchnorm

    build, shape = BACKBONES["mnist_heaviside"]
    torch.manual_seed(0)
    path, _, _ = _export(randomize_batchnorm(build()), shape, tmp_path)
    manifest, arrays = read_bundle(path)
    layers = manifest["layers"]
    flips = constant = 0
    for prev, layer in zip(layers, layers[1:], strict=False):
        if layer["op"] != "threshold":
            continue
        if prev["op"] == "conv2d_binary":
            _, kh, kw, _ = arrays[prev["weight"]].shape
            n = kh * kw * prev["in_shape"][2]
        else:
            n = prev["in_shape"][0]
        thr = arrays[layer["thresholds"]]
        flips += int(arrays[layer["flip"]].sum())
        constant += int(((thr <= -n) | (thr > n)).sum())
    assert flips > 0 and constant > 0


def test_export_onnx_writes_a_checked_file(tmp_path):
    from .conftest import BACKBONES, randomize_batchnorm

    build, shape = BACKBONES["mnist_heaviside"]
    torch.manual_seed(0)
    path, _, x = _export(randomize_batchnorm(build()), shape, tmp_path)
    out = export_onnx(path, tmp_path / "m.onnx")
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    with pytest.raises(FileExistsError):
        export_onnx(path, out)
    logits, _ = _ort_run(proto, x)
    np.testing.assert_allclose(logits, Runtime.load(path).logits(x), atol=1e-4, rtol=0)
