"""On-device baselines on the same packed embeddings, to show what GBM adds.

- :class:`NearestPrototype`: one prototype per class, its majority bits (ties -> 1), and
  prediction by the smallest Hamming distance (XOR + popcount); stores D bits per class.
- :class:`StreamingLDA`: streaming linear discriminant analysis (Hayes & Kanan, CVPR-W 2020):
  running class means and one shared covariance, predict with the LDA linear classifier
  ``W = Lambda mu_c``, ``b_c = -mu_c^T Lambda mu_c / 2``, ``Lambda = ((1 - s) Sigma + s I)^-1``
  (``s`` = shrinkage). The shared covariance is the exact pooled within-class covariance
  (class means and scatter merged per batch with Chan et al.'s update), which the paper's
  one-sample-at-a-time update approximates; batches of any size give the same result.
"""

from __future__ import annotations

import numpy as np

from edgecl.errors import ClassExistsError, InvalidValueError, UnknownClassError
from edgecl.kernels.bits import n_words, pack_bits, unpack_bits
from edgecl.validate import check_class_name, check_words, pos_int


class NearestPrototype:
    """Nearest class prototype by Hamming distance; ``fit_class`` / ``update`` / ``predict``."""

    def __init__(self, n_bits: int) -> None:
        self.n_bits = pos_int(n_bits, "n_bits")
        self._ones: dict[str, np.ndarray] = {}  # per-class bit counts (int64, D)
        self._n: dict[str, int] = {}
        self._protos = np.zeros((0, n_words(self.n_bits)), np.uint64)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self._ones)

    @property
    def nbytes(self) -> int:
        """Bytes of the packed prototypes (what prediction needs)."""
        return int(self._protos.nbytes)

    def _refresh(self) -> None:
        rows = [2 * self._ones[c] >= self._n[c] for c in self._ones]
        shape = (0, n_words(self.n_bits))
        self._protos = pack_bits(np.array(rows)) if rows else np.zeros(shape, np.uint64)

    def fit_class(self, name: str, z_words: np.ndarray) -> None:
        check_class_name(name)
        if name in self._ones:
            raise ClassExistsError(
                f"expected a new class name, got {name!r} which is already stored"
            )
        z = check_words(z_words, self.n_bits)
        self._ones[name] = unpack_bits(z, self.n_bits).sum(axis=0, dtype=np.int64)
        self._n[name] = z.shape[0]
        self._refresh()

    def update(self, name: str, z_words: np.ndarray) -> None:
        """Add samples to a stored class (the majority is over every sample seen)."""
        if name not in self._ones:
            raise UnknownClassError(
                f"expected a stored class, got {name!r} (stored: {list(self._ones)})"
            )
        z = check_words(z_words, self.n_bits)
        self._ones[name] = self._ones[name] + unpack_bits(z, self.n_bits).sum(axis=0)
        self._n[name] += z.shape[0]
        self._refresh()

    def prototypes(self) -> np.ndarray:
        return self._protos.copy()

    def distances(self, z_words: np.ndarray) -> np.ndarray:
        if not self._ones:
            raise InvalidValueError("expected at least one class before predicting, got none")
        from edgecl.kernels.bmm import hamming_distances  # (Numba, loaded on first use)

        return hamming_distances(check_words(z_words, self.n_bits), self._protos, self.n_bits)

    def predict(self, z_words: np.ndarray) -> np.ndarray:
        """Class indices (into ``classes``) of the nearest prototypes (ties: first class)."""
        return np.argmin(self.distances(z_words), axis=1).astype(np.int64)


class StreamingLDA:
    """Streaming LDA with a shared covariance (Hayes & Kanan 2020) on {0,1} embeddings."""

    def __init__(self, n_bits: int, *, shrinkage: float = 1e-4) -> None:
        n_bits = pos_int(n_bits, "n_bits")
        if not (isinstance(shrinkage, (int, float)) and 0.0 <= shrinkage <= 1.0):
            raise InvalidValueError(f"expected shrinkage in [0, 1], got {shrinkage!r}")
        self.n_bits = int(n_bits)
        self.shrinkage = float(shrinkage)
        self._means: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}
        self._scatter = np.zeros((self.n_bits, self.n_bits))
        self._total = 0
        self._model: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self._means)

    @property
    def nbytes(self) -> int:
        """Bytes of the float32 state it would store: class means + the shared covariance."""
        return 4 * (len(self._means) * self.n_bits + self.n_bits * self.n_bits)

    def _merge(self, name: str, x: np.ndarray) -> None:
        m_b = x.mean(axis=0)
        centred = x - m_b
        s_b = centred.T @ centred
        n_b = x.shape[0]
        if name in self._means:
            n_a, m_a = self._counts[name], self._means[name]
            d = m_b - m_a
            s_b = s_b + np.outer(d, d) * (n_a * n_b / (n_a + n_b))
            self._means[name] = m_a + d * (n_b / (n_a + n_b))
            self._counts[name] = n_a + n_b
        else:
            self._means[name] = m_b
            self._counts[name] = n_b
        self._scatter += s_b
        self._total += n_b
        self._model = None

    def fit_class(self, name: str, z_words: np.ndarray) -> None:
        check_class_name(name)
        if name in self._means:
            raise ClassExistsError(
                f"expected a new class name, got {name!r} which is already stored"
            )
        z = check_words(z_words, self.n_bits)
        self._merge(name, unpack_bits(z, self.n_bits).astype(np.float64))

    def update(self, name: str, z_words: np.ndarray) -> None:
        """Stream more samples of a stored class in."""
        if name not in self._means:
            raise UnknownClassError(
                f"expected a stored class, got {name!r} (stored: {list(self._means)})"
            )
        z = check_words(z_words, self.n_bits)
        self._merge(name, unpack_bits(z, self.n_bits).astype(np.float64))

    def _fit_model(self) -> tuple[np.ndarray, np.ndarray]:
        if self._model is None:
            cov = self._scatter / max(self._total, 1)
            s = self.shrinkage
            prec = np.linalg.pinv((1.0 - s) * cov + s * np.eye(self.n_bits))
            mu = np.array(list(self._means.values()))
            w = mu @ prec  # (C, D)
            b = -0.5 * np.einsum("cd,cd->c", w, mu)
            self._model = (w, b)
        return self._model

    def decision_function(self, z_words: np.ndarray) -> np.ndarray:
        if not self._means:
            raise InvalidValueError("expected at least one class before predicting, got none")
        z = check_words(z_words, self.n_bits)
        w, b = self._fit_model()
        return unpack_bits(z, self.n_bits).astype(np.float64) @ w.T + b

    def predict(self, z_words: np.ndarray) -> np.ndarray:
        """Class indices (into ``classes``) of the highest LDA scores."""
        return np.argmax(self.decision_function(z_words), axis=1).astype(np.int64)


__all__ = ["NearestPrototype", "StreamingLDA"]
