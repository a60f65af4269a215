"""Runtime.learn_class / update_class / forget_class / memory / save on hand-made bundles."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from edgecl.device import Runtime
from edgecl.device.reports import LearnReport, MemoryReport
from edgecl.errors import BudgetError


def _acc(rt: Runtime, x, y, names) -> float:
    return float(np.mean(rt.predict(x) == np.asarray(names)[y]))


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


NAMES = [f"c{i}" for i in range(8)]


def test_learns_five_classes_and_keeps_the_old_ones(bundle, stream):
    x, y, xt, yt = stream
    rt = Runtime.load(bundle)
    base = yt < 3
    assert _acc(rt, xt[base], yt[base], NAMES) > 0.9
    for k in range(3, 8):
        rep = rt.learn_class(NAMES[k], x[y == k], seed=k)
        assert isinstance(rep, LearnReport)
        assert rep.name == NAMES[k] and rep.n_classes == k + 1 and rep.steps > 0
        assert rep.stored_bytes == rep.class_memory_bytes + rep.head_bytes
        seen = yt <= k
        assert _acc(rt, xt[seen], yt[seen], NAMES) > 0.85, k
    assert list(rt.classes_) == NAMES
    old = yt < 3
    assert _acc(rt, xt[old], yt[old], NAMES) > 0.85
    mem = rt.memory()
    assert isinstance(mem, MemoryReport)
    assert mem.stored_bytes == sum(mem.parts.values())
    assert mem.class_memory_bytes == sum(v for k, v in mem.parts.items() if k.startswith("memory."))
    assert mem.head_bytes == 8 * (96 + 1) * 4
    assert mem.closed_form_bits == 8 * 2 * 96 * 4  # K*D*n_c*q
    assert mem.peak_bytes is not None and mem.peak_bytes > 0
    assert "stored bytes" in str(mem) and "class memory" in str(mem)
    d = mem.to_dict()
    assert d["stored_bytes"] == mem.stored_bytes and d["classes"] == NAMES


def test_save_and_reload_gives_the_same_predictions(bundle, stream, tmp_path):
    x, y, xt, _ = stream
    rt = Runtime.load(bundle)
    rt.learn_class("c3", x[y == 3], seed=0)
    info = rt.save(tmp_path / "out.ecl")
    again = Runtime.load(info.path)
    assert list(again.classes_) == list(rt.classes_)
    np.testing.assert_array_equal(again.predict(xt), rt.predict(xt))
    assert again.memory().stored_bytes == rt.memory().stored_bytes
    # saving an unchanged runtime twice gives the same bytes
    again.save(tmp_path / "twice.ecl")
    assert _digest(tmp_path / "twice.ecl") == _digest(info.path)


def test_same_seed_same_result(bundle, stream):
    x, y, xt, _ = stream
    a, b = Runtime.load(bundle), Runtime.load(bundle)
    a.learn_class("c3", x[y == 3], seed=5)
    b.learn_class("c3", x[y == 3], seed=5)
    np.testing.assert_array_equal(a.head_weight, b.head_weight)


def test_update_and_forget(bundle, stream):
    x, y, xt, yt = stream
    rt = Runtime.load(bundle)
    rt.learn_class("c3", x[y == 3][:10], seed=0)
    rep = rt.update_class("c3", x[y == 3][10:], seed=1)
    assert rep.action == "update" and rep.n_classes == 4
    m = yt <= 3
    assert _acc(rt, xt[m], yt[m], NAMES) > 0.85
    before = rt.memory()
    rep = rt.forget_class("c1")
    assert list(rt.classes_) == ["c0", "c2", "c3"]
    assert rep.stored_bytes < before.stored_bytes
    assert "c1" not in [p["name"] for p in rep.per_class]
    assert set(rt.predict(xt)) <= {"c0", "c2", "c3"}
    shown = rt.classes_
    shown[:] = "zz"  # a copy: the runtime's names (and predictions) stay
    assert list(rt.classes_) == ["c0", "c2", "c3"] and "zz" not in set(rt.predict(xt))
    with pytest.raises(KeyError):
        rt.forget_class("c1")
    with pytest.raises(KeyError):
        rt.update_class("nope", x[:3])
    rt.forget_class("c0")
    rt.forget_class("c2")
    with pytest.raises(ValueError, match="at least one class"):
        rt.forget_class("c3")


def _state(rt: Runtime):
    return (
        list(rt.classes_),
        rt.head_weight.copy(),
        rt.head_bias.copy(),
        rt.learner.memory.to_state()[1] if rt.learner.memory is not None else None,
        rt.memory().stored_bytes,
    )


def _same(a, b) -> bool:
    if a[0] != b[0] or a[4] != b[4]:
        return False
    if not (np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])):
        return False
    return all(np.array_equal(a[3][k], b[3][k]) for k in a[3])


@pytest.mark.parametrize("policy", ["strict", "adapt"])
def test_hundred_classes_never_exceed_the_budget(tmp_path, policy, bundle_maker, stream_maker):
    x, y = stream_maker(100, 8, seed=3)
    budget = 12_000
    path = bundle_maker(
        tmp_path / "b.ecl",
        x[y < 2],
        y[y < 2],
        ["k0", "k1"],
        n_bits=64,
        components=2,
        bits=8,
        budget=budget,
        policy=policy,
    )
    rt = Runtime.load(path)
    refused = 0
    gave_up = 0
    for k in range(2, 100):
        before = _state(rt)
        rt.save()
        digest = _digest(path)
        try:
            rep = rt.learn_class(f"k{k}", x[y == k], epochs=1, seed=k, trace_memory=False)
        except BudgetError as exc:
            refused += 1
            assert exc.needed > budget and exc.free < exc.needed
            assert _same(before, _state(rt)), "a refused call changed the runtime"
            rt.save()
            assert _digest(path) == digest, "a refused call changed the saved bundle"
            if policy == "strict":
                break
            continue
        gave_up += bool(rep.gave_up)
        assert rep.stored_bytes <= budget
        assert rt.memory().stored_bytes <= budget
    if policy == "strict":
        assert refused == 1 and len(rt.classes_) < 100
    else:
        assert gave_up > 0
        assert rt.memory().stored_bytes <= budget


def test_budget_lowered_at_load_never_raised(tmp_path, stream, bundle_maker):
    x, y, _, _ = stream
    m = y < 3
    path = bundle_maker(tmp_path / "b.ecl", x[m], y[m], NAMES[:3], budget=8000)
    rt = Runtime.load(path, budget_bytes=7000)
    assert rt.memory().budget_bytes == 7000
    with pytest.raises(ValueError, match="never raised"):
        Runtime.load(path, budget_bytes=9000)
    with pytest.raises(BudgetError):
        Runtime.load(path, budget_bytes=100)
    with pytest.raises(BudgetError) as info:
        Runtime.load(path, budget_bytes=rt.memory().stored_bytes + 10).learn_class("c3", x[y == 3])
    assert "needs" in str(info.value) and info.value.free == 10


def test_bad_inputs_are_refused_and_change_nothing(bundle, stream):
    x, y, _, _ = stream
    rt = Runtime.load(bundle)
    before = _state(rt)
    good = x[y == 3][:10]
    keep = good.copy()
    cases = [
        (ValueError, "c0", good),  # existing class
        (TypeError, 3, good),  # not a str
        (ValueError, "", good),  # empty name
        (ValueError, "new", good[:0]),  # empty batch
        (ValueError, "new", good[0]),  # (8, 8): missing the sample axis
        (ValueError, "new", good[:, :4]),  # wrong shape
        (ValueError, "new", good.reshape(10, 64)),  # flat
        (TypeError, "new", good.astype(str)),  # not numeric
        (TypeError, "new", good > 100),  # bool
    ]
    for exc, name, data in cases:
        with pytest.raises(exc):
            rt.learn_class(name, data)
    for bad in (np.nan, np.inf, -np.inf):
        f = good.astype(np.float32)
        f[0, 0, 0] = bad
        with pytest.raises(ValueError, match="finite"):
            rt.learn_class("new", f)
    with pytest.raises(ValueError):
        rt.learn_class("new", good, epochs=0)
    with pytest.raises(ValueError, match="at least K"):
        rt.learn_class("new", good[:1])  # K=2 prototypes need 2 samples
    assert _same(before, _state(rt))
    np.testing.assert_array_equal(good, keep)
    # a float copy and a uint8 array give the same result; neither is changed
    f = good.astype(np.float64)
    f_keep = f.copy()
    a, b = Runtime.load(bundle), Runtime.load(bundle)
    a.learn_class("new", good, seed=1)
    b.learn_class("new", f, seed=1)
    np.testing.assert_array_equal(a.head_weight, b.head_weight)
    np.testing.assert_array_equal(f, f_keep)


def test_latent_buffer_memory(tmp_path, stream, bundle_maker):
    x, y, xt, yt = stream
    m = y < 3
    path = bundle_maker(tmp_path / "buf.ecl", x[m], y[m], NAMES[:3], memory="buffer", per_class=6)
    rt = Runtime.load(path)
    for k in range(3, 6):
        rt.learn_class(NAMES[k], x[y == k], seed=k)
    seen = yt < 6
    assert _acc(rt, xt[seen], yt[seen], NAMES) > 0.85
    mem = rt.memory()
    assert mem.memory_kind == "buffer" and mem.closed_form == "E·D·n_c"
    assert mem.closed_form_bits == 6 * 96 * 6
    assert mem.class_memory_bytes == 6 * (6 * 16 + 4)


def test_no_memory_refuses_to_learn(tmp_path, stream, bundle_maker):
    x, y, _, _ = stream
    m = y < 3
    path = bundle_maker(tmp_path / "n.ecl", x[m], y[m], NAMES[:3], memory=None)
    rt = Runtime.load(path)
    with pytest.raises(ValueError, match="class memory"):
        rt.learn_class("c3", x[y == 3])
    assert rt.memory().class_memory_bytes == 0


def test_gbm_weight_combines_the_head_with_the_mixtures(tmp_path, stream, bundle_maker):
    x, y, xt, yt = stream
    m = y < 3
    plain = Runtime.load(bundle_maker(tmp_path / "p.ecl", x[m], y[m], NAMES[:3]))
    mixed = Runtime.load(bundle_maker(tmp_path / "m.ecl", x[m], y[m], NAMES[:3], gbm_weight=0.5))
    assert mixed.learner.settings.gbm_weight == 0.5
    for rt in (plain, mixed):
        for k in (3, 4):
            rt.learn_class(NAMES[k], x[y == k], seed=k)
    z = mixed.embed(xt)
    ll = mixed.learner.gbm_log_likelihood(z)
    # the learner's log-likelihood equals the memory's own (eq. 3 model, same prototypes)
    np.testing.assert_allclose(ll, mixed.learner.memory.log_likelihood(z), rtol=1e-5, atol=1e-3)
    logits = mixed.learner.logits(z).astype(np.float64)
    lsm = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
    lsm -= logits.max(1, keepdims=True)
    lll = ll - ll.max(1, keepdims=True)
    lll -= np.log(np.exp(lll).sum(1, keepdims=True))
    np.testing.assert_allclose(mixed.learner.scores(z), lsm + 0.5 * lll, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mixed.predict_proba(xt).sum(axis=1), 1.0)
    # predict ranks the runtime's own words unchecked: the same scores as the checked call
    checked = mixed.learner.scores(z)
    np.testing.assert_array_equal(mixed.learner.scores(z, trusted=True), checked)
    want = np.asarray(mixed.learner.classes)[np.argmax(checked, axis=1)]
    np.testing.assert_array_equal(mixed.predict(xt), want)
    seen = yt < 5
    assert _acc(mixed, xt[seen], yt[seen], NAMES) > 0.85
    # the option survives save/load
    mixed.save(tmp_path / "again.ecl")
    assert Runtime.load(tmp_path / "again.ecl").learner.settings.gbm_weight == 0.5
