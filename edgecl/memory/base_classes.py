"""The base classes' class memories, fitted on their embeddings when a bundle is made
(``edgecl export`` from torch, ``edgecl import-larq`` from Keras): one class at a time,
inside the budget if there is one. Torch-free (NumPy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgecl.errors import BudgetError
from edgecl.memory.budget import Budget, add_class_within_budget
from edgecl.memory.buffer import LatentBuffer, LatentBufferConfig
from edgecl.memory.gbm import GBMConfig, GBMMemory

__all__ = ["fit_base_memory"]


def fit_base_memory(
    config: GBMConfig | LatentBufferConfig | None,
    budget: Budget | None,
    n_bits: int,
    names: Sequence[str],
    z_words: np.ndarray,
    labels: np.ndarray,
    *,
    head_bytes: int,
    seed: int = 0,
) -> tuple[Any, list[dict[str, Any]]]:
    """Fit the class memory of each class ``names[k]`` on the rows of ``z_words`` (packed
    D-bit embeddings) labelled ``k`` (classes with no rows are left out), with seed
    ``seed + k``. Returns ``(memory or None, plans)``: the plans are those of the classes
    the ``adapt`` policy shrank (``Plan.to_dict()``). ``head_bytes`` are the head's stored
    bytes for every class; with a ``budget``, head + memory must fit (strict:
    :class:`BudgetError` naming the bytes needed and free)."""
    memory: Any = None
    plans: list[dict[str, Any]] = []
    if config is not None:
        memory = (
            GBMMemory(n_bits, config)
            if isinstance(config, GBMConfig)
            else LatentBuffer(n_bits, config)
        )
        for k, name in enumerate(names):
            rows = z_words[labels == k]
            if not len(rows):
                continue
            if budget is None:
                memory.fit_class(name, rows, seed=seed + k)
            else:
                memory, plan = add_class_within_budget(
                    memory,
                    name,
                    rows,
                    budget,
                    other_stored_bytes=head_bytes,  # the head holds every row
                    seed=seed + k,
                )
                if plan.gave_up:
                    plans.append(plan.to_dict())
    stored = head_bytes + (0 if memory is None else int(memory.nbytes))
    if budget is not None and stored > budget.bytes:
        raise BudgetError(
            f"the base classes need {stored} stored bytes (head {head_bytes}), over the "
            f"budget of {budget.bytes}",
            needed=stored,
            free=int(budget.bytes),
            part="export",
        )
    return memory, plans
