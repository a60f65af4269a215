"""Split-MNIST in the edgecl protocol: class memories compared on one frozen F per seed.

Host (torch, once per seed): F+G trained on the base classes 0-4 with the demo's recipe
(:func:`edgecl.train.recipes.train_base`, its default base task "rotflipae", seed s for seed s),
or one given base checkpoint for every seed (``--checkpoint``, e.g. one written by
``edgecl demo``), exported to a bundle; the device runtime embeds every training and test
image once (bit-exact with what the device computes). Then every method runs on the same
packed embeddings, learning classes 5, 6, 7, 8, 9 one ``learn`` call at a time
(:class:`edgecl.device.learner.Learner`, the code behind ``Runtime.learn_class``, minus the
embedding):

- ``lower``: the head fine-tuned on the new class only (no memory; same SGD settings);
- ``upper (F ceiling)``: a head trained jointly on the real embeddings of every class
  seen so far (the ceiling of this F and a linear head);
- ``joint (all 10 classes)`` (``--joint-epochs N``): the real upper bound, the same network
  trained with plain supervised training on all 10 classes at once, one per seed;
- ``ncm``: Hamming nearest prototype (:class:`edgecl.memory.NearestPrototype`);
- ``slda``: streaming LDA (:class:`edgecl.memory.StreamingLDA`, float32 means + covariance);
- ``latent E``: binary latent replay, E exemplars per class (:class:`edgecl.memory.LatentBuffer`);
- ``gbm K,q``: GBM, K prototypes of q bits per class (:class:`edgecl.memory.GBMMemory`);
  ``gbm K,q +lik`` predicts with the head plus the mixtures' likelihood (``gbm_weight``).

Reports final and average incremental accuracy (test images of the classes seen), bytes of
class memory (and all stored bytes, with the float32 head), the mean ``learn`` time per
class (on embeddings; the embedding time per class is measured apart) and a plot of
accuracy against bytes (the GBM paper's Figure 6 analogue).

    python benchmarks/continual.py --data-dir /work/shared/data/mnist --seeds 0,1,2 \
        --cache /tmp/cont-cache --joint-epochs 2 [--epochs 4] [--json ...] [--plot ...]
    python benchmarks/continual.py --quick        # a smoke run on the shipped sample
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
#: the joint-training upper bound's row
JOINT = "joint (all 10 classes)"
GBM_K = (1, 4, 8)
GBM_Q = (1, 2, 4, 8)


def _demo_config(args, seed: int, **kw):
    """The demo's host recipe (:class:`edgecl.demo.DemoConfig`) for ``seed`` and ``args``."""
    from edgecl.demo import DemoConfig

    cfg_kw = dict(data_dir=args.data_dir, seed=seed, checkpoint=args.checkpoint, gbm_weight=0.0)
    if args.epochs is not None:
        cfg_kw["epochs"] = args.epochs
    cfg_kw |= kw
    return DemoConfig.quick_config(**cfg_kw) if args.quick else DemoConfig(**cfg_kw)


def _tag(args, seed: int) -> str:
    """The cache name of seed ``seed``'s F: protocol, seed, and F's epochs (or the name of
    the ``--checkpoint`` serving every seed)."""
    if args.checkpoint is not None:
        f = f"ckpt-{Path(args.checkpoint).stem}"
    else:
        f = "e" + ("default" if args.epochs is None else str(args.epochs))
    return f"{args.protocol}_seed{seed}_{f}{'_quick' if args.quick else ''}"


def cached_f(args, seed: int, data, base: list[int], log=print) -> tuple[str, dict]:
    """Seed ``seed``'s F+G on the classes ``base``, trained with the demo's recipe
    (:func:`edgecl.train.recipes.train_base`, seed ``seed``) into ``--cache`` (``<tag>_F.pt``
    and its summary ``<tag>_F.json``), or the one already there; returns
    ``(checkpoint, summary)``."""
    from edgecl.train.recipes import train_base

    ckpt = Path(args.cache) / f"{_tag(args, seed)}_F.pt"
    side = ckpt.with_suffix(".json")
    if ckpt.exists() and side.exists():
        log(f"host: seed {seed}: F cached in {ckpt}")
        return str(ckpt), json.loads(side.read_text())
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    _, summary = train_base(
        _demo_config(args, seed).base_config(), data, ckpt, classes=base, log=log
    )
    side.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return str(ckpt), summary


def embeddings(args, seed: int, log=print) -> dict:
    """Train (or load) the base F+G, export, embed every image with the device runtime.

    Without ``--checkpoint`` seed ``seed`` trains its own F (seed ``seed``); with
    ``--cache`` both its checkpoint and the embeddings are kept there for the next run."""
    from edgecl.demo import demo_dataset, host_phase

    steps = BINPLAY if args.protocol == "binplay" else EDGECL
    cache = Path(args.cache) / f"{_tag(args, seed)}.npz" if args.cache else None
    if cache is not None and cache.exists():
        log(f"embeddings: cached {cache}")
        d = np.load(cache)
        host = json.loads(str(d["host"]))
        return {k: d[k] for k in d.files if k != "host"} | {"host": host}
    ds = demo_dataset(args.data_dir, seed=seed, quick=args.quick)
    (xtr, ytr, xte, yte), name = ds.arrays(), ds.source
    data = (xtr, ytr, xte, yte)
    trained = None
    if args.checkpoint is None and cache is not None:
        ckpt, trained = cached_f(args, seed, data, steps[0], log)
        cfg = _demo_config(args, seed, checkpoint=ckpt)
    else:
        cfg = _demo_config(args, seed)
    with tempfile.TemporaryDirectory() as tmp:
        if args.protocol == "binplay":
            host = export_base(cfg, data, Path(tmp), steps[0], log)
        else:
            host = host_phase(cfg, data, Path(tmp), log=log)
        t0 = time.perf_counter()
        out = embed_bundle(host["base_bundle"], data, steps)
        log(f"embeddings: {len(xtr) + len(xte)} images in {time.perf_counter() - t0:.0f} s")
        host = {k: v for k, v in host.items() if k != "base_bundle"} | {"dataset": name}
        if trained is not None:  # F trained for this seed (now or by an earlier run)
            host |= trained | {"checkpoint": f"trained for seed {seed} (cached {cfg.checkpoint})"}
        elif args.checkpoint is None:  # its file was temporary
            host["checkpoint"] = f"trained in this run (seed {seed})"
    out["host"] = host | {"head_settings": out.pop("head_settings")}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache, **{k: v for k, v in out.items() if k != "host"}, host=json.dumps(out["host"])
        )
    return out


def embed_bundle(bundle, data, steps: list[list[int]]) -> dict:
    """Every training and test image embedded by the device runtime of ``bundle``, with
    its head, as the methods take them (``head_settings``: the bundle's head settings)."""
    from edgecl.device import Runtime

    xtr, ytr, xte, yte = data[:4]
    rt = Runtime.load(bundle, threads=1)
    t0 = time.perf_counter()
    ztr = rt.embed(xtr)
    embed_s = time.perf_counter() - t0
    zte = rt.embed(xte)
    return {
        "ztr": ztr,
        "ytr": ytr.astype(np.int64),
        "zte": zte,
        "yte": yte.astype(np.int64),
        "weight": rt.head_weight.copy(),
        "bias": rt.head_bias.copy(),
        "n_bits": np.int64(rt.n_bits),
        "embed_us_per_image": np.float64(embed_s / len(xtr) * 1e6),
        "steps": json.dumps(steps),
        "head_settings": rt.learner.settings.to_dict(),
    }


def export_base(cfg, data, out: Path, base: list[int], log, verify: bool = True) -> dict:
    """F+G on the classes ``base`` (``cfg.checkpoint``, or trained with the demo's recipe,
    :func:`edgecl.train.recipes.train_base`), exported without a class memory (the methods bring
    their own) to ``out/base.ecl``: the BinPlay protocol's host phase. ``verify`` as
    :func:`edgecl.export.export_bundle`'s."""
    from edgecl.export import ExportConfig, HeadConfig, export_bundle

    if cfg.checkpoint is not None:
        from edgecl.train import load_checkpoint

        model, meta = load_checkpoint(cfg.checkpoint)
        if [str(c) for c in meta["class_names"]] != [str(c) for c in base]:
            raise ValueError(f"expected a checkpoint of classes {base}, got {meta['class_names']}")
        summary = {"checkpoint": str(cfg.checkpoint), **meta.get("meta", {})}
    else:
        from edgecl.train.recipes import train_base

        model, summary = train_base(cfg.base_config(), data, out / "base.pt", classes=base, log=log)
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
        verify=verify,
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


def run_learner(e: dict, memory, settings, seed: int, train_accuracy: bool = False) -> dict:
    """GBM or latent replay through :class:`Learner` (the device's learn_class on embeddings).

    ``train_accuracy``: also the accuracy on the training embeddings of the classes seen,
    before the first device step (``initial_train_accuracy``) and after the last
    (``final_train_accuracy``)."""
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
    extra = {}
    if train_accuracy:
        extra["initial_train_accuracy"] = _accuracy(lr.predict, ztr, ytr, steps[0])
    times = []
    for task in steps[1:]:
        for c in task:  # one learn call per class
            t0 = time.perf_counter()
            lr.learn(str(c), ztr[ytr == c], seed=seed + c, trace_memory=False)
            times.append(time.perf_counter() - t0)
        _evaluate(lr.predict, zte, yte, steps, preds)
    if train_accuracy:
        extra["final_train_accuracy"] = _accuracy(
            lr.predict, ztr, ytr, [c for s in steps for c in s]
        )
    return (
        _finish(preds, yte, steps)
        | {
            "class_memory_bytes": int(lr.class_memory_bytes),
            "stored_bytes": int(lr.stored_bytes),
            "learn_ms": float(np.mean(times) * 1e3),
        }
        | extra
    )


def _accuracy(pred_fn, z, y, classes) -> float:
    """Accuracy of ``pred_fn`` on the samples of ``classes``."""
    m = np.isin(y, classes)
    return float(np.mean(np.asarray(pred_fn(z[m])).astype(np.int64) == y[m]))


def _sgd_head(w, b, z, y, settings, rng) -> tuple[np.ndarray, np.ndarray]:
    """Softmax head SGD on packed embeddings (the learner's step, edgecl.kernels.head)."""
    from edgecl.kernels.head import softmax_head_step

    bs = settings.batch_size
    for _ in range(settings.epochs):
        perm = rng.permutation(len(y))
        for i in range(0, len(y), bs):
            j = perm[i : i + bs]
            w, b, _ = softmax_head_step(
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


def run_joint(args, seed: int, steps: list[list[int]], log=print) -> dict:
    """The joint-training upper bound: the same network (:func:`edgecl.train.mnist_bnn`,
    the demo's channels and D) trained with plain supervised training
    (:func:`edgecl.train.fit`, Adam + STE, batch 100, seed ``seed``) on every class at
    once for ``--joint-epochs`` epochs; at each step its accuracy on the test images of
    the classes seen (one model: the same predictions at every step). With ``--cache`` the
    result and the checkpoint are kept there (``<protocol>_seed<s>_joint_e<E>.json``/``.pt``)."""
    tag = f"{args.protocol}_seed{seed}_joint_e{args.joint_epochs}{'_quick' if args.quick else ''}"
    cache = Path(args.cache) / f"{tag}.json" if args.cache else None
    if cache is not None and cache.exists():
        log(f"joint: cached {cache}")
        return json.loads(cache.read_text())
    import torch

    from edgecl.demo import demo_dataset
    from edgecl.train import fit, mnist_bnn, predict_logits, save_checkpoint

    cfg = _demo_config(args, seed)
    torch.set_num_threads(cfg.threads)
    xtr, ytr, xte, yte = demo_dataset(args.data_dir, seed=seed, quick=args.quick).arrays()
    classes = sorted({c for s in steps for c in s})
    torch.manual_seed(seed)
    model = mnist_bnn(
        len(classes), n_bits=cfg.n_bits, channels=tuple(cfg.channels or (64, 128, 256))
    )
    log(
        f"joint: seed {seed}: training on classes {classes} ({int(np.isin(ytr, classes).sum())} "
        f"images, {args.joint_epochs} epoch(s), D={cfg.n_bits})"
    )
    t0 = time.perf_counter()
    fit(
        model,
        (xtr, ytr),
        epochs=args.joint_epochs,
        batch_size=100,
        seed=seed,
        classes=classes,
        progress=True,  # a bar, and a line per epoch
    )
    train_s = time.perf_counter() - t0
    pred = np.asarray(classes)[predict_logits(model, xte).argmax(1).numpy()]
    n_train = int(np.isin(ytr, classes).sum())
    out = _finish([pred] * len(steps), yte.astype(np.int64), steps) | {
        "class_memory_bytes": None,  # not a class memory: every training image, at once
        "stored_bytes": None,
        "learn_ms": None,
        "train_images": n_train,
        "train_s": train_s,
        "epochs": args.joint_epochs,
    }
    log(f"joint: seed {seed}: test accuracy {out['final_accuracy']:.4f} ({train_s:.0f} s)")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(
            model, cache.with_suffix(".pt"), class_names=[str(c) for c in classes],
            meta={"seed": seed, "epochs": args.joint_epochs},
        )  # fmt: skip
        cache.write_text(json.dumps(out, indent=2) + "\n")
    return out


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


def run_method(e: dict, spec: dict, seed: int, train_accuracy: bool = False) -> dict:
    """One row of :func:`methods`; ``train_accuracy`` as :func:`run_learner` (memories only)."""
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
        return run_learner(e, mem, settings, seed, train_accuracy)
    mem = GBMMemory(d, GBMConfig(components=spec["K"], bits=spec["q"]))
    settings = replace(settings, gbm_weight=spec.get("gw", 0.0))
    return run_learner(e, mem, settings, seed, train_accuracy)


def aggregate(per_seed: list[dict]) -> dict:
    """Mean and std over seeds of one row (``None`` figures, e.g. the joint row's learn
    time, stay ``None``)."""
    out: dict = {"seeds": len(per_seed)}
    for k in ("final_accuracy", "average_incremental_accuracy", "learn_ms"):
        if per_seed[0].get(k) is None:
            out[k] = out[k + "_std"] = None
            continue
        v = np.array([r[k] for r in per_seed], float)
        out[k] = float(v.mean())
        out[k + "_std"] = float(v.std(ddof=1)) if len(v) > 1 else None
    for k in ("class_memory_bytes", "stored_bytes", "train_images", "epochs"):
        if k in per_seed[0]:
            out[k] = per_seed[0][k]
    if "train_s" in per_seed[0]:
        out["train_s"] = float(np.mean([r["train_s"] for r in per_seed]))
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
    for k, ls in (("lower", ":"), ("upper (F ceiling)", "--"), (JOINT, "-.")):
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
    each = ", one F each" if report.get("f_per_seed") and n > 1 else ""
    ax.set_title(f"split-MNIST, {proto}, {n} seed{'s' if n > 1 else ''}{each}", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cell(v, fmt: str = ",") -> str:
    return "—" if v is None else format(v, fmt)


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
        mem = _cell(r["class_memory_bytes"])
        if r["class_memory_bytes"] is None and r.get("train_images"):
            mem = f"— (all {r['train_images']:,} training images)"
        lines.append(
            f"| {k} | {r['seeds']} | {r['final_accuracy']:.4f}{sd} "
            f"| {r['average_incremental_accuracy']:.4f}{sa} | {mem} "
            f"| {_cell(r['stored_bytes'])} | {_cell(r['learn_ms'], '.0f')} |"
        )
    return "\n".join(lines)


def _row(per: dict, name: str, seed: int, r: dict, t0: float) -> None:
    """Record row ``name``'s result ``r`` for ``seed`` and print it."""
    per.setdefault(name, []).append(r)
    print(
        f"seed {seed} {name:38s} final {r['final_accuracy']:.4f} avg "
        f"{r['average_incremental_accuracy']:.4f} mem {_cell(r['class_memory_bytes']):>9} B "
        f"learn {_cell(r['learn_ms'], '.0f')} ms ({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )


def write_report(args, argv, seeds_done, per, hosts, t_all) -> dict:
    """The report of the seeds finished so far (JSON, plot), as :func:`main` writes it
    after every seed."""
    order = list(per)
    if JOINT in per and "upper (F ceiling)" in per:  # the two upper bounds side by side
        order.remove(JOINT)
        order.insert(order.index("upper (F ceiling)") + 1, JOINT)
    rows = {k: aggregate(per[k]) for k in order}
    asked = [int(s) for s in args.seeds.split(",")]
    report = {
        "command": " ".join(["python", sys.argv[0], *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine_info(),
        "seeds": list(seeds_done),
        "seeds_asked": asked,
        "complete": list(seeds_done) == asked
        and (not args.joint_epochs or len(per.get(JOINT, [])) == len(asked)),
        "f_per_seed": args.checkpoint is None,
        "f_epochs": args.epochs,
        "joint_epochs": args.joint_epochs,
        "protocol": args.protocol,
        "steps": BINPLAY if args.protocol == "binplay" else EDGECL,
        "host": hosts,
        "rows": rows,
        "per_seed": per,
        "bytes_to_match_latent_best": bytes_to_match(rows),
        "total_s": time.perf_counter() - t_all,
    }
    report["markdown"] = markdown(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    if args.plot:
        plot(report, args.plot)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Seeds: without --checkpoint every seed s trains its own F (seed s, the demo's "
        "recipe) and runs the device side with seed s, so the std over seeds covers F's "
        "training too; --cache keeps each F's checkpoint, the embeddings and the joint "
        "models, so a rerun trains nothing. The report (--json, --plot) is rewritten after "
        "every seed, with the seeds finished so far.",
    )
    p.add_argument(
        "--data-dir", default=None, help="MNIST IDX folder (default: the shipped 10k sample)"
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="one base checkpoint of classes 0-4 for every seed (e.g. edgecl demo's "
        "DIR/base.pt); the seeds then vary the device side only",
    )
    p.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument(
        "--protocol",
        choices=("edgecl", "binplay"),
        default="edgecl",
        help="edgecl: base 0-4 then one class per step; binplay: 5 tasks of 2 classes",
    )
    p.add_argument("--quick", action="store_true", help="40 images per class, a tiny F")
    p.add_argument(
        "--epochs", type=int, default=None, help="F's epochs (default: the demo's, 4 for rotflipae)"
    )
    p.add_argument(
        "--joint-epochs",
        type=int,
        default=0,
        help="epochs of the joint-training upper bound (the same network trained on all 10 "
        "classes at once, one per seed); 0 (default): no joint row",
    )
    p.add_argument(
        "--cache", default=None, help="folder keeping each seed's F, embeddings and joint model"
    )
    p.add_argument("--json", default=None, help="write the report here")
    p.add_argument("--plot", default=None, help="write the accuracy-vs-bytes plot here (PNG)")
    args = p.parse_args(argv)
    if args.joint_epochs < 0:
        p.error(f"expected --joint-epochs >= 0, got {args.joint_epochs}")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.checkpoint is not None and len(seeds) > 1:
        print("note: one --checkpoint for every seed: the seeds vary the device side only")
    t_all = time.perf_counter()
    per: dict[str, list[dict]] = {}
    hosts = []
    e = None
    report: dict = {}
    for i, seed in enumerate(seeds):
        print(f"== seed {seed} ({i + 1}/{len(seeds)}), {time.perf_counter() - t_all:.0f} s in")
        # one F per seed; with --checkpoint one F for all (the embeddings do not change)
        if e is None or args.checkpoint is None:
            e = embeddings(args, seed)
        hosts.append(e["host"] | {"embed_us_per_image": float(e["embed_us_per_image"])})
        for name, spec in methods(args.quick):
            if spec["kind"] in ("ncm", "slda") and seed != seeds[0] and args.checkpoint:
                continue  # deterministic given F: one run
            t0 = time.perf_counter()
            _row(per, name, seed, run_method(e, spec, seed), t0)
        report = write_report(args, argv, seeds[: i + 1], per, hosts, t_all)
    # the joint-training bound last: the seeds' Fs and memories are in the report first
    for seed in seeds if args.joint_epochs else []:
        print(f"== joint training, seed {seed}, {time.perf_counter() - t_all:.0f} s in")
        t0 = time.perf_counter()
        _row(per, JOINT, seed, run_joint(args, seed, _steps(e)), t0)
        report = write_report(args, argv, seeds, per, hosts, t_all)
    print(report["markdown"])
    print(json.dumps(report["bytes_to_match_latent_best"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
