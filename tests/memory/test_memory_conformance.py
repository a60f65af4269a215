"""Checks every class memory must pass (GBM, latent buffer random and herding)."""

import json

import numpy as np
import pytest

from edgecl.errors import BundleError
from edgecl.kernels.bits import n_words, pack_bits, tail_mask, unpack_bits
from edgecl.memory import ClassMemory, memory_from_state

D = 70


def _data(seed, n=40, d=D):
    rng = np.random.default_rng(seed)
    protos = rng.random((2, d)) < 0.5
    k = rng.integers(0, 2, n)
    return pack_bits(protos[k] ^ (rng.random((n, d)) < 0.1))


def _filled(new_memory):
    m = new_memory()
    m.fit_class("a", _data(1), seed=1)
    m.fit_class("b", _data(2, n=25), seed=2)
    m.fit_class("c", _data(3, n=30), seed=3)
    return m


def test_protocol_and_basic_properties(new_memory):
    m = _filled(new_memory)
    assert isinstance(m, ClassMemory)
    assert m.n_bits == D
    assert m.classes == ("a", "b", "c")
    assert m.nbytes == sum(m.class_nbytes(c) for c in m.classes)
    assert m.closed_form_bits() > 0


def test_fit_does_not_mutate_input_and_nbytes_for_predicts(new_memory):
    m = new_memory()
    z = _data(4)
    keep = z.copy()
    predicted = m.nbytes_for(n_samples=z.shape[0])
    m.fit_class("x", z, seed=0)
    np.testing.assert_array_equal(z, keep)
    assert m.class_nbytes("x") == predicted == m.nbytes


def test_sample_shapes_labels_tail_and_seed(new_memory):
    m = _filled(new_memory)
    words, labels = m.sample({"c": 7, "a": 5, "b": 0}, seed=11)
    assert words.dtype == np.uint64 and words.shape == (12, n_words(D))
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [2] * 7 + [0] * 5)
    assert not np.any(words[:, -1] & ~tail_mask(D))
    w2, l2 = m.sample({"c": 7, "a": 5, "b": 0}, seed=11)
    np.testing.assert_array_equal(words, w2)
    rng_words, _ = m.sample({"a": 5}, rng=np.random.default_rng(3))
    assert rng_words.shape == (5, n_words(D))
    empty_w, empty_l = m.sample({}, seed=0)
    assert empty_w.shape == (0, n_words(D)) and empty_l.shape == (0,)
    many, _ = m.sample({"b": 200}, seed=1)  # more than stored: with replacement / generated
    assert many.shape == (200, n_words(D))


def test_sample_rejects_bad_counts(new_memory):
    m = _filled(new_memory)
    with pytest.raises(KeyError, match="stored class"):
        m.sample({"zz": 1}, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        m.sample({"a": -1}, seed=0)
    with pytest.raises(ValueError, match="both"):
        m.sample({"a": 1}, seed=0, rng=np.random.default_rng(0))


def test_remove_and_refuse_existing(new_memory):
    m = _filled(new_memory)
    before = m.nbytes
    b_bytes = m.class_nbytes("b")
    m.remove_class("b")
    assert m.classes == ("a", "c") and m.nbytes == before - b_bytes
    with pytest.raises(KeyError):
        m.remove_class("b")
    with pytest.raises(ValueError, match="already stored"):
        m.fit_class("a", _data(5), seed=0)


def test_add_samples_keeps_class_and_grows_count(new_memory):
    m = _filled(new_memory)
    n0 = m.count("a")
    m.add_samples("a", _data(6, n=10), seed=0)
    assert m.classes == ("a", "b", "c") and m.count("a") == n0 + 10
    with pytest.raises(KeyError):
        m.add_samples("nope", _data(6, n=10), seed=0)


def test_bad_input_is_refused_and_changes_nothing(new_memory):
    m = _filled(new_memory)
    spec0, arr0 = m.to_state()
    z = _data(7)
    bits = unpack_bits(z, D)
    with pytest.raises(TypeError, match="pack_bits"):
        m.fit_class("x", bits)  # unpacked {0,1}
    nonbinary = bits.astype(np.int64) * 2
    with pytest.raises(TypeError, match="not binary"):
        m.fit_class("x", nonbinary)
    with pytest.raises(ValueError, match="shape"):
        m.fit_class("x", z[:, :1])
    with pytest.raises(ValueError, match="empty class"):
        m.fit_class("x", z[:0])
    bad = z.copy()
    bad[3, -1] |= np.uint64(1) << np.uint64(63)
    with pytest.raises(ValueError, match="tail bits"):
        m.fit_class("x", bad)
    with pytest.raises(TypeError, match="name"):
        m.fit_class(3, z)
    with pytest.raises(ValueError, match="tail bits"):
        m.add_samples("a", bad)
    spec1, arr1 = m.to_state()
    assert spec1 == spec0
    for k in arr0:
        np.testing.assert_array_equal(arr0[k], arr1[k])


def test_state_round_trip_is_bit_exact(new_memory):
    m = _filled(new_memory)
    spec, arrays = m.to_state()
    json.dumps(spec)
    assert sum(a.nbytes for a in arrays.values()) == m.nbytes
    for a in arrays.values():
        assert a.dtype != object
    back = memory_from_state(json.loads(json.dumps(spec)), {k: v.copy() for k, v in arrays.items()})
    spec2, arrays2 = back.to_state()
    assert spec2 == spec and arrays2.keys() == arrays.keys()
    for k in arrays:
        assert arrays2[k].dtype == arrays[k].dtype
        np.testing.assert_array_equal(arrays2[k], arrays[k])
    w1, l1 = m.sample({"a": 9, "c": 4}, seed=5)
    w2, l2 = back.sample({"a": 9, "c": 4}, seed=5)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(l1, l2)


def test_empty_memory_round_trips(new_memory):
    m = new_memory()
    spec, arrays = m.to_state()
    back = memory_from_state(spec, arrays)
    assert back.classes == () and back.nbytes == 0


def test_from_state_refuses_bad_arrays(new_memory):
    m = _filled(new_memory)
    spec, arrays = m.to_state()
    key = next(iter(arrays))
    wrong_dtype = dict(arrays)
    wrong_dtype[key] = arrays[key].astype(np.float64)
    with pytest.raises(BundleError, match="dtype"):
        memory_from_state(spec, wrong_dtype)
    wrong_shape = dict(arrays)
    wrong_shape[key] = arrays[key][:-1]
    with pytest.raises(BundleError, match="shape"):
        memory_from_state(spec, wrong_shape)
    missing = {k: v for k, v in arrays.items() if k != key}
    with pytest.raises(BundleError, match=key):
        memory_from_state(spec, missing)
    with pytest.raises(BundleError, match="kind"):
        memory_from_state({**spec, "kind": "other"}, arrays)
    with pytest.raises(BundleError, match="format"):
        type(m).from_state({**spec, "format": 99}, arrays)


def test_copy_is_deep(new_memory):
    m = _filled(new_memory)
    c = m.copy()
    c.remove_class("a")
    c.add_samples("b", _data(8, n=10), seed=0)
    assert m.classes == ("a", "b", "c")
    spec_m, arr_m = m.to_state()
    spec_c, _ = c.to_state()
    assert spec_m != spec_c
    m2 = memory_from_state(spec_m, arr_m)
    np.testing.assert_array_equal(m.sample({"b": 5}, seed=1)[0], m2.sample({"b": 5}, seed=1)[0])


def test_sizes_step_down_to_a_minimum(new_memory):
    m = _filled(new_memory)
    size = m.default_size()
    steps = 0
    last = m.size_nbytes(size)
    while (smaller := m.smaller_size(size)) is not None:
        now = m.size_nbytes(smaller)
        assert now < last
        size, last = smaller, now
        steps += 1
    assert steps >= 1
    m.resize_class("a", size, seed=0)
    assert m.class_size("a") == size
    assert m.class_nbytes("a") == m.class_nbytes_at("a", size)
    m.sample({"a": 3}, seed=0)
