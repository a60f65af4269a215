"""The base bundle, torch-free: a network lowered to the layer program, its head G and the
base classes' class memories, verified against the model's own forward and written.

What the torch exporter (:func:`edgecl.export.export_bundle`) and the Larq importer
(:func:`edgecl.larq.import_larq`) share once each has lowered its model: the manifest with
the float32 head and no budget that embeds the calibration samples and is verified, the
class memories fitted on those embeddings inside the budget, the comparison of the device's
embedding bits and logits with the reference's, and the bundle written with the head as it
is stored and checked again after a reload.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecl.bundle import (
    BudgetSpec,
    BundleInfo,
    EmbeddingSpec,
    HeadRefs,
    HeadSpec,
    InputSpec,
    Manifest,
    head_bytes_per_class,
    write_bundle,
)
from edgecl.device.runtime import Runtime
from edgecl.errors import ExportError
from edgecl.kernels import pack_bits, unpack_bits
from edgecl.memory.base_classes import fit_base_memory

__all__ = ["BaseBundle", "verify_embedding"]


class BaseBundle:
    """A lowered network (``input``, ``layers``, ``embedding`` specs as manifest dicts,
    their ``layer_arrays``) with the float32 head (``head_weight`` (D, C), ``head_bias``
    (C,)) of the base ``classes``, stored at ``head.bits``; ``head_onnx`` the head's
    learning graph to store, if any; ``budget`` a ``Budget`` or None; ``model`` the
    manifest's record of where the network came from.

    ``runtime`` runs it with the float32 head and no budget (embedding the calibration
    samples, the verification); :meth:`fit_memory` and :meth:`write` make the bundle."""

    def __init__(
        self,
        *,
        input: Mapping[str, Any],
        layers: Sequence[Any],
        embedding: Mapping[str, Any],
        layer_arrays: Mapping[str, np.ndarray],
        head_weight: np.ndarray,
        head_bias: np.ndarray,
        head: HeadSpec,
        classes: Sequence[str],
        budget: Any,
        model: Mapping[str, Any],
        head_onnx: np.ndarray | None = None,
        threads: int = 1,
    ) -> None:
        self.n_bits = int(embedding["bits"])
        self.classes = list(classes)
        self.head, self.budget = head, budget
        self.head_weight, self.head_bias = head_weight, head_bias
        self.policy = "strict" if budget is None else str(budget.policy)
        self.arrays: dict[str, np.ndarray] = dict(layer_arrays)
        self.arrays["head.weight"], self.arrays["head.bias"] = head_weight, head_bias
        onnx_ref = None
        if head_onnx is not None:
            self.arrays["head.onnx"] = head_onnx
            onnx_ref = "head.onnx"
        # the float32 head and no budget serve the verification; the budget is checked
        # by fit_memory, on the head as it will be stored (head.bits)
        self.manifest = Manifest(
            input=InputSpec.from_dict(input),
            layers=tuple(layers),
            embedding=EmbeddingSpec.from_dict(embedding),
            head=dataclasses.replace(head, bits=32),
            head_refs=HeadRefs(weight="head.weight", bias="head.bias", onnx=onnx_ref),
            classes=tuple(self.classes),
            memory=None,
            budget=BudgetSpec(None, self.policy),
            base_classes=tuple(self.classes),
            model=model,
        )
        self.runtime = Runtime(self.manifest.to_dict(), self.arrays, threads=threads)

    def fit_memory(
        self, memory: Any, z_words: np.ndarray, labels: np.ndarray, *, seed: int
    ) -> tuple[Any, list[dict[str, Any]]]:
        """The base classes' class memories (``memory``: a ``GBMConfig``,
        ``LatentBufferConfig`` or None) fitted on the embeddings ``z_words`` labelled with
        head rows ``labels``, inside the budget with the stored head; ``(memory, plans)``
        (:func:`edgecl.memory.base_classes.fit_base_memory`)."""
        head_bytes = head_bytes_per_class(self.n_bits, self.head.bits) * len(self.classes)
        return fit_base_memory(
            memory,
            self.budget,
            self.n_bits,
            self.classes,
            z_words,
            labels,
            head_bytes=head_bytes,
            seed=seed,
        )

    def write(
        self,
        path: str | os.PathLike[str],
        *,
        memory: Any,
        plans: list[dict[str, Any]],
        export: Mapping[str, Any],
        overwrite: bool,
        reload_check: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> BundleInfo:
        """Write the bundle (atomically): the head stored at ``head.bits``, the fitted
        ``memory`` and its ``plans``, the budget, ``export`` as its export report. With
        ``reload_check = (samples, their embeddings)`` the written bundle is loaded again
        and must give the first 16 samples the same embeddings (else ExportError)."""
        path = Path(path)
        manifest, arrays = self.manifest.with_state(
            self.arrays,
            classes=self.classes,
            head_weight=self.head_weight,
            head_bias=self.head_bias,
            memory=memory,
            budget=BudgetSpec(None if self.budget is None else int(self.budget.bytes), self.policy),
            head=self.head,
            memory_extra={"export_plans": plans},
        )
        manifest = dataclasses.replace(manifest, export=dict(export))
        info = write_bundle(path, manifest.to_dict(), arrays, overwrite=overwrite)
        if reload_check is not None:
            x, z_words = reload_check
            again = Runtime.load(path)
            k = min(len(x), 16)
            if not np.array_equal(again.embed(x[:k]), z_words[:k]):
                raise ExportError(f"{path}: the reloaded bundle gives other embeddings")
        return info


def verify_embedding(
    runtime: Runtime,
    z_words: np.ndarray,
    ref_bits: np.ndarray,
    ref_logits: np.ndarray,
    *,
    allowed: int,
    tolerance: float,
    reference: str,
    reference_forward: str = "",
    hint: Callable[[int, int], str] | None = None,
) -> dict[str, Any]:
    """Compare the device with a reference forward on the first ``k = len(ref_bits)``
    samples: at most ``allowed`` samples whose embedding bits (``z_words``, packed) differ
    from ``ref_bits`` (k, D), and logits of the reference bits within ``tolerance`` of
    ``ref_logits``; else ExportError naming ``reference`` (``"torch's"``), with
    ``reference_forward`` after it in the bits message and ``hint(differing samples, k)`` at
    its end. Returns the export report's verification keys."""
    k = len(ref_bits)
    dev_bits = unpack_bits(z_words[:k], runtime.n_bits)
    wrong = int((dev_bits != ref_bits).sum())
    rows = int((dev_bits != ref_bits).any(axis=1).sum())
    if rows > allowed:
        why = "" if hint is None else hint(rows, k)
        raise ExportError(
            "verification failed: expected the device embedding bits to equal "
            f"{reference}{reference_forward}, got {wrong} different bits in {rows} of {k} "
            f"samples (allowed: {allowed}){why}"
        )
    logits = runtime.logits_from_embedding(pack_bits(ref_bits))
    diff = float(np.abs(logits - ref_logits).max())
    if not diff <= tolerance:
        raise ExportError(
            f"verification failed: expected device logits within {tolerance:.3g} of "
            f"{reference}, got a difference of {diff:.3g}"
        )
    return {
        "verified": True,
        "verified_samples": k,
        "differing_samples": rows,
        "differing_bits": wrong,
        "max_logit_diff": diff,
        "logit_tolerance": tolerance,
    }
