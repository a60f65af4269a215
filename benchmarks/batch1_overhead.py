"""Per-call Python overhead of Runtime.logits at batch 1 (one uint8 image): the whole call,
the embed, the compiled program alone and the head on the words (medians of N calls);
with --steps, each compiled program step alone first (where the time goes), with the
Numba target and popcount strategy.
    python benchmarks/batch1_overhead.py BUNDLE [--calls N] [--steps]
(NUMBA_NUM_THREADS=1 and a pinned process, e.g. ``taskset -c 1``, for one-thread figures)"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edgecl.device import Runtime
from edgecl.kernels.popcount import default_strategy, numba_target


def median_us(fn, calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--steps", action="store_true", help="time each program step first")
    a = ap.parse_args()
    rt = Runtime.load(a.bundle)
    h, w, c = rt.input_spec.shape
    x = np.random.default_rng(0).integers(0, 256, (1, h, w, c), dtype=np.uint8)
    z = rt.embed(x)
    part = rt.input_spec.normalize(rt.input_spec.check(x))
    rt.logits(x)
    if a.steps:
        print(f"Numba target {numba_target().cpu_name}, strategy {default_strategy().name}")
        v, total = part, 0.0
        for name, step in rt._program.steps:
            t = median_us(lambda s=step, u=v: s(u), a.calls)
            total += t
            print(f"{name:48s} {t:8.1f} us   input {v.shape} {v.dtype}")
            v = step(v)
        print(f"{'steps, summed':48s} {total:8.1f} us")
    for name, fn in (
        ("Runtime.logits", lambda: rt.logits(x)),
        ("Runtime.embed", lambda: rt.embed(x)),
        ("compiled program", lambda: rt._program(part)),
        ("head on the words", lambda: rt.learner.logits(z, trusted=True)),
        ("head, checked", lambda: rt.learner.logits(z)),
    ):
        print(f"{name:18s} {median_us(fn, a.calls):8.1f} us")


if __name__ == "__main__":
    main()
