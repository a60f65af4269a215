"""Measurements of a loaded :class:`~edgecl.device.Runtime` (torch-free): predict and
learn_class latency beside a check against the NumPy reference kernels, and stored bytes
per part beside their closed forms with the peak working memory of one learn_class.

Both take the runtime and keyword options and return frozen dataclasses with
``to_dict()``; ``edgecl bench latency|memory`` prints them. Neither changes the runtime:
every timed ``learn_class`` runs on the current state and the state is put back after it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgecl.validate import pos_int

__all__ = [
    "LatencyReport",
    "MemoryBench",
    "ReferenceCheck",
    "Stats",
    "bench_latency",
    "bench_memory",
    "bench_samples",
    "fresh_class_name",
    "warm_up",
]

#: The letters of the closed forms (``memory.closed_form``) that name a size field.
_SIZE_TERMS = {"K": "components", "q": "bits", "E": "exemplars"}


@dataclass(frozen=True)
class Stats:
    """min, median, 90th percentile and mean of ``n`` timings, in the unit the field says."""

    min: float
    p50: float
    p90: float
    mean: float
    n: int

    @classmethod
    def of(cls, seconds: Sequence[float], scale: float) -> Stats:
        """Stats of ``seconds`` times ``scale`` (1e6: microseconds, 1e3: milliseconds)."""
        a = np.asarray(seconds, dtype=np.float64) * scale
        if a.size == 0:
            raise ValueError("expected at least one timing, got none")
        return cls(
            min=float(a.min()),
            p50=float(np.percentile(a, 50)),
            p90=float(np.percentile(a, 90)),
            mean=float(a.mean()),
            n=int(a.size),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReferenceCheck:
    """The fast path against the NumPy reference kernels on ``samples`` samples."""

    samples: int
    embedding_bits_equal: bool
    max_logit_diff: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LatencyReport:
    """What :func:`bench_latency` measured (times of the first calls apart)."""

    backend: str
    threads: int
    batch: int
    samples: str
    first_predict_ms: float
    reference_check: ReferenceCheck
    predict_us: Stats
    learn_class_ms: Stats
    learn_from_embeddings_ms: Stats
    first_learn_class_ms: float
    learn_samples: int
    n_classes: int
    n_bits: int
    memory: str | None
    default_size: dict[str, Any] | None
    last_learn_report: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["predict_us"]["per_sample_us_p50"] = self.predict_us.p50 / self.batch
        return out


@dataclass(frozen=True)
class MemoryBench:
    """What :func:`bench_memory` measured: the memory report, the closed form of the class
    memory (None without one) and one learn_class's peak (or why it was refused)."""

    memory: dict[str, Any]
    closed_form: dict[str, Any] | None
    learn_class: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fresh_class_name(runtime: Any) -> str:
    """A class name the runtime has not learned: ``bench``, ``bench1``, ..."""
    name, k = "bench", 0
    while name in runtime.learner.classes:
        k += 1
        name = f"bench{k}"
    return name


def bench_samples(
    runtime: Any,
    n: int,
    *,
    data: np.ndarray | None = None,
    source: str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, str]:
    """At least ``n`` samples for the runtime's input, and where they came from: ``data``
    (repeated if short), the shipped MNIST sample's test part for a 28x28x1 input, or
    random images."""
    h, w, c = runtime.input_spec.shape
    if data is not None:
        x, src = np.asarray(data), source or "the given samples"
        if len(x) == 0:
            raise ValueError("expected at least one sample to measure with, got none")
    elif (h, w, c) == (28, 28, 1):
        from edgecl.data import load_mnist_sample

        x, src = load_mnist_sample(seed=seed)[2], "the shipped MNIST sample (test part)"
    else:
        rng = np.random.default_rng(seed)
        x, src = rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8), "random images"
    if len(x) < n:
        x = np.concatenate([x] * (-(-n // len(x))))
    return x, src


def _restore(runtime: Any, saved: Any) -> None:
    """Put the state of ``saved`` (a :meth:`Runtime.snapshot`) back."""
    runtime.restore(saved)


def bench_latency(
    runtime: Any,
    *,
    batch: int = 1,
    repeat: int = 100,
    learn_samples: int = 100,
    learn_repeat: int = 10,
    data: np.ndarray | None = None,
    source: str | None = None,
    seed: int = 0,
) -> LatencyReport:
    """The first predict (compile or cache load) apart, a check of the fast path against
    the reference kernels, then min/p50/p90 of ``repeat`` predicts at batch ``batch`` and
    of ``learn_repeat`` learn_class calls of ``learn_samples`` samples (the first one
    apart), each also from the embeddings alone; the runtime's state is restored after
    every learn_class."""
    from edgecl.device.runtime import embed_reference, logits_reference

    for name, value in [
        ("batch", batch),
        ("repeat", repeat),
        ("learn_samples", learn_samples),
        ("learn_repeat", learn_repeat),
    ]:
        pos_int(value, name)
    rt = runtime
    x, src = bench_samples(
        rt, max(batch * 4, learn_samples, 64), data=data, source=source, seed=seed
    )
    t1 = time.perf_counter()
    rt.predict(x[:batch])
    first_s = time.perf_counter() - t1
    check = x[:32]
    ref = ReferenceCheck(
        samples=int(len(check)),
        embedding_bits_equal=bool(np.array_equal(rt.embed(check), embed_reference(rt, check))),
        max_logit_diff=float(np.abs(rt.logits(check) - logits_reference(rt, check)).max()),
    )
    times = []
    for i in range(repeat):
        j = (i * batch) % max(len(x) - batch, 1)
        xi = x[j : j + batch]
        t = time.perf_counter()
        rt.predict(xi)
        times.append(time.perf_counter() - t)
    saved = rt.snapshot()
    name = fresh_class_name(rt)
    xl = x[:learn_samples]
    z = rt.embed(xl)
    learn_full, learn_z, report, first_learn = [], [], None, 0.0
    try:
        for i in range(learn_repeat + 1):
            t = time.perf_counter()
            report = rt.learn_class(name, xl, seed=seed + i, trace_memory=False)
            dt = time.perf_counter() - t
            _restore(rt, saved)
            t = time.perf_counter()
            rt.learner.learn(name, z, seed=seed + i, trace_memory=False)
            dz = time.perf_counter() - t
            _restore(rt, saved)
            if i == 0:
                first_learn = dt
                continue
            learn_full.append(dt)
            learn_z.append(dz)
    finally:
        _restore(rt, saved)
    mem = rt.learner.memory
    return LatencyReport(
        backend=str(rt.backend),
        threads=int(rt.threads),
        batch=batch,
        samples=src,
        first_predict_ms=first_s * 1e3,
        reference_check=ref,
        predict_us=Stats.of(times, 1e6),
        learn_class_ms=Stats.of(learn_full, 1e3),
        learn_from_embeddings_ms=Stats.of(learn_z, 1e3),
        first_learn_class_ms=first_learn * 1e3,
        learn_samples=int(len(xl)),
        n_classes=len(rt.learner.classes),
        n_bits=int(rt.n_bits),
        memory=None if mem is None else mem.kind,
        default_size=None if mem is None else mem.default_size().to_dict(),
        last_learn_report=None if report is None else report.to_dict(),
    )


def bench_memory(
    runtime: Any,
    *,
    learn_samples: int = 100,
    data: np.ndarray | None = None,
    source: str | None = None,
    seed: int = 0,
) -> MemoryBench:
    """Stored bytes per part beside the closed form of the class memory (K·D·n_c·q bits
    for GBM, E·D·n_c for the latent buffer), budget and headroom, and the peak working
    memory of one learn_class (the runtime's state is restored after it; a refusal by
    the budget is reported, it is a measurement)."""
    pos_int(learn_samples, "learn_samples")
    rt = runtime
    before = rt.memory()
    mem = rt.learner.memory
    if mem is None:
        return MemoryBench(memory=before.to_dict(), closed_form=None, learn_class=None)
    d, n_c = rt.n_bits, len(mem.classes)
    s = mem.default_size()
    # the memory's own formula (K·D·n_c·q, E·D·n_c) with this bundle's numbers
    terms = {"D": d, "n_c": n_c}
    terms |= {t: getattr(s, a, None) for t, a in _SIZE_TERMS.items()}
    formula = f"{mem.closed_form} = " + "·".join(str(terms[t]) for t in mem.closed_form.split("·"))
    closed = {
        "formula": formula,
        "bits": before.closed_form_bits,
        "bytes": (before.closed_form_bits or 0) // 8,
        "measured_class_memory_bytes": before.class_memory_bytes,
        "overhead_bytes": before.class_memory_bytes - (before.closed_form_bits or 0) // 8,
    }
    x, src = bench_samples(rt, learn_samples, data=data, source=source, seed=seed)
    saved = rt.snapshot()
    try:
        rep = rt.learn_class(fresh_class_name(rt), x[:learn_samples], seed=seed, trace_memory=True)
        learn = {
            "samples": int(rep.n_samples),
            "source": src,
            "peak_bytes": rep.peak_bytes,
            "stored_bytes_after": rep.stored_bytes,
            "gave_up": [g["description"] for g in rep.gave_up],
        }
    except Exception as exc:  # a full budget refuses: report it, it is a measurement
        learn = {"refused": f"{type(exc).__name__}: {exc}"}
    finally:
        _restore(rt, saved)
    return MemoryBench(memory=before.to_dict(), closed_form=closed, learn_class=learn)


def warm_up(
    runtime: Any,
    x: np.ndarray | None = None,
    *,
    learn: bool = True,
    log: Any = None,
) -> dict[str, float]:
    """Compile (or load from Numba's cache) every kernel the runtime's ``predict`` and, with
    ``learn``, ``learn_class``/``update_class`` use, so that no later bar or timer counts
    the compile. Runs on a few samples (``x``, else :func:`bench_samples`); the state is
    restored after the learning calls. Returns the seconds per kernel group and calls
    ``log(line)`` once per group."""
    rt = runtime
    if x is None or len(x) == 0:
        x, _ = bench_samples(rt, 16)
    x = np.asarray(x)
    if len(x) < 9:
        x = np.concatenate([x] * (-(-9 // len(x))))
    seconds: dict[str, float] = {}

    def group(name: str, run: Any) -> None:
        t = time.perf_counter()
        run()
        seconds[name] = time.perf_counter() - t
        if log is not None:
            log(f"  {name}: {seconds[name]:.1f} s")

    def forward() -> None:
        rt.predict(x[:1])
        rt.predict_proba(x[:9])

    def learning() -> None:
        from edgecl.errors import BudgetError

        saved = rt.snapshot()
        name = fresh_class_name(rt)
        try:
            rt.learn_class(name, x[:8], epochs=1, seed=0, trace_memory=False)
            rt.update_class(name, x[:8], epochs=1, seed=0)
        except BudgetError:
            pass  # a full strict budget: nothing to compile ahead of the refusal
        finally:
            _restore(rt, saved)

    group("layer program and head (predict)", forward)
    if learn:
        group("class memory and head training (learn_class, update_class)", learning)
    return seconds
