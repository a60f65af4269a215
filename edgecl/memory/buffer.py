"""Binary latent buffer: E stored packed embeddings per class (latent replay; for binary
latents the memory is M = E * D * n_c bits).

Selection (which exemplars fill a class's slots) is ``random`` (uniform without replacement,
then reservoir sampling as samples stream in) or ``herding`` (iCaRL's greedy choice of the
exemplars whose running mean stays closest to the class mean; on new samples the exemplars
are re-herded from the stored ones plus the new ones).

Storage layout of one class: ``E`` rows of ``D`` bits, each padded to whole uint64 words
(:func:`edgecl.memory._common.stored_nbytes`), plus the number of samples seen (uint32),
which reservoir sampling needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecl.errors import BundleError, ClassExistsError, InvalidTypeError, InvalidValueError
from edgecl.kernels.bits import n_words, tail_bits_clear, unpack_bits
from edgecl.memory._common import (
    ClassStore,
    as_rng,
    check_array,
    check_counts,
    stored_nbytes,
)
from edgecl.validate import check_class_name, check_words, pos_int

FORMAT = 1
SELECTIONS = ("random", "herding")


@dataclass(frozen=True)
class LatentBufferConfig:
    """Settings of a latent buffer: exemplars ``per_class`` (E) and the ``selection`` rule."""

    per_class: int = 20
    selection: str = "random"

    def __post_init__(self) -> None:
        e = pos_int(self.per_class, "per_class")
        if self.selection not in SELECTIONS:
            raise InvalidValueError(f"expected selection in {SELECTIONS}, got {self.selection!r}")
        object.__setattr__(self, "per_class", int(e))

    def to_dict(self) -> dict[str, Any]:
        return {"per_class": int(self.per_class), "selection": str(self.selection)}


@dataclass(frozen=True)
class BufferSize:
    """How many bytes one buffered class gets: ``exemplars`` E."""

    exemplars: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "exemplars", pos_int(self.exemplars, "exemplars"))

    def to_dict(self) -> dict[str, int]:
        return {"exemplars": int(self.exemplars)}

    def __str__(self) -> str:
        return f"E={self.exemplars}"


@dataclass(frozen=True)
class _Class:
    exemplars: np.ndarray  # (E_c, n_words(D)) uint64, E_c <= slots
    seen: int
    slots: int  # E of this class: how many exemplars it may hold


def herding_select(z_words: np.ndarray, n_bits: int, e: int) -> np.ndarray:
    """Indices of ``e`` rows chosen by herding (iCaRL): greedily keep the mean of the chosen
    rows closest to the mean of all rows."""
    x = unpack_bits(z_words, n_bits).astype(np.float64)
    n = x.shape[0]
    e = min(int(e), n)
    mean = x.mean(axis=0)
    chosen: list[int] = []
    taken = np.zeros(n, dtype=bool)
    acc = np.zeros(x.shape[1])
    sq = (x * x).sum(axis=1)
    for t in range(1, e + 1):
        # || mean - (acc + x_i) / t ||^2 up to terms that do not depend on i
        score = (sq + 2.0 * (x @ acc)) / (t * t) - 2.0 * (x @ mean) / t
        score[taken] = np.inf
        i = int(np.argmin(score))
        chosen.append(i)
        taken[i] = True
        acc += x[i]
    return np.array(chosen, dtype=np.int64)


class LatentBuffer(ClassStore):
    """Class memory of stored packed exemplars; see :mod:`edgecl.memory` for the protocol."""

    kind = "buffer"
    closed_form = "E·D·n_c"

    def __init__(self, n_bits: int, config: LatentBufferConfig | None = None) -> None:
        self._n_bits = pos_int(n_bits, "n_bits")
        config = LatentBufferConfig() if config is None else config
        if not isinstance(config, LatentBufferConfig):
            raise InvalidTypeError(f"expected a LatentBufferConfig, got {type(config).__name__}")
        self._config = config
        self._classes: dict[str, _Class] = {}

    @property
    def config(self) -> LatentBufferConfig:
        return self._config

    def exemplars(self, name: str) -> np.ndarray:
        """A copy of the stored packed exemplars (E_c, n_words(D)) of a class."""
        return self._get(name).exemplars.copy()

    def count(self, name: str) -> int:
        """Number of samples of the class seen so far."""
        return self._get(name).seen

    # -- sizes and bytes -------------------------------------------------------------------
    def default_size(self) -> BufferSize:
        return BufferSize(self._config.per_class)

    def class_size(self, name: str) -> BufferSize:
        return BufferSize(self._get(name).slots)

    def smaller_size(self, size: BufferSize) -> BufferSize | None:
        """One exemplar fewer, or None at E=1."""
        return BufferSize(size.exemplars - 1) if size.exemplars > 1 else None

    def size_nbytes(self, size: BufferSize, n_samples: int | None = None) -> int:
        """Stored bytes of one class at ``size`` (a class of fewer than E samples stores all)."""
        e = size.exemplars if n_samples is None else min(size.exemplars, int(n_samples))
        return stored_nbytes(self._n_bits, e) + 4

    def nbytes_for(self, n_samples: int | None = None, size: BufferSize | None = None) -> int:
        return self.size_nbytes(self.default_size() if size is None else size, n_samples)

    def class_nbytes_at(self, name: str, size: BufferSize) -> int:
        """Stored bytes a stored class would take after ``resize_class(name, size)``."""
        e = min(size.exemplars, self._get(name).exemplars.shape[0])
        return stored_nbytes(self._n_bits, e) + 4

    def nbytes_after_add(self, name: str, n_samples: int) -> int:
        """Stored bytes of the whole memory after ``add_samples(name, <n_samples rows>)``."""
        c = self._get(name)
        grown = min(c.slots, c.exemplars.shape[0] + int(n_samples))
        return self.nbytes + stored_nbytes(self._n_bits, grown - c.exemplars.shape[0])

    def class_nbytes(self, name: str) -> int:
        return stored_nbytes(self._n_bits, self._get(name).exemplars.shape[0]) + 4

    @property
    def nbytes(self) -> int:
        return sum(
            stored_nbytes(self._n_bits, c.exemplars.shape[0]) + 4 for c in self._classes.values()
        )

    def closed_form_bits(self) -> int:
        """The paper's formula M(LR) = E * D * n_c bits (summed per class when E varies)."""
        return sum(c.exemplars.shape[0] * self._n_bits for c in self._classes.values())

    # -- mutation --------------------------------------------------------------------------
    def _select(self, z: np.ndarray, e: int, rng: np.random.Generator) -> np.ndarray:
        if e >= z.shape[0]:
            return np.arange(z.shape[0])
        if self._config.selection == "herding":
            return herding_select(z, self._n_bits, e)
        return np.sort(rng.choice(z.shape[0], size=e, replace=False))

    def fit_class(
        self,
        name: str,
        z_words: np.ndarray,
        *,
        seed: int | np.random.Generator | None = None,
        size: BufferSize | None = None,
    ) -> None:
        """Store E exemplars of a new class selected from packed embeddings (N, n_words(D));
        all of them when N <= E. Refuses an existing name and an empty class."""
        check_class_name(name)
        if name in self._classes:
            raise ClassExistsError(
                f"expected a new class name, got {name!r} which is already stored"
            )
        size = self.default_size() if size is None else size
        if not isinstance(size, BufferSize):
            raise InvalidTypeError(f"expected size as BufferSize, got {type(size).__name__}")
        z = check_words(z_words, self._n_bits)
        idx = self._select(z, size.exemplars, as_rng(seed))
        self._classes[name] = _Class(z[idx].copy(), int(z.shape[0]), size.exemplars)

    def add_samples(
        self, name: str, z_words: np.ndarray, *, seed: int | np.random.Generator | None = None
    ) -> None:
        """Stream new samples of a stored class in: reservoir sampling (random) keeps a uniform
        sample of everything seen in the class's E slots; herding re-herds stored + new."""
        c = self._get(name)
        z = check_words(z_words, self._n_bits)
        rng = as_rng(seed)
        cap = c.slots
        if self._config.selection == "herding":
            pool = np.concatenate([c.exemplars, z], axis=0)
            idx = self._select(pool, cap, rng)
            self._classes[name] = _Class(pool[idx].copy(), c.seen + int(z.shape[0]), cap)
            return
        ex = list(c.exemplars)
        seen = c.seen
        for row in z:
            seen += 1
            if len(ex) < cap:
                ex.append(row.copy())
            else:
                j = int(rng.integers(0, seen))
                if j < cap:
                    ex[j] = row.copy()
        stored = np.array(ex, dtype=np.uint64).reshape(len(ex), -1)
        self._classes[name] = _Class(stored, seen, cap)

    def resize_class(
        self, name: str, size: BufferSize, *, seed: int | np.random.Generator | None = None
    ) -> None:
        """Keep ``size.exemplars`` of the stored exemplars, chosen by the selection rule."""
        c = self._get(name)
        if not isinstance(size, BufferSize):
            raise InvalidTypeError(f"expected size as BufferSize, got {type(size).__name__}")
        if size.exemplars >= c.exemplars.shape[0]:
            self._classes[name] = _Class(c.exemplars, c.seen, size.exemplars)
            return
        idx = self._select(c.exemplars, size.exemplars, as_rng(seed))
        self._classes[name] = _Class(c.exemplars[idx].copy(), c.seen, size.exemplars)

    def remove_class(self, name: str) -> None:
        self._get(name)
        del self._classes[name]

    # -- sampling --------------------------------------------------------------------------
    def sample(
        self,
        counts: Mapping[str, int],
        *,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stored exemplars: without replacement when at most E are asked for a class, with
        replacement when more. Returns ``(words, labels)`` as :meth:`GBMMemory.sample`."""
        classes = self.classes
        counts = check_counts(counts, classes)
        gen = as_rng(seed, rng)
        out, labels = [], []
        for name, m in counts.items():
            if m == 0:
                continue
            ex = self._classes[name].exemplars
            idx = gen.choice(ex.shape[0], size=m, replace=m > ex.shape[0])
            out.append(ex[idx])
            labels.append(np.full(m, classes.index(name), dtype=np.int64))
        if not out:
            return np.zeros((0, n_words(self._n_bits)), np.uint64), np.zeros(0, np.int64)
        return np.concatenate(out), np.concatenate(labels)

    # -- state -----------------------------------------------------------------------------
    def copy(self) -> LatentBuffer:
        new = LatentBuffer(self._n_bits, self._config)
        for name, c in self._classes.items():
            new._classes[name] = _Class(c.exemplars.copy(), c.seen, c.slots)
        return new

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able spec + plain arrays whose bytes sum to ``nbytes`` exactly:
        ``exemplars`` (sum E, n_words(D)) uint64, ``seen`` (n_c,) uint32."""
        spec = {
            "kind": self.kind,
            "format": FORMAT,
            "n_bits": self._n_bits,
            "config": self._config.to_dict(),
            "classes": [
                {"name": n, "exemplars": c.exemplars.shape[0], "slots": c.slots}
                for n, c in self._classes.items()
            ],
        }
        cs = list(self._classes.values())
        nw = n_words(self._n_bits)
        arrays = {
            "exemplars": np.concatenate([c.exemplars for c in cs])
            if cs
            else np.zeros((0, nw), np.uint64),
            "seen": np.array([c.seen for c in cs], dtype=np.uint32),
        }
        return spec, arrays

    @classmethod
    def from_state(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> LatentBuffer:
        """Rebuild from :meth:`to_state`'s output; raises ``BundleError`` on any mismatch."""
        if not isinstance(spec, Mapping) or spec.get("kind") != cls.kind:
            raise BundleError(f"expected a memory spec of kind 'buffer', got {spec!r:.80}")
        if spec.get("format") != FORMAT:
            raise BundleError(f"expected buffer memory format {FORMAT}, got {spec.get('format')!r}")
        try:
            mem = cls(int(spec["n_bits"]), LatentBufferConfig(**spec["config"]))
            entries = [
                (check_class_name(e["name"]), BufferSize(int(e["exemplars"])), int(e["slots"]))
                for e in spec["classes"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"expected a valid buffer memory spec, got an error: {exc}") from exc
        if len({e[0] for e in entries}) != len(entries):
            raise BundleError("expected distinct class names in the buffer memory spec")
        d = mem.n_bits
        total = sum(s.exemplars for _, s, _ in entries)
        ex = check_array(arrays, "exemplars", np.uint64, (total, n_words(d)))
        seen = check_array(arrays, "seen", np.uint32, (len(entries),))
        if not tail_bits_clear(ex, d):
            raise BundleError(f"expected exemplar tail bits past bit {d} zero, got some set")
        r0 = 0
        for i, (name, s, slots) in enumerate(entries):
            if int(seen[i]) < s.exemplars or slots < s.exemplars:
                raise BundleError(
                    f"expected seen >= exemplars <= slots for {name!r}, got seen={int(seen[i])}, "
                    f"exemplars={s.exemplars}, slots={slots}"
                )
            mem._classes[name] = _Class(ex[r0 : r0 + s.exemplars].copy(), int(seen[i]), slots)
            r0 += s.exemplars
        return mem


__all__ = ["BufferSize", "LatentBuffer", "LatentBufferConfig", "herding_select"]
