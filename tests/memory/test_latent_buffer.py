"""LatentBuffer specifics: selection, reservoir, herding, the byte formula."""

import numpy as np
import pytest

from edgecl.kernels.bits import pack_bits, unpack_bits
from edgecl.memory import BufferSize, LatentBuffer, LatentBufferConfig
from edgecl.memory.buffer import herding_select


@pytest.mark.parametrize("e", [1, 5, 20])
@pytest.mark.parametrize("d", [64, 100, 512])
def test_nbytes_equals_the_formula(e, d):
    rng = np.random.default_rng(e * d)
    m = LatentBuffer(d, LatentBufferConfig(per_class=e))
    for n_c in range(1, 4):
        m.fit_class(f"c{n_c}", pack_bits(rng.random((30, d)) < 0.5), seed=n_c)
        per_class = e * 8 * ((d + 63) // 64) + 4
        assert m.nbytes == n_c * per_class == n_c * m.nbytes_for()
        assert m.closed_form_bits() == e * d * n_c
        if d % 64 == 0:
            assert m.nbytes - 4 * n_c == m.closed_form_bits() // 8
        assert sum(a.nbytes for a in m.to_state()[1].values()) == m.nbytes


def test_selection_keeps_real_rows_and_small_classes_whole():
    rng = np.random.default_rng(0)
    z = pack_bits(rng.random((50, 70)) < 0.5)
    m = LatentBuffer(70, LatentBufferConfig(per_class=10))
    m.fit_class("a", z, seed=0)
    ex = m.exemplars("a")
    assert ex.shape == (10, 2)
    rows = {r.tobytes() for r in z}
    assert all(r.tobytes() in rows for r in ex)
    assert len({r.tobytes() for r in ex}) == 10  # without replacement
    m.fit_class("b", z[:3], seed=0)
    assert m.exemplars("b").shape == (3, 2) and m.nbytes_for(n_samples=3) == m.class_nbytes("b")


def test_reservoir_is_uniform_over_the_stream():
    # stream 40 distinct rows through a 4-slot reservoir many times; each row kept ~ 4/40
    d = 64
    rows = pack_bits(np.eye(40, d, dtype=np.uint8))
    kept = np.zeros(40)
    for t in range(400):
        m = LatentBuffer(d, LatentBufferConfig(per_class=4))
        m.fit_class("a", rows[:1], seed=t)
        m.add_samples("a", rows[1:], seed=t)
        ex = m.exemplars("a")
        assert ex.shape == (4, 1)
        idx = unpack_bits(ex, d).argmax(axis=1)
        kept[idx] += 1
        assert m.count("a") == 40
    freq = kept / 400
    assert np.all(np.abs(freq - 0.1) < 0.07)


def test_herding_picks_rows_whose_mean_tracks_the_class_mean():
    rng = np.random.default_rng(1)
    z = pack_bits(rng.random((200, 64)) < rng.random(64))
    x = unpack_bits(z, 64).astype(float)
    idx = herding_select(z, 64, 10)
    assert len(set(idx.tolist())) == 10
    err_herd = np.linalg.norm(x[idx].mean(0) - x.mean(0))
    errs = [
        np.linalg.norm(x[rng.choice(200, 10, replace=False)].mean(0) - x.mean(0)) for _ in range(50)
    ]
    assert err_herd < np.percentile(errs, 10)
    m = LatentBuffer(64, LatentBufferConfig(per_class=10, selection="herding"))
    m.fit_class("a", z)
    np.testing.assert_array_equal(m.exemplars("a"), z[idx])


def test_resize_keeps_a_subset_and_caps_growth():
    rng = np.random.default_rng(2)
    z = pack_bits(rng.random((30, 64)) < 0.5)
    m = LatentBuffer(64, LatentBufferConfig(per_class=8))
    m.fit_class("a", z, seed=0)
    old = {r.tobytes() for r in m.exemplars("a")}
    m.resize_class("a", BufferSize(3), seed=0)
    assert m.class_size("a") == BufferSize(3) and m.exemplars("a").shape[0] == 3
    assert {r.tobytes() for r in m.exemplars("a")} <= old
    assert m.nbytes_after_add("a", 10) == m.nbytes
    m.add_samples("a", z, seed=1)
    assert m.exemplars("a").shape[0] == 3  # the shrunk class stays shrunk


def test_config_validation():
    for bad in (dict(per_class=0), dict(per_class=True), dict(selection="best")):
        with pytest.raises(ValueError):
            LatentBufferConfig(**bad)
    with pytest.raises(TypeError, match="LatentBufferConfig"):
        LatentBuffer(10, {"per_class": 3})
