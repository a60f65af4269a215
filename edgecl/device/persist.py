"""The learner of a bundle's (validated) manifest and arrays: the head, classes, class
memory, budget and settings. (The way back, a learner's state into a manifest, is
:meth:`edgecl.bundle.Manifest.with_state`.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgecl.bundle import head_weight
from edgecl.device.head import HeadSettings
from edgecl.device.learner import Learner
from edgecl.memory import Budget, memory_from_state

__all__ = ["learner_from_manifest"]


def learner_from_manifest(
    manifest: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    backend: str = "numba",
    budget_bytes: int | None = None,
    threads: int = 1,
) -> Learner:
    """The learner of a (validated) bundle: head, classes, memory, budget, settings;
    ``budget_bytes`` lowers the bundle's budget (never raises it)."""
    head = manifest["head"]
    mem = manifest.get("memory")
    memory = None
    if mem is not None:
        refs = mem.get("arrays", {})
        memory = memory_from_state(mem.get("spec", {}), {k: arrays[r] for k, r in refs.items()})
    b = manifest["budget"]
    budget = Budget(int(b["bytes"]), b["policy"]) if b.get("bytes") is not None else None
    onnx = head.get("onnx")
    learner = Learner(
        int(manifest["embedding"]["bits"]),
        list(manifest["classes"]),
        head_weight(head, arrays),
        arrays[head["bias"]],
        memory=memory,
        budget=budget,
        policy=str(b.get("policy", "strict")),
        settings=HeadSettings.from_manifest(head),
        backend=backend,
        onnx_graph=None if onnx is None else arrays[onnx].tobytes(),
        threads=threads,
        head_bits=int(head.get("bits", 32)),
    )
    if budget_bytes is not None:
        learner.set_budget(budget_bytes)
    return learner
