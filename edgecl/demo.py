"""``edgecl demo``: the whole flow on split-MNIST, end to end.

1. **Host** (torch): train F+G on the base classes 0-4 and export a device bundle.
   F is trained on a wider pretext task by default ("rotflipae", the lead's recipe: every
   base image at a random k·90° rotation and horizontal flip, label (digit·4 + k)·2 + f, 40
   classes, random shifts, an autoencoder auxiliary loss; DESIGN.md's lesson that the
   ceiling is F: a linear head on every real embedding reaches 0.974 with this F against
   0.933 with plain training); "rotation" (20 classes) and "plain" are options. The pretext
   head is then replaced by a 5-class head trained on the unaugmented base images with F
   frozen. The bundle holds a GBM class memory of the
   base classes (K prototypes of q bits per class) and the byte budget.
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

Run ``python -m edgecl.demo --help`` or ``edgecl demo --help``.
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
    "DEFAULT_BUDGET",
    "DemoConfig",
    "block_torch",
    "device_phase",
    "host_phase",
    "load_demo_data",
    "run_demo",
    "train_base",
]

#: Default budget of stored bytes (room for class memory <= 8 KiB and a 10-class head even at
#: float32, ``--head-bits 32``).
DEFAULT_BUDGET = 32 * 1024
BASE_CLASSES = (0, 1, 2, 3, 4)
#: Base tasks F can be trained on: "rotflipae" (rotation x horizontal flip as 40 classes,
#: shifts, an autoencoder auxiliary loss), "rotation" (20 classes), "plain" (5 classes).
BASE_TASKS = ("rotflipae", "rotation", "plain")
NEW_CLASSES = (5, 6, 7, 8, 9)


@dataclass(frozen=True)
class DemoConfig:
    """Everything a demo run depends on (``quick`` shrinks it to a seconds-long smoke run)."""

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
        if self.base_task not in BASE_TASKS:
            raise ValueError(f"expected base_task in {BASE_TASKS}, got {self.base_task!r}")
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


def _rotations(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rotation-augmented base task: every image at k·90° (k = 0..3), label digit·4 + k."""
    xs = [np.ascontiguousarray(np.rot90(x, k, axes=(1, 2))) for k in range(4)]
    ys = [y * 4 + k for k in range(4)]
    return np.concatenate(xs), np.concatenate(ys)


def _fit_pretext(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int) -> None:
    """The "rotflipae" base task (the lead's recipe): every batch, each image gets a random
    rotation k·90° and a random horizontal flip f (label (class·4 + k)·2 + f), the batch a
    random shift of -2..2 pixels; an autoencoder (512 -> 256 -> 784 from the embedding bits,
    sigmoid) adds 10 x the MSE to the pixels. Adam 1e-3, batch 128; binary weights clipped."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from edgecl.train import clip_weights_

    gen = torch.Generator().manual_seed(seed)
    d = int(model.head.in_features)
    h, w = x.shape[1], x.shape[2]
    decoder = torch.nn.Sequential(
        torch.nn.Linear(d, 256), torch.nn.ReLU(), torch.nn.Linear(256, h * w)
    )
    opt = torch.optim.Adam(list(model.parameters()) + list(decoder.parameters()), lr=1e-3)
    xt = torch.from_numpy(np.ascontiguousarray(x)).float().unsqueeze(1)
    yt = torch.from_numpy(y)
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(yt), generator=gen)
        bar = tqdm(range(0, len(yt), 128), desc=f"epoch {epoch + 1}/{epochs}", leave=False)
        for i in bar:
            j = perm[i : i + 128]
            xb, yb = xt[j], yt[j]
            sh = torch.randint(-2, 3, (2,), generator=gen)
            xb = torch.roll(xb, (int(sh[0]), int(sh[1])), (2, 3))
            k = torch.randint(0, 4, (len(yb),), generator=gen)
            f = torch.randint(0, 2, (len(yb),), generator=gen)
            xb = torch.stack(
                [
                    torch.rot90(torch.flip(xi, (2,)) if fi else xi, int(ki), (1, 2))
                    for xi, ki, fi in zip(xb, k, f, strict=True)
                ]
            )
            label = (yb * 4 + k) * 2 + f
            z = model.features(xb)
            loss = F.cross_entropy(model.head(z), label)
            loss = loss + 10 * F.mse_loss(torch.sigmoid(decoder(z)), xb.flatten(1) / 255.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            clip_weights_(model)
            bar.set_postfix(loss=f"{float(loss):.4f}")
        bar.close()
    model.eval()


def train_base(
    cfg: DemoConfig,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    checkpoint: str | os.PathLike[str],
    *,
    classes: Sequence[int] = BASE_CLASSES,
    log: Callable[[str], None] = print,
) -> tuple[Any, dict[str, Any]]:
    """Train F+G on ``classes`` (host, torch) and save the checkpoint; returns
    ``(model, summary)``. ``cfg.base_task="rotation"`` trains F on the rotation-augmented
    task (label = class index·4 + k) and then fits a ``len(classes)``-way head on the
    unrotated images with F frozen (eval mode, BatchNorm statistics untouched)."""
    import torch
    import torch.nn.functional as F

    from edgecl.train import fit, mnist_bnn, save_checkpoint

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    xtr, ytr, xte, yte = data
    classes = [int(c) for c in classes]
    row = {c: i for i, c in enumerate(classes)}
    base = np.isin(ytr, classes)
    xb = xtr[base]
    yb = np.array([row[int(v)] for v in ytr[base]], np.int64)
    if xb.shape[0] == 0:
        raise ValueError(f"expected training images of classes {classes}, got none")
    kwargs = dict(n_bits=cfg.n_bits, channels=tuple(cfg.channels))
    t0 = time.perf_counter()
    if cfg.base_task == "rotflipae":
        n_out = 8 * len(classes)
        epochs = cfg.epochs if cfg.epochs is not None else 4
        xa = xb
        log(
            f"host: training F+G on classes {classes} (rotflipae base task: {len(xb)} images "
            f"x random rotation/flip/shift, {n_out} outputs + an autoencoder loss, {epochs} "
            f"epochs, D={cfg.n_bits})"
        )
        model = mnist_bnn(n_out, **kwargs)
        _fit_pretext(model, xb, yb, epochs=epochs, seed=cfg.seed)
    else:
        if cfg.base_task == "rotation":
            xa, ya = _rotations(xb, yb)
            n_out = 4 * len(classes)
        else:
            xa, ya, n_out = xb, yb, len(classes)
        epochs = cfg.epochs if cfg.epochs is not None else (1 if len(xa) > 60_000 else 3)
        log(
            f"host: training F+G on classes {classes} ({cfg.base_task} base task: {len(xa)} "
            f"images, {n_out} outputs, {epochs} epochs, D={cfg.n_bits})"
        )
        model = mnist_bnn(n_out, **kwargs)
        fit(model, (xa, ya), epochs=epochs, batch_size=128, seed=cfg.seed, progress=True)

    model5 = mnist_bnn(len(classes), **kwargs)
    model5.features.load_state_dict(model.features.state_dict())
    model5.eval()

    def embed(x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            parts = [
                model5.features(torch.from_numpy(x[i : i + 1000]).float().unsqueeze(1))
                for i in range(0, len(x), 1000)
            ]
        return torch.cat(parts)

    if cfg.base_task in ("rotation", "rotflipae"):
        z = embed(xb)
        yt = torch.from_numpy(yb)
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.Adam(model5.head.parameters(), lr=1e-2)
        for _ in range(10):
            perm = torch.randperm(len(yt), generator=gen)
            for i in range(0, len(yt), 256):
                j = perm[i : i + 256]
                loss = F.cross_entropy(model5.head(z[j]), yt[j])
                opt.zero_grad()
                loss.backward()
                opt.step()
    else:
        model5.head.load_state_dict(model.head.state_dict())
    model5.eval()
    train_s = time.perf_counter() - t0
    mt = np.isin(yte, classes)
    with torch.no_grad():
        pred = model5.head(embed(xte[mt])).argmax(1).numpy()
    truth = np.array([row[int(v)] for v in yte[mt]], np.int64)
    base_acc = float(np.mean(pred == truth)) if len(truth) else float("nan")
    log(
        f"host: accuracy on the test images of {classes}: {base_acc:.4f}; "
        f"trained in {train_s:.0f} s"
    )
    names = [str(c) for c in classes]
    ckpt = save_checkpoint(
        model5,
        checkpoint,
        class_names=names,
        meta={"base_task": cfg.base_task, "epochs": epochs, "seed": cfg.seed, "classes": classes},
    )
    return model5, {
        "checkpoint": str(ckpt),
        "classes": classes,
        "base_task": cfg.base_task,
        "epochs": epochs,
        "train_images": int(len(xa)),
        "base_accuracy": base_acc,
        "train_s": train_s,
        "torch": torch.__version__,
    }


def host_phase(
    cfg: DemoConfig,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    out: Path,
    *,
    log: Callable[[str], None] = print,
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
        model5, summary = train_base(cfg, data, out / "base.pt", log=log)
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
    export_s = time.perf_counter() - t2
    log(f"host: exported {info.path} ({info.file_bytes} bytes) in {export_s:.1f} s")
    return {**summary, "base_bundle": str(info.path), "export_s": export_s}


# -- device phase (no torch) -----------------------------------------------------------------


class _TorchBlocker:
    """A meta-path finder refusing ``torch`` and its submodules."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"torch is blocked in the device phase (tried to import {name})")
        return None


def block_torch() -> None:
    """Install an import hook that makes ``import torch`` fail (the device has no torch).
    Refuses if torch is already imported."""
    if any(m == "torch" or m.startswith("torch.") for m in sys.modules):
        raise RuntimeError("expected torch not imported before blocking it, got it imported")
    if not any(isinstance(f, _TorchBlocker) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchBlocker())


def _percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    a = np.asarray(samples_s, dtype=np.float64) * 1e6
    return {
        "min_us": float(a.min()),
        "p50_us": float(np.percentile(a, 50)),
        "p90_us": float(np.percentile(a, 90)),
    }


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
    from edgecl.device import Runtime
    from edgecl.metrics import accuracy_matrix, average_incremental_accuracy, final_accuracy

    xtr, ytr, xte, yte = data
    t0 = time.perf_counter()
    rt = Runtime.load(bundle, threads=threads)
    load_s = time.perf_counter() - t0
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
        f"device: loaded {bundle} in {load_s * 1e3:.0f} ms "
        f"(torch imported: {'torch' in sys.modules})"
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
    lat = _percentiles(times)
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


def run_demo(cfg: DemoConfig, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Host phase here, device phase in a new process with torch blocked; write
    ``report.json`` (and ``--json``/``--plot`` files); return the report."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    xtr, ytr, xte, yte, dataset = load_demo_data(cfg.data_dir, seed=cfg.seed, quick=cfg.quick)
    log(f"data: {dataset}: {len(xtr)} train / {len(xte)} test images")
    host = host_phase(cfg, (xtr, ytr, xte, yte), out, log=log)
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
    from edgecl.cli import machine_info

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
    block_torch()
    data = load_demo_data(args.data_dir, seed=args.seed, quick=args.quick)[:4]
    result = device_phase(
        args.bundle, data, args.out_bundle, seed=args.seed, threads=args.threads, log=print
    )
    if "torch" in sys.modules:  # the hook makes this impossible; say so if it ever is not
        raise RuntimeError("torch was imported in the device phase")
    Path(args.result).write_text(json.dumps(result, default=str))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edgecl.demo --device-phase ...`` (the demo's device half); anything else
    goes to ``edgecl demo``."""
    p = argparse.ArgumentParser(prog="python -m edgecl.demo")
    p.add_argument("--device-phase", action="store_true")
    p.add_argument("--bundle")
    p.add_argument("--out-bundle")
    p.add_argument("--result")
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    args, rest = p.parse_known_args(argv)
    if args.device_phase:
        if not (args.bundle and args.out_bundle and args.result):
            p.error("--device-phase needs --bundle, --out-bundle and --result")
        return _device_main(args)
    from edgecl.cli import main as cli_main

    return cli_main(["demo", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
