"""``edgecl demo``: the whole flow on split-MNIST, end to end.

1. **Host** (torch): train F+G on the base classes 0-4 (:func:`edgecl.train.recipes.train_base`,
   the "rotflipae" pretext task by default: a linear head on every real embedding reaches
   0.974 with this F against 0.933 with plain training) and export a device bundle holding
   a GBM class memory of the base classes (K prototypes of q bits per class) and the byte
   budget.
2. **Device** (a separate process, torch blocked by an import hook): load the bundle and
   learn classes 5..9 one ``learn_class`` call at a time, printing after each call the
   accuracy on every class seen so far, the stored bytes against the budget and the call's
   time; then the batch-1 predict latency. The learned bundle is saved as ``model.ecl``.

The budget covers the *stored bytes* (class memory + the head's rows, DESIGN.md "Memory
budget"). Defaults: GBM K=6, q=2 (6·512·2 bits = 768 B of prototypes + 24 B of mixing
weights + a 4 B count = 796 B per class: 7,960 B of class memory for 10 classes, under
8 KiB) and an int8 head (512 int8 weights + a float32 scale and bias = 520 B per class,
5,200 B for 10 classes; ``--head-bits 32`` keeps it float32, 20,520 B): 13,160 B of stored
bytes for 10 classes, inside the default budget of 32 KiB, policy ``adapt``. Predictions
combine the head with the GBM mixtures' own likelihood (``gbm_weight`` 0.1,
:meth:`edgecl.device.learner.Learner.scores`; edgecl's addition beyond the paper, +1 point
on split-MNIST at no extra stored bytes).

Run ``edgecl demo --help``. ``python -m edgecl.demo --device-phase ...`` is the device half,
which ``edgecl demo`` starts itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BASE_CLASSES",
    "DEFAULT_BUDGET",
    "NEW_CLASSES",
    "DemoConfig",
    "device_phase",
    "host_phase",
    "load_demo_data",
    "run_demo",
]

#: Default budget of stored bytes (room for class memory <= 8 KiB and a 10-class head even at
#: float32, ``--head-bits 32``).
DEFAULT_BUDGET = 32 * 1024
#: The demo's split: base classes trained on the host, then new classes learned one
#: ``learn_class`` call at a time on the device. The base classes equal
#: :data:`edgecl.train.recipes.BASE_CLASSES`, restated here because the device phase runs
#: where ``edgecl.train`` (torch) cannot be imported (a test checks they agree).
BASE_CLASSES = (0, 1, 2, 3, 4)
NEW_CLASSES = (5, 6, 7, 8, 9)


@dataclass(frozen=True)
class DemoConfig:
    """Everything a demo run depends on (``quick`` shrinks it to a seconds-long smoke run).
    The base-training fields (``base_task``, ``epochs``, ``n_bits``, ``channels``,
    ``threads``, ``seed``) are checked by :meth:`base_config` (host side)."""

    data_dir: str | None = None
    budget_bytes: int = DEFAULT_BUDGET
    policy: str = "adapt"
    seed: int = 0
    out: str = "edgecl-demo"
    json_path: str | None = None
    plot_path: str | None = None
    base_task: str = "rotflipae"
    epochs: int | None = None  # None: 3 on the shipped sample, 1 on a full data set
    components: int = 6
    bits: int = 2
    gbm_weight: float = 0.1
    n_bits: int = 512
    channels: tuple[int, ...] = (64, 128, 256)
    head_lr: float = 0.05
    head_epochs: int = 5
    head_batch: int = 64
    head_bits: int = 8  # stored precision of the head's weights: 32, 16 or 8 (int8 + scale)
    threads: int = 1
    quick: bool = False
    checkpoint: str | None = None  # skip the training: export this base checkpoint
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.policy not in ("strict", "adapt"):
            raise ValueError(f"expected policy 'strict' or 'adapt', got {self.policy!r}")
        for name in ("budget_bytes", "components", "bits", "n_bits", "threads", "head_epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"expected {name} as an int >= 1, got {v!r}")
        g = self.gbm_weight
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 <= g < float("inf"):
            raise ValueError(f"expected gbm_weight as a finite float >= 0, got {g!r}")
        if isinstance(self.head_bits, bool) or self.head_bits not in (32, 16, 8):
            raise ValueError(f"expected head_bits 32, 16 or 8, got {self.head_bits!r}")
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise ValueError(f"expected epochs as an int >= 1 or None, got {self.epochs!r}")

    def base_config(self) -> Any:
        """The :class:`edgecl.train.recipes.BaseTrainConfig` of this run (imports torch)."""
        from edgecl.train.recipes import BaseTrainConfig

        return BaseTrainConfig(
            base_task=self.base_task,
            epochs=self.epochs,
            n_bits=self.n_bits,
            channels=tuple(self.channels),
            threads=self.threads,
            seed=self.seed,
        )

    @classmethod
    def quick_config(cls, **kw: Any) -> DemoConfig:
        """A seconds-long run for tests: 40 samples per class, a tiny F (D=64, K=2)."""
        base = dict(
            quick=True,
            epochs=1,
            n_bits=64,
            channels=(8, 16, 32),
            components=2,
            bits=4,
            head_epochs=3,
            budget_bytes=16 * 1024,
        )
        base.update(kw)
        return cls(**base)


# -- data ----------------------------------------------------------------------------------


def load_demo_data(
    data_dir: str | os.PathLike[str] | None, *, seed: int = 0, quick: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """``(x_train, y_train, x_test, y_test, name)``: the shipped MNIST sample (split 80/20
    by ``seed``) or an IDX data set's four standard files; ``quick`` keeps 40 training and
    20 test samples per class."""
    from edgecl.data import load_idx_dataset, load_mnist_sample

    if data_dir is None:
        xtr, ytr, xte, yte = load_mnist_sample(seed=seed)
        name = "the shipped MNIST sample (10,000 images, 80/20 split)"
    else:
        xtr, ytr, xte, yte = load_idx_dataset(data_dir)
        name = str(data_dir)
    if quick:
        rng = np.random.default_rng(seed)

        def pick(y: np.ndarray, k: int) -> np.ndarray:
            return np.sort(
                np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k] for c in np.unique(y)])
            )

        a, b = pick(ytr, 40), pick(yte, 20)
        xtr, ytr, xte, yte = xtr[a], ytr[a], xte[b], yte[b]
        name += " (quick: 40 train / 20 test per class)"
    return xtr, ytr, xte, yte, name


# -- host phase (torch) -------------------------------------------------------------------


def host_phase(
    cfg: DemoConfig,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    out: Path,
    *,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> dict[str, Any]:
    """Train F+G on the base classes, write ``base.pt`` (checkpoint) and ``base.ecl``."""
    from edgecl.export import ExportConfig, HeadConfig, export_bundle
    from edgecl.memory import Budget, GBMConfig

    if cfg.checkpoint is not None:
        from edgecl.train import load_checkpoint

        model5, meta = load_checkpoint(cfg.checkpoint)
        if [str(c) for c in meta["class_names"]] != [str(c) for c in BASE_CLASSES]:
            raise ValueError(
                f"expected a checkpoint of classes {list(BASE_CLASSES)}, got {meta['class_names']}"
            )
        log(f"host: using the trained checkpoint {cfg.checkpoint} (no training)")
        summary = {"checkpoint": str(cfg.checkpoint), "train_s": 0.0, **meta.get("meta", {})}
    else:
        from edgecl.train.recipes import train_base

        model5, summary = train_base(
            cfg.base_config(),
            data,
            out / "base.pt",
            classes=BASE_CLASSES,
            log=log,
            progress=progress,
        )
    xtr, ytr = data[0], data[1]
    base = np.isin(ytr, BASE_CLASSES)
    xb, yb = xtr[base], ytr[base]
    config = ExportConfig(
        memory=GBMConfig(components=cfg.components, bits=cfg.bits),
        budget=Budget(cfg.budget_bytes, cfg.policy),
        head=HeadConfig(
            lr=cfg.head_lr,
            epochs=cfg.head_epochs,
            batch_size=cfg.head_batch,
            bits=cfg.head_bits,
            gbm_weight=float(cfg.gbm_weight),
        ),
        seed=cfg.seed,
        verify_samples=min(512, len(xb)),
    )
    t2 = time.perf_counter()
    info = export_bundle(
        model5,
        out / "base.ecl",
        config,
        calibration=(xb, yb),
        class_names=[str(c) for c in BASE_CLASSES],
        overwrite=True,
    )
    # the learning graphs: base.ecl (and the model.ecl saved from it) also learn with
    # onnxruntime alone (Runtime.load(path, backend="onnxruntime"))
    from edgecl.export.onnx_learn import add_learning_graphs

    info = add_learning_graphs(info.path)
    export_s = time.perf_counter() - t2
    log(f"host: exported {info.path} ({info.file_bytes} bytes) in {export_s:.1f} s")
    return {**summary, "base_bundle": str(info.path), "export_s": export_s}


# -- device phase (no torch) -----------------------------------------------------------------


def device_phase(
    bundle: str | os.PathLike[str],
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    out_bundle: str | os.PathLike[str],
    *,
    seed: int = 0,
    threads: int = 1,
    latency_repeat: int = 200,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> dict[str, Any]:
    """Learn classes 5..9 one ``learn_class`` call at a time on the loaded bundle; return
    the accuracies, bytes and times; save the learned bundle to ``out_bundle``."""
    from edgecl.bench import Stats, warm_up
    from edgecl.device import Runtime
    from edgecl.metrics import accuracy_matrix, average_incremental_accuracy, final_accuracy

    xtr, ytr, xte, yte = data
    t0 = time.perf_counter()
    rt = Runtime.load(bundle, threads=threads)
    load_s = time.perf_counter() - t0
    # compile (or load from Numba's cache) every kernel before any bar or timer starts
    t1 = time.perf_counter()
    warm_up(rt, xtr[:16])
    warm_s = time.perf_counter() - t1
    steps = [list(BASE_CLASSES)] + [[c] for c in NEW_CLASSES]
    preds: list[np.ndarray] = []

    def evaluate(k: int) -> float:
        pred = rt.predict(xte).astype(np.int64)
        preds.append(pred)
        seen = np.isin(yte, [c for s in steps[: k + 1] for c in s])
        return float(np.mean(pred[seen] == yte[seen]))

    mem = rt.memory()
    rows = [
        {
            "step": 0,
            "class": "0-4",
            "accuracy": evaluate(0),
            "stored_bytes": mem.stored_bytes,
            "class_memory_bytes": mem.class_memory_bytes,
            "head_bytes": mem.head_bytes,
            "learn_ms": None,
        }
    ]
    budget = mem.budget_bytes
    log(
        f"device: loaded {bundle} in {load_s * 1e3:.0f} ms, kernels compiled or loaded from "
        f"the cache in {warm_s:.1f} s (torch imported: {'torch' in sys.modules})"
    )
    log(
        f"{'step':>4} {'class':>5} {'acc (seen)':>10} {'stored B':>9} {'class mem B':>11} "
        f"{'budget B':>9} {'learn ms':>9}"
    )

    def show(r: dict[str, Any]) -> None:
        ms = "-" if r["learn_ms"] is None else f"{r['learn_ms']:.0f}"
        log(
            f"{r['step']:>4} {r['class']:>5} {r['accuracy']:>10.4f} {r['stored_bytes']:>9} "
            f"{r['class_memory_bytes']:>11} {budget if budget is not None else '-':>9} {ms:>9}"
        )

    show(rows[0])
    reports = []
    for k, c in enumerate(NEW_CLASSES, start=1):
        x_c = xtr[ytr == c]
        from tqdm import tqdm

        bar = tqdm(desc=f"learn_class {c}", unit="step", leave=False, disable=not progress)

        def update(step: int, total: int, bar: Any = bar) -> None:
            bar.total = total
            bar.update(step - bar.n)

        try:
            rep = rt.learn_class(str(c), x_c, seed=seed + c, trace_memory=True, progress=update)
        finally:
            bar.close()
        reports.append(rep.to_dict())
        rows.append(
            {
                "step": k,
                "class": str(c),
                "accuracy": evaluate(k),
                "stored_bytes": rep.stored_bytes,
                "class_memory_bytes": rep.class_memory_bytes,
                "head_bytes": rep.head_bytes,
                "learn_ms": rep.total_s * 1e3,
                "samples": rep.n_samples,
                "gave_up": [g["description"] for g in rep.gave_up],
            }
        )
        show(rows[-1])
        for g in rep.gave_up:
            log(f"       adapt gave up: {g['description']}")

    acc = accuracy_matrix(yte, preds, steps)
    weights = [int(np.isin(yte, s).sum()) for s in steps]
    # predict latency at batch 1 (first call apart: compile/cache load)
    one = xte[:1]
    t1 = time.perf_counter()
    rt.predict(one)
    first_predict_s = time.perf_counter() - t1
    times = []
    for i in range(latency_repeat):
        x1 = xte[i % len(xte) : i % len(xte) + 1]
        t = time.perf_counter()
        rt.predict(x1)
        times.append(time.perf_counter() - t)
    stats = Stats.of(times, 1e6)
    lat = {"min_us": stats.min, "p50_us": stats.p50, "p90_us": stats.p90}
    info = rt.save(out_bundle)
    final = rt.memory()
    log(
        f"device: predict latency at batch 1: p50 {lat['p50_us']:.0f} us, min "
        f"{lat['min_us']:.0f} us; saved {info.path}"
    )
    return {
        "accuracy_per_step": [r["accuracy"] for r in rows],
        "accuracy_matrix": acc.tolist(),
        "final_accuracy": final_accuracy(acc, weights),
        "average_incremental_accuracy": average_incremental_accuracy(acc, weights),
        "steps": rows,
        "learn_class_ms": [r["learn_ms"] for r in rows[1:]],
        "learn_reports": reports,
        "memory_bytes": final.stored_bytes,
        "stored_bytes": final.stored_bytes,
        "class_memory_bytes": final.class_memory_bytes,
        "head_bytes": final.head_bytes,
        "budget_bytes": final.budget_bytes,
        "policy": final.policy,
        "closed_form_bits": final.closed_form_bits,
        "peak_bytes": final.peak_bytes,
        "memory_report": final.to_dict(),
        "predict_latency_us_p50": lat["p50_us"],
        "predict_latency_us": lat,
        "first_predict_ms": first_predict_s * 1e3,
        "load_ms": load_s * 1e3,
        "warm_up_s": warm_s,
        "bundle_path": str(info.path),
        "torch_imported": "torch" in sys.modules,
    }


# -- the whole run ------------------------------------------------------------------------------


def _plot(report: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "--plot needs matplotlib (pip install matplotlib or edgecl[plot])"
        ) from exc
    steps = report["steps"]
    xs = [s["step"] for s in steps]
    labels = [s["class"] for s in steps]
    fig, ax1 = plt.subplots(figsize=(6, 3.8))
    acc = [s["accuracy"] for s in steps]
    ax1.plot(xs, acc, "o-", color="tab:blue", label="accuracy (seen)")
    ax1.set_ylim(max(0.0, min(acc) - 0.1), 1.0)
    ax1.set_xticks(xs, labels)
    ax1.set_xlabel("step (class learned)")
    ax1.set_ylabel("accuracy on classes seen", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.bar(
        [x - 0.15 for x in xs],
        [s["class_memory_bytes"] for s in steps],
        width=0.3,
        color="tab:orange",
        alpha=0.6,
        label="class memory",
    )
    ax2.bar(
        [x + 0.15 for x in xs],
        [s["stored_bytes"] for s in steps],
        width=0.3,
        color="tab:gray",
        alpha=0.5,
        label="stored bytes",
    )
    if report.get("budget_bytes"):
        ax2.axhline(report["budget_bytes"], color="tab:red", ls="--", label="budget")
    ax2.set_ylabel("bytes")
    ax1.set_zorder(ax2.get_zorder() + 1)  # the accuracy line above the bars
    ax1.patch.set_visible(False)
    fig.legend(loc="lower center", ncol=4, fontsize=7, frameon=False)
    ax1.set_title(f"edgecl demo: final accuracy {report['final_accuracy']:.3f}")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_demo(
    cfg: DemoConfig, *, log: Callable[[str], None] = print, progress: bool = True
) -> dict[str, Any]:
    """Host phase here, device phase in a new process with torch blocked; write
    ``report.json`` (and ``--json``/``--plot`` files); return the report. ``progress``
    shows a bar for the host training and for every learn_class (stderr)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    xtr, ytr, xte, yte, dataset = load_demo_data(cfg.data_dir, seed=cfg.seed, quick=cfg.quick)
    log(f"data: {dataset}: {len(xtr)} train / {len(xte)} test images")
    host = host_phase(cfg, (xtr, ytr, xte, yte), out, log=log, progress=progress)
    result = out / "device.json"
    cmd = [
        sys.executable,
        "-m",
        "edgecl.demo",
        "--device-phase",
        "--bundle",
        host["base_bundle"],
        "--out-bundle",
        str(out / "model.ecl"),
        "--result",
        str(result),
        "--seed",
        str(cfg.seed),
        "--threads",
        str(cfg.threads),
    ]
    if cfg.data_dir is not None:
        cmd += ["--data-dir", str(cfg.data_dir)]
    if cfg.quick:
        cmd.append("--quick")
    if not progress:
        cmd.append("--no-progress")
    log("device: a new process with torch blocked: " + " ".join(cmd[1:4]) + " ...")
    sys.stdout.flush()
    t1 = time.perf_counter()
    proc = subprocess.run(cmd, check=False)
    device_s = time.perf_counter() - t1
    if proc.returncode != 0:
        from edgecl.errors import EdgeclError

        raise EdgeclError(f"the device phase failed with exit code {proc.returncode}")
    device = json.loads(result.read_text())
    result.unlink()
    report: dict[str, Any] = {
        "dataset": dataset,
        "seed": cfg.seed,
        "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        "final_accuracy": device["final_accuracy"],
        "average_incremental_accuracy": device["average_incremental_accuracy"],
        "accuracy_per_step": device["accuracy_per_step"],
        "steps": device["steps"],
        "memory_bytes": device["memory_bytes"],
        "stored_bytes": device["stored_bytes"],
        "class_memory_bytes": device["class_memory_bytes"],
        "head_bytes": device["head_bytes"],
        "budget_bytes": device["budget_bytes"],
        "predict_latency_us_p50": device["predict_latency_us_p50"],
        "learn_class_ms": device["learn_class_ms"],
        "bundle_path": device["bundle_path"],
        "host": host,
        "device": {k: v for k, v in device.items() if k not in ("learn_reports",)},
        "learn_reports": device["learn_reports"],
        "device_process_s": device_s,
        "total_s": time.perf_counter() - t0,
    }
    from edgecl.machine import machine_info

    report["machine"] = machine_info()
    text = json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"
    (out / "report.json").write_text(text)
    if cfg.json_path is not None:
        Path(cfg.json_path).write_text(text)
    plot = cfg.plot_path
    if plot is not None:
        _plot(report, Path(plot))
        report["plot"] = str(plot)
    log(
        f"final accuracy {report['final_accuracy']:.4f} over 10 classes; average incremental "
        f"{report['average_incremental_accuracy']:.4f}; class memory "
        f"{report['class_memory_bytes']} B, stored {report['stored_bytes']} B of "
        f"{report['budget_bytes']} B; total {report['total_s']:.0f} s; report {out / 'report.json'}"
    )
    return report


def _device_main(args: argparse.Namespace) -> int:
    from edgecl.testing import block_torch

    block_torch()
    data = load_demo_data(args.data_dir, seed=args.seed, quick=args.quick)[:4]
    result = device_phase(
        args.bundle,
        data,
        args.out_bundle,
        seed=args.seed,
        threads=args.threads,
        log=print,
        progress=not args.no_progress,
    )
    if "torch" in sys.modules:  # the hook makes this impossible; say so if it ever is not
        raise RuntimeError("torch was imported in the device phase")
    Path(args.result).write_text(json.dumps(result, default=str))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edgecl.demo --device-phase ...``: the demo's device half, which
    ``edgecl demo`` starts in a new process (run ``edgecl demo`` for the demo itself)."""
    p = argparse.ArgumentParser(
        prog="python -m edgecl.demo",
        description="the device half of `edgecl demo` (run `edgecl demo` for the demo)",
    )
    p.add_argument("--device-phase", action="store_true", help="run the device half")
    p.add_argument("--bundle", help="the base bundle to load")
    p.add_argument("--out-bundle", help="where to save the learned bundle")
    p.add_argument("--result", help="where to write the result (JSON)")
    p.add_argument("--data-dir", help="an IDX data set folder (default: the shipped sample)")
    p.add_argument("--seed", type=int, default=0, help="the seed of every learn_class")
    p.add_argument("--threads", type=int, default=1, help="kernel threads")
    p.add_argument("--quick", action="store_true", help="the smoke run's data")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if not args.device_phase:
        p.error("expected --device-phase (run `edgecl demo` for the demo)")
    if not (args.bundle and args.out_bundle and args.result):
        p.error("--device-phase needs --bundle, --out-bundle and --result")
    return _device_main(args)


if __name__ == "__main__":
    sys.exit(main())
