"""The forward half of the device runtime: loading, input checks, embed/predict/proba,
and that none of it needs torch."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from edgecl.bundle import read_bundle, validate_manifest, write_bundle
from edgecl.device import InputSpec, Runtime
from edgecl.errors import BundleError
from edgecl.kernels import n_words


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from edgecl.export import export_bundle
    from edgecl.train import mnist_bnn

    torch.manual_seed(0)
    model = mnist_bnn(3, channels=(7, 13), n_bits=37).eval()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 28, 28), dtype=np.uint8)
    path = tmp_path_factory.mktemp("rt") / "m.ecl"
    export_bundle(model, path, calibration=(x, np.arange(60) % 3), class_names=["a", "b", "c"])
    return path


@pytest.fixture
def rt(bundle_path):
    return Runtime.load(bundle_path)


@pytest.fixture
def x():
    return np.random.default_rng(1).integers(0, 256, size=(9, 28, 28), dtype=np.uint8)


def test_load_and_attributes(rt, bundle_path):
    assert list(rt.classes_) == ["a", "b", "c"]
    assert rt.input_spec == InputSpec((28, 28, 1), 1 / 255, (0.1307,), (0.3081,))
    assert rt.manifest["embedding"]["bits"] == 37 == rt.n_bits
    assert "3 classes" in repr(rt) and str(bundle_path) in repr(rt)


def test_embed_predict_proba(rt, x):
    z = rt.embed(x)
    assert z.dtype == np.uint64 and z.shape == (9, n_words(37))
    assert not np.any(z[:, -1] >> np.uint64(37))  # tail bits zero
    p = rt.predict_proba(x)
    assert p.shape == (9, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    pred = rt.predict(x)
    assert pred.shape == (9,)
    np.testing.assert_array_equal(pred, rt.classes_[np.argmax(p, axis=1)])
    np.testing.assert_array_equal(np.argmax(rt.logits(x), axis=1), np.argmax(p, axis=1))


def test_one_sample_at_a_time_equals_the_batch(rt, x):
    batch = rt.embed(x)
    for i in range(len(x)):
        np.testing.assert_array_equal(rt.embed(x[i : i + 1]), batch[i : i + 1])


def test_layouts_and_dtypes_agree(rt, x):
    ref = rt.embed(x)
    np.testing.assert_array_equal(rt.embed(x[..., None]), ref)  # (n, H, W, 1)
    np.testing.assert_array_equal(rt.embed(x.astype(np.float32)), ref)
    np.testing.assert_array_equal(rt.embed(x.astype(np.float64)), ref)
    np.testing.assert_array_equal(rt.embed(x.astype(np.int64)), ref)
    np.testing.assert_array_equal(rt.embed(x.tolist()), ref)


def test_chunking_does_not_change_results(rt, monkeypatch):
    import edgecl.device.runtime as runtime

    x = np.random.default_rng(2).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    ref = rt.embed(x)
    monkeypatch.setattr(runtime, "CHUNK", 7)
    np.testing.assert_array_equal(rt.embed(x), ref)


def test_inputs_are_never_modified(rt, x):
    before = x.copy()
    xf = x.astype(np.float32)
    beforef = xf.copy()
    rt.predict(x)
    rt.predict_proba(xf)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(xf, beforef)


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (
            np.zeros((28, 28), np.uint8),
            ValueError,
            r"expected \(k, 28, 28\) samples, got \(28, 28\)",
        ),
        (np.zeros((2, 28, 27), np.uint8), ValueError, r"got \(2, 28, 27\)"),
        (np.zeros((2, 28, 28, 3), np.uint8), ValueError, r"expected \(k, 28, 28\) samples"),
        (np.zeros((0, 28, 28), np.uint8), ValueError, "at least one sample"),
        (np.full((1, 28, 28), np.nan, np.float32), ValueError, "NaN or inf"),
        (np.full((1, 28, 28), np.inf), ValueError, "NaN or inf"),
        (np.zeros((1, 28, 28), bool), TypeError, "dtype bool"),
        (np.full((1, 28, 28), "a"), TypeError, "dtype"),
    ],
)
def test_bad_input_refused(rt, bad, exc, match):
    for method in (rt.embed, rt.predict, rt.predict_proba):
        with pytest.raises(exc, match=match):
            method(bad)


def test_color_input_spec_message():
    spec = InputSpec((32, 32, 3), 1 / 255, (0.5, 0.5, 0.5), (0.2, 0.2, 0.2))
    with pytest.raises(ValueError, match=r"expected \(k, 32, 32, 3\) samples, got \(32, 32, 3\)"):
        spec.check(np.zeros((32, 32, 3), np.uint8))
    assert spec.check(np.zeros((2, 32, 32, 3), np.uint8)).shape == (2, 32, 32, 3)


def test_corrupt_bundle_is_a_bundle_error(bundle_path, tmp_path):
    data = bundle_path.read_bytes()
    bad = tmp_path / "bad.ecl"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError):
        Runtime.load(bad)
    with pytest.raises(BundleError, match="expected a bundle file"):
        Runtime.load(tmp_path / "missing.ecl")


def _rewrite(bundle_path, tmp_path, change):
    manifest, arrays = read_bundle(bundle_path)
    for key in ("format", "schema_version", "creator", "arrays"):
        manifest.pop(key)
    change(manifest, arrays)
    out = tmp_path / "changed.ecl"
    write_bundle(out, manifest, arrays, overwrite=True)
    return out


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m, a: m.pop("head"), "missing"),
        (lambda m, a: m["layers"][0].update(op="conv3d"), "expected op in"),
        (lambda m, a: m["layers"][3].update(in_shape=[1, 2, 3]), "expected in_shape"),
        (lambda m, a: m["layers"][1].update(repeat=2), "thresholds"),
        (lambda m, a: m.update(classes=["a", "a", "b"]), "distinct"),
        (lambda m, a: m.update(classes=["a", "b"]), "head.weight"),
        (lambda m, a: m["input"].update(std=[0.0]), "std"),
        (lambda m, a: m["input"].update(shape=[28, 28]), "input.shape"),
        (lambda m, a: m["embedding"].update(bits=38), "embedding"),
        (lambda m, a: m["budget"].update(policy="loose"), "policy"),
        (lambda m, a: m.update(memory={"kind": "gbm", "arrays": {"p": "nope"}}), "memory"),
        (lambda m, a: a.update({"head.weight": a["head.weight"].astype(np.float64)}), "dtype"),
        (lambda m, a: m["layers"].pop(), "embedding bits"),
        (lambda m, a: m["head"].update(bits=4), "head.bits"),
        (lambda m, a: m["head"].update(bits=8), "head.weight"),  # float32 weights, not int8
        (
            lambda m, a: (
                m["head"].update(bits=8),
                a.update({"head.weight": np.zeros(a["head.weight"].shape, np.int8)}),
            ),
            "head.scale",
        ),
    ],
)
def test_inconsistent_manifest_refused(bundle_path, tmp_path, change, match):
    path = _rewrite(bundle_path, tmp_path, change)
    with pytest.raises(BundleError, match=match):
        Runtime.load(path)


def test_validate_manifest_accepts_the_export(bundle_path):
    manifest, arrays = read_bundle(bundle_path)
    validate_manifest(manifest, arrays)
    validate_manifest(manifest)  # from the manifest's own array table


def test_bundle_manifest_is_plain_json(bundle_path):
    with zipfile.ZipFile(bundle_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["format"] == "edgecl-bundle"
    assert all(name.endswith(".npy") or name == "manifest.json" for name in zf.namelist())


BLOCKED = """
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name == "onnx":
            raise ImportError(name + " is blocked")
sys.meta_path.insert(0, Block())
import numpy as np
from edgecl.device import Runtime
rt = Runtime.load({path!r})
x = np.random.default_rng(1).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
print(",".join(rt.predict(x)))
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
"""


def test_runtime_works_with_torch_and_onnx_blocked(bundle_path, rt):
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED.format(path=str(bundle_path))],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    x = np.random.default_rng(1).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    assert proc.stdout.strip() == ",".join(rt.predict(x))
