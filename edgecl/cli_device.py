"""The device subcommands of ``edgecl``: ``learn``, ``predict``, ``bench latency|memory``,
``demo`` and the host's ``train``. Thin layers over :mod:`edgecl.device` and
:mod:`edgecl.demo`; :mod:`edgecl.cli` lists them in its :func:`~edgecl.cli.commands`.

``learn``, ``predict`` and ``bench`` never import torch (they run on the device);
``train`` and ``demo`` import it inside their function (host side).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecl.cli import EXIT_OK, Command, UsageError, _emit_json, _status, parse_bytes

__all__ = [
    "cmd_bench",
    "cmd_demo",
    "cmd_learn",
    "cmd_predict",
    "cmd_train",
    "device_commands",
    "load_samples",
]

DATA_HELP = (
    "samples: an .npy array (n, H, W) or (n, H, W, C) of uint8 or float 0..255, an IDX "
    "images file (e.g. t10k-images-idx3-ubyte[.gz]), or an image folder (every image "
    "under it, sub-folders included; needs Pillow)"
)


def load_samples(path: str | Path) -> np.ndarray:
    """Raw samples from an ``.npy`` file, an IDX images file or an image folder."""
    p = Path(path)
    if p.is_dir():
        from edgecl.data import load_image_folder

        images = [q for q in p.iterdir() if q.is_file() and not q.name.startswith(".")]
        if images:  # a flat folder of images: treat it as one class
            tmp_root = p.parent
            x, y, names = load_image_folder(tmp_root)
            return x[np.asarray(y) == names.index(p.name)]
        x, _, _ = load_image_folder(p)
        return x
    if not p.is_file():
        raise FileNotFoundError(f"expected samples at {p} (.npy, IDX file or folder), got none")
    if p.suffix == ".npy":
        arr = np.load(p, allow_pickle=False)
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"{p}: expected one array, got {type(arr).__name__}")
        return arr
    from edgecl.data import read_idx

    return read_idx(p)


def _progress(args: argparse.Namespace, desc: str):
    """A tqdm bar on stderr fed by the learner's (step, total) callback (None if quiet)."""
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="step", file=sys.stderr, leave=False)

    def update(step: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = step
        bar.refresh() if step % 50 == 0 or step == total else None

    return update, bar.close


def _load_runtime(args: argparse.Namespace):
    from edgecl.device import Runtime

    return Runtime.load(
        args.bundle,
        backend=getattr(args, "backend", "numba"),
        budget_bytes=getattr(args, "budget", None),
        threads=getattr(args, "threads", 1),
    )


# -- edgecl learn -----------------------------------------------------------------------------


def _add_learn(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="a device bundle (.ecl)")
    p.add_argument("--class", dest="name", required=True, help="the class name to learn")
    p.add_argument("--data", type=Path, required=True, help=DATA_HELP)
    p.add_argument(
        "-o", "--output", type=Path, help="write the learned bundle here (default: in place)"
    )
    p.add_argument(
        "--update", action="store_true", help="add the samples to an existing class instead"
    )
    p.add_argument(
        "--epochs", type=int, help="head passes over the samples (default: the bundle's)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=parse_bytes, help="lower the bundle's budget, e.g. 24KiB")
    p.add_argument("--backend", choices=("numba", "onnxruntime"), default="numba")
    p.add_argument("--threads", type=int, default=1)


def cmd_learn(args: argparse.Namespace) -> int:
    """``edgecl learn model.ecl --class NAME --data PATH [-o out.ecl]``."""
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"expected --epochs >= 1, got {args.epochs}")
    x = load_samples(args.data)
    rt = _load_runtime(args)
    _status(
        args,
        f"{'updating' if args.update else 'learning'} class {args.name!r} from {len(x)} samples",
    )
    update, close = _progress(args, "head")
    try:
        if args.update:
            rep = rt.update_class(args.name, x, epochs=args.epochs, seed=args.seed, progress=update)
        else:
            rep = rt.learn_class(args.name, x, epochs=args.epochs, seed=args.seed, progress=update)
    finally:
        close()
    info = rt.save(args.output)
    if args.json:
        _emit_json(
            {
                "command": "learn",
                "report": rep.to_dict(),
                "memory": rt.memory().to_dict(),
                "bundle": str(info.path),
                "bundle_bytes": info.file_bytes,
            }
        )
    else:
        print(rep)
        print(f"saved {info.path} ({info.file_bytes} bytes)")
    return EXIT_OK


# -- edgecl predict ---------------------------------------------------------------------------


def _add_predict(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="a device bundle (.ecl)")
    p.add_argument("--data", type=Path, required=True, help=DATA_HELP)
    p.add_argument("--labels", type=Path, help="true labels (.npy or IDX) to print accuracy")
    p.add_argument("--limit", type=int, default=20, help="rows printed in the table (default 20)")
    p.add_argument("--threads", type=int, default=1)


def cmd_predict(args: argparse.Namespace) -> int:
    """``edgecl predict model.ecl --data PATH``: the class of every sample."""
    x = load_samples(args.data)
    rt = _load_runtime(args)
    t0 = time.perf_counter()
    proba = rt.predict_proba(x)
    seconds = time.perf_counter() - t0
    idx = np.argmax(proba, axis=1)
    names = rt.classes_[idx]
    conf = proba[np.arange(len(idx)), idx]
    accuracy = None
    if args.labels is not None:
        y = load_samples(args.labels).reshape(-1)
        if y.shape[0] != len(names):
            raise UsageError(f"expected {len(names)} labels, got {y.shape[0]}")
        accuracy = float(np.mean(names == np.asarray([str(v) for v in y.tolist()])))
    counts = {str(c): int((names == c).sum()) for c in rt.classes_}
    if args.json:
        _emit_json(
            {
                "command": "predict",
                "bundle": str(args.bundle),
                "n_samples": int(len(names)),
                "classes": rt.classes_.tolist(),
                "predictions": names.tolist(),
                "confidence": [float(c) for c in conf],
                "counts": counts,
                "accuracy": accuracy,
                "seconds": seconds,
            }
        )
        return EXIT_OK
    print(f"{'sample':>6}  {'class':<12} {'probability':>11}")
    for i in range(min(len(names), max(args.limit, 0))):
        print(f"{i:>6}  {names[i]:<12} {conf[i]:>11.4f}")
    if len(names) > args.limit:
        print(f"   ... {len(names) - args.limit} more (--limit, or --json for all)")
    print("counts: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    if accuracy is not None:
        print(f"accuracy: {accuracy:.4f} on {len(names)} samples")
    print(f"{len(names)} samples in {seconds * 1e3:.1f} ms")
    return EXIT_OK


# -- edgecl bench latency | memory ---------------------------------------------------------------


def _add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("latency", "memory"), help="what to measure")
    p.add_argument("bundle", type=Path, help="a device bundle (.ecl)")
    p.add_argument("--batch", type=int, default=1, help="predict batch size (default 1)")
    p.add_argument("--threads", type=int, default=1, help="kernel threads (default 1)")
    p.add_argument("--repeat", type=int, default=100, help="timed repeats (default 100)")
    p.add_argument(
        "--learn-samples", type=int, default=100, help="samples of the timed learn_class (100)"
    )
    p.add_argument("--learn-repeat", type=int, default=10, help="timed learn_class calls (10)")
    p.add_argument(
        "--data",
        type=Path,
        help="samples to use (" + DATA_HELP + "); default: the "
        "shipped MNIST sample when the input is 28x28x1, else random images",
    )
    p.add_argument("--backend", choices=("numba", "onnxruntime"), default="numba")
    p.add_argument("--seed", type=int, default=0)


def _bench_samples(args: argparse.Namespace, rt: Any, n: int) -> tuple[np.ndarray, str]:
    h, w, c = rt.input_spec.shape
    if args.data is not None:
        x = load_samples(args.data)
        src = str(args.data)
    elif (h, w, c) == (28, 28, 1):
        from edgecl.data import load_mnist_sample

        x = load_mnist_sample(seed=args.seed)[2]
        src = "the shipped MNIST sample (test part)"
    else:
        rng = np.random.default_rng(args.seed)
        x = rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
        src = "random images"
    if len(x) < n:
        x = np.concatenate([x] * (-(-n // len(x))))
    return x, src


def _stats(seconds: list[float], scale: float = 1e6) -> dict[str, float]:
    a = np.asarray(seconds) * scale
    return {
        "min": float(a.min()),
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "mean": float(a.mean()),
        "n": int(a.size),
    }


def _fresh_class_name(rt: Any) -> str:
    name, k = "bench", 0
    while name in rt.learner.classes:
        k += 1
        name = f"bench{k}"
    return name


def bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    """Compile/first call apart, a check against the reference kernels, then min/p50/p90
    of predict (batch ``--batch``) and of learn_class (``--learn-samples`` samples)."""
    from edgecl.device import Runtime
    from edgecl.device.reference import embed_reference, logits_reference

    for name in ("batch", "threads", "repeat", "learn_samples", "learn_repeat"):
        if getattr(args, name) < 1:
            raise UsageError(f"expected --{name.replace('_', '-')} >= 1, got {getattr(args, name)}")
    t0 = time.perf_counter()
    rt = Runtime.load(args.bundle, backend=args.backend, threads=args.threads)
    load_s = time.perf_counter() - t0
    need = max(args.batch * 4, args.learn_samples, 64)
    x, src = _bench_samples(args, rt, need)
    xb = x[: args.batch]
    t1 = time.perf_counter()
    rt.predict(xb)
    first_s = time.perf_counter() - t1
    # correctness: fast path == reference kernels
    check = x[:32]
    same_bits = bool(np.array_equal(rt.embed(check), embed_reference(rt, check)))
    logit_diff = float(np.abs(rt.logits(check) - logits_reference(rt, check)).max())
    times = []
    for i in range(args.repeat):
        j = (i * args.batch) % max(len(x) - args.batch, 1)
        xi = x[j : j + args.batch]
        t = time.perf_counter()
        rt.predict(xi)
        times.append(time.perf_counter() - t)
    pred = _stats(times)
    pred["per_sample_us_p50"] = pred["p50"] / args.batch
    # learn_class on a copy of the learner state, restored after every call
    saved = rt.snapshot()
    name = _fresh_class_name(rt)
    xl = x[: args.learn_samples]
    z = rt.embed(xl)
    learn_full, learn_z, report = [], [], None
    first_learn = None
    for i in range(args.learn_repeat + 1):
        t = time.perf_counter()
        report = rt.learn_class(name, xl, seed=args.seed + i, trace_memory=False)
        dt = time.perf_counter() - t
        rt.restore(saved)
        t = time.perf_counter()
        rt.learner.learn(name, z, seed=args.seed + i, trace_memory=False)
        dz = time.perf_counter() - t
        rt.restore(saved)
        if i == 0:
            first_learn = dt
            continue
        learn_full.append(dt)
        learn_z.append(dz)
    return {
        "command": "bench latency",
        "bundle": str(args.bundle),
        "backend": args.backend,
        "threads": args.threads,
        "batch": args.batch,
        "samples": src,
        "load_ms": load_s * 1e3,
        "first_predict_ms": first_s * 1e3,
        "reference_check": {
            "samples": int(len(check)),
            "embedding_bits_equal": same_bits,
            "max_logit_diff": logit_diff,
        },
        "predict_us": pred,
        "learn_class_ms": _stats(learn_full, 1e3),
        "learn_from_embeddings_ms": _stats(learn_z, 1e3),
        "first_learn_class_ms": None if first_learn is None else first_learn * 1e3,
        "learn_samples": int(len(xl)),
        "n_classes": len(rt.learner.classes),
        "n_bits": rt.n_bits,
        "memory": None if rt.learner.memory is None else rt.learner.memory.kind,
        "default_size": None
        if rt.learner.memory is None
        else rt.learner.memory.default_size().to_dict(),
        "last_learn_report": None if report is None else report.to_dict(),
    }


def bench_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Stored bytes per part beside the closed forms, budget and headroom, and the peak
    working memory of one learn_class (on a copy; the bundle is not changed)."""
    from edgecl.device import Runtime

    rt = Runtime.load(args.bundle, backend=args.backend, threads=args.threads)
    before = rt.memory()
    out: dict[str, Any] = {"command": "bench memory", "bundle": str(args.bundle)}
    out["memory"] = before.to_dict()
    mem = rt.learner.memory
    if mem is not None:
        d, n_c = rt.n_bits, len(mem.classes)
        if mem.kind == "gbm":
            s = mem.default_size()
            formula = f"K·D·n_c·q = {s.components}·{d}·{n_c}·{s.bits}"
        else:
            s = mem.default_size()
            formula = f"E·D·n_c = {s.exemplars}·{d}·{n_c}"
        out["closed_form"] = {
            "formula": formula,
            "bits": before.closed_form_bits,
            "bytes": (before.closed_form_bits or 0) // 8,
            "measured_class_memory_bytes": before.class_memory_bytes,
            "overhead_bytes": before.class_memory_bytes - (before.closed_form_bits or 0) // 8,
        }
        x, src = _bench_samples(args, rt, args.learn_samples)
        saved = rt.snapshot()
        try:
            rep = rt.learn_class(
                _fresh_class_name(rt), x[: args.learn_samples], seed=args.seed, trace_memory=True
            )
            out["learn_class"] = {
                "samples": int(rep.n_samples),
                "source": src,
                "peak_bytes": rep.peak_bytes,
                "stored_bytes_after": rep.stored_bytes,
                "gave_up": [g["description"] for g in rep.gave_up],
            }
        except Exception as exc:  # a full budget refuses: report it, it is a measurement
            out["learn_class"] = {"refused": f"{type(exc).__name__}: {exc}"}
        finally:
            rt.restore(saved)
    return out


def _print_latency(r: dict[str, Any]) -> None:
    p, lc, lz = r["predict_us"], r["learn_class_ms"], r["learn_from_embeddings_ms"]
    ref = r["reference_check"]
    print(
        f"bundle        {r['bundle']} ({r['n_classes']} classes, D={r['n_bits']}, "
        f"{r['memory']} {r['default_size']})"
    )
    print(f"backend       {r['backend']}, {r['threads']} thread(s); samples: {r['samples']}")
    print(
        f"load          {r['load_ms']:.1f} ms; first predict (compile/cache) "
        f"{r['first_predict_ms']:.1f} ms; first learn_class {r['first_learn_class_ms']:.1f} ms"
    )
    print(
        f"reference     embedding bits equal: {ref['embedding_bits_equal']}, max logit "
        f"diff {ref['max_logit_diff']:.2e} ({ref['samples']} samples)"
    )
    print(f"{'':14}{'min':>10}{'p50':>10}{'p90':>10}")
    print(
        f"predict b={r['batch']:<4} {p['min']:>8.1f}us{p['p50']:>8.1f}us{p['p90']:>8.1f}us"
        f"   ({p['per_sample_us_p50']:.1f} us per sample)"
    )
    print(
        f"learn_class   {lc['min']:>8.2f}ms{lc['p50']:>8.2f}ms{lc['p90']:>8.2f}ms"
        f"   ({r['learn_samples']} samples, embedding included)"
    )
    print(
        f"  from z      {lz['min']:>8.2f}ms{lz['p50']:>8.2f}ms{lz['p90']:>8.2f}ms"
        "   (memory fit + head retraining only)"
    )


def _print_memory(r: dict[str, Any]) -> None:
    from edgecl.device.reports import format_bytes

    m = r["memory"]
    print(f"bundle         {r['bundle']}")
    print(
        f"stored bytes   {format_bytes(m['stored_bytes'])} of budget "
        f"{format_bytes(m['budget_bytes'])} ({m['policy']}); headroom "
        f"{format_bytes(m['headroom_bytes'])}"
    )
    print(
        f"class memory   {format_bytes(m['class_memory_bytes'])} ({m['memory_kind']}, "
        f"{m['n_classes']} classes)"
    )
    print(
        f"head           {format_bytes(m['head_bytes'])} ({m['head_bytes_per_class']} B per class)"
    )
    cf = r.get("closed_form")
    if cf:
        print(
            f"closed form    {cf['formula']} = {cf['bits']} bits = {cf['bytes']} B "
            f"(measured {cf['measured_class_memory_bytes']} B: +{cf['overhead_bytes']} B "
            "of mixing weights, counts and word padding)"
        )
    print("parts:")
    for k, v in m["parts"].items():
        print(f"  {k:<20} {v:>10} B")
    lc = r.get("learn_class")
    if lc and "refused" in lc:
        print(f"learn_class    refused: {lc['refused']}")
    elif lc:
        print(
            f"learn_class    peak working memory {format_bytes(lc['peak_bytes'])} "
            f"({lc['samples']} samples of {lc['source']}; stored after: "
            f"{format_bytes(lc['stored_bytes_after'])})"
        )


def cmd_bench(args: argparse.Namespace) -> int:
    """``edgecl bench latency|memory model.ecl``."""
    _status(args, f"bench {args.what}: {args.bundle}")
    r = bench_latency(args) if args.what == "latency" else bench_memory(args)
    if args.json:
        _emit_json(r)
    elif args.what == "latency":
        _print_latency(r)
    else:
        _print_memory(r)
    return EXIT_OK


# -- edgecl demo ----------------------------------------------------------------------------------


def _add_demo(p: argparse.ArgumentParser) -> None:
    from edgecl.demo import DEFAULT_BUDGET

    p.add_argument(
        "--data-dir",
        type=Path,
        help="an IDX data set folder with the four standard file names "
        "(MNIST, Fashion-MNIST, KMNIST); default: the shipped MNIST sample",
    )
    p.add_argument(
        "--budget",
        type=parse_bytes,
        default=DEFAULT_BUDGET,
        help="budget of stored bytes (class memory + head rows), default 32KiB",
    )
    p.add_argument("--policy", choices=("strict", "adapt"), default="adapt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("edgecl-demo"),
        help="folder for base.pt, base.ecl, model.ecl, report.json (default ./edgecl-demo)",
    )
    # `--json` alone prints the report as JSON (as every command); `--json FILE` writes it
    # to FILE and keeps the table (the issue's spelling); `--json-file FILE` is the same
    p.add_argument(
        "--json",
        nargs="?",
        const=True,
        default=False,
        metavar="FILE",
        help="print the report as JSON, or with FILE write it there (the table stays)",
    )
    p.add_argument(
        "--json-file", dest="json_file", type=Path, help="also write the JSON report here"
    )
    p.add_argument("--plot", type=Path, help="draw accuracy and bytes per step (needs matplotlib)")
    p.add_argument(
        "--base-task",
        choices=("rotflipae", "rotation", "plain"),
        default="rotflipae",
        help="F's base task: rotflipae (default: rotation x flip as 40 classes, shifts, an "
        "autoencoder loss), rotation (20 classes) or plain (5 classes)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help="base training epochs (rotflipae: 4; rotation: 3 on the sample, 1 on a full set)",
    )
    p.add_argument("--components", type=int, default=6, help="GBM prototypes per class K (6)")
    p.add_argument("--bits", type=int, default=2, help="bits per prototype value q (2)")
    p.add_argument(
        "--gbm-weight",
        type=float,
        default=0.1,
        help="weight of the GBM likelihood in predictions (0.1; 0: the head alone)",
    )
    p.add_argument(
        "--head-bits",
        type=int,
        choices=(32, 16, 8),
        default=8,
        help="stored precision of the head's weights: 8 (default: int8 with a float32 scale "
        "per class, about a quarter of the float32 head's bytes), 16 (float16) or 32",
    )
    p.add_argument("--threads", type=int, default=1, help="torch and kernel threads (1)")
    p.add_argument(
        "--checkpoint",
        type=Path,
        help="skip the host training: export this base checkpoint (classes 0-4, edgecl train)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a seconds-long smoke run (40 images per class, a tiny network)",
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """``edgecl demo``: host training + export, then the device phase in a torch-free process."""
    from edgecl.demo import DemoConfig, run_demo

    if isinstance(args.json, str):  # --json FILE
        if args.json_file is not None and Path(args.json) != args.json_file:
            raise UsageError(
                f"expected one report file, got --json {args.json} and --json-file {args.json_file}"
            )
        args.json_file, args.json = Path(args.json), False
    kw: dict[str, Any] = dict(
        data_dir=None if args.data_dir is None else str(args.data_dir),
        budget_bytes=args.budget,
        policy=args.policy,
        seed=args.seed,
        out=str(args.out),
        json_path=None if args.json_file is None else str(args.json_file),
        plot_path=None if args.plot is None else str(args.plot),
        base_task=args.base_task,
        epochs=args.epochs,
        components=args.components,
        bits=args.bits,
        gbm_weight=args.gbm_weight,
        head_bits=args.head_bits,
        threads=args.threads,
        checkpoint=None if args.checkpoint is None else str(args.checkpoint),
    )
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise UsageError("--plot needs matplotlib (pip install 'edgecl[plot]')") from exc
    try:
        cfg = DemoConfig.quick_config(**kw) if args.quick else DemoConfig(**kw)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if args.quick and args.budget == DemoConfig().budget_bytes:
        cfg = DemoConfig.quick_config(**{**kw, "budget_bytes": 16 * 1024})
    log = (lambda m: None) if args.json else (lambda m: print(m, flush=True))
    report = run_demo(cfg, log=log)
    if args.json:
        _emit_json({"command": "demo", **{k: v for k, v in report.items() if k != "machine"}})
    return EXIT_OK


# -- edgecl train ---------------------------------------------------------------------------


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True, help="the checkpoint to write (.pt)")
    p.add_argument(
        "--data-dir", type=Path, help="IDX data set folder; default: the shipped MNIST sample"
    )
    p.add_argument("--classes", default="0-4", help="base classes, e.g. 0-4 or 0,1,2 (default 0-4)")
    p.add_argument("--base-task", choices=("rotflipae", "rotation", "plain"), default="rotflipae")
    p.add_argument("--epochs", type=int, help="rotflipae: 4; rotation: 3 (sample) or 1 (full)")
    p.add_argument("--n-bits", type=int, default=512, help="embedding bits D (512)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)


def _parse_classes(text: str) -> list[int]:
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                a, b = part.split("-")
                out += list(range(int(a), int(b) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError as exc:
        raise UsageError(f"expected classes like 0-4 or 0,1,2, got {text!r}") from exc
    if not out or len(set(out)) != len(out):
        raise UsageError(f"expected distinct classes like 0-4 or 0,1,2, got {text!r}")
    return out


def cmd_train(args: argparse.Namespace) -> int:
    """``edgecl train -o base.pt``: F+G on a data set's base classes -> checkpoint."""
    from edgecl.demo import DemoConfig, load_demo_data, train_base

    classes = _parse_classes(args.classes)
    if args.output.exists():
        _status(args, f"{args.output} exists; it will be replaced")
    try:
        cfg = DemoConfig(
            data_dir=None if args.data_dir is None else str(args.data_dir),
            seed=args.seed,
            base_task=args.base_task,
            epochs=args.epochs,
            n_bits=args.n_bits,
            threads=args.threads,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    xtr, ytr, xte, yte, name = load_demo_data(cfg.data_dir, seed=cfg.seed)
    log = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    _, result = train_base(cfg, (xtr, ytr, xte, yte), args.output, classes=classes, log=log)
    if args.json:
        _emit_json({"command": "train", "dataset": name, **result})
    else:
        print(f"checkpoint   {result['checkpoint']}")
        print(
            f"classes      {result['classes']} ({result['base_task']} base task, "
            f"{result['epochs']} epochs, D={cfg.n_bits})"
        )
        print(f"accuracy     {result['base_accuracy']:.4f} on the test images of these classes")
        print(f"time         {result['train_s']:.0f} s")
    return EXIT_OK


def device_commands() -> list[Command]:
    """The subcommands this module adds to ``edgecl``."""
    return [
        Command(
            "train",
            "host: train F+G on a data set's base classes -> checkpoint",
            _add_train,
            cmd_train,
        ),
        Command(
            "learn",
            "learn (or --update) a class from samples, inside the budget",
            _add_learn,
            cmd_learn,
        ),
        Command("predict", "classify samples with a bundle", _add_predict, cmd_predict),
        Command(
            "bench",
            "latency (predict, learn_class) or memory (bytes per part, peak)",
            _add_bench,
            cmd_bench,
        ),
        Command(
            "demo",
            "split-MNIST end to end: host training, then learning on the device",
            _add_demo,
            cmd_demo,
            own_json=True,
        ),
    ]
