"""Whole networks at batch 1, single thread and 2 threads, side by side in one run.

The two networks of issue 7, randomly initialised, their BatchNorm statistics calibrated
by a few forward passes in train mode (so every sign threshold sits inside the data), then
exported with :func:`edgecl.export.export_bundle` (no class memory; verified bit-exact
against torch) and timed on one raw sample:

- ``mnist_bnn``: 28x28x1, float conv 64 -> binary conv 128 -> binary conv 256 -> binary
  dense 512 (the embedding) -> float dense 10, max-pool after each conv
  (:func:`edgecl.train.backbones.mnist_bnn`);
- ``vgg_small``: 32x32x3, float conv 128, binary convs 128-256-256-512-512, a max-pool
  after every second conv, binary dense 512, float dense 10
  (:func:`edgecl.train.backbones.vgg_small`).

Engines: edgecl's Numba runtime (``Runtime.logits`` and ``Runtime.predict`` on one raw
sample, torch-free), the exported ONNX forward graph in onnxruntime
(:func:`edgecl.export.forward_model`, float32 ±1 convolutions) and torch eval
(``torch.inference_mode``). Each engine is timed in rounds that alternate with the other
engines (the machine is shared: interleaving spreads the load over all of them), after a
warm-up; median and 10th percentile of all runs, µs per image.

LCE (larq-compute-engine) needs TensorFlow and is not installed here; with ``larq`` and
``larq_compute_engine`` importable the script says so, but no LCE path is implemented:
its figures are quoted from the brief (LCE 0.16 on a Zen 3 machine).

    python benchmarks/networks.py [--quick] [--repeat 300] [--json benchmarks/results/networks.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from machine import machine_info, machine_markdown  # noqa: E402

#: LCE 0.16 reference figures from the brief (batch 1, its fastest x86 setting,
#: ``use_indirect_bgemm=True``, on the brief's Zen 3 machine), µs per image.
LCE_REFERENCE_US = {"mnist_bnn": 612.0, "vgg_small": 7400.0}
#: Issue 7's absolute targets for edgecl's runtime, µs per image (median, batch 1).
TARGET_US = {"mnist_bnn": 200.0, "vgg_small": 2500.0}
ENGINES = ("edgecl_logits", "edgecl_predict", "onnxruntime", "torch")


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def build(name: str, seed: int, calib: int):
    """``(model, x_calib, y_calib)``: the network, BN statistics calibrated on ``calib``
    samples (real MNIST images for ``mnist_bnn`` when found, uniform random pixels else)."""
    import torch

    from edgecl.train import mnist_bnn, vgg_small

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if name == "mnist_bnn":
        model = mnist_bnn(10)
        x = None
        try:
            from edgecl.data import load_mnist_sample

            x = load_mnist_sample(seed=seed)[0][:calib]
        except Exception:  # noqa: BLE001 - the shipped sample is optional here
            x = None
        if x is None:
            x = rng.integers(0, 256, size=(calib, 28, 28), dtype=np.uint8)
    elif name == "vgg_small":
        model = vgg_small(10)
        x = rng.integers(0, 256, size=(calib, 32, 32, 3), dtype=np.uint8)
    else:
        raise ValueError(f"expected 'mnist_bnn' or 'vgg_small', got {name!r}")
    y = rng.integers(0, 10, size=len(x)).astype(np.int64)
    xt = torch.from_numpy(
        np.ascontiguousarray(x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2))
    ).float()
    for m in model.modules():  # cumulative averages over the calibration passes
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(xt), 32):
            model(xt[i : i + 32])
    model.eval()
    return model, x, y


def _time_rounds(fns: dict, x1, repeat: int, warmup: int, rounds: int) -> dict[str, list[float]]:
    for fn in fns.values():
        for _ in range(warmup):
            fn(x1)
    times: dict[str, list[float]] = {k: [] for k in fns}
    per = max(1, repeat // rounds)
    for _ in range(rounds):
        for k, fn in fns.items():
            t = times[k]
            for _ in range(per):
                t0 = time.perf_counter()
                fn(x1)
                t.append(time.perf_counter() - t0)
    return times


def _stats(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1e6
    return {
        "median_us": float(np.median(a)),
        "p10_us": float(np.percentile(a, 10)),
        "p90_us": float(np.percentile(a, 90)),
        "runs": int(a.size),
    }


def breakdown(rt, x1, repeat: int) -> dict | None:
    """Where ``Runtime.logits`` spends its time at batch 1 (one thread), step by step as it
    runs: input checks and normalisation, each step of the runtime's program (fused steps
    named by their ops, e.g. ``conv2d_binary+threshold+maxpool_bits``,
    :func:`edgecl.program.compile_program`) and the head; medians in µs."""
    xf = rt.input_spec.normalize(rt.input_spec.check(x1))
    fns = {"check_and_normalize": lambda: rt.input_spec.normalize(rt.input_spec.check(x1))}
    v = xf
    for i, (name, step) in enumerate(rt._program.steps):
        fns[f"{i}: {name}"] = lambda step=step, v=v: step(v)
        v = step(v)
    z = v
    fns["head"] = lambda: rt.logits_from_embedding(z)
    fns["whole_logits"] = lambda: rt.logits(x1)
    out = {}
    for k, fn in fns.items():
        for _ in range(20):
            fn()
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        out[k] = float(np.median(ts) * 1e6)
    return out


def bench_network(name: str, threads_list, repeat: int, warmup: int, rounds: int, seed: int):
    import onnxruntime as ort
    import torch

    from edgecl.bundle import read_bundle
    from edgecl.device import Runtime
    from edgecl.export import ExportConfig, HeadConfig, export_bundle, forward_model

    model, x, y = build(name, seed, calib=256)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.ecl"
        t0 = time.perf_counter()
        info = export_bundle(
            model,
            path,
            ExportConfig(memory=None, head=HeadConfig(onnx=False), verify_samples=64),
            calibration=(x[:128], y[:128]),
            class_names=[str(c) for c in range(10)],
        )
        export_s = time.perf_counter() - t0
        manifest, arrays = read_bundle(path)
        onnx_bytes = forward_model(manifest, arrays).SerializeToString()
        runtimes = {t: Runtime.load(path, threads=t) for t in threads_list}
    x1 = x[:1]
    xf = np.ascontiguousarray(x1, np.float32)
    if xf.ndim == 3:
        xf = xf[..., None]
    xt = torch.from_numpy(
        np.ascontiguousarray(x1[:, None] if x1.ndim == 3 else x1.transpose(0, 3, 1, 2))
    ).float()
    # the three engines agree on this sample (logits)
    ref = runtimes[threads_list[0]].logits(x1)
    out = {
        "network": name,
        "bundle_bytes": info.file_bytes,
        "onnx_bytes": len(onnx_bytes),
        "export_s": export_s,
        "threads": {},
    }
    for t in threads_list:
        torch.set_num_threads(t)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = t
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
        in_name = sess.get_inputs()[0].name
        out_names = [o.name for o in sess.get_outputs()]
        logit_name = next((n for n in out_names if "logit" in n), out_names[0])
        rt = runtimes[t]

        def torch_fwd(_x, _m=model, _xt=xt):
            with torch.inference_mode():
                return _m(_xt)

        fns = {
            "edgecl_logits": rt.logits,
            "edgecl_predict": rt.predict,
            "onnxruntime": lambda _x, _s=sess, _n=in_name, _o=logit_name: _s.run([_o], {_n: xf}),
            "torch": torch_fwd,
        }
        ort_logits = sess.run([logit_name], {in_name: xf})[0]
        torch_logits = torch_fwd(None).numpy()
        load_before = _loadavg()
        times = _time_rounds(fns, x1, repeat, warmup, rounds)
        res = {k: _stats(v) for k, v in times.items()}
        res["load_before"] = load_before
        res["load_after"] = _loadavg()
        res["max_abs_logit_diff"] = {
            "onnxruntime": float(np.abs(ort_logits - ref).max()),
            "torch": float(np.abs(torch_logits - ref).max()),
        }
        e = res["edgecl_logits"]["median_us"]
        res["speedup_vs"] = {
            "onnxruntime": res["onnxruntime"]["median_us"] / e,
            "torch": res["torch"]["median_us"] / e,
            "lce_reference": LCE_REFERENCE_US[name] / e,
        }
        out["threads"][str(t)] = res
    out["breakdown_1_thread_us"] = breakdown(runtimes[threads_list[0]], x1, repeat)
    return out


def markdown(report: dict) -> str:
    lines = [
        "| network | threads | edgecl logits median (p10) µs | edgecl predict median µs "
        "| onnxruntime median (p10) µs | torch eval median (p10) µs "
        "| ORT / edgecl | torch / edgecl | LCE ref / edgecl |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for net in report["networks"]:
        for t, r in net["threads"].items():
            e, p, o, tt = (r[k] for k in ENGINES)
            s = r["speedup_vs"]
            lines.append(
                f"| {net['network']} | {t} | {e['median_us']:.0f} ({e['p10_us']:.0f}) "
                f"| {p['median_us']:.0f} | {o['median_us']:.0f} ({o['p10_us']:.0f}) "
                f"| {tt['median_us']:.0f} ({tt['p10_us']:.0f}) | {s['onnxruntime']:.1f}x "
                f"| {s['torch']:.1f}x | {s['lce_reference']:.1f}x |"
            )
    return "\n".join(lines)


def targets(report: dict) -> list[dict]:
    """Issue 7's network targets against the best edgecl median over the thread counts."""
    rows = []
    for net in report["networks"]:
        name = net["network"]
        best = min(r["edgecl_logits"]["median_us"] for r in net["threads"].values())
        one = net["threads"].get("1", next(iter(net["threads"].values())))
        single = one["edgecl_logits"]["median_us"]
        rows.append(
            {
                "target": f"{name} <= {TARGET_US[name]:.0f} µs (batch 1)",
                "measured_us": single,
                "best_over_threads_us": best,
                "met": single <= TARGET_US[name],
                "margin": TARGET_US[name] / single,
            }
        )
        need = LCE_REFERENCE_US[name] / 3
        rows.append(
            {
                "target": f"{name} >= 3x LCE 0.16 reference ({LCE_REFERENCE_US[name]:.0f} µs, "
                "quoted, Zen 3): <= "
                f"{need:.0f} µs",
                "measured_us": single,
                "best_over_threads_us": best,
                "met": single <= need,
                "margin": LCE_REFERENCE_US[name] / single / 3,
            }
        )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="60 runs per engine (not >= 200)")
    p.add_argument("--repeat", type=int, default=300, help="timed runs per engine and threads")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--networks", default="mnist_bnn,vgg_small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    repeat = 60 if args.quick else args.repeat
    threads_list = [int(t) for t in args.threads.split(",")]
    info = machine_info()
    lce = all(importlib.util.find_spec(m) for m in ("larq", "larq_compute_engine"))
    report = {
        "command": " ".join(["python", sys.argv[0], *(sys.argv[1:] if argv is None else argv)]),
        "machine": info,
        "uptime_load_start": _loadavg(),
        "repeat": repeat,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "lce_importable": lce,
        "lce_note": (
            "larq/larq-compute-engine need TensorFlow, not installed here: the LCE column "
            "divides the brief's LCE 0.16 reference figures (Zen 3) by edgecl's figure "
            "measured here (Zen 5, AVX-512)"
        ),
        "lce_reference_us": LCE_REFERENCE_US,
        "targets_us": TARGET_US,
        "networks": [],
    }
    for name in args.networks.split(","):
        print(f"{name}: building, calibrating, exporting, timing ...", flush=True)
        report["networks"].append(
            bench_network(name, threads_list, repeat, args.warmup, args.rounds, args.seed)
        )
    report["uptime_load_end"] = _loadavg()
    report["targets"] = targets(report)
    report["markdown"] = markdown(report)
    print(machine_markdown(info))
    print(report["markdown"])
    for r in report["targets"]:
        print(f"- {r['target']}: {r['measured_us']:.0f} µs, {'met' if r['met'] else 'NOT met'}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
