"""``edgecl demo``: the whole flow end to end, on split-MNIST by default or on any data set
``--data`` takes (:func:`edgecl.data.load_dataset`: IDX, CIFAR, an image folder, an ``.npz``).

1. **Host** (torch): train F+G on the base classes (0-4 of ten; by default the first half)
   (:func:`edgecl.train.recipes.train_base`, the "rotflipae" pretext task by default: on
   MNIST a linear head on every real embedding reaches 0.974 with this F against 0.933
   with plain training) and export a device bundle holding a GBM class memory of the base
   classes (K prototypes of q bits per class) and the byte budget.
2. **Device** (a separate process, torch blocked by an import hook): load the bundle and
   learn the other classes one ``learn_class`` call at a time, printing after each call
   the accuracy on every class seen so far, the stored bytes against the budget and the
   call's time; then the batch-1 predict latency. The learned bundle is ``model.ecl``.

The budget covers the *stored bytes* (class memory + the head's rows, DESIGN.md "Memory
budget"). Defaults: GBM K=6, q=2 (6·512·2 bits = 768 B of prototypes + 24 B of mixing
weights + a 4 B count = 796 B per class: 7,960 B of class memory for 10 classes, under
8 KiB) and an int8 head (512 int8 weights + a float32 scale and bias = 520 B per class;
``--head-bits 32`` keeps it float32): 13,160 B of stored bytes for 10 classes, inside the
default budget of 32 KiB, policy ``adapt``. Predictions combine the head with the GBM
mixtures' own likelihood (``gbm_weight`` 0.1, :meth:`edgecl.device.learner.Learner.scores`;
edgecl's addition beyond the paper, +1 point on split-MNIST at no extra stored bytes).
``python -m edgecl.demo --device-phase ...`` is the device half ``edgecl demo`` starts.
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
    "demo_dataset",
    "device_phase",
    "host_phase",
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
    base_task: str = "rotflipae"
    epochs: int | None = None  # None: the base task's default (recipes.BaseTrainConfig)
    components: int = 6
    bits: int = 2
    gbm_weight: float = 0.1
    n_bits: int = 512
    channels: tuple[int, ...] | None = None  # None: the backbone's default
    head_lr: float = 0.05
    head_epochs: int = 5
    head_batch: int = 64
    head_bits: int = 8  # stored precision of the head's weights: 32, 16 or 8 (int8 + scale)
    threads: int = 1
    quick: bool = False
    checkpoint: str | None = None  # skip the training: export this base checkpoint
    image_size: tuple[int, int] | None = None  # (H, W): resize every image
    base_classes: str | tuple[str | int, ...] | None = None  # names or indices: "0-4", "cat,dog"
    new_classes: str | tuple[str | int, ...] | None = None  # None: every other class
    backbone: str = "auto"
    pools: int | None = None
    flips: bool | None = None  # None: recipes.default_flips (on for 3 channels)
    # verification may pass with this many samples whose bits differ from torch's (float
    # near-ties at a threshold); None: 1% of the verified samples, recorded in the bundle
    allow_differing_samples: int | None = None
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
        a = self.allow_differing_samples
        if a is not None and (isinstance(a, bool) or not isinstance(a, int) or a < 0):
            raise ValueError(f"expected allow_differing_samples as an int >= 0 or None, got {a!r}")

    def base_config(self) -> Any:
        """The :class:`edgecl.train.recipes.BaseTrainConfig` of this run (imports torch)."""
        from edgecl.train.recipes import BaseTrainConfig

        return BaseTrainConfig(
            base_task=self.base_task,
            epochs=self.epochs,
            n_bits=self.n_bits,
            channels=None if self.channels is None else tuple(self.channels),
            threads=self.threads,
            seed=self.seed,
            backbone=self.backbone,
            pools=self.pools,
            flips=self.flips,
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


def demo_dataset(
    data: str | os.PathLike[str] | None,
    *,
    seed: int = 0,
    quick: bool = False,
    image_size: tuple[int, int] | None = None,
) -> Any:
    """The demo's :class:`edgecl.data.Dataset` (:func:`edgecl.data.load_dataset`; None:
    the shipped MNIST sample, split 80/20 by ``seed``); ``quick`` keeps 40 training and 20
    test samples per class."""
    from edgecl.data import load_dataset

    ds = load_dataset(data, image_size=image_size, seed=seed)
    return ds.take(40, 20, seed=seed) if quick else ds


# -- host phase (torch) -------------------------------------------------------------------


def _names(classes: Sequence[int], class_names: Sequence[str] | None) -> list[str]:
    return [str(c) if class_names is None else str(class_names[c]) for c in classes]


def host_phase(
    cfg: DemoConfig,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    out: Path,
    *,
    log: Callable[[str], None] = print,
    progress: bool = True,
    base_classes: Sequence[int] = BASE_CLASSES,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Train F+G on the base classes (label values; ``class_names[label]`` names a label,
    default the label as text), write ``base.pt`` (checkpoint) and ``base.ecl``."""
    from edgecl.export import ExportConfig, HeadConfig, export_bundle
    from edgecl.memory import Budget, GBMConfig

    base_classes = [int(c) for c in base_classes]
    names = _names(base_classes, class_names)
    if cfg.checkpoint is not None:
        from edgecl.train import load_checkpoint

        model5, meta = load_checkpoint(cfg.checkpoint)
        if [str(c) for c in meta["class_names"]] != names:
            raise ValueError(
                f"expected a checkpoint of the base classes {names}, got {meta['class_names']}"
            )
        log(f"host: using the trained checkpoint {cfg.checkpoint} (no training)")
        summary = {"checkpoint": str(cfg.checkpoint), "train_s": 0.0, **meta.get("meta", {})}
    else:
        from edgecl.train.recipes import train_base

        model5, summary = train_base(
            cfg.base_config(),
            data,
            out / "base.pt",
            classes=base_classes,
            class_names=class_names,
            log=log,
            progress=progress,
        )
    xtr, ytr = data[0], data[1]
    base = np.isin(ytr, base_classes)
    row = {c: i for i, c in enumerate(base_classes)}
    xb = xtr[base]
    yb = np.array([row[int(v)] for v in ytr[base]], np.int64)
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
        allow_differing_samples=(
            -(-min(512, len(xb)) // 100)
            if cfg.allow_differing_samples is None
            else cfg.allow_differing_samples
        ),
    )
    t2 = time.perf_counter()
    info = export_bundle(
        model5,
        out / "base.ecl",
        config,
        calibration=(xb, yb),
        class_names=names,
        overwrite=True,
    )
    # the learning graphs: base.ecl (and the model.ecl saved from it) also learn with
    # onnxruntime alone (Runtime.load(path, backend="onnxruntime"))
    from edgecl.export.onnx_learn import add_learning_graphs

    info = add_learning_graphs(info.path)
    export_s = time.perf_counter() - t2
    differing = int(info.manifest.get("export", {}).get("differing_samples", 0))
    log(
        f"host: exported {info.path} ({info.file_bytes} bytes) in {export_s:.1f} s"
        + (f"; {differing} verified sample(s) differ from torch (near-ties)" if differing else "")
    )
    done = {"base_bundle": str(info.path), "export_s": export_s, "differing_samples": differing}
    return {**summary, **done}


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
    base_classes: Sequence[int] = BASE_CLASSES,
    new_classes: Sequence[int] = NEW_CLASSES,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Learn the new classes (label values; ``class_names[label]`` is the name learned,
    default the label as text) one ``learn_class`` call at a time on the loaded bundle of
    the base classes; return the accuracies (on the test samples of the classes seen so
    far), bytes and times; save the learned bundle to ``out_bundle``."""
    from edgecl.bench import Stats, warm_up
    from edgecl.device import Runtime
    from edgecl.metrics import accuracy_matrix, average_incremental_accuracy, final_accuracy

    xtr, ytr, xte, yte = data
    base_classes, new_classes = [int(c) for c in base_classes], [int(c) for c in new_classes]
    used = np.isin(yte, base_classes + new_classes)
    xte, yte = xte[used], yte[used]
    seen_order = base_classes + new_classes
    label_of = dict(zip(_names(seen_order, class_names), seen_order, strict=True))
    t0 = time.perf_counter()
    rt = Runtime.load(bundle, threads=threads)
    load_s = time.perf_counter() - t0
    # compile (or load from Numba's cache) every kernel before any bar or timer starts
    t1 = time.perf_counter()
    warm_up(rt, xtr[:16])
    warm_s = time.perf_counter() - t1
    steps = [base_classes] + [[c] for c in new_classes]
    preds: list[np.ndarray] = []

    def evaluate(k: int) -> float:
        pred = np.array([label_of.get(str(n), -1) for n in rt.predict(xte)], np.int64)
        preds.append(pred)
        seen = np.isin(yte, [c for s in steps[: k + 1] for c in s])
        return float(np.mean(pred[seen] == yte[seen]))

    mem = rt.memory()
    base_names = _names(base_classes, class_names)
    digits = all(n.isdigit() for n in base_names)  # "0-4", else "5 base"
    base_label = f"{base_names[0]}-{base_names[-1]}" if digits else f"{len(base_names)} base"
    rows = [
        {
            "step": 0,
            "class": base_label,
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
    width = max([5, len(base_label)] + [len(n) for n in label_of])
    log(
        f"{'step':>4} {'class':>{width}} {'acc (seen)':>10} {'stored B':>9} {'class mem B':>11} "
        f"{'budget B':>9} {'learn ms':>9}"
    )

    def show(r: dict[str, Any]) -> None:
        ms = "-" if r["learn_ms"] is None else f"{r['learn_ms']:.0f}"
        log(
            f"{r['step']:>4} {r['class']:>{width}} {r['accuracy']:>10.4f} {r['stored_bytes']:>9} "
            f"{r['class_memory_bytes']:>11} {budget if budget is not None else '-':>9} {ms:>9}"
        )

    show(rows[0])
    reports = []
    for k, c in enumerate(new_classes, start=1):
        x_c = xtr[ytr == c]
        name = _names([c], class_names)[0]
        from tqdm import tqdm

        bar = tqdm(desc=f"learn_class {name}", unit="step", leave=False, disable=not progress)

        def update(step: int, total: int, bar: Any = bar) -> None:
            bar.total = total
            bar.update(step - bar.n)

        try:
            rep = rt.learn_class(name, x_c, seed=seed + c, trace_memory=True, progress=update)
        finally:
            bar.close()
        reports.append(rep.to_dict())
        rows.append(
            {
                "step": k,
                "class": name,
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


#: The device phase's figures that the report lists at its top level.
_REPORTED = (
    "final_accuracy average_incremental_accuracy accuracy_per_step steps memory_bytes "
    "stored_bytes class_memory_bytes head_bytes budget_bytes predict_latency_us_p50 "
    "learn_class_ms bundle_path learn_reports"
).split()

# -- the whole run ------------------------------------------------------------------------------


def run_demo(
    cfg: DemoConfig,
    *,
    log: Callable[[str], None] = print,
    progress: bool = True,
    dataset: Any = None,
) -> dict[str, Any]:
    """Host phase here, device phase in a new process with torch blocked; write
    ``report.json`` (and the ``json_path`` copy); return the report. ``progress``
    shows a bar for the host training and for every learn_class (stderr). ``dataset``:
    the :func:`demo_dataset` of ``cfg`` when the caller has read it already."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    from edgecl.data import split_classes

    ds = dataset
    if ds is None:
        ds = demo_dataset(cfg.data_dir, seed=cfg.seed, quick=cfg.quick, image_size=cfg.image_size)
    base, new = split_classes(ds.class_names, cfg.base_classes, cfg.new_classes)
    xtr, ytr, xte, yte = ds.arrays()
    dataset = ds.source
    h, w, c = ds.image_shape
    log(
        f"data: {dataset}: {len(xtr)} train / {len(xte)} test images of {h}x{w}x{c}, "
        f"{len(ds.class_names)} classes; base {_names(base, ds.class_names)}, learned on the "
        f"device {_names(new, ds.class_names)}"
    )
    host = host_phase(
        cfg,
        (xtr, ytr, xte, yte),
        out,
        log=log,
        progress=progress,
        base_classes=base,
        class_names=ds.class_names,
    )
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
        "--base-classes",
        ",".join(str(i) for i in base),
        "--new-classes",
        ",".join(str(i) for i in new),
    ]
    if cfg.data_dir is not None:
        cmd += ["--data-dir", str(cfg.data_dir)]
    if cfg.image_size is not None:
        cmd += ["--image-size", f"{cfg.image_size[0]}x{cfg.image_size[1]}"]
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
        "data_kind": ds.kind,
        "input_shape": [h, w, c],
        "base_classes": _names(base, ds.class_names),
        "new_classes": _names(new, ds.class_names),
        "seed": cfg.seed,
        "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        **{k: device[k] for k in _REPORTED},
        "host": host,
        "device": {k: v for k, v in device.items() if k not in ("learn_reports",)},
        "device_process_s": device_s,
        "total_s": time.perf_counter() - t0,
    }
    from edgecl.machine import machine_info

    report["machine"] = machine_info()
    text = json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"
    (out / "report.json").write_text(text)
    if cfg.json_path is not None:
        Path(cfg.json_path).write_text(text)
    log(
        f"final accuracy {report['final_accuracy']:.4f} over {len(base) + len(new)} classes; "
        f"average incremental "
        f"{report['average_incremental_accuracy']:.4f}; class memory "
        f"{report['class_memory_bytes']} B, stored {report['stored_bytes']} B of "
        f"{report['budget_bytes']} B; total {report['total_s']:.0f} s; report {out / 'report.json'}"
    )
    return report


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
    p.add_argument("--data-dir", help="the data set (default: the shipped sample)")
    p.add_argument("--image-size", help="HxW: resize every image")
    p.add_argument("--base-classes", help="the base classes (indices or names)")
    p.add_argument("--new-classes", help="the classes to learn (indices or names)")
    p.add_argument("--seed", type=int, default=0, help="the seed of every learn_class")
    p.add_argument("--threads", type=int, default=1, help="kernel threads")
    p.add_argument("--quick", action="store_true", help="the smoke run's data")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if not args.device_phase:
        p.error("expected --device-phase (run `edgecl demo` for the demo)")
    if not (args.bundle and args.out_bundle and args.result):
        p.error("--device-phase needs --bundle, --out-bundle and --result")
    from edgecl.testing import block_torch

    block_torch()
    from edgecl.data import parse_image_size, split_classes

    size = None if args.image_size is None else parse_image_size(args.image_size)
    ds = demo_dataset(args.data_dir, seed=args.seed, quick=args.quick, image_size=size)
    base, new = split_classes(ds.class_names, args.base_classes, args.new_classes)
    result = device_phase(
        args.bundle,
        ds.arrays(),
        args.out_bundle,
        seed=args.seed,
        threads=args.threads,
        progress=not args.no_progress,
        base_classes=base,
        new_classes=new,
        class_names=ds.class_names,
    )
    if "torch" in sys.modules:  # the hook makes this impossible; say so if it ever is not
        raise RuntimeError("torch was imported in the device phase")
    Path(args.result).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
