"""edgecl.bench: the measurements take a Runtime and return frozen reports; the runtime's
state is the same after them (its saved bytes equal)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import devicehelpers
import numpy as np
import pytest

from edgecl.bench import (
    LatencyReport,
    MemoryBench,
    Stats,
    bench_latency,
    bench_memory,
    bench_samples,
    fresh_class_name,
    warm_up,
)
from edgecl.device import Runtime


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    h = devicehelpers
    d = tmp_path_factory.mktemp("bench")
    x, y = h.synthetic_stream(4, 30, seed=4)
    path = h.make_bundle(d / "m.ecl", x[y < 3], y[y < 3], ["a", "b", "c"], budget=20000)
    return d, path, x


def _state(rt, d: Path, name: str) -> bytes:
    return rt.save(d / name).path.read_bytes()


def test_latency_report_and_state_unchanged(loaded):
    d, path, x = loaded
    rt = Runtime.load(path)
    before = _state(rt, d, "before.ecl")
    rep = bench_latency(rt, batch=2, repeat=3, learn_samples=10, learn_repeat=2, data=x)
    assert isinstance(rep, LatencyReport) and dataclasses.is_dataclass(rep)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.batch = 3
    assert rep.predict_us.n == 3 and rep.learn_class_ms.n == 2
    assert rep.reference_check.embedding_bits_equal is True
    out = rep.to_dict()
    assert out["predict_us"]["per_sample_us_p50"] == pytest.approx(rep.predict_us.p50 / 2)
    assert out["n_classes"] == 3 and out["memory"] == "gbm"
    assert list(rt.classes_) == ["a", "b", "c"]
    assert _state(rt, d, "after.ecl") == before


def test_memory_bench_and_state_unchanged(loaded):
    d, path, x = loaded
    rt = Runtime.load(path)
    before = _state(rt, d, "before_m.ecl")
    rep = bench_memory(rt, learn_samples=12, data=x)
    assert isinstance(rep, MemoryBench)
    assert rep.closed_form["bits"] == 2 * 96 * 3 * 4  # K·D·n_c·q
    assert rep.learn_class["peak_bytes"] > 0 and rep.learn_class["samples"] == 12
    assert _state(rt, d, "after_m.ecl") == before


def test_warm_up_groups_and_state_unchanged(loaded):
    d, path, x = loaded
    rt = Runtime.load(path)
    before = _state(rt, d, "before_w.ecl")
    lines: list[str] = []
    seconds = warm_up(rt, x[:3], log=lines.append)
    assert len(seconds) == 2 and len(lines) == 2 and all(s >= 0 for s in seconds.values())
    assert list(warm_up(rt, x[:3], learn=False)) == ["layer program and head (predict)"]
    assert _state(rt, d, "after_w.ecl") == before


def test_helpers_and_checks(loaded):
    _, path, x = loaded
    rt = Runtime.load(path)
    assert fresh_class_name(rt) == "bench"
    got, src = bench_samples(rt, 200, data=x[:7], source="mine")
    assert len(got) >= 200 and src == "mine"
    got, src = bench_samples(rt, 5)
    assert got.shape == (5, 8, 8, 1) and src == "random images"
    with pytest.raises(ValueError):
        bench_latency(rt, repeat=0)
    with pytest.raises(ValueError):
        Stats.of([], 1e3)
    s = Stats.of([1.0, 2.0, 3.0], 1e3)
    assert (s.min, s.p50, s.n) == (1000.0, 2000.0, 3)
    assert np.isfinite(s.mean)
