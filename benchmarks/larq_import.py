"""A Larq model imported without TensorFlow, then learning new classes on the device.

Two steps, two venvs (TensorFlow and edgecl's runtime never in the same one):

    # 1. in the LCE venv (TF 2.16 + larq 0.14): train a small Larq net on the MNIST sample
    #    shipped with edgecl, classes 0-4, and record its TensorFlow test accuracy
    /root/lce-venv/bin/python benchmarks/make_larq_fixtures.py train --out /tmp/larq-mnist
    # 2. in edgecl's venv (no TensorFlow): import it, learn 5..9 one class at a time
    .venv/bin/python benchmarks/larq_import.py --model-dir /tmp/larq-mnist --json out.json

Step 2 imports ``mnist04.h5`` (the base classes' class memory fitted on the training part
of the same split), checks the device logits against the ones TensorFlow wrote for the
test part, then learns each class 5..9 from its training samples with ``learn_class`` and
reports accuracy on the test part: the base classes as TensorFlow and the device score
them, and all ten classes after learning.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from edgecl.data import load_idx_pair, sample_dir
from edgecl.device import Runtime
from edgecl.larq import import_larq
from edgecl.memory import GBMConfig


def _sample():
    d = sample_dir()
    return load_idx_pair(d / "t10k-images-idx3-ubyte.gz", d / "t10k-labels-idx1-ubyte.gz")


def run(model_dir: Path, *, components: int, bits: int, per_class: int, seed: int) -> dict:
    x, y = _sample()
    split = np.load(model_dir / "mnist_split.npz")
    tr, te = split["train"], split["test"]
    tf = json.loads((model_dir / "mnist04.json").read_text())
    tf_test = np.load(model_dir / "mnist04_test.npz")
    base = [str(c) for c in range(5)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "base.ecl"
        import_larq(
            model_dir / "mnist04.h5",
            out,
            calibration=(x[tr], y[tr]),
            class_names=base,
            max_samples=2000,
            memory=GBMConfig(components=components, bits=bits),
            seed=seed,
        )
        rt = Runtime.load(out)
    xt, yt = x[te], y[te]
    logits = rt.logits(xt)
    mask = yt < 5
    dev_base = float((np.argmax(logits[mask], 1) == yt[mask]).mean())
    tf_logits = tf_test["logits_0_4"]  # TensorFlow's, on the test samples of 0-4
    agree = float((np.argmax(logits[mask], 1) == np.argmax(tf_logits, 1)).mean())
    logit_diff = float(np.abs(logits[mask] - tf_logits).max())
    steps = []
    for c in range(5, 10):
        xs = x[tr][y[tr] == c][:per_class]
        rt.learn_class(str(c), xs, seed=seed + c, trace_memory=False)
        pred = rt.predict(xt).astype(int)
        seen = yt <= c
        steps.append({"learned": c, "accuracy_seen": float((pred[seen] == yt[seen]).mean())})
    pred = rt.predict(xt).astype(int)
    mem = rt.memory()
    return {
        "tensorflow_accuracy_0_4": tf["tensorflow_test_accuracy_0_4"],
        "device_accuracy_0_4_after_import": dev_base,
        "argmax_agreement_with_tensorflow": agree,
        "max_logit_diff_vs_tensorflow": logit_diff,
        "final_accuracy_0_9": float((pred == yt).mean()),
        "final_accuracy_old_0_4": float((pred[mask] == yt[mask]).mean()),
        "final_accuracy_new_5_9": float((pred[~mask] == yt[~mask]).mean()),
        "steps": steps,
        "class_memory_bytes": int(mem.class_memory_bytes),
        "stored_bytes": int(mem.stored_bytes),
        "test_samples": int(len(te)),
        "samples_per_new_class": per_class,
        "gbm": {"components": components, "bits": bits},
        "tensorflow_training": tf,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--components", type=int, default=8)
    p.add_argument("--bits", type=int, default=8)
    p.add_argument("--per-class", type=int, default=200, help="samples per new class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    res = run(
        args.model_dir,
        components=args.components,
        bits=args.bits,
        per_class=args.per_class,
        seed=args.seed,
    )
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
