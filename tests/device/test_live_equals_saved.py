"""A live runtime answers as its own saved bundle does (issue 13 item 18: the learner's GBM
likelihood tables were cached on ``id(memory)``; when two calls changed the memory with no
prediction between them, the second copy could take the freed first one's address, and the
live runtime scored with the old tables)."""

from __future__ import annotations

import numpy as np

from edgecl.device import Runtime


def _mutate(rt: Runtime, rng: np.random.Generator, x, y, step: int) -> str:
    """One random learn / update / forget call; returns what it did."""
    learned = list(rt.classes_)
    unlearned = [f"c{k}" for k in range(10) if f"c{k}" not in learned]
    choice = rng.choice(["learn", "update", "forget"], p=[0.3, 0.5, 0.2])
    if choice == "learn" and unlearned:
        name = str(rng.choice(unlearned))
        rt.learn_class(name, x[y == int(name[1:])][:12], epochs=1, seed=step, trace_memory=False)
        return f"learn {name}"
    if choice == "forget" and len(learned) > 1:
        name = str(rng.choice(learned))
        rt.forget_class(name)
        return f"forget {name}"
    name = str(rng.choice(learned))
    rt.update_class(name, x[y == int(name[1:])][12:18], epochs=1, seed=step)
    return f"update {name}"


def test_live_predict_proba_equals_the_reloaded_bundle(tmp_path, bundle_maker, stream_maker):
    x, y = stream_maker(10, 24, seed=4)
    base = y < 3
    path = bundle_maker(
        tmp_path / "b.ecl", x[base], y[base], ["c0", "c1", "c2"], n_bits=64, gbm_weight=0.5
    )
    rt = Runtime.load(path)
    probe = x[::5]
    rng = np.random.default_rng(0)
    actions: list[str] = []
    rt.predict_proba(probe)
    step = 0
    while step < 50:
        # a burst of calls with no prediction between them (a prediction after every call
        # would rebuild an id()-keyed cache each time and hide it going stale): the issue's
        # forget-learn-update cycle on one class, or 1-3 random calls; then the live
        # answers against the saved bundle's
        if rng.random() < 0.4 and len(rt.classes_) > 1:  # the cycle on one class
            name = str(rng.choice(rt.classes_))
            k = int(name[1:])
            rt.forget_class(name)
            rt.learn_class(name, x[y == k][:12], epochs=1, seed=step, trace_memory=False)
            rt.update_class(name, x[y == k][12:18], epochs=1, seed=step)
            actions.append(f"forget, learn, update {name}")
            step += 3
        else:
            for _ in range(int(rng.integers(1, 4))):
                actions.append(_mutate(rt, rng, x, y, step))
                step += 1
        live = rt.predict_proba(probe)
        rt.save(tmp_path / "now.ecl")
        saved = Runtime.load(tmp_path / "now.ecl").predict_proba(probe)
        np.testing.assert_allclose(live, saved, rtol=0, atol=1e-9, err_msg="; ".join(actions))
