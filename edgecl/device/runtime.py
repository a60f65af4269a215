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
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from edgecl.bundle import BundleInfo, InputSpec, read_bundle, validate_manifest, write_bundle
from edgecl.device.learner import Learner, check_class_name
from edgecl.device.reports import LearnReport, MemoryReport
from edgecl.kernels.bits import n_words
from edgecl.program import LayerKernels, parse_layers, reference_kernels, run_layers

__all__ = [
    "InputSpec",
    "LayerKernels",
    "Runtime",
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
    ops = parse_layers(rt.layers, rt.input_spec.shape, rt.arrays)
    parts = [
        run_layers(
            rt.input_spec.normalize(xf[i : i + CHUNK]), ops, rt.arrays, kernels=reference_kernels()
        )
        for i in range(0, xf.shape[0], CHUNK)
    ]
    return np.concatenate(parts)


def logits_reference(rt: Runtime, x: object) -> np.ndarray:
    """Head logits through the reference kernels (float32)."""
    from edgecl.kernels.float_dense import binary_float_dense_reference

    z = embed_reference(rt, x)
    return binary_float_dense_reference(z, rt.head_weight, rt.n_bits) + rt.head_bias


@contextmanager
def _peak(enabled: bool) -> Iterator[list[int | None]]:
    """Yield a one-item list receiving the block's traced peak bytes (None if disabled)."""
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


class Runtime:
    """A loaded device bundle: ``embed``, ``predict``, ``predict_proba``.

    ``classes_`` names the head's rows (the columns of :meth:`predict_proba`);
    ``manifest`` is the bundle's manifest and ``input_spec`` its :class:`InputSpec`.
    The learning verbs (``learn_class``, ``memory``, ``save``) extend this class in
    :mod:`edgecl.device.learner`.
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
        validate_manifest(manifest, arrays)
        self.manifest: dict[str, Any] = dict(manifest)
        self.arrays: dict[str, np.ndarray] = dict(arrays)
        self.path = Path(path) if path is not None else None
        self.threads = int(threads)
        self.input_spec = InputSpec.from_manifest(manifest["input"])
        self.layers: list[Mapping[str, Any]] = list(manifest["layers"])
        self.n_bits = int(manifest["embedding"]["bits"])
        self.classes_ = np.asarray(manifest["classes"], dtype=str)
        # the learning half (edgecl.device.learner): head, class memory, budget; with
        # backend="onnxruntime" it holds the bundle's graphs (edgecl.device.ort.OrtKernels)
        self.learner = Learner.from_manifest(
            manifest, arrays, backend=backend, budget_bytes=budget_bytes, threads=threads
        )
        self._ort = self.learner.ort
        if self._ort is None:
            from edgecl.kernels.float_dense import binary_float_dense  # (Numba)
            from edgecl.program.compile import compile_program

            self._float_dense = binary_float_dense

            # F as one callable, the first conv+threshold+pool fused (edgecl.program.compile)
            self._program = compile_program(
                parse_layers(self.layers, self.input_spec.shape, self.arrays),
                self.arrays,
                threads=self.threads,
            )
        self.backend = backend
        # the head as float32 (D, C), whatever precision the bundle stores it at
        self.head_weight, self.head_bias = self.learner.weight, self.learner.bias

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
        manifest, arrays = read_bundle(path)
        return cls(
            manifest, arrays, path=path, threads=threads, backend=backend, budget_bytes=budget_bytes
        )

    # -- forward -----------------------------------------------------------------------

    def embed(self, x: object) -> np.ndarray:
        """The D-bit embeddings of raw samples: packed uint64 ``(n, n_words(D))``."""
        xf = self.input_spec.check(x)
        out = np.empty((xf.shape[0], n_words(self.n_bits)), np.uint64)
        for i in range(0, xf.shape[0], CHUNK):
            if self._ort is not None:  # graph embed: normalisation and F inside
                out[i : i + CHUNK] = self._ort.embed(xf[i : i + CHUNK])
                continue
            part = self.input_spec.normalize(xf[i : i + CHUNK])
            out[i : i + CHUNK] = self._program(part)
        return out

    def logits_from_embedding(self, z_words: np.ndarray) -> np.ndarray:
        """Head logits ``z @ W + b`` (float32 (n, n_classes)) for packed embeddings."""
        if self._ort is not None:
            return self.learner.logits(z_words)
        y = self._float_dense(z_words, self.head_weight, self.n_bits, threads=self.threads)
        return y + self.head_bias

    def logits(self, x: object) -> np.ndarray:
        """Head logits (float32 (n, n_classes)), columns in ``classes_`` order."""
        return self.logits_from_embedding(self.embed(x))

    def predict_proba(self, x: object) -> np.ndarray:
        """Softmax probabilities (float64 (n, n_classes)), columns in ``classes_`` order
        (of the head logits, or of the combined scores when the bundle's head sets
        ``gbm_weight``, :meth:`edgecl.device.learner.Learner.scores`)."""
        z = self.learner.scores(self.embed(x))
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, x: object) -> np.ndarray:
        """The class name of the largest logit (or combined score, see ``predict_proba``)
        for every sample (an array of str)."""
        return self.classes_[np.argmax(self.learner.scores(self.embed(x)), axis=1)]

    # -- learning (delegated to edgecl.device.learner.Learner) --------------------------

    def _sync(self) -> None:
        lr = self.learner
        self.head_weight, self.head_bias = lr.weight, lr.bias
        self.classes_ = np.asarray(lr.classes, dtype=str)

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
        call's peak working memory with tracemalloc (slower; ``memory().peak_bytes``)."""
        name = check_class_name(name)
        if name in self.learner.classes:
            raise ValueError(
                f"expected a new class name, got {name!r} which is already learned "
                "(update_class adds samples to it)"
            )
        with _peak(trace_memory) as peak:
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
        self._sync()
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
        """Add samples to a learned class (its memory refit, the head retrained)."""
        name = check_class_name(name)
        if name not in self.learner.classes:
            raise KeyError(
                f"expected a learned class, got {name!r} (classes: {self.classes_.tolist()})"
            )
        z, t_embed = self._embed_timed(x)
        report = self.learner.update(
            name, z, epochs=epochs, seed=seed, progress=progress, _embed_s=t_embed
        )
        self._sync()
        return report

    def forget_class(self, name: str) -> MemoryReport:
        """Drop a class (its head row and class memory); returns the memory report."""
        report = self.learner.forget(name)
        self._sync()
        return report

    def memory(self) -> MemoryReport:
        """Stored bytes per part, budget, closed-form figures, peak of the last learn_class."""
        return self.learner.memory_report()

    def save(self, path: str | os.PathLike[str] | None = None) -> BundleInfo:
        """Write the bundle atomically (classes, head, class memory and budget updated) to
        ``path`` or, by default, the file it was loaded from."""
        target = self.path if path is None else Path(path)
        if target is None:
            raise ValueError("expected a path to save to, got none (not loaded from a file)")
        manifest, arrays = self.learner.manifest_update(self.manifest, self.arrays)
        info = write_bundle(target, manifest, arrays, overwrite=True)
        self.manifest, self.arrays, self.path = dict(info.manifest), arrays, Path(target)
        return info

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return (
            f"Runtime({len(self.classes_)} classes, D={self.n_bits}, "
            f"{len(self.layers)} layers{where})"
        )
