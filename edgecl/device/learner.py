"""The device's continual-learning state on packed embeddings: the head G, the class memory,
the byte budget, and the verbs learn / update / forget (GBM paper §3.2, Figure 2).

Torch-free (NumPy + Numba, onnxruntime optional). It works on embeddings (``uint64`` words
(N, n_words(D)), :mod:`edgecl.kernels.bits`), so it is testable without a bundle; the
:class:`~edgecl.device.runtime.Runtime` embeds raw samples with the frozen F and delegates here.

``learn(name, z)`` follows Figure 2:

1. check the budget before anything changes (:func:`edgecl.memory.plan_class_addition`):
   the stored bytes after the call (class memory + the head's rows: D weights + a bias per
   class, float32) must fit; ``strict`` raises :class:`~edgecl.errors.BudgetError` naming
   the bytes needed and free; ``adapt`` shrinks stored classes (and/or the new one) and the
   report says what was given up;
2. on copies: shrink the memory as planned, add a zero column to the head, retrain the
   head on class-balanced batches (eq. 4) of the new class's real embeddings and
   pseudo-exemplars of every old class (fresh every batch), one SGD step per batch with
   the Numba step of :mod:`edgecl.device.headstep` (``backend="numba"``; the math of
   :func:`edgecl.kernels.head.softmax_head_step`) or the bundle's ``head_step`` graph
   (``backend="onnxruntime"``: every kernel is one of the bundle's ONNX graphs,
   :mod:`edgecl.device.ort`, and Numba is never imported), then fit the new class's
   memory (BMM by EM, eqs. 1-3, or buffered exemplars);
3. commit: swap the copies in. A failure anywhere before leaves everything unchanged.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecl.bundle import HEAD_BITS, encode_head, head_bytes_per_class, head_weight, round_head
from edgecl.device.reports import LearnReport, MemoryReport, format_bytes
from edgecl.errors import BudgetError, BundleError
from edgecl.memory import Budget, apply_plan, memory_from_state
from edgecl.memory import plan_class_addition as _plan
from edgecl.memory._common import check_words

__all__ = ["BACKENDS", "HeadSettings", "Learner", "check_class_name"]

BACKENDS = ("numba", "onnxruntime")
MAX_NAME = 128


def check_class_name(name: object) -> str:
    """A class name: a non-empty str of at most 128 printable characters."""
    if not isinstance(name, str):
        raise TypeError(f"expected a class name as str, got {type(name).__name__}")
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValueError(
            f"expected a non-empty printable class name of at most {MAX_NAME} characters, "
            f"got {name!r}"
        )
    return name


def _pos_int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"expected {what} as an int >= 1, got {v!r}")
    return int(v)


@dataclass(frozen=True)
class HeadSettings:
    """How the head G is retrained on the device: SGD ``lr``, ``epochs`` (passes over the
    new class's samples), ``batch_size`` (B of eq. 4) and L2 ``weight_decay``; and how
    predictions use the class memory: ``gbm_weight`` lambda > 0 scores a sample by
    ``log_softmax(head logits) + lambda * log_softmax(log p(z | class))``, the GBM mixtures'
    own likelihood (edgecl's addition beyond the paper; no extra stored bytes)."""

    lr: float = 0.05
    epochs: int = 5
    batch_size: int = 64
    weight_decay: float = 0.0
    gbm_weight: float = 0.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.gbm_weight, bool)
            or not isinstance(self.gbm_weight, (int, float))
            or not (math.isfinite(self.gbm_weight) and self.gbm_weight >= 0)
        ):
            raise ValueError(f"expected a finite gbm_weight >= 0, got {self.gbm_weight!r}")
        for name in ("lr", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"expected a finite head {name}, got {v!r}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(
                f"expected lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )
        _pos_int(self.epochs, "head epochs")
        _pos_int(self.batch_size, "head batch_size")

    @classmethod
    def from_manifest(cls, head: Mapping[str, Any]) -> HeadSettings:
        d = cls()
        return cls(
            lr=float(head.get("lr", d.lr)),
            epochs=int(head.get("epochs", d.epochs)),
            batch_size=int(head.get("batch_size", d.batch_size)),
            weight_decay=float(head.get("weight_decay", d.weight_decay)),
            gbm_weight=float(head.get("gbm_weight", d.gbm_weight)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "weight_decay": self.weight_decay,
            "gbm_weight": self.gbm_weight,
        }


@contextmanager
def _peak_tracer():
    """Yield a one-item list that receives the traced peak bytes of the block (numpy's
    allocations are traced; a tracer already running is reused, its peak reset)."""
    out: list[int | None] = [None]
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield out
    finally:
        out[0] = max(0, tracemalloc.get_traced_memory()[1] - base)
        if started:
            tracemalloc.stop()


def _eq4_counts(batch_size: int, n_classes: int, step: int) -> np.ndarray:
    """Eq. 4 as integer counts per class (new classes first): every class gets
    ``B // n`` and the ``B % n`` left-over places rotate with ``step`` (as
    :func:`edgecl.memory.class_balanced_counts`)."""
    base, rem = divmod(int(batch_size), n_classes)
    counts = np.full(n_classes, base, np.int64)
    start = (step * rem) % n_classes
    counts[(start + np.arange(rem)) % n_classes] += 1
    return counts


def n_batches_per_epoch(batch_size: int, n_classes: int, new: Mapping[str, np.ndarray]) -> int:
    """Batches per epoch: every new sample shown once at its eq. 4 share."""
    share = max(batch_size // max(n_classes, 1), 1)
    return max(-(-z.shape[0] // share) for z in new.values())


def eq4_batches(
    memory: Any,
    new: Mapping[str, np.ndarray],
    *,
    batch_size: int,
    epochs: int,
    class_index: Mapping[str, int],
    rng: np.random.Generator,
):
    """Class-balanced batches (GBM eq. 4) of the new classes' embeddings and fresh
    pseudo-exemplars of every old class, ``(words, labels)`` per batch.

    The batches of :func:`edgecl.memory.balanced_batches`, with the pseudo-exemplars of a
    whole run drawn in one ``memory.sample`` call (each batch still gets its own, never
    reused) instead of one call per batch; samples are grouped by class within a batch
    (the SGD step averages over the batch, so order does not matter).
    """
    new_names = list(new)
    old = [c for c in memory.classes if c not in new and c in class_index]
    names = new_names + old
    n = len(names)
    per_epoch = n_batches_per_epoch(batch_size, n, new)
    steps = per_epoch * epochs
    counts = np.stack([_eq4_counts(batch_size, n, s % per_epoch) for s in range(steps)])
    pools: dict[str, np.ndarray] = {}
    if old:
        totals = {c: int(counts[:, len(new_names) + i].sum()) for i, c in enumerate(old)}
        words, labels = memory.sample(totals, rng=rng)
        start = 0
        for c in old:  # memory.sample groups by class in the order of the counts
            pools[c] = words[start : start + totals[c]]
            start += totals[c]
    # the run laid out one epoch of batches at a time (bounded extra memory), batch after
    # batch, each batch grouped by class; every new sample once per pass over it, in a fresh
    # random order each pass; the old classes' pseudo-exemplars in the order drawn
    n_words = next(iter(new.values())).shape[1]
    order: dict[str, np.ndarray] = {}  # the new samples' indices for the whole run
    for c in new_names:
        m = new[c].shape[0]
        total = int(counts[:, names.index(c)].sum())
        order[c] = np.concatenate([rng.permutation(m) for _ in range(-(-total // m))])[:total]
    used = dict.fromkeys(names, 0)
    for s0 in range(0, steps, per_epoch):
        block = counts[s0 : s0 + per_epoch]
        batch = block.sum(axis=1)
        ends = np.cumsum(batch)
        words_all = np.empty((int(ends[-1]), n_words), np.uint64)
        labels_all = np.empty(int(ends[-1]), np.int64)
        starts = (ends - batch)[:, None] + np.cumsum(block, axis=1) - block
        for i, c in enumerate(names):
            k = block[:, i]
            total = int(k.sum())
            if total == 0:
                continue
            pos = np.repeat(starts[:, i] - (np.cumsum(k) - k), k) + np.arange(total)
            span = slice(used[c], used[c] + total)
            words_all[pos] = new[c][order[c][span]] if c in new else pools[c][span]
            labels_all[pos] = class_index[c]
            used[c] += total
        for lo, hi in zip(ends - batch, ends, strict=True):
            yield words_all[lo:hi], labels_all[lo:hi]


class Learner:
    """Head G + class memory + budget on packed D-bit embeddings.

    ``classes`` name the head's columns (``weight`` float32 (D, C), ``bias`` (C,));
    ``memory`` is a :class:`~edgecl.memory.GBMMemory`, a :class:`~edgecl.memory.LatentBuffer`
    or None (then the learner can predict and forget but not learn); ``budget`` a
    :class:`~edgecl.memory.Budget` over the stored bytes, or None (unbounded, ``policy``
    still recorded). The arrays given are copied.
    """

    def __init__(
        self,
        n_bits: int,
        classes: Sequence[str],
        weight: np.ndarray,
        bias: np.ndarray,
        *,
        memory: Any = None,
        budget: Budget | None = None,
        policy: str = "strict",
        settings: HeadSettings | None = None,
        backend: str = "numba",
        ort: Any = None,
        threads: int = 1,
        head_bits: int = 32,
    ) -> None:
        self.n_bits = _pos_int(n_bits, "n_bits")
        if isinstance(head_bits, bool) or head_bits not in HEAD_BITS:
            raise ValueError(f"expected head_bits in {HEAD_BITS}, got {head_bits!r}")
        self.head_bits = int(head_bits)
        names = [check_class_name(c) for c in classes]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"expected at least one distinct class name, got {names}")
        w = np.array(weight, dtype=np.float32, copy=True, order="C")
        b = np.array(bias, dtype=np.float32, copy=True, order="C")
        if w.shape != (self.n_bits, len(names)) or b.shape != (len(names),):
            raise ValueError(
                f"expected head weight ({self.n_bits}, {len(names)}) and bias ({len(names)},), "
                f"got {w.shape} and {b.shape}"
            )
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError("expected a finite head, got NaN or inf")
        if memory is not None:
            if memory.n_bits != self.n_bits:
                raise ValueError(f"expected a memory of D={self.n_bits}, got D={memory.n_bits}")
            extra = [c for c in memory.classes if c not in names]
            if extra:
                raise ValueError(f"expected memory classes among the head's, got extra {extra}")
        if budget is not None and not isinstance(budget, Budget):
            raise TypeError(f"expected a Budget or None, got {type(budget).__name__}")
        if backend not in BACKENDS:
            raise ValueError(f"expected backend in {BACKENDS}, got {backend!r}")
        self.settings = HeadSettings() if settings is None else settings
        if not isinstance(self.settings, HeadSettings):
            raise TypeError(f"expected HeadSettings, got {type(self.settings).__name__}")
        self.classes: tuple[str, ...] = tuple(names)
        # the head as stored (float32, float16 or int8 + scale): what predicts is what is saved
        self.weight = w if self.head_bits == 32 else round_head(w, self.head_bits)
        self.bias = b
        self.memory = memory
        self.budget = budget
        self.policy = budget.policy if budget is not None else str(policy)
        self.backend = backend
        self.threads = int(threads)
        # backend="onnxruntime": an edgecl.device.ort.OrtKernels (the bundle's graphs) runs
        # the head, its steps and the GBM memory's EM, quantisation and sampling
        self._ort = ort
        if backend == "onnxruntime":
            if ort is None:
                raise BundleError(
                    "backend='onnxruntime' needs the bundle's learning graphs, got none "
                    "(Learner.from_manifest reads them)"
                )
            if memory is not None and memory.kind == "gbm":
                self.memory = memory.with_kernels(ort.memory_kernels())
        else:
            from edgecl.kernels.float_dense import binary_float_dense  # (Numba)

            self._float_dense = binary_float_dense
        self.last_peak_bytes: int | None = None
        self.stored_bytes_check()

    @property
    def ort(self) -> Any:
        """The bundle's graphs in onnxruntime (:class:`edgecl.device.ort.OrtKernels`) with
        ``backend="onnxruntime"``; None with Numba."""
        return self._ort

    # -- bytes ---------------------------------------------------------------------------
    @property
    def head_bytes_per_class(self) -> int:
        """One head row as stored: D weights at ``head_bits``, the float32 bias (and the
        float32 scale of an int8 row)."""
        return head_bytes_per_class(self.n_bits, self.head_bits)

    @property
    def head_bytes(self) -> int:
        return self.head_bytes_per_class * len(self.classes)

    @property
    def class_memory_bytes(self) -> int:
        return 0 if self.memory is None else int(self.memory.nbytes)

    @property
    def stored_bytes(self) -> int:
        """Everything the budget covers: class memory + the head's rows."""
        return self.class_memory_bytes + self.head_bytes

    @property
    def budget_bytes(self) -> int | None:
        return None if self.budget is None else int(self.budget.bytes)

    def stored_bytes_check(self) -> None:
        """Raise :class:`BudgetError` if the stored bytes exceed the budget now."""
        if self.budget is not None and self.stored_bytes > self.budget.bytes:
            raise BudgetError(
                f"the stored bytes ({self.stored_bytes}: class memory "
                f"{self.class_memory_bytes}, head {self.head_bytes}) exceed the budget of "
                f"{self.budget.bytes} bytes",
                needed=self.stored_bytes,
                free=self.budget.bytes - self.stored_bytes,
                part="stored bytes",
            )

    # -- forward -------------------------------------------------------------------------
    def logits(self, z_words: np.ndarray) -> np.ndarray:
        """Head logits ``z @ W + b`` (float32 (n, C)) for packed embeddings."""
        return self._head_logits(check_words(z_words, self.n_bits), self.weight, self.bias)

    def _head_logits(self, z: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        if self._ort is not None:
            return self._ort.logits(z, weight, bias)
        return self._float_dense(z, weight, self.n_bits, threads=self.threads) + bias

    def _gbm_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(A (D, K_total) float32, const (K_total,), owner (K_total,))`` with
        ``log pi_k p(z | mu_k) = z . A[:, k] + const[k]`` for every stored component, in
        head class order; None when some head class has no GBM mixture."""
        mem = self.memory
        if mem is None or getattr(mem, "kind", None) != "gbm":
            return None
        if any(c not in mem.classes for c in self.classes):
            return None
        key = (id(mem), self.classes)
        if getattr(self, "_gbm_key", None) == key:
            return self._gbm_cache
        cols, consts, owner = [], [], []
        for i, c in enumerate(self.classes):
            mu = np.clip(mem.prototypes(c), 1e-3, 1.0 - 1e-3)
            pi = mem.mixing_weights(c)
            pi = pi / pi.sum()
            with np.errstate(divide="ignore"):
                cols.append((np.log(mu) - np.log1p(-mu)).T)
                consts.append(np.log1p(-mu).sum(axis=1) + np.log(pi))
            owner.append(np.full(mu.shape[0], i, np.int64))
        tables = (
            np.ascontiguousarray(np.concatenate(cols, axis=1), np.float32),
            np.concatenate(consts),
            np.concatenate(owner),
        )
        self._gbm_key, self._gbm_cache = key, tables
        return tables

    def gbm_log_likelihood(self, z_words: np.ndarray) -> np.ndarray | None:
        """``log p(z | class)`` (n, C) float64 under each class's stored mixture (eq. 3's
        model with the dequantized prototypes), head class order; None without GBM."""
        if self._ort is not None:
            inputs = self._ort.gbm_inputs(self.memory, self.classes)
            if inputs is None:
                return None
            z = check_words(z_words, self.n_bits)
            return self._ort.scores(z, self.weight, self.bias, *inputs, 0.0)[0]
        tables = self._gbm_tables()
        if tables is None:
            return None
        a, const, owner = tables
        z = check_words(z_words, self.n_bits)
        comp = self._float_dense(z, a, self.n_bits, threads=self.threads) + const
        n_cls = len(self.classes)
        if owner.size % n_cls == 0 and np.array_equal(
            owner, np.repeat(np.arange(n_cls), owner.size // n_cls)
        ):  # every class has the same K: one vectorised logsumexp
            part = comp.reshape(z.shape[0], n_cls, -1)
            top = part.max(axis=2)
            return top + np.log(np.exp(part - top[:, :, None]).sum(axis=2))
        out = np.full((z.shape[0], n_cls), -np.inf)
        for i in range(n_cls):
            part = comp[:, owner == i]
            top = part.max(axis=1)
            out[:, i] = top + np.log(np.exp(part - top[:, None]).sum(axis=1))
        return out

    def scores(self, z_words: np.ndarray) -> np.ndarray:
        """What predictions rank (float64 (n, C)): the head logits, or with ``gbm_weight``
        lambda > 0 ``log_softmax(logits) + lambda * log_softmax(log p(z | class))``."""
        lam = self.settings.gbm_weight
        if self._ort is not None:
            z = check_words(z_words, self.n_bits)
            return self._ort.ranked_scores(
                z, self.weight, self.bias, self.classes, self.memory, lam
            )
        logits = self.logits(z_words).astype(np.float64)
        if lam <= 0:
            return logits
        ll = self.gbm_log_likelihood(z_words)
        if ll is None:
            return logits
        return _log_softmax(logits) + lam * _log_softmax(ll)

    def predict(self, z_words: np.ndarray) -> np.ndarray:
        """Class names of the largest scores (:meth:`scores`)."""
        return np.asarray(self.classes, dtype=str)[np.argmax(self.scores(z_words), axis=1)]

    # -- learning --------------------------------------------------------------------------
    def _train_head(
        self,
        weight: np.ndarray,
        bias: np.ndarray,
        memory: Any,
        new: dict[str, np.ndarray],
        class_index: dict[str, int],
        epochs: int,
        rng: np.random.Generator,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, int, float, float]:
        s = self.settings
        n_cls = weight.shape[1]
        batch = max(s.batch_size, n_cls)  # eq. 4 needs a place for every class
        steps, first, last = 0, math.nan, math.nan
        total = epochs * n_batches_per_epoch(batch, len(class_index), new)
        if self._ort is None:  # transposed (C, D) working copies, ping-ponged
            from edgecl.device.headstep import HeadStepper  # (Numba)

            stepper = HeadStepper(self.n_bits, n_cls, batch)
            wt = np.ascontiguousarray(weight.T)
            wt2, b2 = np.empty_like(wt), np.empty_like(bias)
            bias = bias.copy()
        for words, labels in eq4_batches(
            memory, new, batch_size=batch, epochs=epochs, class_index=class_index, rng=rng
        ):
            if self._ort is None:
                loss = stepper(words, wt, bias, labels, s.lr, s.weight_decay, wt2, b2)
                wt, wt2, bias, b2 = wt2, wt, b2, bias
            else:
                weight, bias, loss = self._ort.head_step(words, weight, bias, labels, s.lr)
            if steps == 0:
                first = loss
            last = loss
            steps += 1
            if progress is not None:
                progress(steps, total)
        if self._ort is None:
            weight = np.ascontiguousarray(wt.T)
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise FloatingPointError(
                f"expected a finite head after training, got NaN or inf (lr {s.lr} too high?)"
            )
        return weight, bias, steps, first, last

    def _report(
        self,
        action: str,
        name: str,
        z: np.ndarray,
        gave_up: tuple,
        epochs: int,
        steps: int,
        first: float,
        last: float,
        train_acc: float,
        before: int,
        embed_s: float,
        t_mem: float,
        t_head: float,
        t0: float,
    ) -> LearnReport:
        """The report of a committed learn or update: the learner's state is the new one."""
        return LearnReport(
            action=action,
            name=name,
            n_samples=int(z.shape[0]),
            n_classes=len(self.classes),
            classes=self.classes,
            size=self._size_dict(self.memory, name),
            gave_up=gave_up,
            epochs=epochs,
            steps=steps,
            batch_size=max(self.settings.batch_size, len(self.classes)),
            lr=self.settings.lr,
            loss_first=float(first),
            loss_last=float(last),
            train_accuracy=train_acc,
            backend=self.backend,
            stored_bytes_before=before,
            stored_bytes=self.stored_bytes,
            class_memory_bytes=self.class_memory_bytes,
            head_bytes=self.head_bytes,
            budget_bytes=self.budget_bytes,
            policy=self.policy,
            embed_s=float(embed_s),
            memory_s=t_mem,
            head_s=t_head,
            total_s=time.perf_counter() - t0 + float(embed_s),
            peak_bytes=self.last_peak_bytes,
        )

    def _size_dict(self, memory: Any, name: str) -> dict[str, int] | None:
        if memory is None or name not in memory.classes:
            return None
        return dict(memory.class_size(name).to_dict())

    def plan(self, name: str, n_samples: int) -> Any:
        """The budget plan of adding ``name`` (raises BudgetError if it cannot fit); changes
        nothing. None when there is no budget."""
        if self.budget is None:
            return None
        return _plan(
            self.memory,
            self.budget,
            name=name,
            n_samples=n_samples,
            other_stored_bytes=self.head_bytes,
            extra_bytes_per_class=self.head_bytes_per_class,
        )

    def learn(
        self,
        name: str,
        z_words: np.ndarray,
        *,
        epochs: int | None = None,
        seed: int | np.random.Generator | None = None,
        trace_memory: bool = True,
        progress: Callable[[int, int], None] | None = None,
        _embed_s: float = 0.0,
    ) -> LearnReport:
        """Learn a new class from its packed embeddings (the module docstring's steps)."""
        t0 = time.perf_counter()
        name = check_class_name(name)
        if name in self.classes:
            raise ValueError(
                f"expected a new class name, got {name!r} which is already learned "
                "(update_class adds samples to it)"
            )
        z = check_words(z_words, self.n_bits)
        epochs = self.settings.epochs if epochs is None else _pos_int(epochs, "epochs")
        if self.memory is None:
            raise BundleError(
                "expected a bundle with a class memory to learn a class without forgetting "
                "the others, got none (export with memory=GBMConfig(...))"
            )
        rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
        before = self.stored_bytes
        # 1. budget, before anything changes
        plan = self.plan(name, int(z.shape[0]))
        new_size = plan.new_class_size if plan is not None else self.memory.default_size()
        k = getattr(new_size, "components", 1)
        if z.shape[0] < k:
            raise ValueError(
                f"expected at least K={k} samples to fit class {name!r}'s {k} prototypes, "
                f"got {z.shape[0]}"
            )
        with _peak_tracer() if trace_memory else _no_trace() as peak:
            # 2. on copies
            t1 = time.perf_counter()
            memory = apply_plan(self.memory, plan, seed=rng) if plan else self.memory.copy()
            t_mem = time.perf_counter() - t1
            classes = self.classes + (name,)
            weight = np.concatenate([self.weight, np.zeros((self.n_bits, 1), np.float32)], axis=1)
            bias = np.concatenate([self.bias, np.zeros(1, np.float32)])
            t2 = time.perf_counter()
            index = {c: i for i, c in enumerate(classes)}
            weight, bias, steps, first, last = self._train_head(
                weight, bias, memory, {name: z}, index, epochs, rng, progress
            )
            weight = round_head(weight, self.head_bits)
            t_head = time.perf_counter() - t2
            t3 = time.perf_counter()
            memory.fit_class(name, z, seed=rng, size=new_size)
            t_mem += time.perf_counter() - t3
            pred = np.argmax(self._head_logits(z, weight, bias), axis=1)
            train_acc = float(np.mean(pred == len(classes) - 1))
        # 3. commit
        self.memory, self.weight, self.bias, self.classes = memory, weight, bias, classes
        self.last_peak_bytes = peak[0]
        gave_up: tuple[dict[str, Any], ...] = ()
        if plan is not None and plan.gave_up:
            items = [{**ch.to_dict(), "description": str(ch)} for ch in plan.changes]
            if plan.new_class_shrunk:
                items.append(
                    {
                        "name": name,
                        "before": plan.default_size.to_dict(),
                        "after": plan.new_class_size.to_dict(),
                        "description": f"new class {name} stored at {plan.new_class_size} "
                        f"instead of {plan.default_size}",
                    }
                )
            gave_up = tuple(items)
        return self._report(
            "learn",
            name,
            z,
            gave_up,
            epochs,
            steps,
            first,
            last,
            train_acc,
            before,
            _embed_s,
            t_mem,
            t_head,
            t0,
        )

    def update(
        self,
        name: str,
        z_words: np.ndarray,
        *,
        epochs: int | None = None,
        seed: int | np.random.Generator | None = None,
        progress: Callable[[int, int], None] | None = None,
        _embed_s: float = 0.0,
    ) -> LearnReport:
        """Add samples to a learned class: refit its memory on them (GBM: with draws from
        its current mixture; buffer: reservoir / re-herding) and retrain the head on them
        with pseudo-exemplars of the other classes. A class that would outgrow the budget is
        refused with BudgetError (both policies)."""
        t0 = time.perf_counter()
        name = check_class_name(name)
        if name not in self.classes:
            raise KeyError(
                f"expected a learned class, got {name!r} (classes: {list(self.classes)})"
            )
        z = check_words(z_words, self.n_bits)
        epochs = self.settings.epochs if epochs is None else _pos_int(epochs, "epochs")
        if self.memory is None:
            raise BundleError("expected a bundle with a class memory to update a class, got none")
        rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
        before = self.stored_bytes
        if name in self.memory.classes:
            after_mem = int(self.memory.nbytes_after_add(name, int(z.shape[0])))
        else:
            after_mem = int(self.memory.nbytes) + int(self.memory.nbytes_for(int(z.shape[0])))
        after = after_mem + self.head_bytes
        if self.budget is not None and after > self.budget.bytes:
            raise BudgetError(
                f"updating class {name!r} needs {after} stored bytes, but the budget is "
                f"{self.budget.bytes} bytes with {self.budget.bytes - before} free",
                needed=after,
                free=self.budget.bytes - before,
                part=f"class memory ({self.memory.kind})",
            )
        with _peak_tracer() as peak:
            t1 = time.perf_counter()
            memory = self.memory.copy()
            t_mem = time.perf_counter() - t1
            index = {c: i for i, c in enumerate(self.classes)}
            t2 = time.perf_counter()
            weight, bias, steps, first, last = self._train_head(
                self.weight, self.bias, memory, {name: z}, index, epochs, rng, progress
            )
            weight = round_head(weight, self.head_bits)
            t_head = time.perf_counter() - t2
            t3 = time.perf_counter()
            if name in memory.classes:
                memory.add_samples(name, z, seed=rng)
            else:
                memory.fit_class(name, z, seed=rng)
            t_mem += time.perf_counter() - t3
            pred = np.argmax(self._head_logits(z, weight, bias), axis=1)
            train_acc = float(np.mean(pred == index[name]))
        self.memory, self.weight, self.bias = memory, weight, bias
        self.last_peak_bytes = peak[0]
        return self._report(
            "update",
            name,
            z,
            (),
            epochs,
            steps,
            first,
            last,
            train_acc,
            before,
            _embed_s,
            t_mem,
            t_head,
            t0,
        )

    def forget(self, name: str) -> MemoryReport:
        """Drop a class: its head column and its class memory. The last class stays."""
        name = check_class_name(name)
        if name not in self.classes:
            raise KeyError(
                f"expected a learned class, got {name!r} (classes: {list(self.classes)})"
            )
        if len(self.classes) == 1:
            raise ValueError(f"expected to keep at least one class, got {name!r}, the last one")
        i = self.classes.index(name)
        memory = self.memory
        if memory is not None and name in memory.classes:
            memory = memory.copy()
            memory.remove_class(name)
        keep = [j for j in range(len(self.classes)) if j != i]
        self.weight = np.ascontiguousarray(self.weight[:, keep])
        self.bias = np.ascontiguousarray(self.bias[keep])
        self.classes = tuple(c for c in self.classes if c != name)
        self.memory = memory
        return self.memory_report()

    def set_budget(self, budget_bytes: int) -> None:
        """Lower the budget (never raise it); BudgetError if the stored bytes exceed it."""
        b = budget_bytes
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b <= 0:
            raise ValueError(f"expected budget bytes as an int > 0, got {b!r}")
        if self.budget is not None and b > self.budget.bytes:
            raise ValueError(
                f"expected a budget of at most the bundle's {self.budget.bytes} bytes (a budget "
                f"may be lowered, never raised), got {b}"
            )
        new = Budget(int(b), self.policy)
        if self.stored_bytes > new.bytes:
            raise BudgetError(
                f"the bundle already stores {self.stored_bytes} bytes, more than a budget of "
                f"{new.bytes}",
                needed=self.stored_bytes,
                free=new.bytes - self.stored_bytes,
                part="stored bytes",
            )
        self.budget = new

    def copy(self) -> Learner:
        """An independent copy (head arrays and memory copied; an ONNX session is shared,
        it holds no state)."""
        new = object.__new__(Learner)
        new.__dict__.update(self.__dict__)
        new.weight, new.bias = self.weight.copy(), self.bias.copy()
        new.memory = None if self.memory is None else self.memory.copy()
        return new

    # -- reports and state --------------------------------------------------------------------
    def memory_report(self) -> MemoryReport:
        parts: dict[str, int] = {}
        per_class: list[dict[str, Any]] = []
        closed_bits: int | None = None
        formula: str | None = None
        if self.memory is not None:
            _, arrays = self.memory.to_state()
            for key in sorted(arrays):
                parts[f"memory.{key}"] = int(arrays[key].nbytes)
            for c in self.memory.classes:
                per_class.append(
                    {
                        "name": c,
                        "size": self.memory.class_size(c).to_dict(),
                        "bytes": int(self.memory.class_nbytes(c)),
                    }
                )
            closed_bits = int(self.memory.closed_form_bits())
            formula = "K·D·n_c·q" if self.memory.kind == "gbm" else "E·D·n_c"
        for key, arr in encode_head(self.weight, self.head_bits).items():
            parts[f"head.{key}"] = int(arr.nbytes)  # as stored (float32, float16, int8)
        parts["head.bias"] = int(self.bias.nbytes)
        budget = self.budget_bytes
        return MemoryReport(
            n_bits=self.n_bits,
            n_classes=len(self.classes),
            classes=self.classes,
            memory_kind=None if self.memory is None else self.memory.kind,
            stored_bytes=self.stored_bytes,
            class_memory_bytes=self.class_memory_bytes,
            head_bytes=self.head_bytes,
            head_bytes_per_class=self.head_bytes_per_class,
            budget_bytes=budget,
            policy=self.policy,
            headroom_bytes=None if budget is None else budget - self.stored_bytes,
            parts=parts,
            per_class=tuple(per_class),
            closed_form_bits=closed_bits,
            closed_form=formula,
            peak_bytes=self.last_peak_bytes,
        )

    @classmethod
    def from_manifest(
        cls,
        manifest: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray],
        *,
        backend: str = "numba",
        budget_bytes: int | None = None,
        threads: int = 1,
    ) -> Learner:
        """The learner of a (validated) bundle: head, classes, memory, budget, settings."""
        head = manifest["head"]
        mem = manifest.get("memory")
        memory = None
        if mem is not None:
            refs = mem.get("arrays", {})
            memory = memory_from_state(mem.get("spec", {}), {k: arrays[r] for k, r in refs.items()})
        b = manifest["budget"]
        budget = Budget(int(b["bytes"]), b["policy"]) if b.get("bytes") is not None else None
        ort = None
        if backend == "onnxruntime":
            from edgecl.device.ort import OrtKernels, graph_arrays

            n_bits = int(manifest["embedding"]["bits"])
            ort = OrtKernels(graph_arrays(manifest, arrays), n_bits, threads=threads)
        learner = cls(
            int(manifest["embedding"]["bits"]),
            list(manifest["classes"]),
            head_weight(head, arrays),
            arrays[head["bias"]],
            memory=memory,
            budget=budget,
            policy=str(b.get("policy", "strict")),
            settings=HeadSettings.from_manifest(head),
            backend=backend,
            ort=ort,
            threads=threads,
            head_bits=int(head.get("bits", 32)),
        )
        if budget_bytes is not None:
            learner.set_budget(budget_bytes)
        return learner

    def manifest_update(
        self, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """A copy of ``(manifest, arrays)`` holding this learner's classes, head, memory and
        budget (old memory arrays dropped)."""
        import copy as _copy

        man = _copy.deepcopy(dict(manifest))
        for key in ("format", "schema_version", "creator", "arrays"):
            man.pop(key, None)
        old_mem = man.get("memory") or {}
        drop = set((old_mem.get("arrays") or {}).values())
        out = {k: v for k, v in arrays.items() if k not in drop}
        head = dict(man["head"])
        out.pop(head.get("scale"), None)
        stored = encode_head(self.weight, self.head_bits)
        out[head["weight"]] = stored["weight"]
        out[head["bias"]] = self.bias.copy()
        head["bits"] = self.head_bits
        head.pop("scale", None)
        if "scale" in stored:
            head["scale"] = f"{head['weight']}.scale"
            out[head["scale"]] = stored["scale"]
        man["head"] = head
        man["classes"] = list(self.classes)
        if self.memory is not None:
            spec, mem_arrays = self.memory.to_state()
            refs = {key: f"memory.{key}" for key in sorted(mem_arrays)}
            new_mem = {k: v for k, v in old_mem.items() if k not in ("spec", "arrays", "nbytes")}
            new_mem.update({"kind": self.memory.kind, "spec": spec, "arrays": refs})
            new_mem["nbytes"] = int(self.memory.nbytes)
            new_mem["head_bytes_per_class"] = self.head_bytes_per_class
            man["memory"] = new_mem
            for key, ref in refs.items():
                out[ref] = np.asarray(mem_arrays[key])
        else:
            man["memory"] = None
        man["budget"] = {"bytes": self.budget_bytes, "policy": self.policy}
        return man, out

    def __repr__(self) -> str:
        return (
            f"Learner({len(self.classes)} classes, D={self.n_bits}, stored "
            f"{format_bytes(self.stored_bytes)} of {format_bytes(self.budget_bytes)})"
        )


def _log_softmax(a: np.ndarray) -> np.ndarray:
    top = a.max(axis=1, keepdims=True)
    return a - (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))


@contextmanager
def _no_trace():
    yield [None]
