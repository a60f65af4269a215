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
    balanced_batches,
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


def _head_scores(z_bits_f32, weight, bias):
    return z_bits_f32 @ weight + bias


def _train_head(weight, bias, batches, lr):
    from edgecl.kernels.head import softmax_head_step

    for words, labels in batches:
        weight, bias, _ = softmax_head_step(words, weight.shape[0], weight, bias, labels, lr)
    return weight, bias


def _real_batches(z, y, batch, epochs, rng):
    for _ in range(epochs):
        perm = rng.permutation(z.shape[0])
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            yield z[idx], y[idx]


def quality(args) -> dict:
    """Class-incremental MNIST on binarized pixels (784 bits, pixel > 127) as a stand-in F:
    base classes 0-4, then 5, 6, 7, 8, 9 one at a time; a float32 softmax head retrained on
    class-balanced batches (eq. 4) of the new class + replay, or a head-free classifier."""
    from edgecl.data.idx import load_idx_dataset
    from edgecl.metrics import accuracy_matrix, average_incremental_accuracy, final_accuracy

    xtr, ytr, xte, yte = load_idx_dataset(args.mnist)
    d = 784
    ztr = pack_bits(xtr.reshape(len(xtr), -1) > 127)
    zte = pack_bits(xte.reshape(len(xte), -1) > 127)
    xte_f = unpack_bits(zte, d).astype(np.float32)
    steps = [[0, 1, 2, 3, 4], [5], [6], [7], [8], [9]]
    per_class = {c: ztr[ytr == c] for c in range(10)}
    weights = [int(np.isin(yte, s).sum()) for s in steps]
    batch, lr = 64, 0.05

    def head_run(make_memory, seed):
        rng = np.random.default_rng(seed)
        mem = make_memory()
        base = steps[0]
        zb = np.concatenate([per_class[c] for c in base])
        yb = np.concatenate([np.full(len(per_class[c]), c) for c in base])
        w = np.zeros((d, len(base)), np.float32)
        b = np.zeros(len(base), np.float32)
        w, b = _train_head(w, b, _real_batches(zb, yb, batch, 2, rng), lr)
        preds = []
        for c in base:
            if mem is not None:
                mem.fit_class(str(c), per_class[c], seed=rng)
        preds.append(np.argmax(_head_scores(xte_f, w, b), axis=1))
        for step in steps[1:]:
            c = step[0]
            w = np.concatenate([w, np.zeros((d, 1), np.float32)], axis=1)
            b = np.concatenate([b, np.zeros(1, np.float32)])
            if mem is None:  # no replay: fine-tune on the new class alone
                yc = np.full(len(per_class[c]), c)
                w, b = _train_head(w, b, _real_batches(per_class[c], yc, batch, 1, rng), lr)
            else:
                idx = {str(k): k for k in range(c + 1)}
                bb = balanced_batches(
                    mem, {str(c): per_class[c]}, batch_size=batch, class_index=idx, seed=rng
                )
                w, b = _train_head(w, b, bb, lr)
                mem.fit_class(str(c), per_class[c], seed=rng)
            preds.append(np.argmax(_head_scores(xte_f, w, b), axis=1))
        nbytes = 0 if mem is None else mem.nbytes
        return preds, nbytes

    def free_run(make_model, predict_fn):
        model = make_model()
        seeded = isinstance(model, GBMMemory)
        preds = []
        for step in steps:
            for c in step:
                if seeded:
                    model.fit_class(str(c), per_class[c], seed=c)
                else:
                    model.fit_class(str(c), per_class[c])
            cls = [int(k) for k in model.classes]
            preds.append(np.array(cls)[predict_fn(model, zte)])
        return preds, model.nbytes

    fast = dict(n_init=5, n_iter=3, n_max=10)
    runs = {
        "head, GBM K=8 q=8": lambda: GBMMemory(d, GBMConfig(components=8, bits=8, **fast)),
        "head, GBM K=1 q=8": lambda: GBMMemory(d, GBMConfig(components=1, bits=8, **fast)),
        "head, GBM K=1 q=1": lambda: GBMMemory(d, GBMConfig(components=1, bits=1, **fast)),
        "head, latent buffer E=20": lambda: LatentBuffer(d, LatentBufferConfig(per_class=20)),
        "head, all real embeddings (buffer of everything)": lambda: LatentBuffer(
            d, LatentBufferConfig(per_class=7000)
        ),
        "head, no replay": lambda: None,
    }
    out: dict = {}
    for name, make in runs.items():
        finals, aias = [], []
        t = time.perf_counter()
        for seed in range(args.seeds):
            preds, nbytes = head_run(make, seed)
            acc = accuracy_matrix(yte, preds, steps)
            finals.append(final_accuracy(acc, weights))
            aias.append(average_incremental_accuracy(acc, weights))
        out[name] = {
            "final_accuracy": round(float(np.mean(finals)), 4),
            "final_accuracy_per_seed": [round(f, 4) for f in finals],
            "average_incremental_accuracy": round(float(np.mean(aias)), 4),
            "class_memory_bytes": nbytes,
            "seconds_per_seed": round((time.perf_counter() - t) / args.seeds, 1),
        }
        print(name, out[name], flush=True)
    free = {
        "no head, GBM K=8 q=8 likelihood": (
            lambda: GBMMemory(d, GBMConfig(components=8, bits=8, **fast)),
            lambda m, z: np.argmax(m.log_likelihood(z), axis=1),
        ),
        "no head, nearest prototype (Hamming)": (
            lambda: NearestPrototype(d),
            lambda m, z: m.predict(z),
        ),
        "no head, streaming LDA": (lambda: StreamingLDA(d), lambda m, z: m.predict(z)),
    }
    for name, (make, pred) in free.items():
        t = time.perf_counter()
        preds, nbytes = free_run(make, pred)
        acc = accuracy_matrix(yte, preds, steps)
        out[name] = {
            "final_accuracy": round(final_accuracy(acc, weights), 4),
            "average_incremental_accuracy": round(average_incremental_accuracy(acc, weights), 4),
            "class_memory_bytes": nbytes,
            "seconds": round(time.perf_counter() - t, 1),
        }
        print(name, out[name], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--quality",
        action="store_true",
        help="also run class-incremental MNIST on binarized pixels (accuracy, not speed)",
    )
    ap.add_argument("--mnist", default="/work/shared/data/mnist")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()
    if args.skip_speed:
        res = {"machine": machine_info(), "quality": quality(args)}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=2)
        return
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
    if args.quality:
        res["quality"] = quality(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
