"""``Runtime.predict`` against ``Runtime.logits`` at batch 1 (issue 15: predict within 1.2x
of logits, the GBM term cheap), one uint8 image, in interleaved rounds.

The bundle should carry a class memory and a head ``gbm_weight`` > 0 (the demo's
``model.ecl``: GBM K = 6, q = 2, ``gbm_weight`` 0.1), else predict ranks the logits alone;
classes 0..9 it has not learned are learned first from the shipped MNIST sample (100 images
each). One thread: run it pinned (``taskset -c 1``).

    python benchmarks/predict_vs_logits.py edgecl-demo/model.ecl [--isa avx2] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def _round_medians(times: list[float], rounds: int) -> list[float]:
    per = np.asarray(times).reshape(rounds, -1)
    return [float(np.median(r) * 1e6) for r in per]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=300, help="timed calls per round and call")
    ap.add_argument("--isa", choices=("native", "avx2"), default="native")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.isa == "avx2":  # before anything imports numba
        from edgecl.machine import avx2_only_env

        os.environ.update(avx2_only_env())
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from edgecl.data.sample import load_mnist_sample
    from edgecl.device import Runtime
    from edgecl.kernels.popcount import default_strategy, numba_target
    from edgecl.machine import machine_info

    rt = Runtime.load(args.bundle)
    x, y, xt, _ = load_mnist_sample()
    learned = []
    for c in range(10):
        if str(c) not in set(rt.learner.classes):
            rt.learn_class(str(c), x[y == c][:100], seed=0, trace_memory=False)
            learned.append(str(c))
    image = xt[:1]
    calls = {"logits": rt.logits, "predict": rt.predict}
    for fn in calls.values():
        for _ in range(50):
            fn(image)
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(args.rounds):
        for name, fn in calls.items():
            for _ in range(args.calls):
                t0 = time.perf_counter()
                fn(image)
                times[name].append(time.perf_counter() - t0)
    median = {k: float(np.median(v) * 1e6) for k, v in times.items()}
    best = {k: min(_round_medians(v, args.rounds)) for k, v in times.items()}
    report = {
        "command": " ".join([Path(sys.executable).as_posix(), *sys.argv]),
        "machine": machine_info(),
        "numba_target": numba_target().cpu_name,
        "popcount_strategy": default_strategy().name,
        "bundle": str(args.bundle),
        "gbm_weight": rt.learner.settings.gbm_weight,
        "classes": list(rt.learner.classes),
        "learned_here": learned,
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "median_us": median,
        "best_round_median_us": best,
        "predict_over_logits_median": median["predict"] / median["logits"],
        "predict_over_logits_best_round": best["predict"] / best["logits"],
        "target": "predict <= 1.2x logits",
    }
    print(
        f"{args.bundle} ({report['numba_target']}, {report['popcount_strategy']}; gbm_weight "
        f"{report['gbm_weight']}, {len(report['classes'])} classes): logits {median['logits']:.1f}"
        f" us, predict {median['predict']:.1f} us median -> predict / logits "
        f"{report['predict_over_logits_median']:.3f}x (best round "
        f"{report['predict_over_logits_best_round']:.3f}x); target <= 1.2x "
        f"{'met' if report['predict_over_logits_median'] <= 1.2 else 'NOT met'}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
