"""Class-balanced batches of new-class embeddings and pseudo-exemplars (GBM paper eq. 4).

Within a batch of ``B`` samples, ``N_new = B * n_new / (n_old + n_new)`` come from the new
classes and ``N_old = B * n_old / (n_old + n_new)`` from the memory, ``n_*`` being numbers of
classes, so every seen class gets the same share ``B / (n_old + n_new)``. Integer shares:
each class gets ``B // n`` and the ``B % n`` left-over places go to classes in rotation
(shifted by ``step``), so over consecutive batches every class gets the same count.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecl.memory._common import as_rng, check_name, check_words


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


def class_balanced_counts(
    batch_size: int, new_classes: Sequence[str], old_classes: Sequence[str], *, step: int = 0
) -> BalancedCounts:
    """Eq. 4 as integer counts per class for one batch (``step`` rotates the remainder)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"expected batch_size as int, got {batch_size!r}")
    new_classes, old_classes = list(new_classes), list(old_classes)
    everyone = new_classes + old_classes
    if not everyone:
        raise ValueError("expected at least one class, got none")
    if len(set(everyone)) != len(everyone):
        raise ValueError(f"expected distinct new and old classes, got {everyone}")
    if batch_size < len(everyone):
        raise ValueError(
            f"expected batch_size >= number of classes ({len(everyone)}), got {batch_size}"
        )
    n = len(everyone)
    base, rem = divmod(int(batch_size), n)
    start = (int(step) * rem) % n
    extra = {everyone[(start + i) % n] for i in range(rem)}
    counts = {c: base + (c in extra) for c in everyone}
    return BalancedCounts(
        new={c: counts[c] for c in new_classes}, old={c: counts[c] for c in old_classes}
    )


def balanced_batches(
    memory: Any,
    new: Mapping[str, np.ndarray],
    *,
    batch_size: int,
    epochs: int = 1,
    class_index: Mapping[str, int] | None = None,
    seed: int | np.random.Generator | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield shuffled class-balanced batches ``(words, labels)`` for retraining a head.

    ``new`` maps each new class name to its packed embeddings (N_c, n_words(D)); the old
    classes are ``memory.classes`` minus the new names, replayed by ``memory.sample`` (fresh
    pseudo-exemplars every batch). Each epoch shows every new sample once: the number of
    batches is set by the largest new class at its eq. 4 share. ``labels`` are ``int64``
    indices from ``class_index`` (default: old classes in memory order, then new ones).
    """
    if not isinstance(new, Mapping) or not new:
        raise ValueError("expected at least one new class in `new`, got none")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"expected epochs as an int >= 1, got {epochs!r}")
    new_data = {
        check_name(c): check_words(z, memory.n_bits, what=f"new[{c!r}]") for c, z in new.items()
    }
    old = [c for c in memory.classes if c not in new_data]
    names = old + list(new_data)
    if class_index is None:
        class_index = {c: i for i, c in enumerate(names)}
    missing = [c for c in names if c not in class_index]
    if missing:
        raise KeyError(f"expected class_index to cover every class, missing {missing}")
    gen = as_rng(seed)
    share0 = class_balanced_counts(batch_size, list(new_data), old)
    per_class = min(share0.new.values())
    n_batches = max(-(-z.shape[0] // max(per_class, 1)) for z in new_data.values())
    for _ in range(int(epochs)):
        order = {c: gen.permutation(z.shape[0]) for c, z in new_data.items()}
        cursor = dict.fromkeys(new_data, 0)
        for step in range(n_batches):
            counts = class_balanced_counts(batch_size, list(new_data), old, step=step)
            parts, labels = [], []
            for c, k in counts.new.items():
                z = new_data[c]
                idx = np.empty(k, dtype=np.int64)
                for j in range(k):
                    if cursor[c] >= z.shape[0]:
                        order[c] = gen.permutation(z.shape[0])
                        cursor[c] = 0
                    idx[j] = order[c][cursor[c]]
                    cursor[c] += 1
                parts.append(z[idx])
                labels.append(np.full(k, class_index[c], dtype=np.int64))
            if old:
                w, lab = memory.sample(counts.old, rng=gen)
                remap = np.array([class_index.get(c, -1) for c in memory.classes], dtype=np.int64)
                parts.append(w)
                labels.append(remap[lab])
            words = np.concatenate(parts)
            lab_all = np.concatenate(labels)
            perm = gen.permutation(words.shape[0])
            yield words[perm], lab_all[perm]


__all__ = ["BalancedCounts", "balanced_batches", "class_balanced_counts"]
