"""The device's continual-learning transaction on packed embeddings: the head G
(:mod:`edgecl.device.head`), the class memory (:mod:`edgecl.memory`), the byte budget, and
the verbs learn / update / forget (GBM paper §3.2, Figure 2).

Torch-free (NumPy + Numba, onnxruntime optional). It works on embeddings (``uint64`` words
(N, n_words(D)), :mod:`edgecl.kernels.bits`), so it is testable without a bundle; the
:class:`~edgecl.device.runtime.Runtime` embeds raw samples with the frozen F and delegates here.

``learn(name, z)`` and ``update(name, z)`` share one path (:meth:`Learner._apply`):

1. plan, before anything changes: the stored bytes after the call (class memory + the
   head's rows) must fit the budget. learn: :func:`edgecl.memory.plan_class_addition`
   (``strict`` raises :class:`~edgecl.errors.BudgetError` naming the bytes needed and free;
   ``adapt`` shrinks stored classes and/or the new one, and the report says what was given
   up); update: :func:`edgecl.memory.plan_update` (refused when it does not fit);
2. on copies: shrink the memory as planned, add a zero column to the head (learn), retrain
   the head on class-balanced batches (eq. 4, :func:`edgecl.memory.balanced_batches`) of
   the class's real embeddings and fresh pseudo-exemplars of every other class, one SGD
   step per batch (:mod:`edgecl.device.head`'s backends), then fit the class's memory (BMM
   by EM, eqs. 1-3, or buffered exemplars). With ``backend="onnxruntime"`` every kernel of
   these steps is one of the bundle's ONNX graphs (:mod:`edgecl.device.ort`; Numba is
   never imported);
3. commit: swap the copies in. A failure anywhere before leaves everything unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecl.device.head import BACKENDS, Head, HeadFit, HeadSettings, make_head_steps
from edgecl.device.reports import (
    LearnReport,
    MemoryReport,
    format_bytes,
    memory_report,
    peak_tracer,
)
from edgecl.device.scores import class_log_likelihood, combined_scores
from edgecl.errors import (
    BudgetError,
    BundleError,
    ClassExistsError,
    InvalidTypeError,
    InvalidValueError,
)
from edgecl.kernels.rng import ecl_generator
from edgecl.memory import (
    Budget,
    ClassMemory,
    GBMMemory,
    Plan,
    apply_plan,
    balanced_batches,
    plan_class_addition,
    plan_update,
)
from edgecl.validate import check_class_name, check_words, pos_int

__all__ = ["BACKENDS", "HeadSettings", "Learner"]


@dataclass
class _Timing:
    """Seconds spent by one learn / update call, by part (``start``: perf_counter at entry)."""

    start: float
    embed_s: float = 0.0
    memory_s: float = 0.0
    head_s: float = 0.0


@dataclass(frozen=True)
class _Call:
    """One checked learn / update call: what the transaction needs besides the plan."""

    action: str  # "learn" | "update"
    name: str
    z: np.ndarray
    epochs: int
    rng: np.random.Generator
    progress: Callable[[int, int], None] | None
    trace_memory: bool
    timing: _Timing


class Learner:
    """Head G + class memory + budget on packed D-bit embeddings.

    ``classes`` name the head's columns (``weight`` float32 (D, C), ``bias`` (C,));
    ``memory`` is a :class:`~edgecl.memory.ClassMemory` (GBM or latent buffer) or None (then
    the learner can predict and forget but not learn); ``budget`` a
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
        memory: ClassMemory | None = None,
        budget: Budget | None = None,
        policy: str = "strict",
        settings: HeadSettings | None = None,
        backend: str = "numba",
        ort: Any = None,
        threads: int = 1,
        head_bits: int = 32,
    ) -> None:
        self.n_bits = pos_int(n_bits, "n_bits")
        self.head = Head(self.n_bits, classes, weight, bias, bits=head_bits, threads=threads)
        if memory is not None:
            if not isinstance(memory, ClassMemory):
                raise InvalidTypeError(
                    f"expected a class memory or None, got {type(memory).__name__}"
                )
            if memory.n_bits != self.n_bits:
                raise InvalidValueError(
                    f"expected a memory of D={self.n_bits}, got D={memory.n_bits}"
                )
            extra = [c for c in memory.classes if c not in self.head.classes]
            if extra:
                raise InvalidValueError(
                    f"expected memory classes among the head's, got extra {extra}"
                )
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidTypeError(f"expected a Budget or None, got {type(budget).__name__}")
        self.settings = HeadSettings() if settings is None else settings
        if not isinstance(self.settings, HeadSettings):
            raise InvalidTypeError(f"expected HeadSettings, got {type(self.settings).__name__}")
        self.memory = memory
        self.budget = budget
        self.policy = budget.policy if budget is not None else str(policy)
        self.backend = backend
        self.threads = pos_int(threads, "threads")
        # backend="onnxruntime": the bundle's graphs (edgecl.device.ort.OrtKernels) run the
        # head's logits and steps, the scores and the GBM memory's EM, quantisation, sampling
        self.ort = ort if backend == "onnxruntime" else None
        self.steps = make_head_steps(backend, self.n_bits, self.ort)
        if self.ort is not None and isinstance(memory, GBMMemory):
            self.memory = memory.with_kernels(self.ort.memory_kernels())
        self.last_peak_bytes: int | None = None
        self.stored_bytes_check()

    # -- the head, read-only -------------------------------------------------------------------
    @property
    def classes(self) -> tuple[str, ...]:
        return self.head.classes

    @property
    def weight(self) -> np.ndarray:
        """The head weight (D, C) float32, as stored."""
        return self.head.weight

    @property
    def bias(self) -> np.ndarray:
        return self.head.bias

    @property
    def head_bits(self) -> int:
        return self.head.bits

    # -- bytes ---------------------------------------------------------------------------------
    @property
    def head_bytes_per_class(self) -> int:
        """One head row as stored: D weights at ``head_bits``, the float32 bias (and the
        float32 scale of an int8 row)."""
        return self.head.bytes_per_class

    @property
    def head_bytes(self) -> int:
        return self.head.nbytes

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

    # -- forward -------------------------------------------------------------------------------
    def logits(self, z_words: np.ndarray, *, trusted: bool = False) -> np.ndarray:
        """Head logits ``z @ W + b`` (float32 (n, C)) for packed embeddings; ``trusted``:
        words the runtime's own embed made (their checks skipped, on the Numba kernels)."""
        if trusted and self.ort is None:
            return self.head.logits(z_words, trusted=True)
        return self._logits(self.head, z_words)

    def _logits(self, head: Head, z_words: np.ndarray) -> np.ndarray:
        if self.ort is None:
            return head.logits(z_words)
        return self.ort.logits(check_words(z_words, self.n_bits), head.weight, head.bias)

    def gbm_log_likelihood(self, z_words: np.ndarray) -> np.ndarray | None:
        """``log p(z | class)`` (n, C) float64 in head class order, or None
        (:func:`edgecl.device.scores.class_log_likelihood`)."""
        if self.ort is None:
            return class_log_likelihood(self.head, self.memory, z_words)
        inputs = self.ort.gbm_inputs(self.memory, self.classes)
        if inputs is None:
            return None
        z = check_words(z_words, self.n_bits)
        return self.ort.scores(z, self.head.weight, self.head.bias, *inputs, 0.0)[0]

    def scores(self, z_words: np.ndarray, *, trusted: bool = False) -> np.ndarray:
        """What predictions rank (float64 (n, C)): the head logits, or with ``gbm_weight``
        lambda > 0 ``log_softmax(logits) + lambda * log_softmax(log p(z | class))``
        (:func:`edgecl.device.scores.combined_scores`; the ``scores`` graph on onnxruntime);
        ``trusted``: words the runtime's own embed made (as :meth:`logits`)."""
        if self.ort is None:
            lam = self.settings.gbm_weight
            return combined_scores(self.head, self.memory, lam, z_words, trusted=trusted)
        z = check_words(z_words, self.n_bits)
        head = self.head
        lam = self.settings.gbm_weight
        return self.ort.ranked_scores(z, head.weight, head.bias, head.classes, self.memory, lam)

    def predict(self, z_words: np.ndarray) -> np.ndarray:
        """Class names of the largest scores (:meth:`scores`)."""
        return np.asarray(self.classes, dtype=str)[np.argmax(self.scores(z_words), axis=1)]

    # -- learning ------------------------------------------------------------------------------
    def plan(self, name: str, n_samples: int) -> Plan | None:
        """The budget plan of adding ``name`` (raises BudgetError if it cannot fit); changes
        nothing. None when there is no budget."""
        if self.budget is None or self.memory is None:
            return None
        return plan_class_addition(
            self.memory,
            self.budget,
            name=name,
            n_samples=n_samples,
            other_stored_bytes=self.head_bytes,
            extra_bytes_per_class=self.head_bytes_per_class,
        )

    def check_name(self, name: object, verb: str) -> str:
        """``name`` as a class name for ``verb``: "learn" needs a new one
        (:class:`ClassExistsError` otherwise), "update" a learned one
        (:class:`UnknownClassError` naming the classes)."""
        name = check_class_name(name)
        if verb == "learn" and name in self.classes:
            raise ClassExistsError(
                f"expected a new class name, got {name!r} which is already learned "
                "(update_class adds samples to it)"
            )
        if verb == "update":
            self.head.index(name)
        return name

    def _checked(
        self, name: object, z_words: np.ndarray, epochs: int | None, seed: object, verb: str
    ) -> tuple[str, np.ndarray, int, np.random.Generator, ClassMemory]:
        name = self.check_name(name, verb)
        z = check_words(z_words, self.n_bits)
        epochs = self.settings.epochs if epochs is None else pos_int(epochs, "epochs")
        rng = ecl_generator(seed)  # ECL-RNG, the stream the C runtime draws too
        if self.memory is None:
            raise BundleError(
                f"expected a bundle with a class memory to {verb} a class without forgetting "
                "the others, got none (export with memory=GBMConfig(...))"
            )
        return name, z, epochs, rng, self.memory

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
        timing = _Timing(time.perf_counter(), embed_s=_embed_s)
        name, z, epochs, rng, memory = self._checked(name, z_words, epochs, seed, "learn")
        plan = self.plan(name, int(z.shape[0]))
        size = plan.new_class_size if plan is not None else memory.default_size()
        k = getattr(size, "components", 1)
        if z.shape[0] < k:
            raise InvalidValueError(
                f"expected at least K={k} samples to fit class {name!r}'s {k} prototypes, "
                f"got {z.shape[0]}"
            )
        call = _Call("learn", name, z, epochs, rng, progress, trace_memory, timing)
        return self._apply(call, memory, plan, size)

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
        timing = _Timing(time.perf_counter(), embed_s=_embed_s)
        name, z, epochs, rng, memory = self._checked(name, z_words, epochs, seed, "update")
        plan_update(
            memory,
            self.budget,
            name=name,
            n_samples=int(z.shape[0]),
            other_stored_bytes=self.head_bytes,
        )
        call = _Call("update", name, z, epochs, rng, progress, True, timing)
        return self._apply(call, memory, None, None)

    def _apply(
        self, call: _Call, old_memory: ClassMemory, plan: Plan | None, size: Any
    ) -> LearnReport:
        """The shared transaction of learn and update: copies, head, memory, commit.
        ``plan`` (learn under a budget) shrinks the memory copy first; ``size`` is the new
        class's (None: the memory's default)."""
        name, z, rng, timing = call.name, call.z, call.rng, call.timing
        before = self.stored_bytes
        with peak_tracer(call.trace_memory) as peak:
            t = time.perf_counter()
            memory = apply_plan(old_memory, plan, seed=rng) if plan else old_memory.copy()
            timing.memory_s += time.perf_counter() - t
            head = self.head.with_class(name) if call.action == "learn" else self.head
            self.steps.check_classes(len(head.classes))
            t = time.perf_counter()
            batches = balanced_batches(
                memory,
                {name: z},
                batch_size=max(self.settings.batch_size, len(head.classes)),
                epochs=call.epochs,
                class_index={c: i for i, c in enumerate(head.classes)},
                seed=rng,
            )
            head, fit = head.trained(
                batches, self.steps, self.settings, n_batches=len(batches), progress=call.progress
            )
            timing.head_s += time.perf_counter() - t
            t = time.perf_counter()
            if name in memory.classes:
                memory.add_samples(name, z, seed=rng)
            else:
                memory.fit_class(name, z, seed=rng, size=size)
            timing.memory_s += time.perf_counter() - t
            hits = np.argmax(self._logits(head, z), axis=1) == head.index(name)
            train_acc = float(np.mean(hits))
        # commit
        self.memory, self.head = memory, head
        self.last_peak_bytes = peak[0]
        gave_up = () if plan is None else plan.given_up()
        return self._report(call, gave_up, fit, train_acc, before)

    def forget(self, name: str) -> MemoryReport:
        """Drop a class: its head column and its class memory. The last class stays."""
        name = check_class_name(name)
        head = self.head.without_class(name)  # UnknownClassError naming the known classes
        if not head.classes:
            raise InvalidValueError(
                f"expected to keep at least one class, got {name!r}, the last one"
            )
        memory = self.memory
        if memory is not None and name in memory.classes:
            memory = memory.copy()
            memory.remove_class(name)
        self.head, self.memory = head, memory
        return self.memory_report()

    def set_budget(self, budget_bytes: int) -> None:
        """Lower the budget (never raise it); BudgetError if the stored bytes exceed it."""
        b = pos_int(budget_bytes, "budget bytes")
        if self.budget is not None and b > self.budget.bytes:
            raise InvalidValueError(
                f"expected a budget of at most the bundle's {self.budget.bytes} bytes (a budget "
                f"may be lowered, never raised), got {b}"
            )
        new = Budget(b, self.policy)
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
        """An independent copy (head and memory copied; a step backend is shared, it holds
        no state between calls)."""
        new = object.__new__(Learner)
        new.__dict__.update(self.__dict__)
        new.head = self.head.copy()
        new.memory = None if self.memory is None else self.memory.copy()
        return new

    # -- reports -------------------------------------------------------------------------------
    def _report(
        self,
        call: _Call,
        gave_up: tuple[dict[str, Any], ...],
        fit: HeadFit,
        train_acc: float,
        before: int,
    ) -> LearnReport:
        """The report of a committed learn or update: the learner's state is the new one."""
        mem = self.memory
        size = None
        if mem is not None and call.name in mem.classes:
            size = dict(mem.class_size(call.name).to_dict())
        return LearnReport(
            action=call.action,
            name=call.name,
            n_samples=int(call.z.shape[0]),
            n_classes=len(self.classes),
            classes=self.classes,
            size=size,
            gave_up=gave_up,
            epochs=call.epochs,
            steps=fit.steps,
            batch_size=max(self.settings.batch_size, len(self.classes)),
            lr=self.settings.lr,
            loss_first=fit.loss_first,
            loss_last=fit.loss_last,
            train_accuracy=train_acc,
            backend=self.backend,
            stored_bytes_before=before,
            stored_bytes=self.stored_bytes,
            class_memory_bytes=self.class_memory_bytes,
            head_bytes=self.head_bytes,
            budget_bytes=self.budget_bytes,
            policy=self.policy,
            embed_s=float(call.timing.embed_s),
            memory_s=call.timing.memory_s,
            head_s=call.timing.head_s,
            total_s=time.perf_counter() - call.timing.start + float(call.timing.embed_s),
            peak_bytes=self.last_peak_bytes,
        )

    def memory_report(self) -> MemoryReport:
        """Where the stored bytes are (:func:`edgecl.device.reports.memory_report`)."""
        return memory_report(
            self.head, self.memory, self.budget_bytes, self.policy, self.last_peak_bytes
        )

    def __repr__(self) -> str:
        return (
            f"Learner({len(self.classes)} classes, D={self.n_bits}, stored "
            f"{format_bytes(self.stored_bytes)} of {format_bytes(self.budget_bytes)})"
        )
