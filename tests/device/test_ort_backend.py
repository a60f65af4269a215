"""backend="onnxruntime": the device side as the bundle's ONNX graphs (edgecl.device.ort),
checked graph by graph against the NumPy/Numba kernels they replace, then end to end
against the Numba runtime."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.bundle import LEARNING_GRAPHS, read_bundle
from edgecl.kernels import bmm_em_stats_reference, sample_bernoulli_words_reference
from edgecl.memory.quantize import dequantize, quantize, thresholds

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edgecl.device.ort import OrtKernels, splitmix_uniforms  # noqa: E402
from edgecl.export.onnx_learn import (  # noqa: E402
    learning_graphs,
    with_learning_graphs,
)

D = 96


@pytest.fixture
def graphs(bundle):
    manifest, arrays = read_bundle(bundle)
    return learning_graphs(manifest, arrays)


@pytest.fixture
def kernels(graphs):
    return OrtKernels(graphs, D)


def test_every_graph_passes_the_full_checker_and_takes_state_as_inputs(graphs):
    assert tuple(graphs) == LEARNING_GRAPHS
    state = {"weight", "bias", "mu", "pi", "log_pi", "threshold"}
    for name, data in graphs.items():
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model, full_check=True)
        assert model.ir_version <= 10 and model.opset_import[0].version <= 17
        inits = {t.name for t in model.graph.initializer}
        assert not (inits & state), (name, inits & state)
    # F is frozen inside embed; every other graph carries no learned array
    for name in LEARNING_GRAPHS[1:]:
        model = onnx.load_from_string(graphs[name])
        assert all(np.prod(t.dims) <= 8 for t in model.graph.initializer), name


@pytest.mark.parametrize("n_bits", [1, 63, 64, 65, 127])
def test_uniforms_and_sample_graph_equal_the_sampling_kernel(n_bits):
    from edgecl.export.onnx_learn import sample_model
    from edgecl.kernels import sample_bernoulli_words

    k = OrtKernels.__new__(OrtKernels)  # only the sample session
    import onnxruntime as ort

    k.n_bits = n_bits
    k.sessions = {"sample": ort.InferenceSession(sample_model(n_bits).SerializeToString())}
    rng = np.random.default_rng(n_bits)
    levels = rng.integers(0, 16, size=(5, n_bits)).astype(np.uint8)
    table = thresholds(levels, 4)
    rows = rng.integers(0, 5, size=37)
    for seed in (0, 7, 2**63 + 5):
        want = sample_bernoulli_words_reference(table, rows, n_bits, seed)
        assert np.array_equal(k.sample_words(table, rows, n_bits, seed), want)
        assert np.array_equal(sample_bernoulli_words(table, rows, n_bits, seed), want)
    u = splitmix_uniforms(3, n_bits, 1)
    assert u.shape == (3, n_bits) and u.min() >= 0 and u.max() < 65536
    assert np.array_equal(u, np.floor(u))


def test_em_step_graph_equals_the_reference(kernels, bundle):
    from edgecl.device import Runtime
    from edgecl.memory.em import em_run

    rt = Runtime.load(bundle)
    z = rt.embed(np.random.default_rng(0).integers(0, 256, (101, 8, 8)).astype(np.uint8))
    rng = np.random.default_rng(1)
    mu = np.clip(rng.random((3, D)), 1e-3, 1 - 1e-3)
    pi = np.array([0.2, 0.0, 0.8])  # a dead component: gamma 0, mu kept
    want = bmm_em_stats_reference(z, D, mu, pi)
    got = kernels.em_stats(z, D, mu, pi)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)
    assert got[2] == pytest.approx(want[2], rel=1e-12)
    assert got[3] == pytest.approx(want[3], rel=1e-12)
    # the graph's own M-step (eq. 2) is em_run's
    bits = np.unpackbits(z.view(np.uint8), axis=1, bitorder="little")[:, :D].astype(np.float64)
    out = kernels.sessions["em_step"].run(None, {"embedding": bits, "mu": mu, "pi": pi})
    mu1, pi1, _, _ = em_run(z, D, mu, pi, n_steps=1, epsilon=0.0, trainable_pi=True)
    np.testing.assert_allclose(out[4], mu1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out[5], pi1, rtol=1e-12, atol=1e-14)
    assert np.array_equal(out[4][1], mu[1])


@pytest.mark.parametrize("q", [1, 2, 4, 8])
def test_quantize_graph_equals_the_reference(kernels, q):
    rng = np.random.default_rng(q)
    mu = rng.random((4, D))
    mu[0, :3] = [0.0, 1.0, 0.5]
    levels, prob, thr = kernels.sessions["quantize"].run(
        None, {"mu": mu, "levels": np.array(float(1 << q))}
    )
    assert np.array_equal(levels, quantize(mu, q))
    assert np.array_equal(prob, dequantize(quantize(mu, q), q))
    assert np.array_equal(thr.astype(np.uint32), thresholds(quantize(mu, q), q))


def test_scores_graph_equals_the_learner(tmp_path, stream, bundle_maker):
    from edgecl.device import Runtime

    x, y, xt, _ = stream
    m = y < 3
    path = bundle_maker(tmp_path / "g.ecl", x[m], y[m], ["c0", "c1", "c2"], gbm_weight=0.5)
    rt = Runtime.load(path)
    manifest, arrays = read_bundle(path)
    k = OrtKernels(learning_graphs(manifest, arrays), D)
    z = rt.embed(xt)
    mem = rt.learner.memory
    mu = np.stack([mem.prototypes(c) for c in rt.classes_])
    pi = np.stack([mem.mixing_weights(c) for c in rt.classes_])
    log_pi = np.log(pi / pi.sum(1)[:, None])
    loglik, scores = k.scores(z, rt.head_weight, rt.head_bias, mu, log_pi, 0.5)
    np.testing.assert_allclose(loglik, rt.learner.gbm_log_likelihood(z), rtol=1e-5)
    np.testing.assert_allclose(scores, rt.learner.scores(z), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        k.logits(z, rt.head_weight, rt.head_bias), rt.logits_from_embedding(z), atol=1e-5
    )


def test_embed_graph_equals_the_bit_kernels(kernels, bundle, stream):
    from edgecl.device import Runtime

    rt = Runtime.load(bundle)
    x = stream[2]
    assert np.array_equal(kernels.embed(x.astype(np.float32)[..., None]), rt.embed(x))


def test_with_learning_graphs_round_trips(bundle):
    from edgecl.bundle import Manifest, bundle_bytes

    manifest, arrays = read_bundle(bundle)
    man, out = with_learning_graphs(manifest, arrays)
    typed = Manifest.from_dict(man, out)
    assert typed.graphs is not None and set(typed.graphs.refs) == set(LEARNING_GRAPHS)
    again = typed.to_dict()
    assert again["graphs"] == man["graphs"] and Manifest.from_dict(again, out) == typed
    assert bundle_bytes(Manifest.from_dict(again, out).to_dict(), out) == bundle_bytes(again, out)
    old = Manifest.from_dict(manifest, arrays)
    assert old.graphs is None and "graphs" not in old.to_dict()


# -- end to end: Runtime(backend="onnxruntime") against the Numba runtime ---------------------

NUMBA_FREE = """
import sys
from edgecl.testing import block_numba, block_torch
block_numba(); block_torch()
import numpy as np
import edgecl.device
from edgecl.device import Runtime
rt = Runtime.load({path!r}, backend="onnxruntime")
x = np.load({xs!r})
before = rt.predict(x)
report = rt.learn_class("new", x[:40], seed=0)
rt.update_class("new", x[40:60], seed=1)
assert rt.memory().n_classes == 4 and report.backend == "onnxruntime"
rt.forget_class("c0")
rt.save({out!r})
assert not [m for m in sys.modules if m == "numba" or m.startswith("numba.")]
print("ok", len(before))
"""


@pytest.fixture
def ort_bundle(tmp_path, stream, bundle_maker):
    """The base bundle (c0..c2, GBM K=2 q=4, gbm_weight 0.5) with the learning graphs."""
    from edgecl.export.onnx_learn import add_learning_graphs

    x, y, _, _ = stream
    m = y < 3
    path = bundle_maker(tmp_path / "ort.ecl", x[m], y[m], ["c0", "c1", "c2"], gbm_weight=0.5)
    add_learning_graphs(path)
    return path


def test_graph_members_are_deflated_and_the_rest_stored(ort_bundle):
    import zipfile

    manifest, _ = read_bundle(ort_bundle)
    graph_members = {ref + ".npy" for ref in manifest["graphs"].values()}
    with zipfile.ZipFile(ort_bundle) as zf:
        kinds = {info.filename: info.compress_type for info in zf.infolist()}
    assert graph_members and graph_members <= set(kinds)
    for name, kind in kinds.items():
        want = zipfile.ZIP_DEFLATED if name in graph_members else zipfile.ZIP_STORED
        assert kind == want, name


def test_the_backend_never_imports_numba(ort_bundle, stream, tmp_path):
    import subprocess
    import sys

    xs = tmp_path / "x.npy"
    np.save(xs, stream[2][:60])
    out = tmp_path / "learned.ecl"
    code = NUMBA_FREE.format(path=str(ort_bundle), xs=str(xs), out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok 60")
    from edgecl.device import Runtime

    assert list(Runtime.load(out).classes_) == ["c1", "c2", "new"]


def test_import_edgecl_device_without_numba():
    import subprocess
    import sys

    code = (
        "import sys\nfrom edgecl.testing import block_numba\nblock_numba()\n"
        "import edgecl.device, edgecl.device.ort, edgecl.bundle, edgecl.memory\n"
        "assert 'numba' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _untied(scores: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    top2 = np.sort(scores, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) > tol


def test_base_predictions_identical(ort_bundle, stream):
    from edgecl.device import Runtime

    xt = stream[2]
    a = Runtime.load(ort_bundle)
    b = Runtime.load(ort_bundle, backend="onnxruntime")
    assert np.array_equal(b.embed(xt), a.embed(xt))
    keep = _untied(a.learner.scores(a.embed(xt)))
    assert keep.mean() > 0.9
    assert np.array_equal(a.predict(xt)[keep], b.predict(xt)[keep])
    np.testing.assert_allclose(b.predict_proba(xt), a.predict_proba(xt), atol=1e-5)


def test_learned_state_and_predictions_agree_and_cross_load(ort_bundle, stream, tmp_path):
    from edgecl.device import Runtime

    x, y, xt, _ = stream
    a = Runtime.load(ort_bundle)
    b = Runtime.load(ort_bundle, backend="onnxruntime")
    for k in range(3, 8):
        ra = a.learn_class(f"c{k}", x[y == k], seed=k - 3)
        rb = b.learn_class(f"c{k}", x[y == k], seed=k - 3)
        assert (rb.backend, rb.steps, rb.stored_bytes) == ("onnxruntime", ra.steps, ra.stored_bytes)
    b.update_class("c3", x[y == 3][:10], seed=9)
    a.update_class("c3", x[y == 3][:10], seed=9)
    # the same uniforms and the same EM: the class memories are identical, the heads equal
    # to float32 rounding (onnxruntime's MatMul sums in another order)
    ma, mb = a.learner.memory, b.learner.memory
    assert ma.classes == mb.classes
    for c in ma.classes:
        assert np.array_equal(ma.prototypes(c), mb.prototypes(c))
        assert np.array_equal(ma.mixing_weights(c), mb.mixing_weights(c))
    np.testing.assert_allclose(b.head_weight, a.head_weight, atol=1e-5)
    np.testing.assert_allclose(b.head_bias, a.head_bias, atol=1e-5)
    assert np.mean(a.predict(xt) == b.predict(xt)) >= 0.995
    # saved by one backend, loaded by the other: identical predictions
    b.save(tmp_path / "by_ort.ecl")
    a.save(tmp_path / "by_numba.ecl")
    from_ort = Runtime.load(tmp_path / "by_ort.ecl")
    from_numba = Runtime.load(tmp_path / "by_numba.ecl", backend="onnxruntime")
    keep = _untied(from_ort.learner.scores(from_ort.embed(xt)))
    assert np.array_equal(from_ort.predict(xt)[keep], b.predict(xt)[keep])
    keep = _untied(a.learner.scores(a.embed(xt)))
    assert np.array_equal(from_numba.predict(xt)[keep], a.predict(xt)[keep])
    assert from_numba.learner.ort is not None and from_ort.learner.ort is None


def test_forget_and_refusals_leave_the_state(ort_bundle, stream):
    from edgecl.device import Runtime
    from edgecl.errors import BundleError

    b = Runtime.load(ort_bundle, backend="onnxruntime")
    before = b.head_weight.copy()
    with pytest.raises(ValueError):
        b.learn_class("c0", stream[0][:5])
    with pytest.raises(ValueError):
        b.learn_class("bad", stream[0][:1, :4])
    np.testing.assert_array_equal(b.head_weight, before)
    assert b.forget_class("c0").n_classes == 2
    manifest, arrays = read_bundle(ort_bundle)
    arrays["graphs.em_step"] = np.frombuffer(b"not onnx", np.uint8).copy()
    with pytest.raises(BundleError, match="em_step"):
        Runtime(manifest, arrays, backend="onnxruntime")


@pytest.mark.slow
def test_mnist_protocol_agreement_and_accuracy(tmp_path, bundle_maker):
    """The issue's protocol: base classes 0..4 of the shipped MNIST sample, then classes
    5..9 learned from 100 images each (seeds 0..4) by both backends."""
    from edgecl.data.sample import load_mnist_sample
    from edgecl.device import Runtime
    from edgecl.export.onnx_learn import add_learning_graphs

    x, y, xt, yt = load_mnist_sample(seed=0)
    base = y < 5
    path = bundle_maker(
        tmp_path / "mnist.ecl",
        x[base],
        y[base],
        [str(c) for c in range(5)],
        n_bits=256,
        components=4,
        bits=8,
        gbm_weight=0.5,
    )
    add_learning_graphs(path)
    a = Runtime.load(path)
    b = Runtime.load(path, backend="onnxruntime")
    for seed, k in enumerate(range(5, 10)):
        xs = x[y == k][:100]
        a.learn_class(str(k), xs, seed=seed)
        b.learn_class(str(k), xs, seed=seed)
    pa, pb = a.predict(xt), b.predict(xt)
    agree = float(np.mean(pa == pb))
    acc_a = float(np.mean(pa == yt.astype(str)))
    acc_b = float(np.mean(pb == yt.astype(str)))
    print(f"\nagreement {agree:.4f}, accuracy numba {acc_a:.4f}, onnxruntime {acc_b:.4f}")
    assert agree >= 0.995
    assert abs(acc_a - acc_b) <= 0.003


def test_scores_pad_classes_with_fewer_components(kernels, bundle, stream):
    from edgecl.device import Runtime
    from edgecl.device.learner import HeadSettings, Learner
    from edgecl.memory import GBMConfig, GBMMemory, GBMSize

    rt = Runtime.load(bundle)
    x, y, xt, _ = stream
    z = rt.embed(x)
    mem = GBMMemory(D, GBMConfig(components=3, bits=4))
    mem.fit_class("a", z[y == 0], seed=0)
    mem.fit_class("b", z[y == 1], seed=1, size=GBMSize(1, 2))
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(D, 2)).astype(np.float32), np.zeros(2, np.float32)
    settings = HeadSettings(gbm_weight=0.3)
    numba = Learner(D, ["a", "b"], w, b, memory=mem, settings=settings)
    ort = Learner(
        D, ["a", "b"], w, b, memory=mem, settings=settings, backend="onnxruntime", ort=kernels
    )
    zt = rt.embed(xt)
    np.testing.assert_allclose(ort.gbm_log_likelihood(zt), numba.gbm_log_likelihood(zt), rtol=1e-5)
    np.testing.assert_allclose(ort.scores(zt), numba.scores(zt), rtol=1e-5, atol=1e-4)


def test_a_latent_buffer_learns_on_the_graphs(tmp_path, stream, bundle_maker):
    from edgecl.device import Runtime
    from edgecl.export.onnx_learn import add_learning_graphs

    x, y, xt, _ = stream
    m = y < 3
    path = bundle_maker(tmp_path / "buf.ecl", x[m], y[m], ["c0", "c1", "c2"], memory="buffer")
    add_learning_graphs(path)
    a = Runtime.load(path)
    b = Runtime.load(path, backend="onnxruntime")
    for rt in (a, b):
        rt.learn_class("c3", x[y == 3], seed=0)
    np.testing.assert_allclose(b.head_weight, a.head_weight, atol=1e-5)
    assert np.mean(a.predict(xt) == b.predict(xt)) >= 0.995


def test_cli_learn_and_predict_on_onnxruntime(ort_bundle, stream, tmp_path, capsys):
    from edgecl import cli
    from edgecl.device import Runtime

    x, y, xt, _ = stream
    np.save(tmp_path / "new.npy", x[y == 4])
    out = tmp_path / "learned.ecl"
    argv = ["learn", str(ort_bundle), "--class", "c4", "--data", str(tmp_path / "new.npy")]
    code = cli.main([*argv, "-o", str(out), "--backend", "onnxruntime", "-q"])
    assert code == 0, capsys.readouterr().err
    np.save(tmp_path / "test.npy", xt)
    code = cli.main(["predict", str(out), "--data", str(tmp_path / "test.npy"), "--json"])
    assert code == 0
    assert list(Runtime.load(out, backend="onnxruntime").classes_) == ["c0", "c1", "c2", "c4"]
