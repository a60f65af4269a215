"""The head G of the device (GBM §3.2's classifier): its classes, weight and bias as stored,
its logits, its bytes, and the backends that retrain it one SGD step per batch.

``Head`` is a value: ``with_class`` / ``without_class`` / ``trained`` return new heads, so a
learning call works on copies and commits by swapping one reference. The weight is kept as
stored (float32, float16 or int8 + scale, :func:`edgecl.bundle.round_head`): what predicts
is what is saved.

Step backends: ``"numba"`` runs :class:`edgecl.kernels.headstep.HeadStepper` (the math of
:func:`edgecl.kernels.head.softmax_head_step`, reference twin
:func:`~edgecl.kernels.head.softmax_head_step_reference`); ``"onnxruntime"`` runs the
bundle's ``head_step`` graph (:mod:`edgecl.device.ort`; Numba is then never imported).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edgecl.bundle import HEAD_BITS, HeadSpec, encode_head, head_bytes_per_class, round_head
from edgecl.errors import BundleError, InvalidValueError, UnknownClassError
from edgecl.validate import check_class_names, check_words, pos_int

__all__ = [
    "BACKENDS",
    "Head",
    "HeadFit",
    "HeadSettings",
    "HeadSteps",
    "NumbaHeadSteps",
    "OrtHeadSteps",
    "make_head_steps",
]

#: rows (embeddings) from which a head's products run on its threads; fewer run on one
PARALLEL_MIN_ROWS = 256

BACKENDS = ("numba", "onnxruntime")


#: The head's settings on the device (lr, epochs, batch_size, weight_decay, gbm_weight,
#: bits, onnx): the bundle's :class:`~edgecl.bundle.HeadSpec`, under the device's name.
HeadSettings = HeadSpec


@dataclass(frozen=True)
class HeadFit:
    """What one retraining run did: SGD ``steps`` and the loss of the first and last batch
    (each before its step)."""

    steps: int
    loss_first: float
    loss_last: float


class Head:
    """The head G on packed D-bit embeddings: ``classes`` name the columns of ``weight``
    float32 (D, C) (kept as stored at ``bits`` = 32, 16 or 8) and ``bias`` float32 (C,).
    The arrays given are copied and checked; treat the attributes as read-only."""

    def __init__(
        self,
        n_bits: int,
        classes: Sequence[str],
        weight: np.ndarray,
        bias: np.ndarray,
        *,
        bits: int = 32,
        threads: int = 1,
    ) -> None:
        n_bits = pos_int(n_bits, "n_bits")
        if isinstance(bits, bool) or bits not in HEAD_BITS:
            raise InvalidValueError(f"expected head_bits in {HEAD_BITS}, got {bits!r}")
        names = list(check_class_names(classes))
        w = np.array(weight, dtype=np.float32, copy=True, order="C")
        b = np.array(bias, dtype=np.float32, copy=True, order="C")
        if w.shape != (n_bits, len(names)) or b.shape != (len(names),):
            raise InvalidValueError(
                f"expected head weight ({n_bits}, {len(names)}) and bias ({len(names)},), "
                f"got {w.shape} and {b.shape}"
            )
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise InvalidValueError("expected a finite head, got NaN or inf")
        self.n_bits = n_bits
        self.bits = int(bits)
        self.threads = pos_int(threads, "threads")
        self.classes: tuple[str, ...] = tuple(names)
        self.weight = w if self.bits == 32 else round_head(w, self.bits)
        self.bias = b

    def _replace(self, classes: tuple[str, ...], weight: np.ndarray, bias: np.ndarray) -> Head:
        """A head of the same D, bits and threads with checked-elsewhere arrays (not copied)."""
        new = object.__new__(Head)
        new.n_bits, new.bits, new.threads = self.n_bits, self.bits, self.threads
        new.classes, new.weight, new.bias = classes, weight, bias
        return new

    # -- bytes -------------------------------------------------------------------------------
    @property
    def bytes_per_class(self) -> int:
        """One head row as stored: D weights at ``bits``, the float32 bias (and the float32
        scale of an int8 row)."""
        return head_bytes_per_class(self.n_bits, self.bits)

    @property
    def nbytes(self) -> int:
        return self.bytes_per_class * len(self.classes)

    def stored_arrays(self) -> dict[str, np.ndarray]:
        """The arrays as a bundle stores them: ``weight`` (and ``scale`` for int8), ``bias``."""
        return {**encode_head(self.weight, self.bits), "bias": self.bias.copy()}

    # -- forward -----------------------------------------------------------------------------
    def logits(self, z_words: np.ndarray, *, trusted: bool = False) -> np.ndarray:
        """``z @ W + b`` (float32 (n, C)) for packed embeddings. ``trusted``: C-contiguous
        (n, n_words(D)) uint64 words with clear tail bits, as ``Runtime.embed`` makes them
        (their checks skipped, the same sums; one thread below
        :data:`PARALLEL_MIN_ROWS` rows, where a thread pool costs more than it saves)."""
        from edgecl.kernels.float_dense import binary_float_dense, binary_float_dense_trusted

        if trusted and self.serial_for(z_words.shape[0]):
            return binary_float_dense_trusted(z_words, self.weight, self.bias)
        z = check_words(z_words, self.n_bits)
        return binary_float_dense(z, self.weight, self.n_bits, threads=self.threads) + self.bias

    def serial_for(self, n_rows: int) -> bool:
        """Whether ``n_rows`` embeddings run on one thread: always with one, and below
        :data:`PARALLEL_MIN_ROWS` rows, where a thread pool costs more than it saves."""
        return self.threads == 1 or n_rows < PARALLEL_MIN_ROWS

    def index(self, name: str) -> int:
        """The column of a class; :class:`UnknownClassError` naming the known ones."""
        if name not in self.classes:
            raise UnknownClassError(
                f"expected a learned class, got {name!r} (classes: {list(self.classes)})"
            )
        return self.classes.index(name)

    # -- new heads ---------------------------------------------------------------------------
    def with_class(self, name: str) -> Head:
        """This head with a zero column for a new class ``name`` at the end."""
        weight = np.concatenate([self.weight, np.zeros((self.n_bits, 1), np.float32)], axis=1)
        bias = np.concatenate([self.bias, np.zeros(1, np.float32)])
        return self._replace(self.classes + (name,), weight, bias)

    def without_class(self, name: str) -> Head:
        """This head without the column of ``name``."""
        i = self.index(name)
        keep = [j for j in range(len(self.classes)) if j != i]
        return self._replace(
            tuple(c for c in self.classes if c != name),
            np.ascontiguousarray(self.weight[:, keep]),
            np.ascontiguousarray(self.bias[keep]),
        )

    def trained(
        self,
        batches: Iterable[tuple[np.ndarray, np.ndarray]],
        steps: HeadSteps,
        settings: HeadSettings,
        *,
        n_batches: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[Head, HeadFit]:
        """This head after one SGD step per batch ``(words, labels)``, rounded to ``bits``
        as it will be stored; ``progress(step, n_batches)`` after each step.
        ``FloatingPointError`` if the head diverges (NaN or inf)."""
        weight, bias, fit = steps.train(
            self.weight, self.bias, batches, settings, n_batches=n_batches, progress=progress
        )
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise FloatingPointError(
                f"expected a finite head after training, got NaN or inf "
                f"(lr {settings.lr} too high?)"
            )
        return self._replace(self.classes, round_head(weight, self.bits), bias), fit

    def copy(self) -> Head:
        return self._replace(self.classes, self.weight.copy(), self.bias.copy())


class HeadSteps(Protocol):
    """A step backend: runs one SGD step per batch on a ``(D, C)`` head."""

    name: str

    def check_classes(self, n_classes: int) -> None: ...

    def train(
        self,
        weight: np.ndarray,
        bias: np.ndarray,
        batches: Iterable[tuple[np.ndarray, np.ndarray]],
        settings: HeadSettings,
        *,
        n_batches: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, HeadFit]: ...


def _run(batches, step, n_batches, progress) -> HeadFit:
    steps, first, last = 0, math.nan, math.nan
    for words, labels in batches:
        loss = step(words, labels)
        if steps == 0:
            first = loss
        last = loss
        steps += 1
        if progress is not None:
            progress(steps, n_batches)
    return HeadFit(steps, float(first), float(last))


class NumbaHeadSteps:
    """The Numba step (:class:`~edgecl.kernels.headstep.HeadStepper`) on transposed (C, D)
    working copies, ping-ponged between two buffers."""

    name = "numba"

    def __init__(self, n_bits: int) -> None:
        self.n_bits = int(n_bits)

    def check_classes(self, n_classes: int) -> None:
        """Any number of classes."""

    def train(self, weight, bias, batches, settings, *, n_batches, progress=None):
        from edgecl.kernels.headstep import HeadStepper  # (Numba)

        n_cls = weight.shape[1]
        stepper = HeadStepper(self.n_bits, n_cls, max(settings.batch_size, n_cls))
        buf = [np.ascontiguousarray(weight.T), bias.copy()]
        spare = [np.empty_like(buf[0]), np.empty_like(buf[1])]
        lr, wd = settings.lr, settings.weight_decay

        def step(words, labels):
            loss = stepper(words, buf[0], buf[1], labels, lr, wd, spare[0], spare[1])
            buf[0], spare[0], buf[1], spare[1] = spare[0], buf[0], spare[1], buf[1]
            return loss

        fit = _run(batches, step, n_batches, progress)
        return np.ascontiguousarray(buf[0].T), buf[1], fit


class OrtHeadSteps:
    """The bundle's ``head_step`` graph (:class:`edgecl.device.ort.OrtKernels`): one SGD
    step per call, any number of classes."""

    name = "onnxruntime"

    def __init__(self, kernels: Any) -> None:
        self.kernels = kernels

    def check_classes(self, n_classes: int) -> None:
        """Any number of classes (the graph's class axis is dynamic)."""

    def train(self, weight, bias, batches, settings, *, n_batches, progress=None):
        state = [weight, bias]

        def step(words, labels):
            state[0], state[1], loss = self.kernels.head_step(
                words, state[0], state[1], labels, settings.lr
            )
            return loss

        fit = _run(batches, step, n_batches, progress)
        return state[0], state[1], fit


def make_head_steps(backend: str, n_bits: int, ort: Any = None) -> HeadSteps:
    """The step backend named ``backend`` (one of :data:`BACKENDS`); ``"onnxruntime"``
    needs the bundle's graphs (``ort``, :class:`edgecl.device.ort.OrtKernels`)."""
    if backend not in BACKENDS:
        raise InvalidValueError(f"expected backend in {BACKENDS}, got {backend!r}")
    if backend == "numba":
        return NumbaHeadSteps(n_bits)
    if ort is None:
        from edgecl.device.ort import HOW_TO_EXPORT

        raise BundleError(
            f"backend='onnxruntime' needs the bundle's learning graphs, got none; {HOW_TO_EXPORT}"
        )
    return OrtHeadSteps(ort)
