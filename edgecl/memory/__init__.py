"""Class memories, torch-free (NumPy + Numba): the same code runs on the host and the device.

Two memories implement one protocol (:class:`ClassMemory`), checked by shared conformance
tests: :class:`GBMMemory` (Generative Binary Memory, gbm-generative-binary-memory §3.1-3.2:
per-class Bernoulli mixtures fitted by EM, q-bit mid-point prototypes, pseudo-exemplars) and
:class:`LatentBuffer` (binary latent replay: E packed exemplars per class).

Embeddings are packed ``uint64`` words (N, n_words(D)) of {0,1} bits, tail bits zero
(:mod:`edgecl.kernels.bits`). Class names are non-empty ``str``.

The protocol (``memory`` is a GBMMemory or a LatentBuffer)::

    GBMMemory(n_bits, GBMConfig(components=8, bits=8, trainable_pi=True,
                                n_init=5, n_iter=3, epsilon=1e-3, n_max=10))
    LatentBuffer(n_bits, LatentBufferConfig(per_class=20, selection="random" | "herding"))

    memory.kind                      "gbm" | "buffer"
    memory.closed_form               "K·D·n_c·q" | "E·D·n_c" (the papers' size formula)
    memory.n_bits, memory.config     D, the frozen config
    memory.classes                   tuple of names, insertion order
    memory.fit_class(name, z_words, *, seed=None, size=None)   new class; refuses an existing
                                     name, an empty class, K > N (GBM); atomic
    memory.add_samples(name, z_words, *, seed=None)   GBM: refit on samples drawn from the
                                     current mixture (its effective count) + the new ones;
                                     buffer: reservoir (random) or re-herding
    memory.remove_class(name)
    memory.sample(counts, *, seed=None, rng=None) -> (words (M, n_words(D)) uint64,
                                     labels (M,) int64 indices into memory.classes)
    memory.nbytes                    stored bytes of the whole memory (storage layout)
    memory.class_nbytes(name)        stored bytes of one class
    memory.nbytes_for(n_samples=None, size=None)   bytes a new class would take
    memory.nbytes_after_add(name, n_samples)       whole memory after add_samples
                                     (an unknown name: UnknownClassError, a KeyError)
    memory.closed_form_bits()        the papers' M = K*D*n_c*q (GBM) / E*D*n_c (buffer) bits
    memory.default_size() / class_size(name) / smaller_size(size) / size_nbytes(size, n)
    memory.class_nbytes_at(name, size) / resize_class(name, size, *, seed=None)
                                     sizes (GBMSize(components, bits) / BufferSize(exemplars))
                                     are what the storage policy trades; resize_class is the
                                     selection side (GBM: requantize or refit from draws)
    memory.to_state() -> (spec: JSON-able dict, arrays: dict[str, ndarray])
    memory_from_state(spec, arrays)  (or GBMMemory.from_state / LatentBuffer.from_state);
                                     bit-exact; BundleError on a bad shape, dtype or spec
    memory.copy()                    deep copy

GBM only (:class:`GenerativeMemory`): ``prototypes(name)`` (dequantized mu),
``mixing_weights(name)``, ``count(name)``, ``joint_pi()`` (pi normalised across classes by
counts, §3.2) and ``log_likelihood(z_words, classes=None)`` (N, n_classes) — the class
mixtures as a generative classifier / novelty score (the device's ``gbm_weight`` term). Buffer only:
``exemplars(name)``, ``count(name)``.

Bytes (one rule, :func:`stored_nbytes`: each stored row of bits is padded to whole uint64
words). GBM per class: ``8*n_words(K*D*q)`` (prototype stream) + ``4*K`` (pi, float32) + 4
(effective count, uint32). Buffer per class: ``E*8*n_words(D)`` + 4 (samples seen, uint32).
``sum(a.nbytes for a in to_state()[1].values()) == memory.nbytes``.

Budget (:mod:`edgecl.memory.budget`): ``Budget(bytes, policy="strict"|"adapt")``,
``plan_class_addition(memory, budget, *, name, n_samples, other_stored_bytes,
extra_bytes_per_class) -> Plan`` (strict raises ``BudgetError``; adapt shrinks, oldest-largest
first), ``apply_plan(memory, plan, *, seed) -> new memory``, ``plan_update(memory, budget, *,
name, n_samples, other_stored_bytes) -> UpdatePlan`` (adding samples to a class), and
``add_class_within_budget(memory, name, z_words, budget, ...) -> (new memory, plan)``.

Batches (:mod:`edgecl.memory.batches`, eq. 4, the one scheduler the device trains on):
``class_balanced_counts(batch_size, new_classes, old_classes, *, step=0)`` and
``balanced_batches(memory, new, *, batch_size, epochs=1, class_index=None, seed=None)``
yielding ``(words, labels)`` (``len()`` = number of batches).

Baselines on the same embeddings (:mod:`edgecl.memory.baselines`): ``NearestPrototype``
(Hamming, majority bits) and ``StreamingLDA`` (Hayes & Kanan 2020).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgecl.errors import BundleError
from edgecl.memory._common import stored_nbytes
from edgecl.memory.baselines import NearestPrototype, StreamingLDA
from edgecl.memory.batches import (
    BalancedBatches,
    BalancedCounts,
    balanced_batches,
    batches_per_epoch,
    class_balanced_counts,
)
from edgecl.memory.budget import (
    Budget,
    Plan,
    Shrink,
    UpdatePlan,
    add_class_within_budget,
    apply_plan,
    plan_class_addition,
    plan_update,
)
from edgecl.memory.buffer import BufferSize, LatentBuffer, LatentBufferConfig
from edgecl.memory.em import EMResult, fit_bmm
from edgecl.memory.gbm import GBMConfig, GBMMemory, GBMSize
from edgecl.memory.protocol import ClassMemory, GenerativeMemory
from edgecl.memory.quantize import dequantize, quantize

MEMORY_KINDS = {"gbm": GBMMemory, "buffer": LatentBuffer}


def memory_from_state(spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> ClassMemory:
    """Rebuild a class memory from ``to_state()``'s output, dispatching on ``spec["kind"]``."""
    kind = spec.get("kind") if isinstance(spec, Mapping) else None
    if kind not in MEMORY_KINDS:
        raise BundleError(f"expected a memory spec kind in {sorted(MEMORY_KINDS)}, got {kind!r}")
    return MEMORY_KINDS[kind].from_state(spec, arrays)


__all__ = [
    "BalancedBatches",
    "BalancedCounts",
    "Budget",
    "BufferSize",
    "ClassMemory",
    "EMResult",
    "GBMConfig",
    "GBMMemory",
    "GBMSize",
    "GenerativeMemory",
    "LatentBuffer",
    "LatentBufferConfig",
    "MEMORY_KINDS",
    "NearestPrototype",
    "Plan",
    "Shrink",
    "StreamingLDA",
    "UpdatePlan",
    "add_class_within_budget",
    "apply_plan",
    "balanced_batches",
    "batches_per_epoch",
    "class_balanced_counts",
    "dequantize",
    "fit_bmm",
    "memory_from_state",
    "plan_class_addition",
    "plan_update",
    "quantize",
    "stored_nbytes",
]
