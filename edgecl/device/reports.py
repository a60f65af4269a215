"""What the device learner returns: frozen reports with ``to_dict()`` and a readable ``str``.

Words as in DESIGN.md ("Memory budget"): *class memory* is what the papers count (GBM
prototypes and mixing weights, or buffered exemplars); *stored bytes* is everything that
grows with the classes, the class memory plus the head's rows. The budget covers the
stored bytes.
"""

from __future__ import annotations

import copy
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: head and memory never import this module's callers
    from edgecl.device.head import Head
    from edgecl.memory import ClassMemory

__all__ = ["LearnReport", "MemoryReport", "format_bytes", "memory_report", "peak_tracer"]


def format_bytes(n: int | None) -> str:
    """``12345`` -> ``"12.1 KiB (12345 B)"``; ``None`` -> ``"unbounded"``."""
    if n is None:
        return "unbounded"
    n = int(n)
    if abs(n) < 1024:
        return f"{n} B"
    if abs(n) < 1024 * 1024:
        return f"{n / 1024:.1f} KiB ({n} B)"
    return f"{n / 1024 / 1024:.2f} MiB ({n} B)"


@dataclass(frozen=True)
class LearnReport:
    """One ``learn_class`` / ``update_class`` call.

    ``action`` is ``"learn"`` or ``"update"``; ``n_samples`` the samples given; ``size`` the
    stored size of the class (``{"components", "bits"}`` for GBM, ``{"exemplars"}`` for a
    buffer); ``gave_up`` what the ``adapt`` policy shrank to fit (empty otherwise);
    ``steps`` the head-update steps (eq. 4 batches), ``loss_first``/``loss_last`` the mean
    cross-entropy of the first and last batch; times in seconds (``embed_s`` is 0 when the
    caller passed embeddings); ``peak_bytes`` the traced working memory of the call (None
    when not traced).
    """

    action: str
    name: str
    n_samples: int
    n_classes: int
    classes: tuple[str, ...]
    size: dict[str, int] | None
    gave_up: tuple[dict[str, Any], ...]
    epochs: int
    steps: int
    batch_size: int
    lr: float
    loss_first: float
    loss_last: float
    train_accuracy: float
    backend: str
    stored_bytes_before: int
    stored_bytes: int
    class_memory_bytes: int
    head_bytes: int
    budget_bytes: int | None
    policy: str
    embed_s: float
    memory_s: float
    head_s: float
    total_s: float
    peak_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(getattr(self, k)) for k in self.__dataclass_fields__}
        out["classes"] = list(self.classes)
        out["gave_up"] = [dict(g) for g in self.gave_up]
        return out

    def __str__(self) -> str:
        verb = "learned" if self.action == "learn" else "updated"
        size = ", ".join(f"{k}={v}" for k, v in (self.size or {}).items()) or "no class memory"
        lines = [
            f"{verb} class {self.name!r} from {self.n_samples} samples ({size}); "
            f"{self.n_classes} classes now",
            f"  head: {self.steps} steps of {self.batch_size} ({self.epochs} epochs, lr "
            f"{self.lr:g}, {self.backend}), loss {self.loss_first:.4f} -> {self.loss_last:.4f}, "
            f"train accuracy {self.train_accuracy:.3f}",
            f"  stored {format_bytes(self.stored_bytes)} of {format_bytes(self.budget_bytes)} "
            f"({self.policy}); class memory {format_bytes(self.class_memory_bytes)}, head "
            f"{format_bytes(self.head_bytes)}",
            f"  time {self.total_s * 1e3:.1f} ms (embed {self.embed_s * 1e3:.1f}, memory "
            f"{self.memory_s * 1e3:.1f}, head {self.head_s * 1e3:.1f})"
            + ("" if self.peak_bytes is None else f"; peak {format_bytes(self.peak_bytes)}"),
        ]
        for g in self.gave_up:
            lines.append(f"  gave up: {g['description']}")
        return "\n".join(lines)


@dataclass(frozen=True)
class MemoryReport:
    """Where the stored bytes are (``memory()``).

    ``stored_bytes = class_memory_bytes + head_bytes`` (exactly as stored: packed bits,
    q-bit prototypes, float32 head rows); ``parts`` the stored bytes of every array;
    ``per_class`` the class memory of every class with its size; ``closed_form_bits`` the
    papers' M = K·D·n_c·q (GBM) or E·D·n_c (buffer) bits; ``headroom_bytes`` what is left
    under the budget (None when unbounded); ``peak_bytes`` the working memory traced during
    the last ``learn_class`` (None before the first).
    """

    n_bits: int
    n_classes: int
    classes: tuple[str, ...]
    memory_kind: str | None
    stored_bytes: int
    class_memory_bytes: int
    head_bytes: int
    head_bytes_per_class: int
    budget_bytes: int | None
    policy: str
    headroom_bytes: int | None
    parts: dict[str, int]
    per_class: tuple[dict[str, Any], ...]
    closed_form_bits: int | None
    closed_form: str | None
    peak_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(getattr(self, k)) for k in self.__dataclass_fields__}
        out["classes"] = list(self.classes)
        out["per_class"] = [dict(p) for p in self.per_class]
        return out

    def __str__(self) -> str:
        lines = [
            f"stored bytes   {format_bytes(self.stored_bytes)} of budget "
            f"{format_bytes(self.budget_bytes)} ({self.policy})"
            + (
                ""
                if self.headroom_bytes is None
                else f", headroom {format_bytes(self.headroom_bytes)}"
            ),
            f"class memory   {format_bytes(self.class_memory_bytes)} "
            f"({self.memory_kind or 'none'}, {self.n_classes} classes, D={self.n_bits})",
            f"head           {format_bytes(self.head_bytes)} "
            f"({self.head_bytes_per_class} B per class)",
        ]
        if self.closed_form_bits is not None:
            lines.append(
                f"closed form    {self.closed_form} = {self.closed_form_bits} bits "
                f"= {self.closed_form_bits // 8} B"
            )
        if self.peak_bytes is not None:
            peak = format_bytes(self.peak_bytes)
            lines.append(f"peak working memory of the last learn_class: {peak}")
        lines.append("parts:")
        for name, nbytes in self.parts.items():
            lines.append(f"  {name:<20} {nbytes:>10} B")
        return "\n".join(lines)


def memory_report(
    head: Head,
    memory: ClassMemory | None,
    budget_bytes: int | None,
    policy: str,
    peak_bytes: int | None,
) -> MemoryReport:
    """The :class:`MemoryReport` of a head and a class memory under a budget."""
    parts: dict[str, int] = {}
    per_class: list[dict[str, Any]] = []
    closed_bits: int | None = None
    formula: str | None = None
    class_bytes = 0
    if memory is not None:
        class_bytes = int(memory.nbytes)
        _, arrays = memory.to_state()
        for key in sorted(arrays):
            parts[f"memory.{key}"] = int(arrays[key].nbytes)
        for c in memory.classes:
            per_class.append(
                {
                    "name": c,
                    "size": memory.class_size(c).to_dict(),
                    "bytes": int(memory.class_nbytes(c)),
                }
            )
        closed_bits = int(memory.closed_form_bits())
        formula = memory.closed_form
    for key, arr in head.stored_arrays().items():
        parts[f"head.{key}"] = int(arr.nbytes)  # as stored (float32, float16, int8)
    stored = class_bytes + head.nbytes
    return MemoryReport(
        n_bits=head.n_bits,
        n_classes=len(head.classes),
        classes=head.classes,
        memory_kind=None if memory is None else memory.kind,
        stored_bytes=stored,
        class_memory_bytes=class_bytes,
        head_bytes=head.nbytes,
        head_bytes_per_class=head.bytes_per_class,
        budget_bytes=budget_bytes,
        policy=policy,
        headroom_bytes=None if budget_bytes is None else budget_bytes - stored,
        parts=parts,
        per_class=tuple(per_class),
        closed_form_bits=closed_bits,
        closed_form=formula,
        peak_bytes=peak_bytes,
    )


@contextmanager
def peak_tracer(enabled: bool) -> Iterator[list[int | None]]:
    """Yield a one-item list that receives the traced peak bytes of the block (numpy's
    allocations are traced; a tracer already running is reused, its peak reset); None
    when not ``enabled``."""
    out: list[int | None] = [None]
    if not enabled:
        yield out
        return
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
