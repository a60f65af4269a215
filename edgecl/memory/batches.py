"""Class-balanced batches of new-class embeddings and pseudo-exemplars (GBM paper eq. 4):
the one scheduler the device learner trains its head on and the benchmarks measure.

Within a batch of ``B`` samples, ``N_new = B * n_new / (n_old + n_new)`` come from the new
classes and ``N_old = B * n_old / (n_old + n_new)`` from the memory, ``n_*`` being numbers of
classes, so every seen class gets the same share ``B / (n_old + n_new)``. Integer shares:
each class gets ``B // n`` and the ``B % n`` left-over places go to classes in rotation
(shifted by ``step``, new classes first), so over consecutive batches every class gets the
same count. An epoch shows every new sample once at its share.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edgecl.errors import InvalidTypeError, InvalidValueError, UnknownClassError
from edgecl.memory._common import as_rng
from edgecl.memory.protocol import ClassMemory
from edgecl.validate import check_class_name, check_words, pos_int


@dataclass(frozen=True)
class BalancedCounts:
    """Per-batch counts of eq. 4: ``new`` per new class, ``old`` per old class."""

    new: dict[str, int]
    old: dict[str, int]

    @property
    def n_new(self) -> int:
        """N_new of eq. 4."""
        return sum(self.new.values())

    @property
    def n_old(self) -> int:
        """N_old of eq. 4."""
        return sum(self.old.values())


def _counts(batch_size: int, n_classes: int, step: int) -> np.ndarray:
    """Eq. 4 as integer counts per class (in the order new classes, then old): every class
    gets ``B // n`` and the ``B % n`` left-over places rotate with ``step``."""
    base, rem = divmod(int(batch_size), n_classes)
    counts = np.full(n_classes, base, np.int64)
    start = (int(step) * rem) % n_classes
    counts[(start + np.arange(rem)) % n_classes] += 1
    return counts


def _check_batch_size(batch_size: object, n_classes: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise InvalidTypeError(f"expected batch_size as int, got {batch_size!r}")
    if batch_size < n_classes:
        raise InvalidValueError(
            f"expected batch_size >= number of classes ({n_classes}), got {batch_size}"
        )
    return int(batch_size)


def class_balanced_counts(
    batch_size: int, new_classes: Sequence[str], old_classes: Sequence[str], *, step: int = 0
) -> BalancedCounts:
    """Eq. 4 as integer counts per class for one batch (``step`` rotates the remainder)."""
    new_classes, old_classes = list(new_classes), list(old_classes)
    everyone = new_classes + old_classes
    if not everyone:
        raise InvalidValueError("expected at least one class, got none")
    if len(set(everyone)) != len(everyone):
        raise InvalidValueError(f"expected distinct new and old classes, got {everyone}")
    counts = _counts(_check_batch_size(batch_size, len(everyone)), len(everyone), step)
    k = len(new_classes)
    return BalancedCounts(
        new={c: int(counts[i]) for i, c in enumerate(new_classes)},
        old={c: int(counts[k + i]) for i, c in enumerate(old_classes)},
    )


def batches_per_epoch(batch_size: int, n_classes: int, new_sizes: Sequence[int]) -> int:
    """Batches per epoch: every new sample shown once at its eq. 4 share ``B // n``."""
    share = max(int(batch_size) // max(int(n_classes), 1), 1)
    return max(-(-int(m) // share) for m in new_sizes)


class BalancedBatches(Iterator[tuple[np.ndarray, np.ndarray]]):
    """Class-balanced batches (eq. 4) ``(words, labels)`` for retraining a head: the new
    classes' embeddings and fresh pseudo-exemplars of every old class.

    ``new`` maps each new class name to its packed embeddings (N_c, n_words(D)); the old
    classes are ``memory.classes`` minus the new names, replayed by ``memory.sample``.
    Each epoch shows every new sample once: the number of batches is set by the largest new
    class at its eq. 4 share. ``labels`` are ``int64`` indices from ``class_index`` (default:
    old classes in memory order, then new ones). The inputs are checked when it is made;
    ``len()`` is the number of batches.
    """

    def __init__(
        self,
        memory: ClassMemory,
        new: Mapping[str, np.ndarray],
        *,
        batch_size: int,
        epochs: int = 1,
        class_index: Mapping[str, int] | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if not isinstance(new, Mapping) or not new:
            raise InvalidValueError("expected at least one new class in `new`, got none")
        epochs = pos_int(epochs, "epochs")
        self._new = {
            check_class_name(c): check_words(z, memory.n_bits, what=f"new[{c!r}]")
            for c, z in new.items()
        }
        old = [c for c in memory.classes if c not in self._new]
        if class_index is None:
            class_index = {c: i for i, c in enumerate(old + list(self._new))}
        missing = [c for c in [*self._new, *old] if c not in class_index]
        if missing:
            raise UnknownClassError(f"expected class_index to cover every class, missing {missing}")
        self._names = list(self._new) + old
        self._old = old
        self._batch_size = _check_batch_size(batch_size, len(self._names))
        self._per_epoch = batches_per_epoch(
            self._batch_size, len(self._names), [z.shape[0] for z in self._new.values()]
        )
        self._steps = self._per_epoch * epochs
        self._memory = memory
        self._index = dict(class_index)
        self._rng = as_rng(seed)
        self._gen: Iterator[tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return self._steps

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        if self._gen is None:
            self._gen = self._run()
        return next(self._gen)

    def _run(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # the pseudo-exemplars of the whole run drawn in one memory.sample call (each batch
        # still gets its own, never reused); the run laid out one epoch of batches at a time
        # (bounded extra memory), each batch grouped by class (the SGD step averages over
        # the batch, so order does not matter); every new sample once per pass over it, in a
        # fresh random order each pass; the old classes' pseudo-exemplars in the order drawn
        new, names, old, rng = self._new, self._names, self._old, self._rng
        n, per_epoch, steps = len(names), self._per_epoch, self._steps
        counts = np.stack([_counts(self._batch_size, n, s % per_epoch) for s in range(steps)])
        pools: dict[str, np.ndarray] = {}
        if old:
            totals = {c: int(counts[:, len(new) + i].sum()) for i, c in enumerate(old)}
            words, _ = self._memory.sample(totals, rng=rng)
            start = 0
            for c in old:  # memory.sample groups by class in the order of the counts
                pools[c] = words[start : start + totals[c]]
                start += totals[c]
        n_words = next(iter(new.values())).shape[1]
        order: dict[str, np.ndarray] = {}  # the new samples' indices for the whole run
        for c, z in new.items():
            m = z.shape[0]
            total = int(counts[:, names.index(c)].sum())
            order[c] = np.concatenate([rng.permutation(m) for _ in range(-(-total // m))])[:total]
        used = dict.fromkeys(names, 0)
        for s0 in range(0, steps, per_epoch):
            block = counts[s0 : s0 + per_epoch]
            batch = block.sum(axis=1)
            ends = np.cumsum(batch)
            words_all = np.empty((int(ends[-1]), n_words), np.uint64)
            labels_all = np.empty(int(ends[-1]), np.int64)
            starts = (ends - batch)[:, None] + np.cumsum(block, axis=1) - block
            for i, c in enumerate(names):
                k = block[:, i]
                total = int(k.sum())
                if total == 0:
                    continue
                pos = np.repeat(starts[:, i] - (np.cumsum(k) - k), k) + np.arange(total)
                span = slice(used[c], used[c] + total)
                words_all[pos] = new[c][order[c][span]] if c in new else pools[c][span]
                labels_all[pos] = self._index[c]
                used[c] += total
            for lo, hi in zip(ends - batch, ends, strict=True):
                yield words_all[lo:hi], labels_all[lo:hi]


#: The one eq. 4 scheduler, called as a function: ``balanced_batches(memory, new, *,
#: batch_size, epochs=1, class_index=None, seed=None)``.
balanced_batches = BalancedBatches


__all__ = [
    "BalancedBatches",
    "BalancedCounts",
    "balanced_batches",
    "batches_per_epoch",
    "class_balanced_counts",
]
