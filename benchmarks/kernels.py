"""Benchmark of the bit-packed kernels beside float32 runtimes on the same logical shapes.

    python benchmarks/kernels.py [--repeat 200] [--threads 1 2] [--quick] [--json PATH]
                                 [--markdown] [--isa native|avx2]

Cases (issue 2, section 5): dense 4096 -> 4096 at batch 1 and 64; conv 3x3, 256 -> 256
channels, 16x16, 'same', batch 1. The dense weights are laid out once beforehand
(``prepare_dense``, as a converted model keeps them). Each figure is logical MACs / median time of
``--repeat`` timed calls after a warm-up: G binary-MAC/s for edgecl (dense ``B*O*n``,
conv ``N*Ho*Wo*O*kh*kw*C``), G MAC/s for numpy (conv as pad + im2col + matmul), torch
(``F.linear``/``F.conv2d``) and onnxruntime (a one-node MatMul/Conv model), each only if
importable, with the ratio edgecl / float. Every thread count runs in its own
subprocess, so BLAS, torch, onnxruntime and Numba all get that count from the start.

``--isa avx2`` makes Numba compile for this CPU with every AVX-512 feature turned off
(``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``): the code an AVX2-only core would get.

The C ceiling (issue 15): ``benchmarks/ceiling.c``, compiled in the same run with
``gcc -O3 -march=native`` (plus ``-mno-avx512f -mavx2`` for ``--isa avx2``), times the best
hand-written popcount dot product (Harley-Seal on AVX2, ``vpopcntq`` with AVX-512) and GEMM
tile on L2-resident data, before and after the edgecl runs (the better of the two counts);
edgecl's one-thread figures are reported as a fraction of it (batch-1 dense against the
dot product, batch-64 dense and the conv against the GEMM tile).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from machine import avx2_only_env, machine_info, machine_markdown  # noqa: E402

# name, kind, shape, target G binary-MAC/s (one core), LCE 0.16 and best float32 runtime
# figures issue 2 quotes for this machine (for scale only; not measured by this script).
CASES = [
    ("dense 4096->4096, batch 1", "dense", {"B": 1, "n": 4096, "O": 4096}, 250, 47.8, 9.0),
    ("dense 4096->4096, batch 64", "dense", {"B": 64, "n": 4096, "O": 4096}, 350, 95.1, 43.9),
    (
        "conv 3x3 256->256, 16x16 'same', batch 1",
        "conv",
        {"N": 1, "H": 16, "W": 16, "C": 256, "O": 256, "k": 3},
        250,
        84.8,
        48.9,
    ),
]
RUNTIMES = ("edgecl", "numpy", "torch", "onnxruntime")


def _timed(fn, repeat: int, warmup: int) -> dict:
    import numpy as np

    for _ in range(warmup):
        fn()
    times = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return {
        "median_s": float(np.median(times)),
        "p10_s": float(np.percentile(times, 10)),
        "p90_s": float(np.percentile(times, 90)),
        "runs": repeat,
    }


def _onnx_session(nodes, inputs, outputs, initializers, threads):
    import onnx
    import onnxruntime as ort
    from onnx import helper

    graph = helper.make_graph(nodes, "bench", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10  # onnx 1.23 writes IR 14 by default, which onnxruntime 1.31 refuses
    onnx.checker.check_model(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _dense_case(shape, threads, repeat, warmup, rng):
    import numpy as np

    from edgecl.kernels import binary_dense_prepared, pack_bits, prepare_dense

    B, n, O = shape["B"], shape["n"], shape["O"]
    xb = rng.integers(0, 2, size=(B, n), dtype=np.uint8)
    wb = rng.integers(0, 2, size=(O, n), dtype=np.uint8)
    x, w = pack_bits(xb), pack_bits(wb)
    xf = xb.astype(np.float32) * 2 - 1
    wf_in_out = np.ascontiguousarray((wb.astype(np.float32) * 2 - 1).T)  # (n, O)
    prepared = prepare_dense(w, n)  # once, as a converted model keeps its weights
    got = binary_dense_prepared(x, prepared, threads=threads)
    if not np.array_equal(got, (xf @ wf_in_out).round().astype(np.int32)):
        raise RuntimeError("binary_dense_prepared disagrees with the float product")
    fns = {
        "edgecl": lambda: binary_dense_prepared(x, prepared, threads=threads),
        "numpy": lambda: xf @ wf_in_out,
    }
    try:
        import torch

        torch.set_num_threads(threads)
        xt = torch.from_numpy(xf)
        wt = torch.from_numpy(np.ascontiguousarray(wf_in_out.T))  # (O, n)

        def run_torch():
            with torch.inference_mode():
                return torch.nn.functional.linear(xt, wt)

        fns["torch"] = run_torch
    except ImportError:
        pass
    try:
        from onnx import TensorProto, helper, numpy_helper

        sess = _onnx_session(
            [helper.make_node("MatMul", ["X", "W"], ["Y"])],
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [B, n])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [B, O])],
            [numpy_helper.from_array(wf_in_out, "W")],
            threads,
        )
        fns["onnxruntime"] = lambda: sess.run(None, {"X": xf})
    except ImportError:
        pass
    return B * O * n, {k: _timed(f, repeat, warmup) for k, f in fns.items()}


def _conv_case(shape, threads, repeat, warmup, rng):
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    from edgecl.kernels import binary_conv2d, pack_bits

    N, H, W, C, O, k = (shape[key] for key in ("N", "H", "W", "C", "O", "k"))
    p = k // 2
    xb = rng.integers(0, 2, size=(N, H, W, C), dtype=np.uint8)
    wb = rng.integers(0, 2, size=(O, k, k, C), dtype=np.uint8)
    x, w = pack_bits(xb), pack_bits(wb)
    xf = xb.astype(np.float32) * 2 - 1  # NHWC
    wf = wb.astype(np.float32) * 2 - 1  # (O, kh, kw, C)
    wmat = np.ascontiguousarray(wf.reshape(O, k * k * C).T)  # (kh*kw*C, O)
    ho, wo = H + 2 * p - k + 1, W + 2 * p - k + 1

    def numpy_conv():
        xp = np.pad(xf, ((0, 0), (p, p), (p, p), (0, 0)))
        win = sliding_window_view(xp, (k, k), axis=(1, 2))  # (N, Ho, Wo, C, kh, kw)
        cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(N * ho * wo, k * k * C)
        return (cols @ wmat).reshape(N, ho, wo, O)

    got = binary_conv2d(x, w, C, padding="same", pad_value=0, threads=threads)
    if not np.array_equal(got, numpy_conv().round().astype(np.int32)):
        raise RuntimeError("binary_conv2d disagrees with the float convolution")
    fns = {
        # pad_value=1 (one-padding) is edgecl's default and what the float runtimes cannot
        # express directly; its cost differs from zero padding only by the border correction.
        "edgecl": lambda: binary_conv2d(x, w, C, padding="same", threads=threads),
        "numpy": numpy_conv,
    }
    xf_nchw = np.ascontiguousarray(xf.transpose(0, 3, 1, 2))
    wf_oihw = np.ascontiguousarray(wf.transpose(0, 3, 1, 2))
    try:
        import torch

        torch.set_num_threads(threads)
        xt, wt = torch.from_numpy(xf_nchw), torch.from_numpy(wf_oihw)

        def run_torch():
            with torch.inference_mode():
                return torch.nn.functional.conv2d(xt, wt, padding=p)

        fns["torch"] = run_torch
    except ImportError:
        pass
    try:
        from onnx import TensorProto, helper, numpy_helper

        sess = _onnx_session(
            [helper.make_node("Conv", ["X", "W"], ["Y"], pads=[p, p, p, p], kernel_shape=[k, k])],
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [N, C, H, W])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [N, O, ho, wo])],
            [numpy_helper.from_array(wf_oihw, "W")],
            threads,
        )
        fns["onnxruntime"] = lambda: sess.run(None, {"X": xf_nchw})
    except ImportError:
        pass
    return N * ho * wo * O * k * k * C, {k_: _timed(f, repeat, warmup) for k_, f in fns.items()}


def _head_case(threads, repeat, warmup, rng, B=128, n=512, C=100):
    """One softmax-head SGD step on bit embeddings (the device learner's inner loop):
    edgecl's bit-walking Numba step beside the same step in numpy float32 on unpacked bits."""
    import numpy as np

    from edgecl.kernels import pack_bits, softmax_head_step

    bits = rng.integers(0, 2, size=(B, n), dtype=np.uint8)
    x = pack_bits(bits)
    w = (rng.standard_normal((n, C)) * 0.05).astype(np.float32)
    b = np.zeros(C, np.float32)
    t = rng.integers(0, C, size=B)
    onehot = np.eye(C, dtype=np.float32)[t]

    def numpy_step():
        xf = np.unpackbits(x.view(np.uint8), axis=1, bitorder="little")[:, :n]
        xf = xf.astype(np.float32)
        z = xf @ w + b
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        g = (p - onehot) / B
        return w - 0.1 * (xf.T @ g), b - 0.1 * g.sum(axis=0)

    fns = {
        "edgecl": lambda: softmax_head_step(x, n, w, b, t, 0.1),
        "numpy": numpy_step,
    }
    name = f"softmax head SGD step, B={B}, n={n}, C={C}"
    rows = []
    for runtime, f in fns.items():
        tm = _timed(f, repeat, warmup)
        rows.append({"case": name, "threads": threads, "runtime": runtime, **tm})
    return rows


def _child(threads: int, repeat: int, out_path: str) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    warmup = max(5, repeat // 20)
    rows = []
    for name, kind, shape, *_ in CASES:
        run = _dense_case if kind == "dense" else _conv_case
        macs, timings = run(shape, threads, repeat, warmup, rng)
        for runtime, t in timings.items():
            rows.append(
                {
                    "case": name,
                    "threads": threads,
                    "runtime": runtime,
                    "macs": macs,
                    "g_macs_per_s": macs / t["median_s"] / 1e9,
                    **t,
                }
            )
    if threads == 1:
        rows += _head_case(threads, repeat, warmup, rng)
    Path(out_path).write_text(json.dumps(rows))


def _ceiling(isa: str) -> dict:
    """Compile ``ceiling.c`` for ``isa`` and run it: its JSON figures, or ``{"error": ...}``."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return {"error": "no C compiler (gcc / cc) on PATH"}
    flags = ["-O3", "-march=native"] + (["-mno-avx512f", "-mavx2"] if isa == "avx2" else [])
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "ceiling")
        build = subprocess.run(
            [cc, *flags, "-o", exe, str(HERE / "ceiling.c")], capture_output=True, text=True
        )
        if build.returncode != 0:
            return {"error": f"ceiling.c did not build: {build.stderr.strip()[-500:]}"}
        run = subprocess.run([exe], capture_output=True, text=True)
        if run.returncode != 0:
            return {"error": f"ceiling.c failed: {run.stderr.strip()[-500:]}"}
    res = json.loads(run.stdout.splitlines()[-1])
    res["command"] = " ".join([Path(cc).name, *flags, "benchmarks/ceiling.c"])
    return res


def _best_ceiling(a: dict, b: dict) -> dict:
    if "error" in a or "error" in b:
        return a if "error" in a else b
    best = dict(a)
    for key in ("dot_g_macs_per_s", "gemm_g_macs_per_s"):
        best[key] = max(a[key], b[key])
    return best


def _ceiling_key(name: str) -> str:
    """The batch-1 dense case against the dot product, the others against the GEMM tile."""
    gemv = {c[0] for c in CASES if c[1] == "dense" and c[2]["B"] == 1}
    return "dot_g_macs_per_s" if name in gemv else "gemm_g_macs_per_s"


def ceiling_lines(result: dict) -> list[str]:
    """The C ceiling and edgecl's one-thread figures as fractions of it."""
    c = result.get("ceiling")
    if not c:
        return []
    if "error" in c:
        return [f"- C ceiling: not measured ({c['error']})"]
    lines = [
        f"- C ceiling (`{c['command']}`, {c['kernels']}; L2-resident, one thread, best run): "
        f"dot product {c['dot_g_macs_per_s']:.0f} G binary-MAC/s, GEMM tile "
        f"{c['gemm_g_macs_per_s']:.0f}"
    ]
    for r in result["rows"]:
        if r.get("runtime") == "edgecl" and r["threads"] == 1 and "macs" in r:
            key = _ceiling_key(r["case"])
            g, g10 = _rate(r, "median_s"), _rate(r, "p10_s")
            what = "dot product" if key.startswith("dot") else "GEMM tile"
            lines.append(
                f"- {r['case']}, one thread: edgecl {g:.0f} G binary-MAC/s median "
                f"({g10:.0f} 10th percentile) = {g / c[key]:.0%} ({g10 / c[key]:.0%}) "
                f"of the C {what}"
            )
    return lines


def _rate(r: dict, stat: str) -> float:
    return r["macs"] / r[stat] / 1e9


def _table(rows: list[dict], stat: str = "median_s") -> list[str]:
    by = {}
    for r in rows:
        if "macs" not in r:
            continue
        by.setdefault((r["case"], r["threads"]), {})[r["runtime"]] = r
    head = (
        "| case | threads | edgecl G binary-MAC/s | numpy f32 G MAC/s | torch f32 | "
        "onnxruntime f32 | edgecl / numpy | edgecl / torch | edgecl / onnxruntime |"
    )
    lines = [head, "|" + "---|" * 9]
    for (case, threads), rs in by.items():
        e = _rate(rs["edgecl"], stat)
        cells = [f"{_rate(rs[k], stat):.1f}" if k in rs else "n/a" for k in RUNTIMES]
        ratios = [f"{e / _rate(rs[k], stat):.1f}x" if k in rs else "n/a" for k in RUNTIMES[1:]]
        lines.append(f"| {case} | {threads} | " + " | ".join(cells + ratios) + " |")
    return lines


def target_lines(rows: list[dict]) -> list[str]:
    lines = []
    for name, _, _, target, lce, best_float in CASES:
        hit = [
            r for r in rows if r["case"] == name and r["threads"] == 1 and r["runtime"] == "edgecl"
        ]
        if not hit:
            continue
        g = hit[0]["g_macs_per_s"]
        g10 = _rate(hit[0], "p10_s")
        verdict = "met" if g >= target else "NOT met"
        lines.append(
            f"- {name}: target >= {target} on one core: **{verdict}** (median {g:.0f}, "
            f"{g / target:.2f}x the target; 10th percentile {g10:.0f}; LCE 0.16 {lce}, "
            f"best float32 {best_float} as quoted in issue 2)"
        )
    return lines


def _extras(rows: list[dict]) -> list[str]:
    by = {}
    for r in rows:
        if "macs" not in r:
            by.setdefault(r["case"], {})[r["runtime"]] = r
    lines = []
    for case, t in by.items():
        e = t["edgecl"]
        line = (
            f"- {case}, one thread: edgecl {e['median_s'] * 1e6:.0f} us per step "
            f"(10th percentile {e['p10_s'] * 1e6:.0f} us)"
        )
        if "numpy" in t:
            npy = t["numpy"]
            line += (
                f"; numpy float32 on unpacked bits {npy['median_s'] * 1e6:.0f} us "
                f"({npy['p10_s'] * 1e6:.0f} us); time ratio edgecl / numpy "
                f"{e['median_s'] / npy['median_s']:.2f} (median), "
                f"{e['p10_s'] / npy['p10_s']:.2f} (10th percentile)"
            )
        lines.append(line)
    return lines


def render_markdown(result: dict) -> str:
    """Table, targets and machine block as markdown."""
    parts = [
        f"Command: `{result['command']}` (ISA for Numba: {result['isa']}, "
        f"{result['repeat']} timed runs per figure, median)",
        "",
        "Median of the timed runs:",
        "",
        *_table(result["rows"]),
        "",
        "10th percentile of the timed runs (the runs least disturbed by other processes):",
        "",
        *_table(result["rows"], "p10_s"),
        "",
        *target_lines(result["rows"]),
        *ceiling_lines(result),
        *_extras(result["rows"]),
        "",
        machine_markdown(result["machine"]),
        f"- Load average (1, 5, 15 min) at the end: {result['load_after']}",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200, help="timed runs per figure (median)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--quick", action="store_true", help="20 timed runs: a smoke run only")
    ap.add_argument("--json", metavar="PATH", help="write all figures and the machine as JSON")
    ap.add_argument("--markdown", action="store_true", help="print a markdown section")
    ap.add_argument("--isa", choices=["native", "avx2"], default="native")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    repeat = 20 if args.quick else args.repeat
    if args.child is not None:
        _child(args.child, repeat, args.child_out)
        return 0
    if repeat < 1 or any(t < 1 for t in args.threads):
        ap.error("expected --repeat and --threads >= 1")
    load_before = [round(v, 2) for v in os.getloadavg()]
    env_isa = avx2_only_env() if args.isa == "avx2" else {}
    ceiling = _ceiling(args.isa)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in args.threads:
            out = os.path.join(tmp, f"t{t}.json")
            env = dict(os.environ, **env_isa)
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                env[var] = str(t)
            env["NUMBA_NUM_THREADS"] = str(max(t, 1))
            cmd = [sys.executable, __file__, "--child", str(t), "--child-out", out]
            cmd += ["--repeat", str(repeat)]
            subprocess.run(cmd, env=env, check=True)
            rows += json.loads(Path(out).read_text())
    ceiling = _best_ceiling(ceiling, _ceiling(args.isa))
    prev_env = {k: os.environ.get(k) for k in env_isa}
    os.environ.update(env_isa)  # so the machine block names the target the kernels ran on
    info = machine_info()
    info["load_average_1_5_15"] = load_before
    for k, v in prev_env.items():
        if v is None:
            os.environ.pop(k, None)
    result = {
        "command": "python benchmarks/kernels.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "isa": args.isa,
        "repeat": repeat,
        "machine": info,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "ceiling": ceiling,
        "rows": rows,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.markdown:
        print(render_markdown(result))
    else:
        print("\n".join(_table(rows) + ceiling_lines(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
