"""The byte budget: strict refuses before changing anything; adapt shrinks and says what."""

import numpy as np
import pytest
from memhelpers import FAST_EM

from edgecl.errors import BudgetError
from edgecl.kernels.bits import pack_bits
from edgecl.memory import (
    Budget,
    BufferSize,
    GBMConfig,
    GBMMemory,
    GBMSize,
    LatentBuffer,
    LatentBufferConfig,
    Plan,
    add_class_within_budget,
    apply_plan,
    plan_class_addition,
)


def _z(seed, n=12, d=64):
    return pack_bits(np.random.default_rng(seed).random((n, d)) < 0.5)


def _state(m):
    spec, arrays = m.to_state()
    return spec, {k: v.copy() for k, v in arrays.items()}


def _same(a, b):
    assert a[0] == b[0]
    for k in a[1]:
        np.testing.assert_array_equal(a[1][k], b[1][k])


def test_budget_validates():
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="bytes"):
            Budget(bad)
    with pytest.raises(ValueError, match="policy"):
        Budget(100, "loose")
    assert Budget(100, "adapt").to_dict() == {"bytes": 100, "policy": "adapt"}


def test_strict_refuses_and_leaves_state_unchanged():
    m = GBMMemory(64, GBMConfig(components=2, **FAST_EM))
    m.fit_class("a", _z(0), seed=0)
    before = _state(m)
    per_class = m.nbytes_for()
    budget = Budget(m.nbytes + per_class + 100 + 30 - 1, "strict")  # one byte short
    with pytest.raises(BudgetError) as err:
        add_class_within_budget(
            m, "b", _z(1), budget, other_stored_bytes=100, extra_bytes_per_class=30, seed=0
        )
    e = err.value
    assert e.needed == m.nbytes + per_class + 130
    assert e.free == budget.bytes - m.nbytes - 100
    assert "class memory" in e.part
    assert str(e.needed) in str(e) and str(e.free) in str(e)
    _same(before, _state(m))
    assert m.classes == ("a",)
    # exactly at the budget it fits
    new, plan = add_class_within_budget(
        m,
        "b",
        _z(1),
        Budget(budget.bytes + 1, "strict"),
        other_stored_bytes=100,
        extra_bytes_per_class=30,
        seed=0,
    )
    assert new.classes == ("a", "b") and not plan.gave_up
    assert plan.stored_bytes == budget.bytes + 1
    _same(before, _state(m))


def _add_many(memory, budget, n_classes, extra):
    other = 0
    plans = []
    for i in range(n_classes):
        new, plan = add_class_within_budget(
            memory,
            f"c{i}",
            _z(i),
            budget,
            other_stored_bytes=other,
            extra_bytes_per_class=extra,
            seed=i,
        )
        assert isinstance(plan, Plan)
        other += extra
        assert new.nbytes + other <= budget.bytes
        assert new.nbytes == plan.class_memory_bytes
        assert plan.stored_bytes == new.nbytes + other
        memory = new
        plans.append(plan)
    return memory, plans


@pytest.mark.parametrize("kind", ["gbm", "buffer"])
def test_adapt_never_exceeds_the_budget_across_100_classes(kind):
    if kind == "gbm":
        m = GBMMemory(64, GBMConfig(components=4, bits=8, **FAST_EM))
        minimum = m.size_nbytes(GBMSize(1, 1))
    else:
        m = LatentBuffer(64, LatentBufferConfig(per_class=8))
        minimum = m.size_nbytes(BufferSize(1))
    extra = 12
    budget = Budget(100 * (minimum + extra) + 3 * m.nbytes_for(), "adapt")
    m, plans = _add_many(m, budget, 100, extra)
    assert len(m.classes) == 100
    assert any(p.changes for p in plans)
    gave = [c for p in plans for c in p.changes]
    assert all(c.bytes_after < c.bytes_before for c in gave)
    # with every class at its smallest size and no byte free, one more class is refused
    for c in m.classes:
        size = m.class_size(c)
        while (s := m.smaller_size(size)) is not None:
            size = s
        m.resize_class(c, size, seed=0)
    full = Budget(m.nbytes + 100 * extra, "adapt")
    before = _state(m)
    with pytest.raises(BudgetError, match="smallest"):
        add_class_within_budget(
            m, "extra", _z(999), full, other_stored_bytes=100 * extra, extra_bytes_per_class=extra
        )
    _same(before, _state(m))


def test_adapt_plan_is_oldest_largest_first_and_readable():
    m = GBMMemory(64, GBMConfig(components=2, bits=8, **FAST_EM))
    for i in range(3):
        m.fit_class(f"c{i}", _z(i), seed=i)
    per = m.class_nbytes("c0")
    small = m.class_nbytes_at("c0", GBMSize(2, 4))
    budget = Budget(3 * per + per - (per - small) - 1, "adapt")  # forces exactly two shrinks
    plan = plan_class_addition(m, budget, name="new", n_samples=12)
    assert [c.name for c in plan.changes] == ["c0", "c1"]
    assert all(c.after == GBMSize(2, 4) for c in plan.changes)
    assert plan.new_class_size == GBMSize(2, 8) and not plan.new_class_shrunk
    text = str(plan)
    assert "c0" in text and "K=2, q=8 -> K=2, q=4" in text
    d = plan.to_dict()
    assert d["changes"][0]["after"] == {"components": 2, "bits": 4}
    before = _state(m)
    shrunk = apply_plan(m, plan, seed=0)
    _same(before, _state(m))  # input untouched
    assert shrunk.class_size("c0") == GBMSize(2, 4) and shrunk.class_size("c2") == GBMSize(2, 8)
    with pytest.raises(ValueError, match="plan was made for"):
        apply_plan(shrunk, plan)


def test_adapt_shrinks_the_new_class_when_everything_else_is_minimal():
    m = LatentBuffer(64, LatentBufferConfig(per_class=10))
    m.fit_class("a", _z(0, n=1))
    need = m.nbytes + m.size_nbytes(BufferSize(4))
    plan = plan_class_addition(m, Budget(need, "adapt"), name="b", n_samples=30)
    assert plan.new_class_shrunk and plan.new_class_size == BufferSize(4)
    assert "new class shrunk" in str(plan)


def test_plan_argument_checks():
    m = GBMMemory(64, GBMConfig(components=2, **FAST_EM))
    m.fit_class("a", _z(0), seed=0)
    with pytest.raises(TypeError, match="Budget"):
        plan_class_addition(m, 1000)
    with pytest.raises(ValueError, match="already stored"):
        plan_class_addition(m, Budget(10**6), name="a")
    with pytest.raises(ValueError, match="other_stored_bytes"):
        plan_class_addition(m, Budget(10**6), name="b", other_stored_bytes=-1)


@pytest.mark.parametrize("kind", ["gbm", "buffer"])
def test_plan_update_counts_what_add_samples_stores(kind):
    from edgecl.memory import plan_update

    m = (
        GBMMemory(64, GBMConfig(components=2, bits=4, **FAST_EM))
        if kind == "gbm"
        else LatentBuffer(64, LatentBufferConfig(per_class=30))
    )
    m.fit_class("a", _z(0, n=10), seed=0)
    head = 100
    plan = plan_update(m, None, name="a", n_samples=12, other_stored_bytes=head)
    assert plan.budget_bytes is None and plan.class_memory_bytes_before == m.nbytes
    after = m.copy()
    after.add_samples("a", _z(1, n=12), seed=1)
    assert plan.class_memory_bytes == after.nbytes  # the plan is what the call stores
    assert plan.stored_bytes == after.nbytes + head
    new = plan_update(m, None, name="b", n_samples=12)  # a class the memory lacks
    fitted = m.copy()
    fitted.fit_class("b", _z(2, n=12), seed=2)
    assert new.class_memory_bytes == fitted.nbytes
    state = _state(m)
    tight = Budget(plan.stored_bytes - 1)
    with pytest.raises(BudgetError) as info:
        plan_update(m, tight, name="a", n_samples=12, other_stored_bytes=head)
    assert info.value.needed == plan.stored_bytes
    assert info.value.free == tight.bytes - m.nbytes - head
    assert _state(m)[0] == state[0]
    assert plan_update(m, Budget(plan.stored_bytes), name="a", n_samples=12,
                       other_stored_bytes=head).stored_bytes == plan.stored_bytes  # fmt: skip
