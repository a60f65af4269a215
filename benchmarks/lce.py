"""Larq Compute Engine (LCE) 0.16 and edgecl side by side, in one process, on this machine.

What it measures (issue 7, section 1): the same shapes and networks in LCE's TFLite
interpreter and in edgecl's Numba kernels, timed in interleaved rounds (every engine and
setting takes its turn in each round, so load from other processes spreads over all of
them), at 1 and 2 threads; median and 10th percentile of all timed runs.

- Kernels: binary dense 4096 -> 4096 at batch 1 and batch 64, binary conv 3x3 256 -> 256 on
  16x16 ('same', one-padding), batch 1. LCE: a one-layer larq model
  (``QuantConv2D``, ``ste_sign`` input and kernel, no bias) converted with
  ``larq_compute_engine.convert_keras_model``; the dense layer is a 1x1 ``QuantConv2D``
  (LCE turns ``QuantDense`` into a float FULLY_CONNECTED), on a (B, 1, 1, 4096) input, and
  for batch 64 also on a (1, 8, 8, 4096) input (the same 64 rows as pixels). edgecl:
  ``binary_dense_prepared`` / ``binary_conv2d`` on packed bits (as ``benchmarks/kernels.py``), and
  ``pack_float_signs`` (one-pass sign packing) + the kernel on the float ±1 input (what
  the LCE model does: its input is float and it starts with ``LceQuantize``). G
  binary-MAC/s = logical MACs / time. Outputs are checked equal (same ±1 weights and
  inputs in both).
- Whole networks at batch 1: ``mnist_bnn`` and ``vgg_small`` as
  :mod:`edgecl.train.backbones` builds them, written in larq (float first conv, binary
  3x3 'same' one-padded convs, BatchNorm, max-pools, the binary dense embedding as a
  'valid' ``QuantConv2D`` over the whole last feature map, float head on the signs). The
  larq model's layer shapes are checked against the edgecl bundle's layer program. edgecl:
  ``Runtime.logits`` on one raw image of a bundle made beforehand in the torch venv.
- LCE settings: ``use_indirect_bgemm`` off/on x ``use_xnnpack`` off/on
  (``use_reference_bconv=False``); every setting is timed, the fastest is reported.
- ``--isa avx2``: edgecl's Numba code built with AVX-512 turned off (the code an AVX2-only
  core would get, still run on this core); LCE's binary is the same either way.
- Single-thread cases run with the calling thread pinned to one CPU (``--pin-cpu``, like
  ``taskset -c 0``); 2-thread cases on the process's own CPU set (pinning the whole process
  to one core would put both threads on it).

Two steps, two virtual environments (TensorFlow and torch never in the same one). The LCE
venv's install lines are in benchmarks/RESULTS.md (section "LCE 0.16 side by side"); edgecl's
``[larq]`` extra is only h5py (for reading .h5 weights) and does not install them:

    # 1. in edgecl's venv (torch): build, calibrate and export the two networks
    .venv/bin/python benchmarks/lce.py make-bundles --out /tmp/lce-bundles
    # 2. in the LCE venv (TensorFlow, larq, LCE, edgecl without torch): time
    /root/lce-venv/bin/python benchmarks/lce.py bench \\
        --bundle-mnist /tmp/lce-bundles/mnist_bnn.ecl \\
        --bundle-vgg /tmp/lce-bundles/vgg_small.ecl --json benchmarks/results/lce.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import time
import warnings
from functools import partial
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # larq needs tf.keras 2 (tf-keras)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from machine import machine_info, machine_markdown  # noqa: E402

NETWORKS = ("mnist_bnn", "vgg_small")
#: (name, kind, shape) of the kernel cases, as in benchmarks/kernels.py.
KERNEL_CASES = (
    ("dense 4096->4096, batch 1", "dense", {"B": 1, "n": 4096, "O": 4096}),
    ("dense 4096->4096, batch 64", "dense", {"B": 64, "n": 4096, "O": 4096}),
    (
        "conv 3x3 256->256, 16x16 'same', batch 1",
        "conv",
        {"N": 1, "H": 16, "W": 16, "C": 256, "O": 256, "k": 3},
    ),
)
#: LCE interpreter settings tried on every model (use_reference_bconv=False throughout).
LCE_SETTINGS = (
    {"use_indirect_bgemm": False, "use_xnnpack": False},
    {"use_indirect_bgemm": True, "use_xnnpack": False},
    {"use_indirect_bgemm": False, "use_xnnpack": True},
    {"use_indirect_bgemm": True, "use_xnnpack": True},
)
#: issue 7: edgecl >= 3x LCE's fastest setting on every shape; issue 15: >= 3x on an
#: AVX2-only build, >= 5x where the kernels run vpopcntq (AVX-512 VPOPCNTDQ).
TARGET_SPEEDUP = 3.0
TARGET_SPEEDUP_VPOPCNTDQ = 5.0


def target_speedup() -> float:
    """The issue-15 target for the popcount strategy Numba's target selects here."""
    from edgecl.kernels.popcount import default_strategy

    return TARGET_SPEEDUP_VPOPCNTDQ if default_strategy().name == "vpopcntdq" else TARGET_SPEEDUP


VERSION_PACKAGES = (
    "tensorflow",
    "tf-keras",
    "larq",
    "larq-compute-engine",
    "numpy",
    "numba",
    "llvmlite",
    "edgecl",
)


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _versions() -> dict[str, str | None]:
    out = {}
    for name in VERSION_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git_state() -> dict | None:
    """The commit edgecl was measured at and any uncommitted files under ``edgecl/``
    (the editable install runs the working tree)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "edgecl"],
            capture_output=True,
            text=True,
        ).stdout
    except OSError:
        return None
    return {"head": head or None, "uncommitted_in_edgecl": status.split("\n")[:-1]}


# -- step 1: bundles (edgecl's venv, torch) -------------------------------------------------


def make_bundles(out_dir: Path, seed: int) -> None:
    """Build, calibrate and export both networks as ``benchmarks/networks.py`` does."""
    from networks import build

    from edgecl.export import ExportConfig, HeadConfig, export_bundle

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in NETWORKS:
        model, x, y = build(name, seed, calib=256)
        path = out_dir / f"{name}.ecl"
        info = export_bundle(
            model,
            path,
            ExportConfig(memory=None, head=HeadConfig(onnx=False), verify_samples=64),
            calibration=(x[:128], y[:128]),
            class_names=[str(c) for c in range(10)],
        )
        print(f"{name}: {path} ({info.file_bytes} bytes)")


# -- LCE models (the LCE venv) ----------------------------------------------------------------

_BINARY = {
    "input_quantizer": "ste_sign",
    "kernel_quantizer": "ste_sign",
    "kernel_constraint": "weight_clip",
    "use_bias": False,
}


def _tf():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import larq as lq
        import larq_compute_engine as lce
        import tensorflow as tf
    return tf, lq, lce


def lce_kernel_model(kind: str, shape: dict, layout: str, w_bits=None):
    """A one-layer larq model for a kernel case; ``w_bits`` (edgecl's {0,1} weights,
    (O, n) or (O, kh, kw, C)) set as its ±1 kernel so outputs can be compared."""
    import numpy as np

    tf, lq, _ = _tf()
    if kind == "dense":
        b, n, o = shape["B"], shape["n"], shape["O"]
        in_shape, batch = ((8, 8, n), 1) if layout == "spatial" else ((1, 1, n), b)
        x = tf.keras.Input(in_shape, batch_size=batch)
        layer = lq.layers.QuantConv2D(o, 1, **_BINARY)
        kernel = None if w_bits is None else (2.0 * w_bits - 1.0).T.reshape(1, 1, n, o)
    else:
        c, o, k = shape["C"], shape["O"], shape["k"]
        x = tf.keras.Input((shape["H"], shape["W"], c), batch_size=shape["N"])
        layer = lq.layers.QuantConv2D(o, k, padding="same", pad_values=1.0, **_BINARY)
        kernel = None if w_bits is None else (2.0 * w_bits - 1.0).transpose(1, 2, 3, 0)
    model = tf.keras.Model(x, layer(x))
    if kernel is not None:
        layer.set_weights([np.asarray(kernel, np.float32)])
    return model


def lce_network(name: str):
    """``mnist_bnn`` / ``vgg_small`` of :mod:`edgecl.train.backbones` in larq: raw pixels
    -> Normalize (as a Rescaling) -> float conv (no bias) -> BN [-> pool], binary convs
    -> BN [-> pool], binary dense 512 ('valid' conv over the whole map) -> BN, float head
    on the signs (``QuantDense(10, input_quantizer='ste_sign')``)."""
    tf, lq, _ = _tf()
    L = tf.keras.layers
    if name == "mnist_bnn":
        size, in_ch, chans = 28, 1, (64, 128, 256)
        mean, std = (0.1307,), (0.3081,)
        pools = (True, True, True)  # conv -> BN -> pool for every conv
    elif name == "vgg_small":
        size, in_ch, chans = 32, 3, (128, 128, 256, 256, 512, 512)
        mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
        pools = (False, True, False, True, False, True)  # after every second conv
    else:
        raise ValueError(f"expected one of {NETWORKS}, got {name!r}")
    x = tf.keras.Input((size, size, in_ch), batch_size=1)
    scale = [1 / (255 * s) for s in std]
    y = L.Rescaling(scale, offset=[-m / s for m, s in zip(mean, std, strict=True)])(x)
    y = L.Conv2D(chans[0], 3, padding="same", use_bias=False)(y)
    for i, c in enumerate(chans):
        if i:
            y = lq.layers.QuantConv2D(c, 3, padding="same", pad_values=1.0, **_BINARY)(y)
        y = L.BatchNormalization()(y)
        if pools[i]:
            y = L.MaxPool2D(2)(y)
    y = lq.layers.QuantConv2D(512, tuple(y.shape[1:3]), padding="valid", **_BINARY)(y)
    y = L.BatchNormalization()(y)
    y = L.Flatten()(y)
    y = lq.layers.QuantDense(10, input_quantizer="ste_sign")(y)
    return tf.keras.Model(x, y)


def keras_signature(model) -> list[list]:
    """(op, in_shape, out_shape) of the conv, dense and pool layers, in edgecl's op names."""
    tf, lq, _ = _tf()
    out = []
    for layer in model.layers:
        i = [int(v) for v in layer.input.shape[1:]]
        o = [int(v) for v in layer.output.shape[1:]]
        if isinstance(layer, lq.layers.QuantConv2D):
            if layer.padding == "valid" and o[:2] == [1, 1]:
                out.append(["dense_binary", [i[0] * i[1] * i[2]], [o[2]]])
            else:
                out.append(["conv2d_binary", i, o])
        elif isinstance(layer, tf.keras.layers.Conv2D):
            out.append(["conv2d_float", i, o])
        elif isinstance(layer, tf.keras.layers.MaxPool2D):
            out.append(["maxpool", i, o])
    return out


def bundle_signature(layers) -> list[list]:
    """The same for an edgecl bundle's layer program."""
    keep = {"conv2d_float", "conv2d_binary", "dense_binary", "maxpool_bits", "maxpool_float"}
    return [
        [
            "maxpool" if la["op"].startswith("maxpool") else la["op"],
            [int(v) for v in la["in_shape"]],
            [int(v) for v in la["out_shape"]],
        ]
        for la in layers
        if la["op"] in keep
    ]


def lce_ops(flatbuffer: bytes) -> list[str]:
    """The operators of a converted model, in order (builtin names or LCE custom ops)."""
    from larq_compute_engine.mlir.python import tflite_schema as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    ops = []
    for op in model.subgraphs[0].operators:
        code = model.operatorCodes[op.opcodeIndex]
        if code.customCode:
            ops.append(code.customCode.decode())
        else:
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            ops.append(names.get(builtin, str(builtin)))
    return ops


def convert(model) -> bytes:
    _, _, lce = _tf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lce.convert_keras_model(model)


def lce_runner(flatbuffer: bytes, threads: int, setting: dict, x):
    """A no-argument call that runs the model once on ``x`` (the wrapper's own
    ``predict(list_of_inputs)``: copy in, invoke, copy out)."""
    _, _, lce = _tf()
    interp = lce.testing.Interpreter(
        flatbuffer, num_threads=threads, use_reference_bconv=False, **setting
    )
    raw = interp.interpreter
    inputs = [x]
    return lambda: raw.predict(inputs)


def _setting_name(s: dict, layout: str | None = None) -> str:
    name = f"indirect_bgemm={'on' if s['use_indirect_bgemm'] else 'off'}"
    name += f", xnnpack={'on' if s['use_xnnpack'] else 'off'}"
    return name + (f", input {layout}" if layout else "")


# -- the cases ------------------------------------------------------------------------------------


def kernel_case(name: str, kind: str, shape: dict, threads_list, rng) -> dict:
    """LCE runners per (threads, setting) and edgecl runners per threads for one shape."""
    import numpy as np

    from edgecl.kernels import (
        binary_conv2d,
        binary_dense,
        binary_dense_prepared,
        pack_bits,
        pack_float_signs,
        prepare_dense,
    )

    case: dict = {"name": name, "kind": kind, "shape": shape, "lce": {}, "edgecl": {}}
    if kind == "dense":
        b, n, o = shape["B"], shape["n"], shape["O"]
        macs = b * n * o
        xb = rng.integers(0, 2, size=(b, n), dtype=np.uint8)
        wb = rng.integers(0, 2, size=(o, n), dtype=np.uint8)
        xf = xb.astype(np.float32) * 2 - 1
        xw, ww = pack_bits(xb), pack_bits(wb)
        layouts = {"batch": xf.reshape(b, 1, 1, n)}
        if b == 64:
            layouts["spatial"] = xf.reshape(1, 8, 8, n)
        ref = binary_dense(xw, ww, n)
        prepared = prepare_dense(ww, n)  # laid out once, as LCE's converter lays out its own

        def edgecl(t):
            return {
                "packed": lambda: binary_dense_prepared(xw, prepared, threads=t),
                "float in": lambda: binary_dense_prepared(
                    pack_float_signs(xf), prepared, threads=t
                ),
            }
    else:
        N, H, W, C, O, k = (shape[key] for key in ("N", "H", "W", "C", "O", "k"))
        macs = N * H * W * O * k * k * C
        xb = rng.integers(0, 2, size=(N, H, W, C), dtype=np.uint8)
        wb = rng.integers(0, 2, size=(O, k, k, C), dtype=np.uint8)
        xf = xb.astype(np.float32) * 2 - 1
        xw, ww = pack_bits(xb), pack_bits(wb)
        layouts = {"nhwc": xf}
        ref = binary_conv2d(xw, ww, C, padding="same")

        def edgecl(t):
            return {
                "packed": lambda: binary_conv2d(xw, ww, C, padding="same", threads=t),
                "float in": lambda: binary_conv2d(
                    pack_float_signs(xf), ww, C, padding="same", threads=t
                ),
            }

    case["macs"] = macs
    case["lce_models"] = {}
    for layout, x in layouts.items():
        fb = convert(lce_kernel_model(kind, shape, layout, wb))
        case["lce_models"][layout] = {"ops": lce_ops(fb), "flatbuffer_bytes": len(fb)}
        for t in threads_list:
            for s in LCE_SETTINGS:
                run = lce_runner(fb, t, s, x)
                got = np.asarray(run()[0]).reshape(ref.shape)
                if not np.array_equal(got, ref.astype(np.float32)):
                    raise RuntimeError(f"LCE and edgecl disagree on {name} ({layout}, {s})")
                key = _setting_name(s, layout if len(layouts) > 1 else None)
                case["lce"].setdefault(str(t), {})[key] = run
    for t in threads_list:
        for label, fn in edgecl(t).items():
            if not np.array_equal(fn(), ref):
                raise RuntimeError(f"edgecl {label} disagrees with itself on {name}")
            case["edgecl"].setdefault(str(t), {})[label] = fn
    return case


def network_case(name: str, bundle: Path, threads_list, rng) -> dict:
    import numpy as np

    from edgecl.device import Runtime

    model = lce_network(name)
    runtimes = {t: Runtime.load(bundle, threads=t) for t in threads_list}
    want = bundle_signature(runtimes[threads_list[0]].layers)
    got = keras_signature(model)
    if got != want:
        raise RuntimeError(
            f"the larq {name} does not match the bundle's layers:\n larq   {got}\n bundle {want}"
        )
    fb = convert(model)
    h, w, c = runtimes[threads_list[0]].input_spec.shape
    raw = rng.integers(0, 256, size=(1, h, w, c), dtype=np.uint8)
    x_edgecl = raw[..., 0] if c == 1 else raw
    x_lce = raw.astype(np.float32)
    case = {
        "name": f"{name} (whole network, batch 1)",
        "kind": "network",
        "network": name,
        "bundle": str(bundle),
        "layers": want,
        "macs": None,
        "lce_models": {"nhwc": {"ops": lce_ops(fb), "flatbuffer_bytes": len(fb)}},
        "lce": {},
        "edgecl": {},
    }
    for t in threads_list:
        for s in LCE_SETTINGS:
            run = lce_runner(fb, t, s, x_lce)
            if np.asarray(run()[0]).shape != (1, 10):
                raise RuntimeError(f"unexpected LCE output shape for {name}")
            case["lce"].setdefault(str(t), {})[_setting_name(s)] = run
        case["edgecl"].setdefault(str(t), {})["Runtime.logits"] = partial(
            runtimes[t].logits, x_edgecl
        )
    return case


# -- timing -------------------------------------------------------------------------------------


def _pin(cpus) -> None:
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)  # the calling thread (Linux)


def time_all(cases, threads_list, runs: int, rounds: int, warmup: int, pin_cpu, all_cpus):
    """Interleaved rounds: in each round, for each thread count (single thread pinned to
    ``pin_cpu``), every case, engine and setting runs ``runs // rounds`` timed calls."""
    import numpy as np

    def cpus_for(t):
        return {pin_cpu} if t == 1 and pin_cpu is not None else all_cpus

    fns = []  # (case index, threads, engine, label, fn)
    for ci, case in enumerate(cases):
        for t in threads_list:
            for engine in ("lce", "edgecl"):
                for label, fn in case[engine][str(t)].items():
                    fns.append((ci, t, engine, label, fn))
    for t in threads_list:
        _pin(cpus_for(t))
        for _ci, tt, _, _, fn in fns:
            if tt == t:
                for _ in range(warmup):
                    fn()
    times: dict = {id(fn): [] for *_, fn in fns}
    per = max(1, runs // rounds)
    for _ in range(rounds):
        for t in threads_list:
            _pin(cpus_for(t))
            for _ci, tt, _, _, fn in fns:
                if tt != t:
                    continue
                ts = times[id(fn)]
                for _ in range(per):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
    _pin(all_cpus)
    results = []
    for ci, case in enumerate(cases):
        out = {k: v for k, v in case.items() if k not in ("lce", "edgecl")}
        out["threads"] = {}
        for t in threads_list:
            row: dict = {"lce": {}, "edgecl": {}}
            for c2, tt, engine, label, fn in fns:
                if c2 != ci or tt != t:
                    continue
                a = np.asarray(times[id(fn)]) * 1e6
                st = {
                    "median_us": float(np.median(a)),
                    "p10_us": float(np.percentile(a, 10)),
                    "p90_us": float(np.percentile(a, 90)),
                    "runs": int(a.size),
                }
                if case["macs"]:
                    st["median_g_per_s"] = case["macs"] / st["median_us"] / 1e3
                    st["p10_g_per_s"] = case["macs"] / st["p10_us"] / 1e3
                row[engine][label] = st
            best = min(row["lce"], key=lambda k: row["lce"][k]["median_us"])
            row["lce_best"] = best  # the fastest setting by median; its p10 beside it
            lce = row["lce"][best]
            row["speedup_median"] = {
                k: lce["median_us"] / v["median_us"] for k, v in row["edgecl"].items()
            }
            row["speedup_p10"] = {k: lce["p10_us"] / v["p10_us"] for k, v in row["edgecl"].items()}
            out["threads"][str(t)] = row
        results.append(out)
    return results


# -- report ---------------------------------------------------------------------------------------


def _g(st: dict) -> str:
    if "median_g_per_s" not in st:
        return "-"
    return f"{st['median_g_per_s']:.1f} ({st['p10_g_per_s']:.1f})"


def markdown(results) -> str:
    lines = [
        "| shape | threads | LCE fastest setting | LCE µs median (p10) | LCE G/s median (p10) "
        "| edgecl | edgecl µs median (p10) | edgecl G/s median (p10) "
        "| edgecl / LCE median (p10) |",
        "|---|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    for case in results:
        for t, row in case["threads"].items():
            best = row["lce_best"]
            lst = row["lce"][best]
            for label, est in row["edgecl"].items():
                lines.append(
                    f"| {case['name']} | {t} | {best} "
                    f"| {lst['median_us']:.0f} ({lst['p10_us']:.0f}) "
                    f"| {_g(lst)} | {label} | {est['median_us']:.0f} ({est['p10_us']:.0f}) "
                    f"| {_g(est)} | {row['speedup_median'][label]:.2f}x "
                    f"({row['speedup_p10'][label]:.2f}x) |"
                )
    return "\n".join(lines)


def settings_markdown(results) -> str:
    """Every LCE setting's median µs, per case and thread count."""
    names = [_setting_name(s) for s in LCE_SETTINGS]
    lines = [
        "| shape | threads | input | " + " | ".join(names) + " |",
        "|---|---:|---|" + "---:|" * len(names),
    ]
    for case in results:
        for t, row in case["threads"].items():
            layouts = sorted({k.split(", input ")[1] for k in row["lce"] if ", input " in k})
            for layout in layouts or [None]:
                cells = []
                for n in names:
                    key = n if layout is None else f"{n}, input {layout}"
                    cells.append(f"{row['lce'][key]['median_us']:.0f}")
                label = layout or next(iter(case["lce_models"]))
                lines.append(f"| {case['name']} | {t} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(results, target: float) -> list[dict]:
    """edgecl >= ``target`` x LCE's fastest setting, per shape, judged on one thread."""
    rows = []
    for case in results:
        row = case["threads"].get("1") or next(iter(case["threads"].values()))
        for label, sp in row["speedup_median"].items():
            rows.append(
                {
                    "shape": case["name"],
                    "edgecl": label,
                    "speedup_median": sp,
                    "speedup_p10": row["speedup_p10"][label],
                    "target": target,
                    "met": sp >= target,
                    "lce_best": row["lce_best"],
                }
            )
    return rows


def bench(args) -> int:
    if args.isa == "avx2":  # before anything imports numba
        from edgecl.machine import avx2_only_env

        os.environ.update(avx2_only_env())
    import numpy as np

    threads_list = [int(t) for t in args.threads.split(",")]
    all_cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pin = None if args.pin_cpu < 0 else args.pin_cpu
    if pin is not None and all_cpus is not None and pin not in all_cpus:
        raise SystemExit(f"--pin-cpu {pin} is not in this process's CPU set {sorted(all_cpus)}")
    if 2 in threads_list and all_cpus is not None and len(all_cpus) < 2:
        print("warning: one CPU in this process's set: 2-thread figures share a core")
    report = {
        "command": " ".join([Path(sys.executable).as_posix(), *sys.argv]),
        "machine": machine_info(),
        "versions": _versions(),
        "edgecl_git": _git_state(),
        "load_average_start": _loadavg(),
        "cpus": sorted(all_cpus) if all_cpus is not None else None,
        "pin_cpu_single_thread": pin,
        "isa": args.isa,
        "runs": args.runs,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "lce_settings": [dict(s, use_reference_bconv=False) for s in LCE_SETTINGS],
        "target_speedup": target_speedup(),
    }
    rng = np.random.default_rng(args.seed)
    cases = []
    t0 = time.perf_counter()
    if not args.skip_kernels:
        for name, kind, shape in KERNEL_CASES:
            print(f"{name}: converting, checking ...", flush=True)
            cases.append(kernel_case(name, kind, shape, threads_list, rng))
    bundles = {"mnist_bnn": args.bundle_mnist, "vgg_small": args.bundle_vgg}
    for name, path in bundles.items():
        if path is None:
            print(f"{name}: no bundle given (--bundle-{name.split('_')[0]}), skipped")
            continue
        print(f"{name}: building the larq model, converting, checking ...", flush=True)
        cases.append(network_case(name, Path(path), threads_list, rng))
    report["setup_s"] = time.perf_counter() - t0
    print(f"timing ({args.runs} runs per figure in {args.rounds} rounds) ...", flush=True)
    t0 = time.perf_counter()
    report["cases"] = time_all(
        cases, threads_list, args.runs, args.rounds, args.warmup, pin, all_cpus
    )
    report["timing_s"] = time.perf_counter() - t0
    report["load_average_end"] = _loadavg()
    report["targets"] = targets(report["cases"], report["target_speedup"])
    report["markdown"] = markdown(report["cases"])
    report["settings_markdown"] = settings_markdown(report["cases"])
    print(machine_markdown(report["machine"]))
    print(f"- Load average (1, 5, 15 min) at the end: {report['load_average_end']}")
    print("- " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    git = report["edgecl_git"] or {}
    dirty = git.get("uncommitted_in_edgecl")
    print(f"- edgecl at {git.get('head')}" + (f", uncommitted: {dirty}" if dirty else ""))
    print(f"- single-thread runs pinned to CPU {pin}; 2-thread runs on CPUs {report['cpus']}")
    print()
    for case in report["cases"]:
        ops = "; ".join(f"{k}: {' '.join(v['ops'])}" for k, v in case["lce_models"].items())
        print(f"- {case['name']}: LCE ops {ops}")
    print()
    print(report["markdown"])
    print()
    print(report["settings_markdown"])
    print()
    for r in report["targets"]:
        print(
            f"- {r['shape']} ({r['edgecl']}): edgecl / LCE {r['speedup_median']:.2f}x median, "
            f"{r['speedup_p10']:.2f}x p10: target >= {r['target']:.0f}x "
            f"{'met' if r['met'] else 'NOT met'}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    mb = sub.add_parser(
        "make-bundles",
        help="export mnist_bnn.ecl and vgg_small.ecl (needs torch; run in edgecl's venv)",
        description="Build, calibrate and export the two networks as benchmarks/networks.py "
        "does (its build function), into DIR/mnist_bnn.ecl and DIR/vgg_small.ecl.",
    )
    mb.add_argument("--out", required=True, type=Path, help="folder for the two bundles")
    mb.add_argument("--seed", type=int, default=0)
    b = sub.add_parser(
        "bench",
        help="time LCE and edgecl side by side (needs larq, LCE, TensorFlow; no torch)",
        description="Time LCE 0.16 and edgecl on the kernel shapes and the two networks.",
    )
    b.add_argument("--bundle-mnist", default=None, help="mnist_bnn bundle from make-bundles")
    b.add_argument("--bundle-vgg", default=None, help="vgg_small bundle from make-bundles")
    b.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    b.add_argument("--runs", type=int, default=200, help="timed runs per figure (default 200)")
    b.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    b.add_argument("--warmup", type=int, default=10, help="untimed runs per figure first")
    b.add_argument(
        "--pin-cpu",
        type=int,
        default=0,
        help="CPU the single-thread runs are pinned to (-1: no pinning; default 0)",
    )
    b.add_argument(
        "--isa",
        choices=["native", "avx2"],
        default="native",
        help="avx2: Numba compiles edgecl with every AVX-512 feature off (as "
        "benchmarks/kernels.py --isa avx2); LCE is unchanged",
    )
    b.add_argument("--skip-kernels", action="store_true", help="only the whole networks")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", default=None, help="write the report here (JSON)")
    a = sub.add_parser(
        "all",
        help="make-bundles here, then bench in the LCE venv (what benchmarks/suite.py runs)",
        description="Export the two bundles with this interpreter (edgecl's venv, torch), "
        "then run `bench` with --lce-python (the venv holding TensorFlow, larq and LCE).",
    )
    a.add_argument(
        "--lce-python", required=True, help="python of the LCE venv, e.g. /root/lce-venv/bin/python"
    )
    a.add_argument("--out", type=Path, default=None, help="bundle folder (default: a temp dir)")
    a.add_argument("--json", default=None, help="write the report here (JSON)")
    a.add_argument("--runs", type=int, default=200, help="timed runs per figure (default 200)")
    args = p.parse_args(argv)
    if args.cmd == "make-bundles":
        make_bundles(args.out, args.seed)
        return 0
    if args.cmd == "all":
        return bench_all(args)
    return bench(args)


def bench_all(args) -> int:
    """``make-bundles`` in this interpreter, then ``bench`` under ``--lce-python``."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out is not None else Path(tmp)
        make_bundles(out, 0)
        cmd = [
            args.lce_python,
            str(Path(__file__).resolve()),
            "bench",
            "--bundle-mnist",
            str(out / "mnist_bnn.ecl"),
            "--bundle-vgg",
            str(out / "vgg_small.ecl"),
            "--runs",
            str(args.runs),
        ] + (["--json", str(args.json)] if args.json else [])
        print("running:", " ".join(cmd), flush=True)
        return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
