"""ONNX forward variants of one binary dense layer, measured side by side in onnxruntime.

(a) the ±1 float32 ``MatMul`` the exporter writes (``edgecl.export.onnx_forward``);
(b) the bit-packed graph with ONNX bitwise ops (``BitwiseXor`` on packed bytes, a
    256-entry popcount table through ``Gather``, ``ReduceSum``);
and, for scale, edgecl's own Numba ``binary_dense`` on the same layer.

Reports model size (serialized bytes) and median latency (after warm-up) at 1 and 2
threads, checks that all three give the same integers, and prints a Markdown table.

    python benchmarks/onnx_variants.py [--repeat 50] [--json out.json]
    python benchmarks/onnx_variants.py --parity CHECKPOINT   # torch == device == ORT

``--parity`` exports a trained checkpoint (as ``edgecl export`` does) and compares torch's
eval output, the device runtime and onnxruntime on all 10,000 shipped MNIST images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import onnxruntime as ort  # noqa: E402
from machine import machine_info  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgecl.export._onnx import make_model  # noqa: E402
from edgecl.export.onnx_forward import bitpacked_dense_model  # noqa: E402
from edgecl.kernels import binary_dense, pack_signs  # noqa: E402

SHAPES = [  # (n_in, n_out, batch)
    (2304, 512, 1),  # the MNIST CNN's embedding layer (256 x 3 x 3 -> D = 512)
    (2304, 512, 64),
    (4096, 4096, 1),
    (4096, 4096, 64),
]


def matmul_model(w_signs: np.ndarray):
    o, n = w_signs.shape
    init = [numpy_helper.from_array(np.ascontiguousarray(w_signs.T, np.float32), "w")]
    node = helper.make_node("MatMul", ["x", "w"], ["acc"])
    graph = helper.make_graph(
        [node],
        "pm1_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("acc", TensorProto.FLOAT, ["batch", o])],
        initializer=init,
    )
    return make_model(graph, doc="(a) ±1 float MatMul")


def session(model_bytes: bytes, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def median_time(fn, repeat: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--parity", metavar="CHECKPOINT", help="only the parity check")
    args = ap.parse_args()
    if args.parity:
        parity(args.parity)
        return
    rng = np.random.default_rng(0)
    rows = []
    for n, o, batch in SHAPES:
        w = np.where(rng.random((o, n)) < 0.5, -1.0, 1.0).astype(np.float32)
        x = np.where(rng.random((batch, n)) < 0.5, -1.0, 1.0).astype(np.float32)
        ma, mb = matmul_model(w), bitpacked_dense_model(w)
        a_bytes, b_bytes = ma.SerializeToString(), mb.SerializeToString()
        x_bytes = np.packbits(x > 0, axis=1, bitorder="little")
        xw, ww = pack_signs(x), pack_signs(w)
        ref = binary_dense(xw, ww, n)
        row = {
            "n_in": n,
            "n_out": o,
            "batch": batch,
            "size_a_bytes": len(a_bytes),
            "size_b_bytes": len(b_bytes),
        }
        for threads in (1, 2):
            sa, sb = session(a_bytes, threads), session(b_bytes, threads)
            out_a = sa.run(None, {"x": x})[0]
            out_b = sb.run(None, {"x_bytes": x_bytes})[0]
            assert np.array_equal(out_a.astype(np.int64), ref), "(a) differs from binary_dense"
            assert np.array_equal(out_b.astype(np.int64), ref), "(b) differs from binary_dense"
            rep = max(5, args.repeat // (8 if batch > 1 and o > 1000 else 1))
            feed_a, feed_b = {"x": x}, {"x_bytes": x_bytes}
            ta = median_time(lambda sa=sa, f=feed_a: sa.run(None, f), rep)
            tb = median_time(lambda sb=sb, f=feed_b: sb.run(None, f), rep)
            tn = median_time(
                lambda t=threads, a=xw, b=ww, k=n: binary_dense(a, b, k, threads=t), rep
            )
            row[f"a_us_t{threads}"] = ta * 1e6
            row[f"b_us_t{threads}"] = tb * 1e6
            row[f"numba_us_t{threads}"] = tn * 1e6
        rows.append(row)
        print(json.dumps(row), flush=True)
    info = machine_info()
    print()
    print(
        f"machine: {info['cpu_model']}, {info['cores']} cores, flags {' '.join(info['cpu_flags'])}"
    )
    print(f"versions: {info['versions']}")
    print()
    print(
        "| layer (n -> O), batch | (a) ±1 MatMul size | (b) bitwise size | (a) µs 1t / 2t "
        "| (b) µs 1t / 2t | (b)/(a) time, 1t | Numba binary_dense µs 1t / 2t |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n_in']} -> {r['n_out']}, {r['batch']} | {r['size_a_bytes'] / 1e6:.2f} MB "
            f"| {r['size_b_bytes'] / 1e6:.2f} MB | {r['a_us_t1']:.0f} / {r['a_us_t2']:.0f} "
            f"| {r['b_us_t1']:.0f} / {r['b_us_t2']:.0f} | {r['b_us_t1'] / r['a_us_t1']:.1f}x "
            f"| {r['numba_us_t1']:.0f} / {r['numba_us_t2']:.0f} |"
        )
    net = full_network(args.repeat)
    print()
    print(
        "| whole MNIST BNN (64-128-256, D=512), batch | device runtime (Numba) µs "
        "| onnxruntime forward graph (a) µs | graph size |"
    )
    print("|---|---|---|---|")
    for r in net:
        print(
            f"| {r['batch']} | {r['runtime_us']:.0f} | {r['ort_us']:.0f} "
            f"| {r['onnx_bytes'] / 1e6:.2f} MB |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"rows": rows, "network": net, "machine": info}, fh, indent=2)


def full_network(repeat: int) -> list[dict]:
    """The default 28x28 binary CNN (random weights, BN statistics randomised) exported and
    run end to end: the device runtime against onnxruntime on the forward graph (a)."""
    import tempfile

    import torch

    from edgecl.bundle import read_bundle
    from edgecl.device import Runtime
    from edgecl.export import export_bundle
    from edgecl.export.onnx_forward import forward_model
    from edgecl.train import mnist_bnn

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = mnist_bnn(10).eval()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(64, 28, 28), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.ecl")
        export_bundle(
            model,
            path,
            calibration=(x, np.arange(64) % 10),
            class_names=[str(i) for i in range(10)],
        )
        rt = Runtime.load(path)
        manifest, arrays = read_bundle(path)
    graph = forward_model(manifest, arrays).SerializeToString()
    sess = session(graph, 1)
    out = []
    for batch in (1, 64):
        xb = x[:batch]
        xf = xb[..., None].astype(np.float32)
        logits_ort = sess.run(["logits"], {"x": xf})[0]
        assert np.allclose(logits_ort, rt.logits(xb), atol=1e-4)
        t_rt = median_time(lambda b=xb: rt.logits(b), repeat)
        t_ort = median_time(lambda f=xf: sess.run(["logits"], {"x": f}), repeat)
        out.append(
            {
                "batch": batch,
                "runtime_us": t_rt * 1e6,
                "ort_us": t_ort * 1e6,
                "onnx_bytes": len(graph),
            }
        )
        print(json.dumps(out[-1]), flush=True)
    return out


def parity(checkpoint: str) -> None:
    """torch eval vs device runtime vs onnxruntime on the whole shipped MNIST sample."""
    import tempfile

    import torch

    from edgecl.bundle import read_bundle
    from edgecl.data import load_mnist_sample
    from edgecl.device import Runtime
    from edgecl.export import export_bundle, forward_model, torch_reference
    from edgecl.kernels import unpack_bits
    from edgecl.train import load_checkpoint

    torch.set_num_threads(1)
    model, meta = load_checkpoint(checkpoint)
    names = [str(c) for c in meta["class_names"]]
    x_train, y_train, x_test, y_test = load_mnist_sample()
    x = np.concatenate([x_train, x_test])
    rows = np.array([names.index(str(v)) if str(v) in names else -1 for v in y_train])
    cal = rows >= 0
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.ecl")
        export_bundle(
            model, path, calibration=(x_train[cal][:2000], rows[cal][:2000]), class_names=names
        )
        rt = Runtime.load(path)
        manifest, arrays = read_bundle(path)
    ref_bits, ref_logits = torch_reference(model, x)
    z = rt.embed(x)
    dev_bits, dev_logits = unpack_bits(z, rt.n_bits), rt.logits_from_embedding(z)
    sess = session(forward_model(manifest, arrays).SerializeToString(), 1)
    ort_logits, ort_bits = sess.run(["logits", "embedding"], {"x": x[..., None].astype(np.float32)})
    print(f"{len(x)} images, {ref_bits.size} embedding bits")
    print(
        f"torch vs device:       {int((dev_bits != ref_bits).sum())} differing bits, "
        f"max |logit diff| {np.abs(dev_logits - ref_logits).max():.2g}"
    )
    print(
        f"torch vs onnxruntime:  {int((ort_bits.astype(np.uint8) != ref_bits).sum())} "
        f"differing bits, max |logit diff| {np.abs(ort_logits - ref_logits).max():.2g}"
    )


if __name__ == "__main__":
    main()
