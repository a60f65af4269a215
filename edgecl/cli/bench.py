"""``edgecl bench latency|memory|c``: :mod:`edgecl.bench` on a bundle, or its C runtime
(:mod:`edgecl.codegen.c.bench`: Cortex-M4 sizes and instruction counts), printed (torch-free)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from edgecl.cli._common import (
    DATA_HELP,
    EXIT_OK,
    UsageError,
    add_seed,
    add_threads,
    compile_notice,
    emit_json,
    load_samples,
    positive_int,
    status,
)
from edgecl.cli.learn import check_input, load_runtime

__all__ = ["add_bench", "cmd_bench"]


def add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "what",
        choices=("latency", "memory", "c"),
        help="what to measure (c: the C runtime of edgecl export-c on a Cortex-M4 under QEMU)",
    )
    p.add_argument("bundle", type=Path, help="a device bundle (.ecl)")
    p.add_argument("--batch", type=positive_int, default=1, help="predict batch size (default 1)")
    add_threads(p)
    p.add_argument("--repeat", type=positive_int, default=100, help="timed repeats (default 100)")
    p.add_argument(
        "--learn-samples",
        type=positive_int,
        default=100,
        help="samples of the timed learn_class (default 100)",
    )
    p.add_argument(
        "--learn-repeat", type=positive_int, default=10, help="timed learn_class calls (10)"
    )
    p.add_argument(
        "--data",
        type=Path,
        help="samples to use (" + DATA_HELP + "); default: the "
        "shipped MNIST sample when the input is 28x28x1, else random images",
    )
    p.add_argument(
        "--backend",
        choices=("numba", "onnxruntime"),
        default="numba",
        help="what runs predict and learn_class: numba (default) or onnxruntime (the "
        "bundle's learning graphs; latency then also measures numba beside it)",
    )
    add_seed(p, "seed of the samples and of every learn_class")


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


def _print_beside(r: dict[str, Any]) -> None:
    """onnxruntime's p50 beside numba's (``r["beside"]``), with the ratio."""
    other = r["beside"]
    print(f"\nbeside {other['backend']} (same bundle, samples, seeds):")
    print(f"{'':14}{r['backend']:>14}{other['backend']:>10}{'ratio':>8}")
    for key, label, unit in (
        ("predict_us", f"predict b={r['batch']}", "us"),
        ("learn_class_ms", "learn_class", "ms"),
        ("learn_from_embeddings_ms", "  from z", "ms"),
    ):
        a, b = r[key]["p50"], other[key]["p50"]
        print(f"{label:<14}{a:>12.2f}{unit}{b:>8.2f}{unit}{a / b:>7.2f}x")


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
    """``edgecl bench latency|memory|c model.ecl``."""
    from edgecl.bench import bench_latency, bench_memory

    if args.what == "c":
        return _bench_c(args)

    data = None if args.data is None else load_samples(args.data)[0]
    status(args, f"bench {args.what}: {args.bundle}")
    t0 = time.perf_counter()
    rt = load_runtime(args)
    load_ms = (time.perf_counter() - t0) * 1e3
    if data is not None:
        check_input(rt, data)
    source = None if args.data is None else str(args.data)
    compiled = compile_notice(args)
    if args.what == "latency":

        def latency(runtime: Any) -> Any:
            return bench_latency(
                runtime,
                batch=args.batch,
                repeat=args.repeat,
                learn_samples=args.learn_samples,
                learn_repeat=args.learn_repeat,
                data=data,
                source=source,
                seed=args.seed,
            )

        rep = latency(rt)
        r = {"command": "bench latency", "bundle": str(args.bundle), "load_ms": load_ms}
        if rt.backend != "numba":  # the same measurement on the Numba backend, beside it
            from edgecl.device import Runtime

            r["beside"] = latency(Runtime.load(args.bundle, threads=args.threads)).to_dict()
    else:
        rep = bench_memory(
            rt, learn_samples=args.learn_samples, data=data, source=source, seed=args.seed
        )
        r = {"command": "bench memory", "bundle": str(args.bundle)}
    compiled()
    r.update(rep.to_dict())
    if args.json:
        emit_json(r)
    elif args.what == "latency":
        _print_latency(r)
        if "beside" in r:
            _print_beside(r)
    else:
        _print_memory(r)
    return EXIT_OK


def _bench_c(args: argparse.Namespace) -> int:
    """``edgecl bench c``: the C runtime learns the sample's classes 5..9 (or ``--data``'s
    last five labels) from ``--learn-samples`` images each."""
    import numpy as np

    from edgecl.codegen.c.bench import bench_c
    from edgecl.data import load_idx_pair, sample_dir

    if args.data is None:
        x, y = load_idx_pair(
            sample_dir() / "t10k-images-idx3-ubyte.gz", sample_dir() / "t10k-labels-idx1-ubyte.gz"
        )
    else:
        x, y = load_samples(args.data)
        if y is None:
            raise UsageError(f"expected labelled samples for bench c, got none in {args.data}")
    labels = tuple(int(v) for v in np.unique(y)[-5:])
    status(args, f"bench c: {args.bundle}, learning classes {list(labels)} on QEMU (minutes)")
    rep = bench_c(args.bundle, x, np.asarray(y), new_classes=labels, samples=args.learn_samples)
    if args.json:
        emit_json({"command": "bench c", **rep.to_dict()})
    else:
        print(rep)
    return EXIT_OK
