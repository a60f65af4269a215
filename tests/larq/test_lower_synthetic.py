"""Keras models built in the test (configs + random weights, no TensorFlow): what the
importer maps is checked against the model's NumPy float forward (itself checked against
TensorFlow on the fixtures), and what it cannot map is refused with the layer's name and
type."""

import numpy as np
import pytest

from edgecl.device import Runtime
from edgecl.errors import ExportError
from edgecl.kernels import unpack_bits
from edgecl.larq import lower_keras_model
from edgecl.larq.keras_h5 import KerasLayer, KerasModel, snake_case
from edgecl.larq.layers import parse_model
from edgecl.larq.reference import reference_forward
from edgecl.program.ops import Affine, MaxPoolFloat

SIGN = {"class_name": "SteSign", "config": {"name": "ste_sign"}}


def _conv(name, c, o, *, stride=1, padding="same", iq=SIGN, kq=SIGN, pad=1.0, bias=False, rng):
    w = [rng.normal(size=(3, 3, c, o)).astype(np.float32)]
    if bias:
        w.append(rng.normal(size=o).astype(np.float32))
    cfg = {
        "name": name,
        "filters": o,
        "kernel_size": [3, 3],
        "strides": [stride, stride],
        "padding": padding,
        "use_bias": bias,
        "pad_values": pad,
        "input_quantizer": iq,
        "kernel_quantizer": kq,
        "activation": "linear",
    }
    return KerasLayer(name, "QuantConv2D", cfg, tuple(w))


def _bn(name, c, rng, scale=3.0):
    gamma = rng.uniform(0.5, 1.5, c) * np.where(rng.random(c) < 0.3, -1, 1)
    w = (gamma, rng.normal(size=c), rng.normal(size=c) * scale, rng.uniform(0.5, 4, c) * scale)
    return KerasLayer(
        name,
        "BatchNormalization",
        {"name": name, "axis": [-1], "epsilon": 1e-3},
        tuple(np.asarray(a, np.float32) for a in w),
    )


def _dense(name, f, o, *, iq=SIGN, kq=None, rng):
    w = (rng.normal(size=(f, o)).astype(np.float32), rng.normal(size=o).astype(np.float32))
    cfg = {
        "name": name,
        "units": o,
        "use_bias": True,
        "input_quantizer": iq,
        "kernel_quantizer": kq,
        "activation": "linear",
    }
    return KerasLayer(name, "QuantDense", cfg, w)


def _layer(name, kind, **cfg):
    return KerasLayer(name, kind, {"name": name, **cfg}, ())


def _check(model, x, **norm):
    imp = lower_keras_model(model, **norm)
    specs = parse_model(model)
    bits, logits = reference_forward(specs, x, **norm)
    arrays = dict(imp.arrays, **{"head.weight": imp.head_weight, "head.bias": imp.head_bias})
    manifest = {
        "input": imp.input,
        "layers": [op.to_dict() for op in imp.layers],
        "embedding": imp.embedding,
        "classes": [str(i) for i in range(logits.shape[1])],
        "head": {"weight": "head.weight", "bias": "head.bias"},
        "memory": None,
        "budget": {"bytes": None, "policy": "strict"},
    }
    rt = Runtime(manifest, arrays)
    np.testing.assert_array_equal(unpack_bits(rt.embed(x), rt.n_bits), bits)
    np.testing.assert_allclose(rt.logits(x), logits, atol=1e-4 * max(1, np.abs(logits).max()))
    return imp


def test_pool_before_batchnorm_relu_and_rescaling():
    rng = np.random.default_rng(0)
    layers = (
        KerasLayer("scale", "Rescaling", {"name": "scale", "scale": 1 / 255, "offset": -0.5}, ()),
        _conv("c0", 1, 8, iq=None, rng=rng, pad=0.0, bias=True),
        _layer("p0", "MaxPooling2D", pool_size=[2, 2], padding="valid"),
        _bn("b0", 8, rng, scale=0.5),
        _layer("a0", "Activation", activation="relu"),
        _conv("c1", 8, 64, stride=2, rng=rng),
        _layer("p1", "MaxPooling2D", pool_size=[2, 2], padding="valid"),  # pool on ints
        _bn("b1", 64, rng, scale=6),
        _layer("f", "Flatten"),
        _dense("head", 64, 3, rng=rng),
        _layer("sm", "Activation", activation="softmax"),
    )
    model = KerasModel("m", (10, 10, 1), layers)
    x = rng.integers(0, 256, (16, 10, 10, 1)).astype(np.uint8)
    imp = _check(model, x)
    kinds = [type(op) for op in imp.layers]
    assert Affine in kinds and MaxPoolFloat in kinds  # the pools before BatchNorm, on floats
    assert imp.input["scale"] == pytest.approx(1 / 255) and imp.input["mean"] == [0.5]


def _refused(layers, shape=(8, 8, 1), match="", **kw):
    with pytest.raises(ExportError, match=match) as info:
        lower_keras_model(KerasModel("m", shape, tuple(layers)), **kw)
    return info.value


def test_unsupported_layers_are_named():
    rng = np.random.default_rng(1)
    err = _refused(
        [
            _conv("c0", 1, 4, iq=None, rng=rng),
            _layer("gap", "GlobalAveragePooling2D"),
            _dense("head", 4, 2, rng=rng),
        ],
        match="'gap' \\(GlobalAveragePooling2D\\): unsupported layer type",
    )
    assert err.module_path == "gap" and err.module_type == "GlobalAveragePooling2D"
    dorefa = {"class_name": "DoReFaQuantizer", "config": {"name": "dorefa_quantizer"}}
    _refused(
        [_conv("c0", 1, 4, iq=dorefa, rng=rng)], match="'c0' \\(QuantConv2D\\): input_quantizer"
    )
    _refused(
        [
            _conv("c0", 1, 4, iq=None, rng=rng),
            _bn("b", 4, rng),
            _conv("c1", 4, 4, kq=None, rng=rng),
            _layer("f", "Flatten"),
            _dense("head", 256, 2, rng=rng),
        ],
        match="'c1' \\(QuantConv2D\\): a sign input quantizer with a float kernel",
    )


def test_head_on_float_values_and_unpackable_flatten_are_refused():
    rng = np.random.default_rng(2)
    base = [
        _conv("c0", 1, 4, iq=None, rng=rng),
        _bn("b", 4, rng),
        _conv("c1", 4, 32, rng=rng),
        _bn("b1", 32, rng),
        _layer("f", "Flatten"),
    ]
    _refused(
        base + [_dense("head", 8 * 8 * 32, 2, iq=None, rng=rng)], match="a head on float values"
    )
    _refused(base + [_dense("head", 8 * 8 * 32, 2, rng=rng)], match="channels a multiple of 64")
    _refused(base[:1], match="end in a Dense")


def test_snake_case_names_of_keras_v3_weights():
    assert snake_case("QuantConv2D") == "quant_conv2d"
    assert snake_case("MaxPooling2D") == "max_pooling2d"
    assert snake_case("BatchNormalization") == "batch_normalization"
    assert snake_case("QuantDense") == "quant_dense"


def _plain_dense(name, f, o, rng):
    w = (rng.normal(size=(f, o)).astype(np.float32), rng.normal(size=o).astype(np.float32))
    return KerasLayer(
        name, "Dense", {"name": name, "units": o, "use_bias": True, "activation": "linear"}, w
    )


def test_float_dense_in_f_string_quantizers_bn_without_scale():
    rng = np.random.default_rng(4)
    bn_noscale = _bn("b0", 8, rng, scale=40)
    bn_noscale = KerasLayer(
        "b0",
        "BatchNormalization",
        {"name": "b0", "axis": -1, "epsilon": 1e-3, "scale": False},
        bn_noscale.weights[1:],
    )  # beta, mean, variance
    layers = (
        _conv("c0", 3, 8, iq=None, kq="ste_sign", pad=0.0, rng=rng),
        bn_noscale,
        _conv("c1", 8, 16, iq="approx_sign", kq="swish_sign", stride=2, rng=rng),
        _bn("b1", 16, rng, scale=6),
        _layer("f", "Flatten"),
        _plain_dense("d0", 3 * 3 * 16, 40, rng),  # a float dense on the BN's float output
        _bn("b2", 40, rng, scale=20),
        _layer("s", "Activation", activation="ste_sign"),
        _layer("drop", "Dropout", rate=0.5),
        _plain_dense("head", 40, 4, rng),  # a plain Dense on the signs
    )
    model = KerasModel("m", (6, 6, 3), layers)
    x = rng.integers(0, 256, (20, 6, 6, 3)).astype(np.uint8)
    imp = _check(model, x, input_scale=1 / 255, mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3])
    names = [op.name for op in imp.layers]
    assert names == [
        "conv2d_float",
        "threshold_float",
        "conv2d_binary",
        "affine",
        "flatten",
        "dense_float",
        "threshold_float",
    ]
    assert imp.embedding_layer == "d0" and imp.embedding["bits"] == 40
