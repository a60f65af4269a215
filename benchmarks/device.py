"""Device benchmarks, measured side by side in one run (issue 6's acceptance figures).

1. ``learn``: one ``learn_class`` of 100 samples with D = 512, GBM K = 8 (q = 8), 10 classes
   known, single thread: the whole call on embeddings (EM fit + eq. 4 batches with
   pseudo-exemplars + head SGD), and the head update alone, beside *the same head update
   in torch on the CPU* (the very same batches and SGD steps, torch given the {0,1}
   embeddings already unpacked to float32, ``torch.set_num_threads(1)``).
2. ``forward``: ``Runtime.predict`` at batch 1 on a bundle (the MNIST BNN of ``edgecl
   demo``), single thread: min / p50 / p90 and the time per layer.
3. ``cold``: a new process (Numba cache warm) from interpreter start to the first
   prediction, and the first-ever run with an empty Numba cache (compile time).
4. ``learn_images``: ``Runtime.learn_class`` on 100 raw images (embedding included).

Usage::

    NUMBA_NUM_THREADS=1 python benchmarks/device.py --bundle edgecl-demo/model.ecl --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402


def _stats(seconds, scale=1e3):
    a = np.asarray(seconds) * scale
    return {
        "min": float(a.min()),
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "n": int(a.size),
    }


def _synthetic_learner(n_bits, k, q, n_known, per_class, seed):
    """A learner with ``n_known`` classes whose embeddings are Bernoulli draws around
    class prototypes (GBM K, q fitted on them) and a head trained on them."""
    from edgecl.device.learner import HeadSettings, Learner
    from edgecl.kernels import pack_bits
    from edgecl.kernels.head import softmax_head_step
    from edgecl.memory import GBMConfig, GBMMemory

    rng = np.random.default_rng(seed)
    protos = rng.uniform(0.1, 0.9, size=(n_known + 1, n_bits))

    def draw(c, n):
        return pack_bits((rng.random((n, n_bits)) < protos[c]).astype(np.uint8))

    mem = GBMMemory(n_bits, GBMConfig(components=k, bits=q))
    z_all, y_all = [], []
    for c in range(n_known):
        z = draw(c, per_class)
        mem.fit_class(f"k{c}", z, seed=c)
        z_all.append(z)
        y_all.append(np.full(per_class, c, np.int64))
    z_all, y_all = np.concatenate(z_all), np.concatenate(y_all)
    w = np.zeros((n_bits, n_known), np.float32)
    b = np.zeros(n_known, np.float32)
    for i in range(0, len(y_all), 64):
        w, b, _ = softmax_head_step(z_all[i : i + 64], n_bits, w, b, y_all[i : i + 64], 0.05)
    learner = Learner(
        n_bits, [f"k{c}" for c in range(n_known)], w, b, memory=mem, settings=HeadSettings()
    )
    return learner, draw(n_known, 100)


def bench_learn(n_bits=512, k=8, q=8, n_known=10, n_samples=100, repeat=20, seed=0):
    import torch

    from edgecl.kernels import unpack_bits
    from edgecl.kernels.head import softmax_head_step
    from edgecl.memory import balanced_batches

    torch.set_num_threads(1)
    learner, z_new = _synthetic_learner(n_bits, k, q, n_known, 200, seed)
    z_new = z_new[:n_samples]
    s = learner.settings
    # the whole learn_class on embeddings (fresh copy every call)
    full, full_cpu, head_only_steps = [], [], 0
    learner.copy().learn("new", z_new, seed=seed, trace_memory=False)  # warm-up (compile)
    for i in range(repeat):
        lc = learner.copy()
        t, c = time.perf_counter(), time.process_time()
        rep = lc.learn("new", z_new, seed=seed + i, trace_memory=False)
        full_cpu.append(time.process_time() - c)
        full.append(time.perf_counter() - t)
        head_only_steps = rep.steps
    # the same batches for both head updates
    classes = learner.classes + ("new",)
    index = {c: i for i, c in enumerate(classes)}
    batch = max(s.batch_size, len(classes))
    batches = list(
        balanced_batches(
            learner.memory,
            {"new": z_new},
            batch_size=batch,
            epochs=s.epochs,
            class_index=index,
            seed=seed,
        )
    )
    w0 = np.concatenate([learner.weight, np.zeros((n_bits, 1), np.float32)], axis=1)
    b0 = np.concatenate([learner.bias, np.zeros(1, np.float32)])
    from edgecl.kernels.headstep import HeadStepper

    numba_t, kernel_t, numba_cpu, torch_cpu = [], [], [], []
    for _ in range(repeat):
        # the learner's step (transposed, dense; edgecl.kernels.headstep), layout changes included
        c = time.process_time()
        t = time.perf_counter()
        stepper = HeadStepper(n_bits, len(classes), batch)
        wt, bb = np.ascontiguousarray(w0.T), b0.copy()
        wt2, b2 = np.empty_like(wt), np.empty_like(bb)
        for words, labels in batches:
            stepper(words, wt, bb, labels, s.lr, 0.0, wt2, b2)
            wt, wt2, bb, b2 = wt2, wt, b2, bb
        w_learner = np.ascontiguousarray(wt.T)
        numba_t.append(time.perf_counter() - t)
        numba_cpu.append(time.process_time() - c)
        # the same step behind its checked wrapper edgecl.kernels.head.softmax_head_step
        # (boundary checks, (D, C) <-> (C, D) layout changes and work arrays every call)
        w, b = w0, b0
        t = time.perf_counter()
        for words, labels in batches:
            w, b, _ = softmax_head_step(words, n_bits, w, b, labels, s.lr)
        kernel_t.append(time.perf_counter() - t)
    xs = [torch.from_numpy(unpack_bits(wd, n_bits).astype(np.float32)) for wd, _ in batches]
    ys = [torch.from_numpy(lab) for _, lab in batches]
    torch_t = []
    for _ in range(repeat):
        head = torch.nn.Linear(n_bits, len(classes))
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(w0.T.copy()))
            head.bias.copy_(torch.from_numpy(b0))
        opt = torch.optim.SGD(head.parameters(), lr=s.lr)
        c = time.process_time()
        t = time.perf_counter()
        for xb, yb in zip(xs, ys, strict=True):
            loss = torch.nn.functional.cross_entropy(head(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        torch_t.append(time.perf_counter() - t)
        torch_cpu.append(time.process_time() - c)
    # both give the same head (float32 sums in another order)
    w, b = w0, b0
    for words, labels in batches:
        w, b, _ = softmax_head_step(words, n_bits, w, b, labels, s.lr)
    diff = float(np.abs(head.weight.detach().numpy().T - w).max())
    diff_learner = float(np.abs(w_learner - w).max())
    out = {
        "setting": f"D={n_bits}, GBM K={k} q={q}, {n_known} classes known, {n_samples} samples, "
        f"{len(batches)} SGD steps of {batch} (epochs {s.epochs}, lr {s.lr})",
        "learn_class_ms": _stats(full),
        "learn_class_cpu_ms": _stats(full_cpu),
        "head_numba_ms": _stats(numba_t),
        "head_numba_cpu_ms": _stats(numba_cpu),
        "head_torch_cpu_ms": _stats(torch_cpu),
        "head_kernel_checked_ms": _stats(kernel_t),
        "head_torch_ms": _stats(torch_t),
        "steps": len(batches),
        "steps_in_learn": head_only_steps,
        "max_weight_diff_numba_vs_torch": diff,
        "max_weight_diff_learner_step_vs_kernel": diff_learner,
    }
    out["speedup_head_torch_over_numba"] = out["head_torch_ms"]["p50"] / out["head_numba_ms"]["p50"]
    out["speedup_head_torch_over_numba_cpu"] = (
        out["head_torch_cpu_ms"]["p50"] / out["head_numba_cpu_ms"]["p50"]
    )
    out["speedup_torch_head_over_full_learn"] = (
        out["head_torch_ms"]["p50"] / out["learn_class_ms"]["p50"]
    )
    return out


def bench_forward(bundle, repeat=500):
    from edgecl.data import load_mnist_sample
    from edgecl.device import Runtime

    rt = Runtime.load(bundle, threads=1)
    x = load_mnist_sample()[2][:repeat]
    rt.predict(x[:1])
    ts, cpu = [], []
    for i in range(repeat):
        xi = x[i : i + 1]
        c = time.process_time()
        t = time.perf_counter()
        rt.predict(xi)
        ts.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    xf = rt.input_spec.normalize(rt.input_spec.check(x[:1]))
    per: dict[str, list[float]] = {}
    for _ in range(200):
        v = xf
        # the steps Runtime.predict runs (fused blocks named by their ops)
        for i, (name, step) in enumerate(rt._program.steps):
            t = time.perf_counter()
            v = step(v)
            per.setdefault(f"{i} {name}", []).append(time.perf_counter() - t)
        z = v
        t = time.perf_counter()
        rt.logits_from_embedding(z)
        per.setdefault("head", []).append(time.perf_counter() - t)
    return {
        "bundle": str(bundle),
        "predict_us": _stats(ts, 1e6),
        "predict_cpu_us": _stats(cpu, 1e6),
        "steps_us_p50": {k: float(np.median(v) * 1e6) for k, v in per.items()},
    }


COLD = """
import time
t0 = time.perf_counter()
import numpy as np
from edgecl.device import Runtime
rt = Runtime.load({bundle!r})
x = np.load({x!r})
t1 = time.perf_counter()
rt.predict(x)
t2 = time.perf_counter()
print(t2 - t0, t2 - t1, t1 - t0)
"""


def bench_cold(bundle, runs=3):
    from edgecl.data import load_mnist_sample

    with tempfile.TemporaryDirectory() as d:
        xp = os.path.join(d, "x.npy")
        np.save(xp, load_mnist_sample()[2][:1])
        code = COLD.format(bundle=str(bundle), x=xp)

        def run(env):
            import resource

            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
            )
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            total, predict, load = map(float, r.stdout.split())
            return {
                "process_wall_s": wall,
                "process_cpu_s": cpu,
                "import_to_prediction_s": total,
                "first_predict_s": predict,
                "import_and_load_s": load,
            }

        env = dict(os.environ)
        first = run({**env, "NUMBA_CACHE_DIR": os.path.join(d, "numba-cache")})
        warm = [run(env) for _ in range(runs)]
    return {
        "first_ever_empty_numba_cache": first,
        "warm_cache_runs": warm,
        "warm_process_wall_s_p50": float(np.median([w["process_wall_s"] for w in warm])),
        "warm_process_cpu_s_p50": float(np.median([w["process_cpu_s"] for w in warm])),
    }


def bench_learn_images(bundle, n=100, repeat=10, seed=0):
    from edgecl.data import load_mnist_sample
    from edgecl.device import Runtime

    rt = Runtime.load(bundle, threads=1)
    x = load_mnist_sample()[2][:n]
    saved = rt.snapshot()
    ts, cpu = [], []
    for i in range(repeat + 1):
        c = time.process_time()
        t = time.perf_counter()
        rep = rt.learn_class("bench", x, seed=seed + i, trace_memory=False)
        dt = time.perf_counter() - t
        dc = time.process_time() - c
        rt.restore(saved)
        if i:
            ts.append(dt)
            cpu.append(dc)
    return {
        "bundle": str(bundle),
        "classes_known": len(rt.classes_),
        "memory": rt.learner.memory.default_size().to_dict(),
        "learn_class_ms": _stats(ts),
        "learn_class_cpu_ms": _stats(cpu),
        "embed_ms_last": rep.embed_s * 1e3,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, help="an MNIST bundle for forward/cold/learn_images")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--only", choices=("learn", "forward", "cold", "learn_images"), nargs="*")
    args = p.parse_args(argv)
    todo = args.only or ["learn", "forward", "cold", "learn_images"]
    out = {"machine": machine_info(), "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS")}
    if "learn" in todo:
        out["learn"] = bench_learn(repeat=args.repeat)
        r = out["learn"]
        print(
            f"learn_class (embeddings, {r['setting']}): p50 {r['learn_class_ms']['p50']:.1f} ms "
            f"(CPU {r['learn_class_cpu_ms']['p50']:.1f} ms); head CPU numba "
            f"{r['head_numba_cpu_ms']['p50']:.2f} ms, torch {r['head_torch_cpu_ms']['p50']:.2f} ms"
        )
        print(
            f"  head update alone: numba p50 {r['head_numba_ms']['p50']:.2f} ms (checked kernel "
            f"{r['head_kernel_checked_ms']['p50']:.2f} ms), torch p50 "
            f"{r['head_torch_ms']['p50']:.2f} ms -> torch/numba "
            f"{r['speedup_head_torch_over_numba']:.1f}x;"
            f" torch head / whole learn_class {r['speedup_torch_head_over_full_learn']:.2f}x"
        )
    if args.bundle is not None:
        if "forward" in todo:
            out["forward"] = bench_forward(args.bundle)
            r = out["forward"]["predict_us"]
            print(
                f"predict batch 1: min {r['min']:.0f} us, p50 {r['p50']:.0f} us, "
                f"p90 {r['p90']:.0f} us"
            )
            for k, v in out["forward"]["steps_us_p50"].items():
                print(f"  {k:<40} {v:8.1f} us")
        if "cold" in todo:
            out["cold"] = bench_cold(args.bundle)
            c = out["cold"]
            print(
                "cold start (warm Numba cache): process wall p50 "
                f"{c['warm_process_wall_s_p50']:.2f} s; first-ever (empty cache): "
                f"{c['first_ever_empty_numba_cache']['process_wall_s']:.1f} s"
            )
        if "learn_images" in todo:
            out["learn_images"] = bench_learn_images(args.bundle, repeat=max(3, args.repeat // 2))
            r = out["learn_images"]
            print(
                f"Runtime.learn_class(100 images, {r['classes_known']} classes known, "
                f"{r['memory']}): p50 {r['learn_class_ms']['p50']:.1f} ms"
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
