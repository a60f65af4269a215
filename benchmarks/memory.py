"""Class-memory benchmarks: GBM EM fit, pseudo-exemplar sampling, E/M-step variants.

Single-threaded (NUMBA_NUM_THREADS=1, BLAS at 1 thread, set before numpy is imported).
Targets (issue 4): EM for one class of 6,000 x 512-bit embeddings, K = 8, full paper
schedule <= 100 ms; 10,000 pseudo-exemplars <= 10 ms.

    python benchmarks/memory.py [--repeats 7] [--json out.json]

Reports the median and the minimum of ``--repeats`` runs after one warm-up run (compilation),
as wall-clock time and as this process's CPU time.
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from machine import machine_info  # noqa: E402
from numba import njit  # noqa: E402

from edgecl.kernels.bits import pack_bits, unpack_bits  # noqa: E402
from edgecl.kernels.bmm import bmm_em_stats  # noqa: E402
from edgecl.kernels.popcount import popcount64  # noqa: E402
from edgecl.kernels.sampling import sample_bernoulli_words  # noqa: E402
from edgecl.memory import (  # noqa: E402
    GBMConfig,
    GBMMemory,
    LatentBuffer,
    LatentBufferConfig,
    NearestPrototype,
    StreamingLDA,
)
from edgecl.memory.em import fit_bmm  # noqa: E402
from edgecl.memory.quantize import quantize, thresholds  # noqa: E402


def timeit(fn, repeats):
    """Wall-clock and CPU time (this process) per call, median and minimum over ``repeats``.

    The CPU time leaves out the time the process waited for a core: on a loaded shared
    machine it is the better figure of what one thread costs.
    """
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {
        "median_ms": round(1e3 * float(np.median(wall)), 3),
        "min_ms": round(1e3 * float(np.min(wall)), 3),
        "cpu_median_ms": round(1e3 * float(np.median(cpu)), 3),
        "cpu_min_ms": round(1e3 * float(np.min(cpu)), 3),
    }


def embeddings(rng, n, d, k_true=12, flip=0.12):
    """A class-like set of binary embeddings: a few modes with noisy bits."""
    base = rng.random(d) < 0.45
    modes = base ^ (rng.random((k_true, d)) < 0.2)
    comp = rng.integers(0, k_true, n)
    return pack_bits(modes[comp] ^ (rng.random((n, d)) < flip))


# --- alternatives to the library's byte-table E/M pass, for the record ----------------------
@njit(cache=True)
def _setbit_pass(words, n_bits, logit, base):
    """E-step summing logit over the set bits, M-step adding gamma to each set bit's row."""
    n, nw = words.shape
    k_count = logit.shape[0]
    logit_t = np.ascontiguousarray(logit.T)  # (D, K)
    stats_t = np.zeros((n_bits, k_count))
    a = np.empty(k_count)
    for i in range(n):
        for k in range(k_count):
            a[k] = base[k]
        for w in range(nw):
            word = words[i, w]
            while word:
                low = word & (~word + np.uint64(1))
                j = w * 64 + np.int64(popcount64(low - np.uint64(1)))
                for k in range(k_count):
                    a[k] += logit_t[j, k]
                word ^= low
        top = a.max()
        s = 0.0
        for k in range(k_count):
            s += np.exp(a[k] - top)
        lse = top + np.log(s)
        for k in range(k_count):
            a[k] = np.exp(a[k] - lse)
        for w in range(nw):
            word = words[i, w]
            while word:
                low = word & (~word + np.uint64(1))
                j = w * 64 + np.int64(popcount64(low - np.uint64(1)))
                for k in range(k_count):
                    stats_t[j, k] += a[k]
                word ^= low
    return stats_t


def _unpacked_pass(z_f32, logit, base):
    """Unpack once into float32, then BLAS: a = z @ logit.T + base; S = gamma.T @ z."""
    a = z_f32 @ logit.T.astype(np.float32) + base.astype(np.float32)
    a = a.astype(np.float64)
    top = a.max(axis=1, keepdims=True)
    lse = top + np.log(np.exp(a - top).sum(axis=1, keepdims=True))
    gamma = np.exp(a - lse)
    return gamma.astype(np.float32).T @ z_f32


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, d, k = 6000, 512, 8
    z = embeddings(rng, n, d)
    res: dict = {"machine": machine_info(), "threads": 1, "n": n, "d": d, "k": k}

    # 1. the full paper schedule (N_init=5 x N_iter=3 warm-ups, then stop rule eps=1e-3, n_max=10)
    cfg = GBMConfig(components=k, bits=8)
    steps = {}

    def fit_paper():
        r = fit_bmm(z, d, k, rng=np.random.default_rng(1), trainable_pi=cfg.trainable_pi)
        steps["final"] = r.n_steps
        return r

    res["em_paper_schedule"] = timeit(fit_paper, args.repeats)
    res["em_paper_schedule"]["passes"] = 5 * 3 + steps["final"]

    def fit_worst():  # stop rule off: all 5*3 + 10 passes
        fit_bmm(z, d, k, rng=np.random.default_rng(1), epsilon=0.0)

    res["em_worst_case_25_passes"] = timeit(fit_worst, args.repeats)

    def fit_class():
        m = GBMMemory(d, cfg)
        m.fit_class("a", z, seed=1)

    res["gbm_fit_class"] = timeit(fit_class, args.repeats)

    # 2. one EM pass, three ways
    mu = np.clip(unpack_bits(z[:k], d) * 0.8 + 0.1, 1e-3, 1 - 1e-3)
    pi = np.full(k, 1.0 / k)
    log1m = np.log1p(-mu)
    logit = np.log(mu) - log1m
    base = np.log(pi) + log1m.sum(axis=1)
    res["pass_byte_tables"] = timeit(lambda: bmm_em_stats(z, d, mu, pi), args.repeats)
    res["pass_set_bits"] = timeit(lambda: _setbit_pass(z, d, logit, base), args.repeats)
    z_f32 = unpack_bits(z, d).astype(np.float32)
    res["pass_unpacked_blas_f32"] = timeit(lambda: _unpacked_pass(z_f32, logit, base), args.repeats)
    res["unpack_once_f32"] = timeit(lambda: unpack_bits(z, d).astype(np.float32), args.repeats)

    # 3. sampling 10,000 pseudo-exemplars from a 10-class GBM (K=8, q=8)
    mem = GBMMemory(d, cfg)
    for c in range(10):
        mem.fit_class(f"c{c}", embeddings(np.random.default_rng(10 + c), 600, d), seed=c)
    counts = {f"c{c}": 1000 for c in range(10)}
    res["sample_10000_gbm"] = timeit(lambda: mem.sample(counts, seed=3), args.repeats)
    th = np.concatenate([thresholds(quantize(mem.prototypes(c), 8), 8) for c in mem.classes])
    rows = np.random.default_rng(0).integers(0, th.shape[0], 10000)
    res["sample_10000_kernel_only"] = timeit(
        lambda: sample_bernoulli_words(th, rows, d, 3), args.repeats
    )
    buf = LatentBuffer(d, LatentBufferConfig(per_class=20))
    for c in range(10):
        buf.fit_class(f"c{c}", embeddings(np.random.default_rng(10 + c), 600, d), seed=c)
    res["sample_10000_buffer"] = timeit(lambda: buf.sample(counts, seed=3), args.repeats)
    res["gbm_10_classes_nbytes"] = mem.nbytes
    res["buffer_10_classes_nbytes"] = buf.nbytes

    # 4. baselines on the same embeddings
    npc = NearestPrototype(d)
    lda = StreamingLDA(d)
    for c in range(10):
        zc = embeddings(np.random.default_rng(10 + c), 600, d)
        npc.fit_class(f"c{c}", zc)
        lda.fit_class(f"c{c}", zc)
    res["nearest_prototype_predict_6000"] = timeit(lambda: npc.predict(z), args.repeats)
    res["slda_predict_6000"] = timeit(lambda: lda.predict(z), args.repeats)

    for key, val in res.items():
        print(f"{key}: {val}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
