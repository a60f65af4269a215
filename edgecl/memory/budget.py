"""The byte budget and the storage policy (how many bytes each class gets).

Kept apart from selection (which prototypes / exemplars fill those bytes, owned by each
memory's ``fit_class`` / ``resize_class``), as STYLE.md asks.

The budget covers the *stored bytes* (DESIGN.md, "Memory budget"): the class memory plus
whatever else grows with the classes — the caller passes ``other_stored_bytes`` (e.g. the
head's existing rows) and ``extra_bytes_per_class`` (the head's row for the new class).

- ``strict``: if the new class at the memory's default size does not fit, raise
  :class:`edgecl.errors.BudgetError` naming the bytes needed and free — before anything changes.
- ``adapt``: step classes down their size ladder (``memory.smaller_size``), always the
  largest class first and the oldest among equally large ones (the new class counts as the
  newest), until everything fits; the :class:`Plan` lists every change. If even the smallest
  sizes do not fit, raise ``BudgetError``.

``plan_class_addition`` only computes; ``apply_plan`` returns a resized copy of the memory
(never mutating its input) ready for ``fit_class(name, z, size=plan.new_class_size)``.
``plan_update`` checks adding samples to a class (``add_samples``; both policies refuse
what does not fit: a class is never shrunk to make room for its own samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecl.errors import BudgetError, ClassExistsError, InvalidTypeError, InvalidValueError
from edgecl.memory.protocol import ClassMemory
from edgecl.validate import as_generator, pos_int

POLICIES = ("strict", "adapt")


@dataclass(frozen=True)
class Budget:
    """A byte budget for the stored bytes and what to do when a new class does not fit."""

    bytes: int
    policy: str = "strict"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bytes", pos_int(self.bytes, "budget bytes"))
        if self.policy not in POLICIES:
            raise InvalidValueError(f"expected budget policy in {POLICIES}, got {self.policy!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": int(self.bytes), "policy": self.policy}


@dataclass(frozen=True)
class Shrink:
    """One class stored at a smaller size: what adapt gave up."""

    name: str
    before: Any  # the memory's size type: GBMSize | BufferSize
    after: Any
    bytes_before: int
    bytes_after: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
        }

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.before} -> {self.after} "
            f"({self.bytes_before} -> {self.bytes_after} bytes)"
        )


@dataclass(frozen=True)
class Plan:
    """How a new class gets into the budget.

    ``new_class_size`` is the size to fit the new class at (smaller than the default when
    ``new_class_shrunk``), ``changes`` the stored classes to shrink, in order; ``stored_bytes``
    the total stored bytes after the addition (class memory + other + the new class's extra),
    ``class_memory_bytes`` the class memory's share.
    """

    name: str
    policy: str
    budget_bytes: int
    default_size: Any
    new_class_size: Any
    new_class_bytes: int
    changes: tuple[Shrink, ...]
    class_memory_bytes_before: int
    class_memory_bytes: int
    other_stored_bytes: int
    extra_bytes_per_class: int
    stored_bytes: int

    @property
    def new_class_shrunk(self) -> bool:
        return self.new_class_size != self.default_size

    @property
    def gave_up(self) -> bool:
        return bool(self.changes) or self.new_class_shrunk

    def given_up(self) -> tuple[dict[str, Any], ...]:
        """What the plan gives up, one dict per class (its ``Shrink.to_dict()`` and a
        ``description``; the new class last when it is stored below the default size)."""
        items = [{**ch.to_dict(), "description": str(ch)} for ch in self.changes]
        if self.new_class_shrunk:
            items.append(
                {
                    "name": self.name,
                    "before": self.default_size.to_dict(),
                    "after": self.new_class_size.to_dict(),
                    "description": f"new class {self.name} stored at {self.new_class_size} "
                    f"instead of {self.default_size}",
                }
            )
        return tuple(items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "policy": self.policy,
            "budget_bytes": self.budget_bytes,
            "default_size": self.default_size.to_dict(),
            "new_class_size": self.new_class_size.to_dict(),
            "new_class_bytes": self.new_class_bytes,
            "changes": [c.to_dict() for c in self.changes],
            "class_memory_bytes_before": self.class_memory_bytes_before,
            "class_memory_bytes": self.class_memory_bytes,
            "other_stored_bytes": self.other_stored_bytes,
            "extra_bytes_per_class": self.extra_bytes_per_class,
            "stored_bytes": self.stored_bytes,
        }

    def __str__(self) -> str:
        lines = [
            f"add class {self.name!r} at {self.new_class_size} ({self.new_class_bytes} bytes); "
            f"stored bytes {self.stored_bytes} of {self.budget_bytes} "
            f"(class memory {self.class_memory_bytes}, other {self.other_stored_bytes}"
            f" + {self.extra_bytes_per_class} for the new class)"
        ]
        if self.new_class_shrunk:
            lines.append(f"  new class shrunk from {self.default_size} to {self.new_class_size}")
        for c in self.changes:
            lines.append(f"  shrink {c}")
        if not self.gave_up:
            lines.append("  nothing given up")
        return "\n".join(lines)


def _nonneg(value: Any, what: str) -> int:
    return pos_int(value, what, 0)


def plan_class_addition(
    memory: ClassMemory,
    budget: Budget,
    *,
    name: str = "<new>",
    n_samples: int | None = None,
    other_stored_bytes: int = 0,
    extra_bytes_per_class: int = 0,
) -> Plan:
    """Plan adding one class of ``n_samples`` samples to ``memory`` inside ``budget``.

    Raises :class:`BudgetError` (``needed`` = stored bytes after the addition at the default
    size, or at the smallest sizes for adapt; ``free`` = budget minus the stored bytes now;
    ``part`` = "class memory (<kind>)") when it cannot fit. Changes nothing.
    """
    if not isinstance(budget, Budget):
        raise InvalidTypeError(f"expected a Budget, got {type(budget).__name__}")
    other = _nonneg(other_stored_bytes, "other_stored_bytes")
    extra = _nonneg(extra_bytes_per_class, "extra_bytes_per_class")
    if n_samples is not None:
        n_samples = _nonneg(n_samples, "n_samples")
    if name in memory.classes:
        raise ClassExistsError(f"expected a new class name, got {name!r} which is already stored")
    part = f"class memory ({memory.kind})"
    mem_now = int(memory.nbytes)
    free = budget.bytes - mem_now - other
    default = memory.default_size()
    new_bytes = memory.size_nbytes(default, n_samples)
    needed = mem_now + new_bytes + other + extra

    def refuse(total: int, how: str) -> BudgetError:
        return BudgetError(
            f"adding class {name!r} needs {total} stored bytes {how} (class memory "
            f"{total - other - extra}, other {other}, new class's extra {extra}), but the budget "
            f"is {budget.bytes} bytes with {free} free; {total - budget.bytes} bytes short",
            needed=total,
            free=free,
            part=part,
        )

    sizes: dict[str, Any] = {}
    cur: dict[str, int] = {}
    order = list(memory.classes)
    for c in order:
        sizes[c] = memory.class_size(c)
        cur[c] = memory.class_nbytes(c)
    if needed > budget.bytes and budget.policy == "strict":
        raise refuse(needed, "at the default size")
    new_size = default
    total = needed
    while total > budget.bytes:
        best = None  # (bytes, -age, key)
        for age, c in enumerate(order):
            if memory.smaller_size(sizes[c]) is not None:
                key = (cur[c], -age)
                if best is None or key > best[0]:
                    best = (key, c)
        if memory.smaller_size(new_size) is not None:
            key = (new_bytes, -len(order))
            if best is None or key > best[0]:
                best = (key, None)
        if best is None:
            raise refuse(total, "even at the smallest sizes")
        c = best[1]
        if c is None:
            new_size = memory.smaller_size(new_size)
            b = memory.size_nbytes(new_size, n_samples)
            total += b - new_bytes
            new_bytes = b
        else:
            sizes[c] = memory.smaller_size(sizes[c])
            b = memory.class_nbytes_at(c, sizes[c])
            total += b - cur[c]
            cur[c] = b
    changes = tuple(
        Shrink(c, memory.class_size(c), sizes[c], memory.class_nbytes(c), cur[c])
        for c in order
        if sizes[c] != memory.class_size(c)
    )
    return Plan(
        name=name,
        policy=budget.policy,
        budget_bytes=int(budget.bytes),
        default_size=default,
        new_class_size=new_size,
        new_class_bytes=new_bytes,
        changes=changes,
        class_memory_bytes_before=mem_now,
        class_memory_bytes=total - other - extra,
        other_stored_bytes=other,
        extra_bytes_per_class=extra,
        stored_bytes=total,
    )


def apply_plan(
    memory: ClassMemory, plan: Plan, *, seed: int | np.random.Generator | None = None
) -> ClassMemory:
    """A copy of ``memory`` with the plan's shrinks applied (the input is not changed).

    The new class itself is not added: fit it with ``size=plan.new_class_size``.
    """
    if not isinstance(plan, Plan):
        raise InvalidTypeError(f"expected a Plan, got {type(plan).__name__}")
    if memory.nbytes != plan.class_memory_bytes_before:
        raise InvalidValueError(
            f"expected the memory the plan was made for ({plan.class_memory_bytes_before} "
            f"bytes), got one of {memory.nbytes} bytes"
        )
    rng = as_generator(seed)
    new = memory.copy()
    for ch in plan.changes:
        new.resize_class(ch.name, ch.after, seed=rng)
    return new


@dataclass(frozen=True)
class UpdatePlan:
    """Adding ``n_samples`` samples to class ``name``: the stored bytes after the call
    (``class_memory_bytes`` + ``other_stored_bytes``), within ``budget_bytes`` (None:
    unbounded)."""

    name: str
    n_samples: int
    budget_bytes: int | None
    class_memory_bytes_before: int
    class_memory_bytes: int
    other_stored_bytes: int

    @property
    def stored_bytes(self) -> int:
        return self.class_memory_bytes + self.other_stored_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_samples": self.n_samples,
            "budget_bytes": self.budget_bytes,
            "class_memory_bytes_before": self.class_memory_bytes_before,
            "class_memory_bytes": self.class_memory_bytes,
            "other_stored_bytes": self.other_stored_bytes,
            "stored_bytes": self.stored_bytes,
        }


def plan_update(
    memory: ClassMemory,
    budget: Budget | None,
    *,
    name: str,
    n_samples: int,
    other_stored_bytes: int = 0,
) -> UpdatePlan:
    """Plan adding ``n_samples`` samples to ``name`` (a stored class: ``add_samples``; a
    class the memory lacks: ``fit_class`` at the default size). Raises :class:`BudgetError`
    when the stored bytes after it exceed ``budget`` (both policies). Changes nothing."""
    if budget is not None and not isinstance(budget, Budget):
        raise InvalidTypeError(f"expected a Budget or None, got {type(budget).__name__}")
    n = _nonneg(n_samples, "n_samples")
    other = _nonneg(other_stored_bytes, "other_stored_bytes")
    mem_now = int(memory.nbytes)
    if name in memory.classes:
        after_mem = int(memory.nbytes_after_add(name, n))
    else:
        after_mem = mem_now + int(memory.nbytes_for(n))
    after = after_mem + other
    if budget is not None and after > budget.bytes:
        free = budget.bytes - mem_now - other
        raise BudgetError(
            f"updating class {name!r} needs {after} stored bytes, but the budget is "
            f"{budget.bytes} bytes with {free} free",
            needed=after,
            free=free,
            part=f"class memory ({memory.kind})",
        )
    return UpdatePlan(
        name=name,
        n_samples=n,
        budget_bytes=None if budget is None else int(budget.bytes),
        class_memory_bytes_before=mem_now,
        class_memory_bytes=after_mem,
        other_stored_bytes=other,
    )


def add_class_within_budget(
    memory: ClassMemory,
    name: str,
    z_words: np.ndarray,
    budget: Budget,
    *,
    other_stored_bytes: int = 0,
    extra_bytes_per_class: int = 0,
    seed: int | None = None,
) -> tuple[ClassMemory, Plan]:
    """Plan, shrink a copy and fit the new class on it; returns ``(new_memory, plan)``.

    ``memory`` is never changed; on any error nothing is returned and nothing changed.
    """
    z = np.asarray(z_words)
    plan = plan_class_addition(
        memory,
        budget,
        name=name,
        n_samples=int(z.shape[0]) if z.ndim == 2 else None,
        other_stored_bytes=other_stored_bytes,
        extra_bytes_per_class=extra_bytes_per_class,
    )
    rng = as_generator(seed)
    new = apply_plan(memory, plan, seed=rng)
    new.fit_class(name, z, seed=rng, size=plan.new_class_size)
    return new, plan


__all__ = [
    "Budget",
    "Plan",
    "Shrink",
    "UpdatePlan",
    "add_class_within_budget",
    "apply_plan",
    "plan_class_addition",
    "plan_update",
]
