"""A learner to and from a bundle's (validated) manifest and arrays: the head, classes,
class memory, budget and settings. (The typed ``Manifest.with_state`` of the bundle package
replaces :func:`manifest_update`'s dict surgery once it lands.)"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgecl.bundle import head_weight
from edgecl.device.head import HeadSettings
from edgecl.device.learner import Learner
from edgecl.memory import Budget, memory_from_state

__all__ = ["learner_from_manifest", "manifest_update"]


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


def manifest_update(
    learner: Learner, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A copy of ``(manifest, arrays)`` holding ``learner``'s classes, head, memory and
    budget (old memory arrays dropped)."""
    man = copy.deepcopy(dict(manifest))
    for key in ("format", "schema_version", "creator", "arrays"):
        man.pop(key, None)
    old_mem = man.get("memory") or {}
    drop = set((old_mem.get("arrays") or {}).values())
    out = {k: v for k, v in arrays.items() if k not in drop}
    head = dict(man["head"])
    out.pop(head.get("scale"), None)
    stored = learner.head.stored_arrays()
    out[head["weight"]] = stored["weight"]
    out[head["bias"]] = stored["bias"]
    head["bits"] = learner.head_bits
    head.pop("scale", None)
    if "scale" in stored:
        head["scale"] = f"{head['weight']}.scale"
        out[head["scale"]] = stored["scale"]
    man["head"] = head
    man["classes"] = list(learner.classes)
    if learner.memory is not None:
        spec, mem_arrays = learner.memory.to_state()
        refs = {key: f"memory.{key}" for key in sorted(mem_arrays)}
        new_mem = {k: v for k, v in old_mem.items() if k not in ("spec", "arrays", "nbytes")}
        new_mem.update({"kind": learner.memory.kind, "spec": spec, "arrays": refs})
        new_mem["nbytes"] = int(learner.memory.nbytes)
        new_mem["head_bytes_per_class"] = learner.head_bytes_per_class
        man["memory"] = new_mem
        for key, ref in refs.items():
            out[ref] = np.asarray(mem_arrays[key])
    else:
        man["memory"] = None
    man["budget"] = {"bytes": learner.budget_bytes, "policy": learner.policy}
    return man, out
