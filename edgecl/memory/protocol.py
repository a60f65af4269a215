"""What every class memory offers (:class:`ClassMemory`, see :mod:`edgecl.memory`), and
what a generative one adds (:class:`GenerativeMemory`: a likelihood per class)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ClassMemory(Protocol):
    """What every class memory offers (see :mod:`edgecl.memory`'s docstring). ``Size`` is
    the memory's own size type (``GBMSize``, ``BufferSize``), what the budget trades."""

    kind: str
    #: the papers' closed-form size, e.g. ``"K·D·n_c·q"`` (GBM) or ``"E·D·n_c"`` (buffer)
    closed_form: str

    @property
    def n_bits(self) -> int: ...

    @property
    def classes(self) -> tuple[str, ...]: ...

    @property
    def nbytes(self) -> int: ...

    def fit_class(
        self, name: str, z_words: np.ndarray, *, seed: Any = None, size: Any = None
    ) -> None: ...

    def add_samples(self, name: str, z_words: np.ndarray, *, seed: Any = None) -> None: ...

    def remove_class(self, name: str) -> None: ...

    def sample(
        self, counts: Mapping[str, int], *, seed: Any = None, rng: Any = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def class_nbytes(self, name: str) -> int: ...

    def nbytes_for(self, n_samples: int | None = None, size: Any = None) -> int: ...

    def nbytes_after_add(self, name: str, n_samples: int) -> int: ...

    def default_size(self) -> Any: ...

    def class_size(self, name: str) -> Any: ...

    def smaller_size(self, size: Any) -> Any | None: ...

    def size_nbytes(self, size: Any, n_samples: int | None = None) -> int: ...

    def class_nbytes_at(self, name: str, size: Any) -> int: ...

    def resize_class(self, name: str, size: Any, *, seed: Any = None) -> None: ...

    def closed_form_bits(self) -> int: ...

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...

    def copy(self) -> Any: ...


@runtime_checkable
class GenerativeMemory(ClassMemory, Protocol):
    """A class memory that scores samples: ``log p(z | class)`` per stored class."""

    def log_likelihood(
        self, z_words: np.ndarray, classes: Sequence[str] | None = None, *, threads: int = 1
    ) -> np.ndarray: ...


__all__ = ["ClassMemory", "GenerativeMemory"]
