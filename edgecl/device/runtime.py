"""The device runtime, forward half: load a bundle and run the feature extractor F with
the bit kernels, then the float head G. Torch-free (NumPy + Numba; or, with
``backend="onnxruntime"``, NumPy + the bundle's ONNX graphs, :mod:`edgecl.device.ort`,
and Numba never imported).

A bundle's ``layers`` list is a small program (:mod:`edgecl.program`): values
flow as float32 (NHWC images or (N, F) vectors), int32 accumulators of ±1 products, or
bits packed into uint64 words along the channel axis (:mod:`edgecl.kernels.bits`).
BatchNorm + sign was folded by the exporter into one threshold per channel (with a flip
where gamma < 0), so binary layers hand bits to binary layers with integer arithmetic
only; the last threshold gives the D-bit embedding ({0,1} bits, GBM §3.3), and the head
computes ``logits = z @ W + b`` by summing the rows of ``W`` selected by the set bits.

Samples come as the data loaders return them: uint8 (or float, 0..255) arrays of shape
(n, H, W) or (n, H, W, C); the bundle's input spec applies the normalisation the model
was trained with, ``(x * scale - mean) / std`` in float32, as ``Normalize`` does in torch.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecl.bundle import (
    BudgetSpec,
    BundleInfo,
    InputSpec,
    Manifest,
    read_bundle,
    write_bundle,
)
from edgecl.device.learner import Learner
from edgecl.device.persist import learner_from_manifest
from edgecl.device.reports import LearnReport, MemoryReport, peak_tracer
from edgecl.errors import InvalidTypeError, InvalidValueError
from edgecl.kernels.bits import n_words
from edgecl.program import LayerKernels, Op, reference_kernels, run_layers
from edgecl.validate import pos_int

__all__ = [
    "InputSpec",
    "LayerKernels",
    "Runtime",
    "RuntimeSnapshot",
    "embed_reference",
    "logits_reference",
    "run_layers",
]

#: Samples processed per chunk by :meth:`Runtime.embed` (bounds working memory).
CHUNK = 256


def embed_reference(rt: Runtime, x: object) -> np.ndarray:
    """The packed embeddings of raw samples through the reference kernels (the slow,
    obviously-correct path that ``edgecl bench latency`` checks the fast one against)."""
    xf = rt.input_spec.check(x)
    parts = [
        run_layers(
            rt.input_spec.normalize(xf[i : i + CHUNK]),
            rt.ops,
            rt.arrays,
            kernels=reference_kernels(),
        )
        for i in range(0, xf.shape[0], CHUNK)
    ]
    return np.concatenate(parts)


def logits_reference(rt: Runtime, x: object) -> np.ndarray:
    """Head logits through the reference kernels (float32)."""
    from edgecl.kernels.float_dense import binary_float_dense_reference

    z = embed_reference(rt, x)
    return binary_float_dense_reference(z, rt.head_weight, rt.n_bits) + rt.head_bias


@dataclass(frozen=True)
class RuntimeSnapshot:
    """The learned state of a :class:`Runtime` (head, classes, class memory, budget) at one
    moment, for :meth:`Runtime.restore`. Independent of the runtime: later calls change
    neither, and one snapshot can be restored any number of times."""

    learner: Learner


class Runtime:
    """A loaded device bundle: ``embed``, ``predict``, ``predict_proba``, and the learning
    verbs ``learn_class``, ``update_class``, ``forget_class`` (GBM §3.2).

    ``classes_`` names the head's columns (the columns of :meth:`predict_proba`);
    ``manifest`` is the bundle's manifest and ``input_spec`` its :class:`InputSpec`. The
    runtime owns its state through one :class:`~edgecl.device.learner.Learner` (head, class
    memory, budget): ``classes_``, ``head_weight`` and ``head_bias`` are read-only views of
    it, :meth:`snapshot` / :meth:`restore` save and bring back the whole of it.
    """

    def __init__(
        self,
        manifest: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray],
        *,
        path: str | os.PathLike[str] | None = None,
        threads: int = 1,
        backend: str = "numba",
        budget_bytes: int | None = None,
    ) -> None:
        threads = pos_int(threads, "threads")
        self._typed, memory = Manifest.load(manifest, arrays)  # the validation
        self.manifest: dict[str, Any] = dict(manifest)
        self.arrays: dict[str, np.ndarray] = dict(arrays)
        self.path = Path(path) if path is not None else None
        self.threads = int(threads)
        self.input_spec: InputSpec = self._typed.input
        self.n_bits = self._typed.embedding.bits
        # the learning half (edgecl.device.learner): head, class memory, budget; with
        # backend="onnxruntime" it holds the bundle's graphs (edgecl.device.ort.OrtKernels)
        self.learner = learner_from_manifest(
            self._typed,
            arrays,
            memory=memory,
            backend=backend,
            budget_bytes=budget_bytes,
            threads=threads,
        )
        self.backend = backend
        self._names: tuple[tuple[str, ...], np.ndarray] | None = None
        self._ort = self.learner.ort
        if self._ort is None:
            from edgecl.kernels.pixels import normalize_uint8
            from edgecl.program.compile import compile_program  # (Numba)

            # F as one callable, the first conv+threshold+pool fused (edgecl.program.compile)
            self._program = compile_program(self.ops, self.arrays, threads=self.threads)
            # uint8 input: normalised by a table lookup, the same bits as normalize()
            self._pixel_table = self.input_spec.normalize_table()
            self._normalize_uint8 = normalize_uint8

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        backend: str = "numba",
        budget_bytes: int | None = None,
        threads: int = 1,
    ) -> Runtime:
        """Read, check and load a bundle (``BundleError`` if anything is wrong).

        ``backend``: ``"numba"`` (the bit kernels) or ``"onnxruntime"`` (the bundle's
        learning graphs for every step, :mod:`edgecl.device.ort`; a bundle exported without
        them is refused). ``budget_bytes`` lowers the bundle's budget (never raises it;
        ``BudgetError`` if the bundle already stores more).
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidTypeError(
                f"expected a bundle path as str or os.PathLike, got {type(path).__name__}"
            )
        manifest, arrays = read_bundle(path)
        return cls(
            manifest, arrays, path=path, threads=threads, backend=backend, budget_bytes=budget_bytes
        )

    # -- state (read-only views of the learner) ------------------------------------------

    @property
    def ops(self) -> tuple[Op, ...]:
        """The layer program F, its ops as the manifest was read (:mod:`edgecl.program`)."""
        return self._typed.layers

    @property
    def layers(self) -> list[dict[str, Any]]:
        """The layer program's manifest entries (``op.to_dict()`` of :attr:`ops`)."""
        return [op.to_dict() for op in self.ops]

    @property
    def classes_(self) -> np.ndarray:
        """The class names, in the order of the head's columns (an array of str)."""
        return self._class_names().copy()

    def _class_names(self) -> np.ndarray:
        """:attr:`classes_`, kept (read-only) until the head's classes change."""
        classes = self.learner.classes
        if self._names is None or self._names[0] is not classes:
            names = np.asarray(classes, dtype=str)
            names.flags.writeable = False
            self._names = (classes, names)
        return self._names[1]

    @property
    def head_weight(self) -> np.ndarray:
        """The head weight as float32 (D, C), whatever precision the bundle stores it at."""
        return self.learner.weight

    @property
    def head_bias(self) -> np.ndarray:
        return self.learner.bias

    def snapshot(self) -> RuntimeSnapshot:
        """The learned state now (a copy), for :meth:`restore`."""
        return RuntimeSnapshot(self.learner.copy())

    def restore(self, snapshot: RuntimeSnapshot) -> None:
        """Bring back the learned state of :meth:`snapshot` (the snapshot stays reusable)."""
        if not isinstance(snapshot, RuntimeSnapshot):
            raise InvalidTypeError(f"expected a RuntimeSnapshot, got {type(snapshot).__name__}")
        if snapshot.learner.n_bits != self.n_bits:
            raise InvalidValueError(
                f"expected a snapshot of a D={self.n_bits} runtime, got D={snapshot.learner.n_bits}"
            )
        self.learner = snapshot.learner.copy()

    # -- forward -----------------------------------------------------------------------

    def embed(self, x: object) -> np.ndarray:
        """The D-bit embeddings of raw samples: packed uint64 ``(n, n_words(D))``."""
        raw = None if self._ort is not None else self.input_spec.check_uint8(x)
        xs = raw if raw is not None else self.input_spec.check(x)  # uint8 stays uint8
        out = np.empty((xs.shape[0], n_words(self.n_bits)), np.uint64)
        for i in range(0, xs.shape[0], CHUNK):
            chunk = xs[i : i + CHUNK]
            if self._ort is not None:  # graph embed: normalisation and F inside
                out[i : i + CHUNK] = self._ort.embed(chunk)
                continue
            if raw is not None:  # one table lookup, the same bits as normalize()
                part = self._normalize_uint8(chunk, self._pixel_table)
            else:
                part = self.input_spec.normalize(chunk)
            out[i : i + CHUNK] = self._program(part)
        return out

    def logits_from_embedding(self, z_words: np.ndarray) -> np.ndarray:
        """Head logits ``z @ W + b`` (float32 (n, n_classes)) for packed embeddings."""
        return self.learner.logits(z_words)

    def logits(self, x: object) -> np.ndarray:
        """Head logits (float32 (n, n_classes)), columns in ``classes_`` order."""
        return self.learner.logits(self.embed(x), trusted=True)  # words embed made

    def predict_proba(self, x: object) -> np.ndarray:
        """Softmax probabilities (float64 (n, n_classes)), columns in ``classes_`` order
        (of the head logits, or of the combined scores when the bundle's head sets
        ``gbm_weight``, :meth:`edgecl.device.learner.Learner.scores`)."""
        z = self.learner.scores(self.embed(x), trusted=True)  # words embed made
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, x: object) -> np.ndarray:
        """The class name of the largest logit (or combined score, see ``predict_proba``)
        for every sample (an array of str)."""
        best = np.argmax(self.learner.scores(self.embed(x), trusted=True), axis=1)
        return self._class_names()[best]

    # -- learning (delegated to edgecl.device.learner.Learner) --------------------------

    def _embed_timed(self, x: object) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        z = self.embed(x)
        return z, time.perf_counter() - t0

    def learn_class(
        self,
        name: str,
        x: object,
        *,
        epochs: int | None = None,
        seed: int | None = None,
        trace_memory: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> LearnReport:
        """Learn a new class from raw samples (GBM paper §3.2, Figure 2): embed them with
        the frozen F, check the budget before anything changes (strict: ``BudgetError``;
        adapt: shrink and report it), fit the class memory, retrain the head on the new
        samples and pseudo-exemplars of every old class in class-balanced batches (eq. 4),
        then commit. A failure leaves the runtime unchanged. ``trace_memory`` measures the
        call's peak working memory with tracemalloc (slower; ``memory().peak_bytes``).
        A name already learned raises :class:`~edgecl.errors.ClassExistsError` before the
        samples are embedded."""
        self.learner.check_name(name, "learn")  # before the samples are embedded
        with peak_tracer(trace_memory) as peak:
            z, t_embed = self._embed_timed(x)
            report = self.learner.learn(
                name,
                z,
                epochs=epochs,
                seed=seed,
                trace_memory=False,
                progress=progress,
                _embed_s=t_embed,
            )
        if peak[0] is not None:
            self.learner.last_peak_bytes = peak[0]
            report = dataclasses.replace(report, peak_bytes=peak[0])
        return report

    def update_class(
        self,
        name: str,
        x: object,
        *,
        epochs: int | None = None,
        seed: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> LearnReport:
        """Add samples to a learned class (its memory refit, the head retrained); an
        unknown name raises :class:`~edgecl.errors.UnknownClassError` before the samples
        are embedded."""
        self.learner.check_name(name, "update")  # before the samples are embedded
        z, t_embed = self._embed_timed(x)
        return self.learner.update(
            name, z, epochs=epochs, seed=seed, progress=progress, _embed_s=t_embed
        )

    def forget_class(self, name: str) -> MemoryReport:
        """Drop a class (its head row and class memory); returns the memory report."""
        return self.learner.forget(name)

    def memory(self) -> MemoryReport:
        """Stored bytes per part, budget, closed-form figures, peak of the last learn_class."""
        return self.learner.memory_report()

    def save(self, path: str | os.PathLike[str] | None = None) -> BundleInfo:
        """Write the bundle atomically (classes, head, class memory and budget updated) to
        ``path`` or, by default, the file it was loaded from."""
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise InvalidTypeError(
                f"expected a path as str or os.PathLike, got {type(path).__name__}"
            )
        target = self.path if path is None else Path(path)
        if target is None:
            raise InvalidValueError("expected a path to save to, got none (not loaded from a file)")
        lr = self.learner
        typed, arrays = self._typed.with_state(
            self.arrays,
            classes=lr.classes,
            head_weight=lr.weight,
            head_bias=lr.bias,
            memory=lr.memory,
            budget=BudgetSpec(lr.budget_bytes, lr.policy),
        )
        info = write_bundle(target, typed.to_dict(), arrays, overwrite=True)
        self.manifest, self.arrays, self.path = dict(info.manifest), arrays, Path(target)
        self._typed = typed
        return info

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return (
            f"Runtime({len(self.classes_)} classes, D={self.n_bits}, {len(self.ops)} layers{where})"
        )
