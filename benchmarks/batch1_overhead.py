"""Per-call Python overhead of Runtime.logits at batch 1 (one uint8 image): the whole call,
the embed, the compiled program alone and the head on the words (medians of N calls).
    python benchmarks/batch1_overhead.py BUNDLE [--calls N]"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edgecl.device import Runtime


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
    a = ap.parse_args()
    rt = Runtime.load(a.bundle)
    h, w, c = rt.input_spec.shape
    x = np.random.default_rng(0).integers(0, 256, (1, h, w, c), dtype=np.uint8)
    z = rt.embed(x)
    part = rt.input_spec.normalize(rt.input_spec.check(x))
    rt.logits(x)
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
