"""Train the 28x28 binary CNN (edgecl.train.mnist_bnn) on MNIST and report test accuracy.

Examples (single-threaded, as recorded in benchmarks/RESULTS.md, section Training):

    python benchmarks/train_mnist.py --optimizer adam --epochs 5
    python benchmarks/train_mnist.py --optimizer bayesbinn --epochs 5 --lr 1e-3
    python benchmarks/train_mnist.py --classes 0 1 2 3 4 --embedding heaviside --epochs 3
    python benchmarks/train_mnist.py --classes 0 1 2 3 4 --embedding thermometer --epochs 4

Writes a JSON report (``--json``) and a checkpoint (``--checkpoint``) when asked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from edgecl.data import load_idx_dataset, load_mnist_sample
from edgecl.machine import cpu_model
from edgecl.train import evaluate, fit, mnist_bnn, save_checkpoint


def parser() -> argparse.ArgumentParser:
    """The command line (also used by benchmarks/embeddings_table.py to build its runs)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", default="/work/shared/data/mnist", help="folder of the 4 IDX files, or 'sample'"
    )
    ap.add_argument("--optimizer", choices=["adam", "bayesbinn"], default="adam")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--float-lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--embedding", choices=["heaviside", "thermometer"], default="heaviside")
    ap.add_argument("--n-bits", type=int, default=512)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--phase1-epochs", type=int, default=None)
    ap.add_argument("--temperature", type=float, default=1e-10)
    ap.add_argument("--classes", type=int, nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="write the report here")
    ap.add_argument("--checkpoint", default=None, help="save the trained model here")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def train(args: argparse.Namespace, data=None) -> tuple[torch.nn.Module, dict]:
    """Train as the command line ``args`` says; ``data = (x_tr, y_tr, x_te, y_te)`` replaces
    ``args.data``. Returns the model (eval mode) and the JSON report."""
    torch.set_num_threads(args.threads)
    if data is not None:
        x_tr, y_tr, x_te, y_te = data
    elif args.data == "sample":
        x_tr, y_tr, x_te, y_te = load_mnist_sample()
    else:
        x_tr, y_tr, x_te, y_te = load_idx_dataset(args.data)
    classes = list(range(10)) if args.classes is None else list(args.classes)
    torch.manual_seed(args.seed)
    model = mnist_bnn(
        len(classes), embedding=args.embedding, n_bits=args.n_bits, levels=args.levels
    )
    t0 = time.perf_counter()
    hist = fit(
        model,
        (x_tr, y_tr),
        epochs=args.epochs,
        optimizer=args.optimizer,
        lr=args.lr,
        float_lr=args.float_lr,
        batch_size=args.batch_size,
        seed=args.seed,
        classes=classes,
        val_data=(x_te, y_te),
        temperature=args.temperature,
        phase1_epochs=args.phase1_epochs,
        progress=not args.no_progress,
        callback=lambda h: print(
            f"epoch {h.epoch[-1]}: loss {h.train_loss[-1]:.4f} train {h.train_acc[-1]:.4f} "
            f"test {h.val_acc[-1]:.4f} ({h.seconds[-1]:.0f} s)",
            flush=True,
        ),
    )
    seconds = time.perf_counter() - t0
    acc = evaluate(model, x_te, y_te, classes=classes)
    report = {
        "test_accuracy": acc,
        "classes": classes,
        "n_test": int(np.isin(y_te, classes).sum()),
        "train_seconds": seconds,
        "history": hist.to_dict(),
        "args": vars(args),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "threads": args.threads,
            "torch": str(torch.__version__),
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    print(hist)
    print(f"test accuracy on classes {classes}: {acc:.4f}  ({seconds:.0f} s training)")
    return model, report


def main() -> None:
    args = parser().parse_args()
    model, report = train(args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.checkpoint:
        classes = report["classes"]
        save_checkpoint(model, args.checkpoint, class_names=[str(c) for c in classes], meta=report)


if __name__ == "__main__":
    main()
