"""The learner of a bundle's typed :class:`~edgecl.bundle.Manifest` and arrays: the head,
classes, class memory, budget and settings. (The way back, a learner's state into a
manifest, is :meth:`edgecl.bundle.Manifest.with_state`.)"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edgecl.bundle import Manifest, decode_head
from edgecl.device.learner import Learner
from edgecl.memory import Budget, ClassMemory

__all__ = ["learner_from_manifest"]


def learner_from_manifest(
    manifest: Manifest,
    arrays: Mapping[str, np.ndarray],
    *,
    memory: ClassMemory | None,
    backend: str = "numba",
    budget_bytes: int | None = None,
    threads: int = 1,
) -> Learner:
    """The learner of a (validated) bundle, with the class memory its validation rebuilt
    (:meth:`edgecl.bundle.Manifest.load`); ``budget_bytes`` lowers the bundle's budget
    (never raises it)."""
    head, refs = manifest.head, manifest.head_refs
    stored = {"weight": arrays[refs.weight]}
    if refs.scale is not None:
        stored["scale"] = arrays[refs.scale]
    b = manifest.budget
    ort = None
    if backend == "onnxruntime":  # the bundle's learning graphs (BundleError without them)
        from edgecl.device.ort import OrtKernels, graph_arrays

        graphs = None if manifest.graphs is None else manifest.graphs.refs
        ort = OrtKernels(graph_arrays(graphs, arrays), manifest.embedding.bits, threads=threads)
    learner = Learner(
        manifest.embedding.bits,
        list(manifest.classes),
        decode_head(stored, head.bits),
        arrays[refs.bias],
        memory=memory,
        budget=None if b.bytes is None else Budget(b.bytes, b.policy),
        policy=b.policy,
        settings=head,
        backend=backend,
        ort=ort,
        threads=threads,
        head_bits=head.bits,
    )
    if budget_bytes is not None:
        learner.set_budget(budget_bytes)
    return learner
