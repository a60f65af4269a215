"""``edgecl.larq``: Larq models saved by TensorFlow 2.16 + larq 0.14
(``benchmarks/make_larq_fixtures.py``) imported without TensorFlow give TensorFlow's
embedding bits exactly and its logits within float tolerance."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")

from edgecl.device import Runtime  # noqa: E402
from edgecl.device.runtime import embed_reference  # noqa: E402
from edgecl.errors import BudgetError, ExportError  # noqa: E402
from edgecl.kernels import unpack_bits  # noqa: E402
from edgecl.larq import import_larq, lower_keras_model, read_keras_model  # noqa: E402
from edgecl.larq.layers import parse_model  # noqa: E402
from edgecl.larq.reference import reference_forward  # noqa: E402
from edgecl.memory import Budget, GBMConfig  # noqa: E402
from edgecl.program.ops import Conv2dBinary, DenseBinary, Threshold, ThresholdFloat  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures" / "larq"
MODELS = ["quicknet_like.h5", "zero_pad_rgb.h5", "dense_embedding.h5", "dense_embedding.keras"]


def _tf(name):
    d = np.load(FIXTURES / f"{name.split('.')[0]}.npz")
    return d["x"], d["bits"], d["logits"]


def _calibration(logits):
    return np.arange(len(logits)) % logits.shape[1]


@pytest.mark.parametrize("name", MODELS)
def test_import_equals_tensorflow(tmp_path, name):
    x, bits, logits = _tf(name)
    out = tmp_path / "base.ecl"
    info = import_larq(
        FIXTURES / name,
        out,
        calibration=(x, _calibration(logits)),
        memory=GBMConfig(components=2, bits=8),
    )
    assert info.path == out
    rt = Runtime.load(out)
    assert rt.manifest["export"]["verified"] is True
    got = unpack_bits(rt.embed(x), rt.n_bits)
    np.testing.assert_array_equal(got, bits)  # bit-exact on the binary layers
    np.testing.assert_array_equal(unpack_bits(embed_reference(rt, x), rt.n_bits), bits)
    np.testing.assert_allclose(
        rt.logits(x), logits, rtol=0, atol=1e-4 * max(1, np.abs(logits).max())
    )
    # every class got its memory; the bits are not constant (the thresholds do something)
    assert sorted(rt.memory().classes) == sorted(rt.classes_.tolist())
    assert 0.05 < bits.mean() < 0.95


@pytest.mark.parametrize("name", MODELS)
def test_numpy_reference_is_tensorflow(name):
    x, bits, logits = _tf(name)
    ref_bits, ref_logits = reference_forward(parse_model(read_keras_model(FIXTURES / name)), x)
    np.testing.assert_array_equal(ref_bits, bits)
    np.testing.assert_allclose(ref_logits, logits, rtol=0, atol=1e-4 * max(1, np.abs(logits).max()))


def test_the_fixtures_cover_what_they_claim():
    qn = lower_keras_model(read_keras_model(FIXTURES / "quicknet_like.h5"))
    convs = [op for op in qn.layers if isinstance(op, Conv2dBinary)]
    # strides 2 'same' on an 8x8 input: TensorFlow's pad is 0 above, 1 below
    assert any(op.stride == 2 and op.padding == (0, 1, 0, 1) for op in convs)
    assert all(op.pad_value == 1 for op in convs)
    assert isinstance(qn.layers[1], ThresholdFloat)  # a float first layer, then a threshold
    zp = lower_keras_model(read_keras_model(FIXTURES / "zero_pad_rgb.h5"))
    zconvs = [op for op in zp.layers if isinstance(op, Conv2dBinary)]
    assert [(op.padding, op.pad_value, op.stride) for op in zconvs] == [
        ("same", 0, 1),
        ("valid", 0, 2),
    ]
    assert any(isinstance(op, DenseBinary) for op in zp.layers)
    flips = np.concatenate([zp.arrays[op.flip] for op in zp.layers if isinstance(op, Threshold)])
    assert flips.any() and not flips.all()  # negative gammas fold into flips
    assert zp.embedding["bits"] == 32 and zp.embedding_layer == "embed"


def test_keras_and_h5_give_the_same_program():
    a = lower_keras_model(read_keras_model(FIXTURES / "dense_embedding.h5"))
    b = lower_keras_model(read_keras_model(FIXTURES / "dense_embedding.keras"))
    assert [op.to_dict() for op in a.layers] == [op.to_dict() for op in b.layers]
    assert a.arrays.keys() == b.arrays.keys()
    for key in a.arrays:
        np.testing.assert_array_equal(a.arrays[key], b.arrays[key])
    np.testing.assert_array_equal(a.head_weight, b.head_weight)


def test_class_names_pick_labels_and_others_are_ignored(tmp_path):
    x, _, logits = _tf("zero_pad_rgb.h5")
    labels = np.array(["cat", "dog", "owl", "yak", "emu", "ant"])[np.arange(len(x)) % 6]
    out = tmp_path / "named.ecl"
    import_larq(
        FIXTURES / "zero_pad_rgb.h5",
        out,
        calibration=(x, labels),
        class_names=["cat", "dog", "owl", "yak"],
        memory=GBMConfig(components=1, bits=4),
    )
    rt = Runtime.load(out)
    assert rt.classes_.tolist() == ["cat", "dog", "owl", "yak"]
    np.testing.assert_allclose(rt.logits(x), logits, atol=1e-4 * max(1, np.abs(logits).max()))
    with pytest.raises(ValueError, match="expected samples labelled"):
        import_larq(
            FIXTURES / "zero_pad_rgb.h5",
            tmp_path / "none.ecl",
            calibration=(x, labels),
            class_names=["a", "b", "c", "d"],
        )
    assert not (tmp_path / "none.ecl").exists()


def test_refusals_change_nothing(tmp_path):
    x, _, logits = _tf("quicknet_like.h5")
    out = tmp_path / "base.ecl"
    out.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        import_larq(FIXTURES / "quicknet_like.h5", out, calibration=(x, _calibration(logits)))
    with pytest.raises(ValueError, match="expected samples"):
        import_larq(
            FIXTURES / "quicknet_like.h5",
            tmp_path / "b.ecl",
            calibration=(x[:, :8], _calibration(logits)),
        )
    with pytest.raises(ValueError, match="expected 5 class names"):
        import_larq(
            FIXTURES / "quicknet_like.h5",
            tmp_path / "b.ecl",
            calibration=(x, _calibration(logits)),
            class_names=["a", "b"],
        )
    with pytest.raises(BudgetError):
        import_larq(
            FIXTURES / "quicknet_like.h5",
            tmp_path / "b.ecl",
            calibration=(x, _calibration(logits)),
            memory=GBMConfig(components=2, bits=8),
            budget=Budget(1000, "strict"),
        )
    assert out.read_bytes() == b"old" and not (tmp_path / "b.ecl").exists()


def test_embedding_layer_is_checked():
    model = read_keras_model(FIXTURES / "zero_pad_rgb.h5")
    # the layers between the named one and the head compute nothing: the same program
    same = lower_keras_model(model, embedding_layer="embed_bn")
    assert same.embedding_layer == "embed_bn" and same.embedding["bits"] == 32
    with pytest.raises(ExportError, match="compute after it"):
        lower_keras_model(model, embedding_layer="conv2")
    with pytest.raises(ExportError, match="expected a layer of the model"):
        lower_keras_model(model, embedding_layer="nope")


def test_importer_imports_no_torch(tmp_path):
    x, bits, logits = _tf("dense_embedding.h5")
    np.savez(tmp_path / "data.npz", x=x, y=_calibration(logits))
    code = f"""
import sys
from edgecl.testing import block_torch
block_torch()
import numpy as np
from edgecl.cli import main
rc = main(["import-larq", {str(FIXTURES / "dense_embedding.keras")!r}, "-o",
           {str(tmp_path / "b.ecl")!r}, "--data", {str(tmp_path / "data.npz")!r},
           "--components", "1", "-q"])
assert rc == 0, rc
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rt = Runtime.load(tmp_path / "b.ecl")
    np.testing.assert_array_equal(unpack_bits(rt.embed(x), rt.n_bits), bits)


@pytest.mark.parametrize(
    "module",
    ["edgecl.larq", "edgecl.larq.lower", "edgecl.cli.import_larq", "edgecl.memory.base_classes"],
)
def test_modules_import_without_torch(module):
    code = (
        "import importlib, sys\n"
        "from edgecl.testing import block_torch\n"
        "block_torch()\n"
        f"importlib.import_module({module!r})\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _functional_copy(src, dst, *, branch=False):
    """``src`` (a Sequential .h5) rewritten as a Keras 2 functional model (same weights)."""
    import json
    import shutil

    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        layers, prev = [], None
        for ly in cfg["config"]["layers"]:
            name = ly["config"]["name"]
            ly = dict(ly, name=name, inbound_nodes=[] if prev is None else [[[prev, 0, 0, {}]]])
            layers.append(ly)
            prev = name
        if branch:  # the last layer reads the first one: not a chain
            layers[-1]["inbound_nodes"] = [[[layers[0]["name"], 0, 0, {}]]]
        body = {
            "name": "f",
            "layers": layers,
            "input_layers": [[layers[0]["name"], 0, 0]],
            "output_layers": [[prev, 0, 0]],
        }
        f.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": body})


def test_functional_chain_reads_as_the_sequential_model(tmp_path):
    src = FIXTURES / "quicknet_like.h5"
    _functional_copy(src, tmp_path / "f.h5")
    a = lower_keras_model(read_keras_model(src))
    b = lower_keras_model(read_keras_model(tmp_path / "f.h5"))
    assert [op.to_dict() for op in a.layers] == [op.to_dict() for op in b.layers]
    np.testing.assert_array_equal(a.head_weight, b.head_weight)
    _functional_copy(src, tmp_path / "g.h5", branch=True)
    with pytest.raises(ExportError, match="expected a chain of layers"):
        read_keras_model(tmp_path / "g.h5")


def test_verification_catches_a_wrong_lowering(tmp_path, monkeypatch):
    import edgecl.larq.lower as lower

    x, _, logits = _tf("quicknet_like.h5")
    # symmetric padding where TensorFlow pads (0, 1): a plausible lowering bug
    monkeypatch.setattr(
        lower, "_binary_padding", lambda spec, pads: "same" if any(pads) else "valid"
    )
    with pytest.raises(ExportError, match="verification failed"):
        import_larq(
            FIXTURES / "quicknet_like.h5", tmp_path / "b.ecl", calibration=(x, _calibration(logits))
        )
    assert not (tmp_path / "b.ecl").exists()
