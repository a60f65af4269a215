"""Split-MNIST in the edgecl protocol: class memories compared on one frozen F.

Host (torch, once per seed): F+G trained on the base classes 0-4 with the demo's recipe
(:func:`edgecl.demo.host_phase`: rotation-augmented base task, 5-class head on F frozen),
or a given base checkpoint (``--checkpoint``, e.g. one written by ``edgecl demo``), exported
to a bundle; the device runtime embeds every training and test image once (bit-exact with
what the device computes). Then every method runs on the same packed embeddings, learning
classes 5, 6, 7, 8, 9 one ``learn`` call at a time (:class:`edgecl.device.learner.Learner`,
the code behind ``Runtime.learn_class``, minus the embedding):

- ``lower``: the head fine-tuned on the new class only (no memory; same SGD settings);
- ``upper``: the F ceiling, a head trained jointly on the real embeddings of every class
  seen so far (joint training of F on all 10 classes is not run here: too costly);
- ``ncm``: Hamming nearest prototype (:class:`edgecl.memory.NearestPrototype`);
- ``slda``: streaming LDA (:class:`edgecl.memory.StreamingLDA`, float32 means + covariance);
- ``latent E``: binary latent replay, E exemplars per class (:class:`edgecl.memory.LatentBuffer`);
- ``gbm K,q``: GBM, K prototypes of q bits per class (:class:`edgecl.memory.GBMMemory`);
  ``gbm K,q +lik`` predicts with the head plus the mixtures' likelihood (``gbm_weight``).

Reports final and average incremental accuracy (test images of the classes seen), bytes of
class memory (and all stored bytes, with the float32 head), the mean ``learn`` time per
class (on embeddings; the embedding time per class is measured apart) and a plot of
accuracy against bytes (the GBM paper's Figure 6 analogue).

    python benchmarks/continual.py --data-dir /work/shared/data/mnist \
        [--checkpoint base.pt] [--seeds 0] [--quick] [--json ...] [--plot ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# one BLAS thread: SLDA's covariance updates oversubscribe a loaded machine otherwise
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from machine import machine_info  # noqa: E402

BASE = (0, 1, 2, 3, 4)
NEW = (5, 6, 7, 8, 9)
#: edgecl's protocol: base 0-4 on the host, then one class per task on the device.
EDGECL = [list(BASE)] + [[c] for c in NEW]
#: BinPlay's protocol: 5 tasks of 2 classes (the first on the host).
BINPLAY = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
LATENT_E = (1, 5, 20, 50)
GBM_K = (1, 4, 8)
GBM_Q = (1, 2, 4, 8)


def embeddings(args, seed: int, log=print) -> dict:
    """Train (or load) the base F+G, export, embed every image with the device runtime."""
    from edgecl.demo import DemoConfig, host_phase, load_demo_data
    from edgecl.device import Runtime

    steps = BINPLAY if args.protocol == "binplay" else EDGECL
    tag = f"{args.protocol}_seed{seed}{'_quick' if args.quick else ''}.npz"
    cache = Path(args.cache) / tag if args.cache else None
    if cache is not None and cache.exists():
        log(f"embeddings: cached {cache}")
        d = np.load(cache)
        host = json.loads(str(d["host"]))
        if args.checkpoint is None:
            host["checkpoint"] = f"trained in this run (seed {seed}; embeddings cached)"
        return {k: d[k] for k in d.files if k != "host"} | {"host": host}
    xtr, ytr, xte, yte, name = load_demo_data(args.data_dir, seed=seed, quick=args.quick)
    cfg_kw = dict(data_dir=args.data_dir, seed=seed, checkpoint=args.checkpoint, gbm_weight=0.0)
    if args.epochs is not None:
        cfg_kw["epochs"] = args.epochs
    cfg = DemoConfig.quick_config(**cfg_kw) if args.quick else DemoConfig(**cfg_kw)
    with tempfile.TemporaryDirectory() as tmp:
        if args.protocol == "binplay":
            host = _host_binplay(cfg, (xtr, ytr, xte, yte), Path(tmp), steps[0], log)
        else:
            host = host_phase(cfg, (xtr, ytr, xte, yte), Path(tmp), log=log)
        rt = Runtime.load(host["base_bundle"], threads=1)
        t0 = time.perf_counter()
        ztr = rt.embed(xtr)
        embed_s = time.perf_counter() - t0
        zte = rt.embed(xte)
        out = {
            "ztr": ztr,
            "ytr": ytr.astype(np.int64),
            "zte": zte,
            "yte": yte.astype(np.int64),
            "weight": rt.learner.weight.copy(),
            "bias": rt.learner.bias.copy(),
            "n_bits": np.int64(rt.n_bits),
            "embed_us_per_image": np.float64(embed_s / len(xtr) * 1e6),
            "steps": json.dumps(steps),
        }
        host = {k: v for k, v in host.items() if k != "base_bundle"} | {"dataset": name}
        if args.checkpoint is None:  # its file was temporary
            host["checkpoint"] = f"trained in this run (seed {seed})"
        settings = rt.learner.settings.to_dict()
    out["host"] = host | {"head_settings": settings}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache, **{k: v for k, v in out.items() if k != "host"}, host=json.dumps(out["host"])
        )
    return out


def _host_binplay(cfg, data, out: Path, base: list[int], log) -> dict:
    """The BinPlay protocol's host phase: F+G on the first task's classes (the demo's
    recipe, :func:`edgecl.demo.train_base`), exported without a class memory."""
    from edgecl.export import ExportConfig, HeadConfig, export_bundle

    if cfg.checkpoint is not None:
        from edgecl.train import load_checkpoint

        model, meta = load_checkpoint(cfg.checkpoint)
        if [str(c) for c in meta["class_names"]] != [str(c) for c in base]:
            raise ValueError(f"expected a checkpoint of classes {base}, got {meta['class_names']}")
        summary = {"checkpoint": str(cfg.checkpoint), **meta.get("meta", {})}
    else:
        from edgecl.demo import train_base

        model, summary = train_base(cfg, data, out / "base.pt", classes=base, log=log)
    xtr, ytr = data[0], data[1]
    m = np.isin(ytr, base)
    info = export_bundle(
        model,
        out / "base.ecl",
        ExportConfig(
            head=HeadConfig(lr=cfg.head_lr, epochs=cfg.head_epochs, batch_size=cfg.head_batch),
            seed=cfg.seed,
            verify_samples=min(512, int(m.sum())),
        ),
        calibration=(xtr[m], np.searchsorted(base, ytr[m])),
        class_names=[str(c) for c in base],
        overwrite=True,
    )
    return {**summary, "base_bundle": str(info.path)}


def _evaluate(pred_fn, zte, yte, steps, preds) -> None:
    preds.append(np.asarray(pred_fn(zte)).astype(np.int64))


def _finish(preds, yte, steps) -> dict:
    from edgecl.metrics import accuracy_matrix, average_incremental_accuracy, final_accuracy

    acc = accuracy_matrix(yte, preds, steps)
    weights = [int(np.isin(yte, s).sum()) for s in steps]
    return {
        "final_accuracy": final_accuracy(acc, weights),
        "average_incremental_accuracy": average_incremental_accuracy(acc, weights),
        "accuracy_matrix": acc.tolist(),
    }


def _steps(e: dict) -> list[list[int]]:
    """The protocol's steps: the host's base classes, then the device's tasks."""
    return [list(map(int, s)) for s in json.loads(str(e.get("steps", json.dumps(EDGECL))))]


def run_learner(e: dict, memory, settings, seed: int) -> dict:
    """GBM or latent replay through :class:`Learner` (the device's learn_class on embeddings)."""
    from edgecl.device.learner import Learner

    d = int(e["n_bits"])
    ztr, ytr, zte, yte = e["ztr"], e["ytr"], e["zte"], e["yte"]
    steps = _steps(e)
    for c in steps[0]:
        memory.fit_class(str(c), ztr[ytr == c], seed=seed + c)
    lr = Learner(
        d, [str(c) for c in steps[0]], e["weight"], e["bias"], memory=memory, settings=settings
    )
    preds: list[np.ndarray] = []
    _evaluate(lr.predict, zte, yte, steps, preds)
    times = []
    for task in steps[1:]:
        for c in task:  # one learn call per class
            t0 = time.perf_counter()
            lr.learn(str(c), ztr[ytr == c], seed=seed + c, trace_memory=False)
            times.append(time.perf_counter() - t0)
        _evaluate(lr.predict, zte, yte, steps, preds)
    return _finish(preds, yte, steps) | {
        "class_memory_bytes": int(lr.class_memory_bytes),
        "stored_bytes": int(lr.stored_bytes),
        "learn_ms": float(np.mean(times) * 1e3),
    }


def _sgd_head(w, b, z, y, settings, rng) -> tuple[np.ndarray, np.ndarray]:
    """Softmax head SGD on packed embeddings (the learner's step, edgecl.device.headstep)."""
    from edgecl.device.headstep import head_step_t

    bs = settings.batch_size
    for _ in range(settings.epochs):
        perm = rng.permutation(len(y))
        for i in range(0, len(y), bs):
            j = perm[i : i + bs]
            w, b, _ = head_step_t(
                np.ascontiguousarray(z[j]), w.shape[0], w, b, y[j], settings.lr,
                weight_decay=settings.weight_decay,
            )  # fmt: skip
    return w, b


def run_head_only(e: dict, settings, seed: int, joint: bool) -> dict:
    """``joint=False``: the lower bound (new class only); ``True``: the F ceiling (every
    class seen so far, real embeddings, from the previous step's head)."""
    from edgecl.kernels import binary_float_dense

    d = int(e["n_bits"])
    ztr, ytr, zte, yte = e["ztr"], e["ytr"], e["zte"], e["yte"]
    rng = np.random.default_rng(seed)
    w, b = e["weight"].astype(np.float32), e["bias"].astype(np.float32)
    steps = _steps(e)

    def pred(z):
        return np.argmax(binary_float_dense(z, w, d) + b, axis=1)

    preds = [pred(zte)]
    times = []
    seen = list(steps[0])
    for task in steps[1:]:
        seen += list(task)
        t0 = time.perf_counter()
        w = np.concatenate([w, np.zeros((d, len(task)), np.float32)], axis=1)
        b = np.concatenate([b, np.zeros(len(task), np.float32)])
        m = np.isin(ytr, seen) if joint else np.isin(ytr, task)
        w, b = _sgd_head(w, b, ztr[m], ytr[m], settings, rng)
        times.append(time.perf_counter() - t0)
        preds.append(pred(zte))
    return _finish(preds, yte, steps) | {
        "class_memory_bytes": 0 if not joint else int(np.isin(ytr, seen).sum() * ztr.shape[1] * 8),
        "stored_bytes": int(w.size * 4 + b.size * 4),
        "learn_ms": float(np.mean(times) * 1e3),
    }


def run_classifier(e: dict, cls, seed: int) -> dict:
    """NearestPrototype / StreamingLDA: the class memory is the classifier."""
    d = int(e["n_bits"])
    ztr, ytr, zte, yte = e["ztr"], e["ytr"], e["zte"], e["yte"]
    m = cls(d)
    steps = _steps(e)
    for c in steps[0]:
        m.fit_class(str(c), ztr[ytr == c])
    preds = [np.asarray(m.predict(zte)).astype(np.int64)]
    times = []
    for task in steps[1:]:
        for c in task:
            t0 = time.perf_counter()
            m.fit_class(str(c), ztr[ytr == c])
            times.append(time.perf_counter() - t0)
        preds.append(np.asarray(m.predict(zte)).astype(np.int64))
    return _finish(preds, yte, steps) | {
        "class_memory_bytes": int(m.nbytes),
        "stored_bytes": int(m.nbytes),
        "learn_ms": float(np.mean(times) * 1e3),
    }


def methods(quick: bool) -> list[tuple[str, dict]]:
    rows: list[tuple[str, dict]] = [
        ("lower", {"kind": "lower"}),
        ("upper (F ceiling)", {"kind": "upper"}),
        ("ncm (Hamming)", {"kind": "ncm"}),
        ("slda", {"kind": "slda"}),
    ]
    es = (1, 20) if quick else LATENT_E
    rows += [(f"latent E={E}", {"kind": "latent", "E": E}) for E in es]
    ks, qs = ((1, 4), (1, 2)) if quick else (GBM_K, GBM_Q)
    rows += [(f"gbm K={k} q={q}", {"kind": "gbm", "K": k, "q": q}) for k in ks for q in qs]
    rows += [
        ("gbm K=6 q=2 (demo, head only)", {"kind": "gbm", "K": 6, "q": 2}),
        ("gbm K=6 q=2 +lik 0.1 (demo default)", {"kind": "gbm", "K": 6, "q": 2, "gw": 0.1}),
    ]
    return rows


def run_method(e: dict, spec: dict, seed: int) -> dict:
    from dataclasses import replace

    from edgecl.device.learner import HeadSettings
    from edgecl.memory import (
        GBMConfig,
        GBMMemory,
        LatentBuffer,
        LatentBufferConfig,
        NearestPrototype,
        StreamingLDA,
    )

    h = e["host"]["head_settings"]
    settings = HeadSettings(**{**h, "gbm_weight": 0.0})
    d = int(e["n_bits"])
    kind = spec["kind"]
    if kind == "lower":
        return run_head_only(e, settings, seed, joint=False)
    if kind == "upper":
        return run_head_only(e, settings, seed, joint=True)
    if kind == "ncm":
        return run_classifier(e, NearestPrototype, seed)
    if kind == "slda":
        return run_classifier(e, StreamingLDA, seed)
    if kind == "latent":
        mem = LatentBuffer(d, LatentBufferConfig(per_class=spec["E"]))
        return run_learner(e, mem, settings, seed)
    mem = GBMMemory(d, GBMConfig(components=spec["K"], bits=spec["q"]))
    return run_learner(e, mem, replace(settings, gbm_weight=spec.get("gw", 0.0)), seed)


def aggregate(per_seed: list[dict]) -> dict:
    out: dict = {"seeds": len(per_seed)}
    for k in ("final_accuracy", "average_incremental_accuracy", "learn_ms"):
        v = np.array([r[k] for r in per_seed], float)
        out[k] = float(v.mean())
        out[k + "_std"] = float(v.std(ddof=1)) if len(v) > 1 else None
    out["class_memory_bytes"] = per_seed[0]["class_memory_bytes"]
    out["stored_bytes"] = per_seed[0]["stored_bytes"]
    return out


def bytes_to_match(rows: dict) -> dict:
    """The smallest GBM class memory reaching latent replay's best final accuracy."""
    lat = {k: r for k, r in rows.items() if k.startswith("latent")}
    gbm = {k: r for k, r in rows.items() if k.startswith("gbm") and "+lik" not in k}
    if not lat or not gbm:
        return {}
    best_k = max(lat, key=lambda k: lat[k]["final_accuracy"])
    best = lat[best_k]
    ok = [k for k, r in gbm.items() if r["final_accuracy"] >= best["final_accuracy"]]
    res = {
        "latent_best": best_k,
        "latent_best_accuracy": best["final_accuracy"],
        "latent_best_bytes": best["class_memory_bytes"],
    }
    if ok:
        k = min(ok, key=lambda k: gbm[k]["class_memory_bytes"])
        res |= {
            "gbm": k,
            "gbm_accuracy": gbm[k]["final_accuracy"],
            "gbm_bytes": gbm[k]["class_memory_bytes"],
            "ratio": best["class_memory_bytes"] / gbm[k]["class_memory_bytes"],
        }
    else:
        k = max(gbm, key=lambda k: gbm[k]["final_accuracy"])
        res |= {"gbm": None, "gbm_best": k, "gbm_best_accuracy": gbm[k]["final_accuracy"]}
    # and for every latent replay row: the smallest GBM reaching its accuracy
    res["per_latent_row"] = []
    for lk, lr in sorted(lat.items(), key=lambda kv: kv[1]["class_memory_bytes"]):
        hit = [k for k, r in gbm.items() if r["final_accuracy"] >= lr["final_accuracy"]]
        g = min(hit, key=lambda k: gbm[k]["class_memory_bytes"]) if hit else None
        res["per_latent_row"].append(
            {
                "latent": lk,
                "latent_accuracy": lr["final_accuracy"],
                "latent_bytes": lr["class_memory_bytes"],
                "gbm": g,
                "gbm_accuracy": None if g is None else gbm[g]["final_accuracy"],
                "gbm_bytes": None if g is None else gbm[g]["class_memory_bytes"],
                "ratio": None
                if g is None
                else lr["class_memory_bytes"] / gbm[g]["class_memory_bytes"],
            }
        )
    return res


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for prefix, color, marker in (("gbm", "tab:blue", "o"), ("latent", "tab:orange", "s")):
        pts = sorted(
            (r["class_memory_bytes"], r["final_accuracy"], k)
            for k, r in rows.items()
            if k.startswith(prefix) and "+lik" not in k
        )
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=color, marker=marker, label=prefix)
        for x, y, k in pts:
            ax.annotate(k.split(" ", 1)[1].split(" (")[0], (x, y), fontsize=6)
    for k, r in rows.items():
        if "+lik" in k:
            ax.scatter(
                [r["class_memory_bytes"]], [r["final_accuracy"]], c="tab:red", marker="*", s=80,
                label="gbm K=6 q=2 + likelihood (demo)",
            )  # fmt: skip
    for k, color in (("ncm (Hamming)", "tab:green"), ("slda", "tab:purple")):
        if k in rows:
            r = rows[k]
            ax.scatter(
                [r["class_memory_bytes"]], [r["final_accuracy"]], c=color, marker="^", label=k
            )
    for k, ls in (("lower", ":"), ("upper (F ceiling)", "--")):
        if k in rows:
            ax.axhline(rows[k]["final_accuracy"], color="gray", ls=ls, label=k)
    ax.set_xscale("log")
    ax.set_xlabel("class memory, bytes (10 classes)")
    ax.set_ylabel("final accuracy (10 classes)")
    proto = (
        "BinPlay protocol (5 x 2 classes)"
        if report.get("protocol") == "binplay"
        else ("edgecl protocol (0-4, then 1 class per step)")
    )
    n = len(report.get("seeds", [0]))
    ax.set_title(f"split-MNIST, {proto}, {n} seed{'s' if n > 1 else ''}", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(report: dict) -> str:
    lines = [
        "| method | seeds | final acc | avg incremental acc | class memory B | stored B "
        "(with head) | learn ms / class |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k, r in report["rows"].items():
        sd = f" ± {r['final_accuracy_std']:.4f}" if r["final_accuracy_std"] is not None else ""
        sa = (
            f" ± {r['average_incremental_accuracy_std']:.4f}"
            if r["average_incremental_accuracy_std"] is not None
            else ""
        )
        lines.append(
            f"| {k} | {r['seeds']} | {r['final_accuracy']:.4f}{sd} "
            f"| {r['average_incremental_accuracy']:.4f}{sa} | {r['class_memory_bytes']:,} "
            f"| {r['stored_bytes']:,} | {r['learn_ms']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None, help="MNIST IDX folder (default: shipped sample)")
    p.add_argument("--checkpoint", default=None, help="base checkpoint of classes 0-4")
    p.add_argument("--seeds", default="0")
    p.add_argument(
        "--protocol",
        choices=("edgecl", "binplay"),
        default="edgecl",
        help="edgecl: base 0-4 then one class per step; binplay: 5 tasks of 2 classes",
    )
    p.add_argument("--quick", action="store_true", help="40 images per class, a tiny F")
    p.add_argument("--epochs", type=int, default=None, help="F's epochs (demo default if not set)")
    p.add_argument("--cache", default=None, help="folder to cache the embeddings in")
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None)
    args = p.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.checkpoint is not None and len(seeds) > 1:
        print("note: one --checkpoint for every seed: the seeds vary the device side only")
    t_all = time.perf_counter()
    per: dict[str, list[dict]] = {}
    hosts = []
    e = None
    for seed in seeds:
        # one F per seed; with --checkpoint one F for all (the embeddings do not change)
        if e is None or args.checkpoint is None:
            e = embeddings(args, seed)
        hosts.append(e["host"] | {"embed_us_per_image": float(e["embed_us_per_image"])})
        for name, spec in methods(args.quick):
            if spec["kind"] in ("ncm", "slda") and seed != seeds[0]:
                continue  # deterministic given F: one run
            t0 = time.perf_counter()
            r = run_method(e, spec, seed)
            per.setdefault(name, []).append(r)
            print(
                f"seed {seed} {name:38s} final {r['final_accuracy']:.4f} avg "
                f"{r['average_incremental_accuracy']:.4f} mem {r['class_memory_bytes']:>9,} B "
                f"learn {r['learn_ms']:.0f} ms ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    rows = {k: aggregate(v) for k, v in per.items()}
    report = {
        "command": " ".join(["python", sys.argv[0], *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine_info(),
        "seeds": seeds,
        "protocol": args.protocol,
        "steps": BINPLAY if args.protocol == "binplay" else EDGECL,
        "host": hosts,
        "rows": rows,
        "per_seed": per,
        "bytes_to_match_latent_best": bytes_to_match(rows),
        "total_s": time.perf_counter() - t_all,
    }
    report["markdown"] = markdown(report)
    print(report["markdown"])
    print(json.dumps(report["bytes_to_match_latent_best"]))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    if args.plot:
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
