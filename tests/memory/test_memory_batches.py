"""Class-balanced batches, eq. 4."""

import numpy as np
import pytest
from memhelpers import FAST_EM

from edgecl.kernels.bits import pack_bits
from edgecl.memory import GBMConfig, GBMMemory, balanced_batches, class_balanced_counts


def test_eq4_counts():
    c = class_balanced_counts(10, ["n"], ["a", "b", "c", "d"])
    assert c.n_new == 10 * 1 // 5 and c.n_old == 10 * 4 // 5
    assert c.new == {"n": 2} and c.old == {"a": 2, "b": 2, "c": 2, "d": 2}
    c = class_balanced_counts(64, ["x", "y"], ["a", "b", "c", "d", "e", "f"])
    assert c.n_new + c.n_old == 64 and c.n_new == 16 and c.n_old == 48


def test_remainder_rotates_to_exact_balance():
    classes = ["a", "b", "c"]
    total = dict.fromkeys(["n", *classes], 0)
    for step in range(4):
        c = class_balanced_counts(10, ["n"], classes, step=step)
        assert c.n_new + c.n_old == 10
        for k, v in {**c.new, **c.old}.items():
            total[k] += v
    assert set(total.values()) == {10}


def test_count_errors():
    with pytest.raises(ValueError, match="batch_size"):
        class_balanced_counts(2, ["n"], ["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        class_balanced_counts(8, ["a"], ["a"])
    with pytest.raises(ValueError, match="at least one"):
        class_balanced_counts(8, [], [])


def test_balanced_batches_mix_new_and_replayed():
    rng = np.random.default_rng(0)
    m = GBMMemory(64, GBMConfig(components=2, **FAST_EM))
    m.fit_class("a", pack_bits(rng.random((20, 64)) < 0.2), seed=0)
    m.fit_class("b", pack_bits(rng.random((20, 64)) < 0.8), seed=0)
    new = pack_bits(rng.random((25, 64)) < 0.5)
    seen_new = []
    batches = list(balanced_batches(m, {"n": new}, batch_size=12, epochs=2, seed=1))
    assert len(batches) == 2 * 7  # 25 new samples at 4 per batch, twice
    for words, labels in batches:
        assert words.shape == (12, 1) and np.bincount(labels, minlength=3).tolist() == [4, 4, 4]
        seen_new.append(words[labels == 2])
    first_epoch = np.concatenate(seen_new[:7])
    assert {r.tobytes() for r in first_epoch} == {r.tobytes() for r in new}
    # custom label space
    w, lab = next(
        balanced_batches(m, {"n": new}, batch_size=6, class_index={"n": 7, "a": 3, "b": 5}, seed=0)
    )
    assert set(lab.tolist()) == {3, 5, 7}
    with pytest.raises(KeyError, match="class_index"):
        next(balanced_batches(m, {"n": new}, batch_size=6, class_index={"n": 0}))
