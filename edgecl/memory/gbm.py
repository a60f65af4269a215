"""Generative Binary Memory: per-class Bernoulli-mixture prototypes (GBM paper §3.1-3.2).

Each class keeps ``K`` prototypes quantized to ``q`` bits (mid-point levels, see
:mod:`edgecl.memory.quantize`), its mixing weights ``pi`` and its effective sample count.

Storage layout of one class (what ``nbytes`` counts, exactly what ``to_state`` writes):

- prototypes: one bit stream of ``K*D*q`` bits padded to whole uint64 words
  (:func:`edgecl.memory._common.stored_nbytes`);
- ``pi``: ``K`` float32 values (4 bytes each);
- the effective sample count: one uint32 (4 bytes), used to normalise ``pi`` across classes
  (§3.2) and to weight old against new samples in :meth:`GBMMemory.add_samples`.

The per-class ``K`` and ``q`` live in the JSON spec (the bundle's manifest), not in the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgecl.errors import BundleError, ClassExistsError, InvalidTypeError, InvalidValueError
from edgecl.kernels.bits import n_words, tail_bits_clear
from edgecl.memory._common import (
    ClassStore,
    as_rng,
    check_array,
    check_counts,
    stored_nbytes,
)
from edgecl.memory.backend import MemoryKernels, numba_memory_kernels
from edgecl.memory.em import MU_CLIP, fit_bmm
from edgecl.memory.quantize import (
    check_bits,
    dequantize,
    pack_levels,
    thresholds,
    unpack_levels,
)
from edgecl.validate import check_class_name, check_words, pos_int

FORMAT = 1


@dataclass(frozen=True)
class GBMConfig:
    """Settings of a GBM: ``components`` K, prototype ``bits`` q (1..8 or 32), whether ``pi``
    is trained (eq. 2) or fixed at 1/K, and the EM schedule of §3.1 (``n_init`` warm-up
    rounds of ``n_iter`` iterations, then to the stop rule ``epsilon`` or ``n_max`` steps)."""

    components: int = 8
    bits: int = 8
    trainable_pi: bool = True
    n_init: int = 5
    n_iter: int = 3
    epsilon: float = 1e-3
    n_max: int = 10

    def __post_init__(self) -> None:
        pos_int(self.components, "components")
        check_bits(self.bits)
        if not isinstance(self.trainable_pi, bool):
            raise InvalidTypeError(f"expected trainable_pi as bool, got {self.trainable_pi!r}")
        pos_int(self.n_init, "n_init")
        pos_int(self.n_iter, "n_iter")
        pos_int(self.n_max, "n_max")
        eps = self.epsilon
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise InvalidValueError(f"expected epsilon as a float >= 0, got {eps!r}")
        for name in ("components", "bits", "n_init", "n_iter", "n_max"):
            object.__setattr__(self, name, int(getattr(self, name)))  # plain ints for JSON
        object.__setattr__(self, "epsilon", float(eps))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (numpy scalars given to the constructor become Python ones)."""
        d = asdict(self)
        return {
            k: (
                bool(v)
                if isinstance(v, (bool, np.bool_))
                else float(v)
                if k == "epsilon"
                else int(v)
            )
            for k, v in d.items()
        }


@dataclass(frozen=True)
class GBMSize:
    """How many bytes one GBM class gets: ``components`` K and ``bits`` q per prototype value."""

    components: int
    bits: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", pos_int(self.components, "components"))
        object.__setattr__(self, "bits", check_bits(self.bits))

    def to_dict(self) -> dict[str, int]:
        return {"components": int(self.components), "bits": int(self.bits)}

    def __str__(self) -> str:
        return f"K={self.components}, q={self.bits}"


@dataclass(frozen=True)
class _Class:
    size: GBMSize
    words: np.ndarray  # packed prototype stream, n_words(K*D*q) uint64
    pi: np.ndarray  # (K,) float32
    count: int  # effective number of samples


def _class_nbytes(n_bits: int, size: GBMSize) -> int:
    k, q = size.components, size.bits
    return stored_nbytes(k * n_bits * q) + 4 * k + 4


def _shrink(size: GBMSize) -> GBMSize | None:
    """The adapt ladder of one class, cheapest accuracy loss per byte first (DESIGN.md's table:
    q 8 -> 4 costs ~0.2 points, K 8 -> 1 about 5, q 2 -> 1 about 30): float32 -> 8 bits,
    8 -> 4 bits, then halve K down to 1, then q 4 -> 3 -> 2 -> 1."""
    k, q = size.components, size.bits
    if q == 32:
        return GBMSize(k, 8)
    if q > 4:
        return GBMSize(k, 4)
    if k > 1:
        return GBMSize(k // 2, q)
    if q > 1:
        return GBMSize(k, q - 1)
    return None


class GBMMemory(ClassStore):
    """Class memory of Bernoulli-mixture prototypes; see :mod:`edgecl.memory` for the protocol.

    ``kernels`` run its EM, quantisation and sampling (default: the Numba kernels,
    :mod:`edgecl.memory.backend`); copies keep them."""

    kind = "gbm"
    closed_form = "K·D·n_c·q"

    def __init__(
        self, n_bits: int, config: GBMConfig | None = None, *, kernels: MemoryKernels | None = None
    ) -> None:
        self._n_bits = pos_int(n_bits, "n_bits")
        config = GBMConfig() if config is None else config
        if not isinstance(config, GBMConfig):
            raise InvalidTypeError(f"expected a GBMConfig, got {type(config).__name__}")
        if kernels is not None and not isinstance(kernels, MemoryKernels):
            raise InvalidTypeError(f"expected MemoryKernels or None, got {type(kernels).__name__}")
        self._config = config
        self._kernels = kernels
        self._classes: dict[str, _Class] = {}
        self._thresholds: dict[str, np.ndarray] = {}
        # log_likelihood's tables (for which classes, the arrays); None after every change
        self._tables: tuple[tuple[str, ...], tuple[np.ndarray, ...]] | None = None

    # -- read-only views -------------------------------------------------------------------
    @property
    def config(self) -> GBMConfig:
        return self._config

    @property
    def kernels(self) -> MemoryKernels:
        """The kernels its EM, quantisation and sampling run on."""
        return numba_memory_kernels() if self._kernels is None else self._kernels

    def with_kernels(self, kernels: MemoryKernels | None) -> GBMMemory:
        """A copy running on ``kernels`` (None: the Numba kernels); same state."""
        new = self.copy()
        if kernels is not None and not isinstance(kernels, MemoryKernels):
            raise InvalidTypeError(f"expected MemoryKernels or None, got {type(kernels).__name__}")
        new._kernels = kernels
        return new

    def prototypes(self, name: str) -> np.ndarray:
        """Dequantized prototypes ``mu`` (K, D) float64 of a class."""
        c = self._get(name)
        levels = unpack_levels(c.words, c.size.components, self._n_bits, c.size.bits)
        return dequantize(levels, c.size.bits)

    def mixing_weights(self, name: str) -> np.ndarray:
        """``pi`` (K,) of a class as stored (float32), as float64."""
        return self._get(name).pi.astype(np.float64)

    def log_likelihood(
        self, z_words: np.ndarray, classes: Sequence[str] | None = None, *, threads: int = 1
    ) -> np.ndarray:
        """``log p(z_i | class c)`` under each class's stored mixture (eq. 3's model with the
        dequantized prototypes clipped to ``[MU_CLIP, 1 - MU_CLIP]``, ``pi`` normalised):
        (N, len(classes)) float64, columns in the order of ``classes`` (default: all stored
        classes) — a generative classifier, a novelty score, the device's ``gbm_weight``
        term. One dense product with tables the memory keeps until its state changes."""
        names = self.classes if classes is None else tuple(classes)
        if self._tables is None or self._tables[0] != names:
            for c in names:  # unknown names are refused before the tables are built
                self._get(c)
        z = check_words(z_words, self._n_bits)
        if not names:
            return np.empty((z.shape[0], 0))
        from edgecl.kernels.float_dense import binary_float_dense  # (Numba, loaded on first use)

        a, const, owner, same_k, _ = self._likelihood_tables(names)
        comp = binary_float_dense(z, a, self._n_bits, threads=threads) + const
        n_cls = len(names)
        if same_k:  # every class has the same K: one vectorised logsumexp
            part = comp.reshape(z.shape[0], n_cls, -1)
            top = part.max(axis=2)
            return top + np.log(np.exp(part - top[:, :, None]).sum(axis=2))
        out = np.full((z.shape[0], n_cls), -np.inf)
        for i in range(n_cls):
            part = comp[:, owner == i]
            top = part.max(axis=1)
            out[:, i] = top + np.log(np.exp(part - top[:, None]).sum(axis=1))
        return out

    def likelihood_tables(
        self, classes: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What :meth:`log_likelihood` computes from, for fused kernels
        (:func:`edgecl.kernels.scores.combined_scores`): ``(A (D, K_total) float32, const
        (K_total,) float64, offsets (len(classes) + 1,) int64)`` with ``log pi_k p(z | mu_k)
        = z . A[:, k] + const[k]``, class ``classes[i]`` owning components
        ``offsets[i]:offsets[i + 1]``. Read-only arrays, kept until the memory changes."""
        names = tuple(classes)
        if self._tables is None or self._tables[0] != names:
            for c in names:  # unknown names are refused before the tables are built
                self._get(c)
        a, const, _, _, offsets = self._likelihood_tables(names)
        return a, const, offsets

    def _likelihood_tables(self, names: tuple[str, ...]) -> tuple[Any, ...]:
        """``(A (D, K_total) float32, const (K_total,), owner (K_total,), same_k,
        offsets)`` with ``log pi_k p(z | mu_k) = z . A[:, k] + const[k]`` for every
        component of ``names``, in that order (``same_k``: every class has the same number
        of components; class ``i`` owns ``offsets[i]:offsets[i + 1]``). Kept
        until the next change of the memory's state (:meth:`_store`, :meth:`remove_class`
        drop them)."""
        if self._tables is not None and self._tables[0] == names:
            return self._tables[1]
        cols, consts, owner = [], [], []
        for i, c in enumerate(names):
            mu = np.clip(self.prototypes(c), MU_CLIP, 1.0 - MU_CLIP)
            pi = self.mixing_weights(c)
            pi = pi / pi.sum()
            with np.errstate(divide="ignore"):
                cols.append((np.log(mu) - np.log1p(-mu)).T)
                consts.append(np.log1p(-mu).sum(axis=1) + np.log(pi))
            owner.append(np.full(mu.shape[0], i, np.int64))
        owner_all = np.concatenate(owner)
        n_cls = len(names)
        same_k = owner_all.size % n_cls == 0 and np.array_equal(
            owner_all, np.repeat(np.arange(n_cls), owner_all.size // n_cls)
        )
        offsets = np.zeros(n_cls + 1, np.int64)
        np.cumsum([o.size for o in owner], out=offsets[1:])
        tables = (
            np.ascontiguousarray(np.concatenate(cols, axis=1), np.float32),
            np.concatenate(consts),
            owner_all,
            same_k,
            offsets,
        )
        for t in tables:
            if isinstance(t, np.ndarray):
                t.flags.writeable = False
        self._tables = (names, tables)
        return tables

    def count(self, name: str) -> int:
        """Effective number of samples the class's mixture stands for."""
        return self._get(name).count

    def joint_pi(self) -> dict[str, np.ndarray]:
        """``pi`` normalised across classes by effective sample counts (§3.2):
        ``n_c * pi_c / sum_c' n_c'``, summing to 1 over every stored component."""
        total = sum(c.count for c in self._classes.values())
        return {
            name: c.count * c.pi.astype(np.float64) / c.pi.sum(dtype=np.float64) / total
            for name, c in self._classes.items()
        }

    # -- sizes and bytes (the storage policy talks to these) -------------------------------
    def default_size(self) -> GBMSize:
        return GBMSize(self._config.components, self._config.bits)

    def class_size(self, name: str) -> GBMSize:
        return self._get(name).size

    def smaller_size(self, size: GBMSize) -> GBMSize | None:
        """The next step down the adapt ladder, or None at K=1, q=1."""
        return _shrink(size)

    def size_nbytes(self, size: GBMSize, n_samples: int | None = None) -> int:
        """Stored bytes of one class at ``size`` (``n_samples`` does not matter for GBM)."""
        return _class_nbytes(self._n_bits, size)

    def nbytes_for(self, n_samples: int | None = None, size: GBMSize | None = None) -> int:
        """Bytes a new class would take at ``size`` (default: the config's)."""
        return self.size_nbytes(self.default_size() if size is None else size, n_samples)

    def class_nbytes_at(self, name: str, size: GBMSize) -> int:
        """Stored bytes a stored class would take after ``resize_class(name, size)``."""
        self._get(name)
        return _class_nbytes(self._n_bits, size)

    def nbytes_after_add(self, name: str, n_samples: int) -> int:
        """Stored bytes of the whole memory after ``add_samples`` (a refit: unchanged)."""
        self._get(name)
        return self.nbytes

    def class_nbytes(self, name: str) -> int:
        return _class_nbytes(self._n_bits, self._get(name).size)

    @property
    def nbytes(self) -> int:
        """Stored bytes of the whole memory (prototype streams + pi + counts)."""
        return sum(_class_nbytes(self._n_bits, c.size) for c in self._classes.values())

    def closed_form_bits(self) -> int:
        """The paper's formula M(GBM) = K * D * n_c * q bits (summed per class when K, q vary)."""
        return sum(c.size.components * self._n_bits * c.size.bits for c in self._classes.values())

    # -- mutation --------------------------------------------------------------------------
    def _fit(self, z: np.ndarray, size: GBMSize, rng: np.random.Generator) -> tuple:
        cfg = self._config
        res = fit_bmm(
            z,
            self._n_bits,
            size.components,
            rng=rng,
            trainable_pi=cfg.trainable_pi,
            n_init=cfg.n_init,
            n_iter=cfg.n_iter,
            epsilon=cfg.epsilon,
            n_max=cfg.n_max,
            stats=self.kernels.em_stats,
        )
        levels = self.kernels.quantize(res.mu, size.bits)
        return pack_levels(levels, size.bits), res.pi.astype(np.float32)

    def _store(self, name: str, entry: _Class) -> None:
        total = entry.size.components * self._n_bits * entry.size.bits
        if not tail_bits_clear(entry.words, total):
            raise InvalidValueError("expected the prototype stream's tail bits zero, got some set")
        levels = unpack_levels(entry.words, entry.size.components, self._n_bits, entry.size.bits)
        if entry.size.bits == 32 and not np.all((levels >= 0) & (levels <= 1)):
            raise InvalidValueError(
                "expected float32 prototypes in [0, 1], got values outside or NaN"
            )
        self._thresholds[name] = thresholds(levels, entry.size.bits)
        self._classes[name] = entry
        self._tables = None

    def fit_class(
        self,
        name: str,
        z_words: np.ndarray,
        *,
        seed: int | np.random.Generator | None = None,
        size: GBMSize | None = None,
    ) -> None:
        """Fit a new class's mixture by EM (eqs. 1-3) on packed embeddings (N, n_words(D)).

        ``size`` overrides the config's K and q (a budget plan's ``new_class_size``).
        Refuses an existing name, an empty class and K > N; on error nothing changes.
        """
        check_class_name(name)
        if name in self._classes:
            raise ClassExistsError(
                f"expected a new class name, got {name!r} which is already stored"
            )
        size = self.default_size() if size is None else size
        if not isinstance(size, GBMSize):
            raise InvalidTypeError(f"expected size as GBMSize, got {type(size).__name__}")
        z = check_words(z_words, self._n_bits)
        if size.components > z.shape[0]:
            raise InvalidValueError(
                f"expected at least K={size.components} samples for class {name!r}, "
                f"got N={z.shape[0]}"
            )
        words, pi = self._fit(z, size, as_rng(seed))
        self._store(name, _Class(size, words, pi, int(z.shape[0])))

    def add_samples(
        self, name: str, z_words: np.ndarray, *, seed: int | np.random.Generator | None = None
    ) -> None:
        """Refit a stored class on its effective count of samples drawn from the current
        mixture plus the new ones (same K and q); the count grows by N."""
        c = self._get(name)
        z_new = check_words(z_words, self._n_bits)
        rng = as_rng(seed)
        old, _ = self.sample({name: c.count}, rng=rng)
        z = np.concatenate([old, z_new], axis=0)
        words, pi = self._fit(z, c.size, rng)
        self._store(name, _Class(c.size, words, pi, c.count + int(z_new.shape[0])))

    def resize_class(
        self, name: str, size: GBMSize, *, seed: int | np.random.Generator | None = None
    ) -> None:
        """Store a class at a smaller ``size`` (the selection side of a budget plan): fewer
        bits requantize the prototypes; fewer components refit from samples drawn from the
        current mixture (as many as its effective count)."""
        c = self._get(name)
        if not isinstance(size, GBMSize):
            raise InvalidTypeError(f"expected size as GBMSize, got {type(size).__name__}")
        if size == c.size:
            return
        if size.components == c.size.components:
            levels = self.kernels.quantize(self.prototypes(name), size.bits)
            self._store(name, _Class(size, pack_levels(levels, size.bits), c.pi, c.count))
            return
        if size.components > c.count:
            raise InvalidValueError(
                f"expected K <= count={c.count} for {name!r}, got K={size.components}"
            )
        rng = as_rng(seed)
        z, _ = self.sample({name: c.count}, rng=rng)
        words, pi = self._fit(z, size, rng)
        self._store(name, _Class(size, words, pi, c.count))

    def remove_class(self, name: str) -> None:
        self._get(name)
        del self._classes[name]
        del self._thresholds[name]
        self._tables = None

    # -- sampling --------------------------------------------------------------------------
    def sample(
        self,
        counts: Mapping[str, int],
        *,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pseudo-exemplars (§3.2): per sample a component drawn by the class's ``pi``, then
        Bernoulli bits from its dequantized prototype. Returns packed ``words`` (M, n_words(D))
        uint64 (tail bits zero) and ``labels`` (M,) int64 indices into ``classes``, grouped by
        class in the order of ``counts``."""
        classes = self.classes
        counts = check_counts(counts, classes)
        gen = as_rng(seed, rng)
        tables, offsets, rows, labels = [], {}, [], []
        offset = 0
        for name, c in self._classes.items():
            offsets[name] = offset
            tables.append(self._thresholds[name])
            offset += c.size.components
        for name, m in counts.items():
            if m == 0:
                continue
            pi = self._classes[name].pi.astype(np.float64)
            comp = gen.choice(pi.shape[0], size=m, p=pi / pi.sum())
            rows.append(offsets[name] + comp)
            labels.append(np.full(m, classes.index(name), dtype=np.int64))
        if not rows:
            return np.zeros((0, n_words(self._n_bits)), np.uint64), np.zeros(0, np.int64)
        table = np.concatenate(tables, axis=0)
        kernel_seed = int(gen.integers(0, 2**63))
        rows_all = np.concatenate(rows)
        words = self.kernels.sample_words(table, rows_all, self._n_bits, kernel_seed)
        return words, np.concatenate(labels)

    # -- state -----------------------------------------------------------------------------
    def copy(self) -> GBMMemory:
        new = GBMMemory(self._n_bits, self._config, kernels=self._kernels)
        for name, c in self._classes.items():
            new._classes[name] = _Class(c.size, c.words.copy(), c.pi.copy(), c.count)
            new._thresholds[name] = self._thresholds[name].copy()
        return new

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able spec + plain arrays whose bytes sum to ``nbytes`` exactly:
        ``prototypes`` (sum of words,) uint64, ``pi`` (sum K,) float32, ``counts`` (n_c,) uint32."""
        spec = {
            "kind": self.kind,
            "format": FORMAT,
            "n_bits": self._n_bits,
            "config": self._config.to_dict(),
            "classes": [
                {"name": n, "components": c.size.components, "bits": c.size.bits}
                for n, c in self._classes.items()
            ],
        }
        cs = list(self._classes.values())
        arrays = {
            "prototypes": np.concatenate([c.words for c in cs]) if cs else np.zeros(0, np.uint64),
            "pi": np.concatenate([c.pi for c in cs]) if cs else np.zeros(0, np.float32),
            "counts": np.array([c.count for c in cs], dtype=np.uint32),
        }
        return spec, arrays

    @classmethod
    def from_state(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> GBMMemory:
        """Rebuild from :meth:`to_state`'s output; raises ``BundleError`` on any mismatch."""
        if not isinstance(spec, Mapping) or spec.get("kind") != cls.kind:
            raise BundleError(f"expected a memory spec of kind 'gbm', got {spec!r:.80}")
        if spec.get("format") != FORMAT:
            raise BundleError(f"expected gbm memory format {FORMAT}, got {spec.get('format')!r}")
        try:
            mem = cls(int(spec["n_bits"]), GBMConfig(**spec["config"]))
            entries = [
                (str(e["name"]), GBMSize(int(e["components"]), int(e["bits"])))
                for e in spec["classes"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"expected a valid gbm memory spec, got an error: {exc}") from exc
        d = mem.n_bits
        n_total = sum(n_words(s.components * d * s.bits) for _, s in entries)
        k_total = sum(s.components for _, s in entries)
        words = check_array(arrays, "prototypes", np.uint64, (n_total,))
        pi = check_array(arrays, "pi", np.float32, (k_total,))
        counts = check_array(arrays, "counts", np.uint32, (len(entries),))
        if len({n for n, _ in entries}) != len(entries):
            raise BundleError("expected distinct class names in the gbm memory spec")
        w0 = p0 = 0
        for i, (name, s) in enumerate(entries):
            nw = n_words(s.components * d * s.bits)
            entry = _Class(
                s, words[w0 : w0 + nw].copy(), pi[p0 : p0 + s.components].copy(), int(counts[i])
            )
            if not (np.all(entry.pi >= 0) and entry.pi.sum() > 0) or entry.count < 1:
                raise BundleError(
                    f"expected pi >= 0 with a positive sum and count >= 1 for {name!r}"
                )
            try:
                mem._store(check_class_name(name), entry)
            except (TypeError, ValueError) as exc:
                raise BundleError(f"expected valid prototypes for {name!r}: {exc}") from exc
            w0 += nw
            p0 += s.components
        return mem


__all__ = ["GBMConfig", "GBMMemory", "GBMSize"]
