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


@pytest.mark.parametrize(("n_new", "batch", "epochs"), [(25, 12, 2), (7, 5, 3), (1, 3, 1)])
def test_every_batch_is_balanced_and_every_new_sample_seen_once_per_pass(n_new, batch, epochs):
    """The one eq. 4 scheduler: len() is the number of batches, each batch holds the eq. 4
    counts of its step, and the new samples are shown in passes of a fresh permutation."""
    rng = np.random.default_rng(n_new)
    m = GBMMemory(70, GBMConfig(components=1, **FAST_EM))
    m.fit_class("a", pack_bits(rng.random((10, 70)) < 0.2), seed=0)
    m.fit_class("b", pack_bits(rng.random((10, 70)) < 0.8), seed=1)
    new = pack_bits(rng.random((n_new, 70)) < 0.5)
    index = {"n": 2, "a": 0, "b": 1}
    bb = balanced_batches(m, {"n": new}, batch_size=batch, epochs=epochs, class_index=index)
    per_epoch = -(-n_new // (batch // 3))
    assert len(bb) == per_epoch * epochs
    batches = list(bb)
    assert len(batches) == len(bb)
    shown = []
    for step, (words, labels) in enumerate(batches):
        want = class_balanced_counts(batch, ["n"], ["a", "b"], step=step % per_epoch)
        got = np.bincount(labels, minlength=3)
        assert [got[2], got[0], got[1]] == [want.new["n"], want.old["a"], want.old["b"]]
        assert words.shape == (batch, 2) and words.dtype == np.uint64
        shown.extend(r.tobytes() for r in words[labels == 2])
    rows = [r.tobytes() for r in new]
    for start in range(0, len(shown) - n_new + 1, n_new):  # each full pass: every sample once
        assert sorted(shown[start : start + n_new]) == sorted(rows)


def test_same_seed_same_batches():
    rng = np.random.default_rng(5)
    m = GBMMemory(64, GBMConfig(components=2, **FAST_EM))
    m.fit_class("a", pack_bits(rng.random((20, 64)) < 0.3), seed=0)
    new = {"n": pack_bits(rng.random((9, 64)) < 0.5)}
    one = list(balanced_batches(m, new, batch_size=6, epochs=2, seed=3))
    two = list(balanced_batches(m, new, batch_size=6, epochs=2, seed=np.random.default_rng(3)))
    for (w1, l1), (w2, l2) in zip(one, two, strict=True):
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(l1, l2)
