"""Runtime owns its state: classes_, head_weight and head_bias are read-only views of it,
and snapshot() / restore() bring the whole learned state back."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.device import Runtime, RuntimeSnapshot
from edgecl.errors import InvalidTypeError


def _bytes(rt: Runtime, path) -> bytes:
    rt.save(path)
    return path.read_bytes()


def test_restore_brings_back_the_state_of_the_snapshot(bundle, stream, tmp_path):
    x, y, xt, _ = stream
    rt = Runtime.load(bundle)
    snap = rt.snapshot()
    assert isinstance(snap, RuntimeSnapshot)
    before = _bytes(rt, tmp_path / "before.ecl")
    p0 = rt.predict_proba(xt)
    rt.learn_class("c3", x[y == 3], seed=0)
    rt.forget_class("c0")
    assert list(rt.classes_) == ["c1", "c2", "c3"]
    rt.restore(snap)
    assert list(rt.classes_) == ["c0", "c1", "c2"]
    np.testing.assert_array_equal(rt.predict_proba(xt), p0)
    assert _bytes(rt, tmp_path / "after.ecl") == before
    # the snapshot is reusable: a second restore after more learning gives the same state
    rt.learn_class("c4", x[y == 4], seed=1)
    rt.restore(snap)
    assert _bytes(rt, tmp_path / "again.ecl") == before
    with pytest.raises(InvalidTypeError, match="RuntimeSnapshot"):
        rt.restore(rt.learner)


def test_views_follow_the_state_and_are_read_only(bundle, stream):
    x, y, _, _ = stream
    rt = Runtime.load(bundle)
    rt.learn_class("c3", x[y == 3], seed=0)
    assert rt.head_weight.shape == (rt.n_bits, 4) and rt.head_bias.shape == (4,)
    assert list(rt.classes_) == list(rt.learner.classes)
    for attr in ("classes_", "head_weight", "head_bias"):
        with pytest.raises(AttributeError):
            setattr(rt, attr, None)
