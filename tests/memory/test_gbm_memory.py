"""GBMMemory specifics: sampling frequencies, the byte formula, refits, state checks."""

import numpy as np
import pytest
from memhelpers import FAST_EM, mixture_words

from edgecl.errors import BundleError
from edgecl.kernels.bits import n_words, pack_bits, unpack_bits
from edgecl.memory import GBMConfig, GBMMemory, GBMSize, memory_from_state, stored_nbytes
from edgecl.memory.quantize import dequantize, quantize


def test_sampling_reproduces_prototype_bit_frequencies():
    rng = np.random.default_rng(0)
    d = 130
    protos = rng.random((3, d)) < 0.5
    m = GBMMemory(d, GBMConfig(components=3, bits=4, **FAST_EM))
    m.fit_class("a", mixture_words(rng, protos, 500, pi=[0.6, 0.3, 0.1]), seed=0)
    mu, pi = m.prototypes("a"), m.mixing_weights("a")
    expected = (pi / pi.sum()) @ mu
    n = 40000
    words, labels = m.sample({"a": n}, seed=1)
    assert np.all(labels == 0)
    freq = unpack_bits(words, d).mean(axis=0)
    sd = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(freq - expected) <= 5 * sd + 1e-9)
    # the prototypes are dequantized mid-point levels of q = 4
    np.testing.assert_array_equal(dequantize(quantize(mu, 4), 4), mu)


def test_component_choice_follows_pi():
    d = 64
    # two far-apart components: every sample lands next to one of them
    protos = np.zeros((2, d), bool)
    protos[1] = True
    rng = np.random.default_rng(3)
    m = GBMMemory(d, GBMConfig(components=2, bits=8, **FAST_EM))
    m.fit_class("a", mixture_words(rng, protos, 1000, pi=[0.8, 0.2], flip=0.02), seed=0)
    pi = m.mixing_weights("a")
    hi = int(np.argmax(m.prototypes("a").mean(axis=1)))
    words, _ = m.sample({"a": 20000}, seed=2)
    share_ones = np.mean(unpack_bits(words, d).mean(axis=1) > 0.5)
    assert share_ones == pytest.approx(pi[hi] / pi.sum(), abs=0.015)
    assert share_ones == pytest.approx(0.2, abs=0.03)


@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("d", [64, 100, 512])
@pytest.mark.parametrize("q", [1, 3, 8, 32])
def test_nbytes_equals_the_formula(k, d, q):
    rng = np.random.default_rng(k * d * q)
    cfg = GBMConfig(components=k, bits=q, n_init=1, n_iter=1, n_max=1)
    m = GBMMemory(d, cfg)
    for n_c in range(1, 4):
        m.fit_class(f"c{n_c}", pack_bits(rng.random((max(k, 4), d)) < 0.5), seed=n_c)
        per_class = 8 * ((k * d * q + 63) // 64) + 4 * k + 4
        assert m.nbytes == n_c * per_class
        assert m.class_nbytes("c1") == per_class == m.nbytes_for()
        assert m.closed_form_bits() == k * d * n_c * q
        if (k * d * q) % 64 == 0:  # no padding: prototypes are exactly the paper's M bits
            assert m.nbytes - n_c * (4 * k + 4) == m.closed_form_bits() // 8
        assert sum(a.nbytes for a in m.to_state()[1].values()) == m.nbytes


def test_stored_nbytes_rule():
    assert stored_nbytes(1) == 8
    assert stored_nbytes(64) == 8
    assert stored_nbytes(65) == 16
    assert stored_nbytes(100, rows=3) == 3 * 16
    assert stored_nbytes(0) == 0


def test_k_larger_than_n_and_size_override():
    m = GBMMemory(40, GBMConfig(components=8, **FAST_EM))
    z = pack_bits(np.random.default_rng(0).random((5, 40)) < 0.5)
    with pytest.raises(ValueError, match="K=8 samples.*N=5"):
        m.fit_class("a", z)
    assert m.classes == ()
    m.fit_class("a", z, seed=0, size=GBMSize(2, 3))
    assert m.class_size("a") == GBMSize(2, 3)
    assert m.class_nbytes("a") == stored_nbytes(2 * 40 * 3) + 12
    with pytest.raises(TypeError, match="GBMSize"):
        m.fit_class("b", z, size=(2, 3))


def test_add_samples_refits_on_drawn_plus_new():
    rng = np.random.default_rng(5)
    d = 64
    protos = rng.random((2, d)) < 0.5
    m = GBMMemory(d, GBMConfig(components=2, **FAST_EM))
    m.fit_class("a", pack_bits(np.repeat(protos[:1], 100, axis=0)), seed=0)
    # the new samples are the other pattern: the refit must now cover both
    m.add_samples("a", pack_bits(np.repeat(protos[1:], 100, axis=0)), seed=1)
    assert m.count("a") == 200
    freq = unpack_bits(m.sample({"a": 4000}, seed=3)[0], d).mean(axis=0)
    np.testing.assert_allclose(freq, protos.mean(axis=0), atol=0.06)


def test_resize_requantizes_or_refits():
    rng = np.random.default_rng(1)
    m = GBMMemory(64, GBMConfig(components=4, bits=8, **FAST_EM))
    m.fit_class("a", mixture_words(rng, rng.random((4, 64)) < 0.5, 200), seed=0)
    mu8 = m.prototypes("a")
    m.resize_class("a", GBMSize(4, 4))
    np.testing.assert_array_equal(m.prototypes("a"), dequantize(quantize(mu8, 4), 4))
    m.resize_class("a", GBMSize(2, 4), seed=0)
    assert m.prototypes("a").shape == (2, 64) and m.count("a") == 200


def test_joint_pi_normalised_by_counts():
    rng = np.random.default_rng(2)
    m = GBMMemory(32, GBMConfig(components=2, **FAST_EM))
    m.fit_class("a", pack_bits(rng.random((30, 32)) < 0.5), seed=0)
    m.fit_class("b", pack_bits(rng.random((90, 32)) < 0.5), seed=0)
    j = m.joint_pi()
    assert sum(v.sum() for v in j.values()) == pytest.approx(1.0)
    assert j["b"].sum() == pytest.approx(0.75)


def test_config_validation():
    for bad in (
        dict(components=0),
        dict(bits=9),
        dict(trainable_pi=1),
        dict(n_init=0),
        dict(n_iter=0),
        dict(n_max=0),
        dict(epsilon=-1.0),
    ):
        with pytest.raises((ValueError, TypeError)):
            GBMConfig(**bad)
    with pytest.raises(TypeError, match="GBMConfig"):
        GBMMemory(10, {"components": 2})
    with pytest.raises(ValueError, match="n_bits"):
        GBMMemory(0)


def test_from_state_refuses_corrupt_prototypes():
    rng = np.random.default_rng(0)
    m = GBMMemory(10, GBMConfig(components=1, bits=32, **FAST_EM))
    m.fit_class("a", pack_bits(rng.random((5, 10)) < 0.5), seed=0)
    spec, arrays = m.to_state()
    bad = dict(arrays)
    protos = arrays["prototypes"].copy()
    protos[0] = np.uint64(0x7FC00000)  # NaN in the first float32 value
    bad["prototypes"] = protos
    with pytest.raises(BundleError, match="prototypes"):
        memory_from_state(spec, bad)
    bad = dict(arrays)
    bad["pi"] = np.zeros_like(arrays["pi"])
    with pytest.raises(BundleError, match="pi"):
        memory_from_state(spec, bad)
    dup = {**spec, "classes": spec["classes"] * 2}
    with pytest.raises(BundleError):
        memory_from_state(dup, arrays)
    assert n_words(10 * 32) == arrays["prototypes"].shape[0]


def test_log_likelihood_classifies_and_matches_the_mixture():
    rng = np.random.default_rng(9)
    d = 90
    protos = rng.random((2, 2, d)) < 0.5  # two classes, two modes each
    m = GBMMemory(d, GBMConfig(components=2, bits=8, **FAST_EM))
    m.fit_class("a", mixture_words(rng, protos[0], 300), seed=0)
    m.fit_class("b", mixture_words(rng, protos[1], 300), seed=0)
    za = mixture_words(rng, protos[0], 50)
    zb = mixture_words(rng, protos[1], 50)
    ll = m.log_likelihood(np.concatenate([za, zb]))
    assert ll.shape == (100, 2)
    np.testing.assert_array_equal(ll.argmax(axis=1), [0] * 50 + [1] * 50)
    x = unpack_bits(za, d).astype(float)
    mu, pi = m.prototypes("a"), m.mixing_weights("a")
    direct = np.log(np.exp(x @ np.log(mu).T + (1 - x) @ np.log1p(-mu).T) @ pi)
    np.testing.assert_allclose(ll[:50, 0], direct, rtol=1e-6, atol=1e-4)  # float32 tables


@pytest.mark.parametrize("d", [1, 63, 64, 65, 130])
def test_log_likelihood_equals_the_per_class_reference_for_any_sizes_and_order(d):
    """The dense-table fast path against bmm_log_likelihood_reference per class, with
    classes of different K and q (the ragged logsumexp) and a requested column order."""
    from edgecl.kernels import bmm_log_likelihood_reference
    from edgecl.memory.em import MU_CLIP

    rng = np.random.default_rng(d)
    m = GBMMemory(d, GBMConfig(components=3, bits=4, **FAST_EM))
    m.fit_class("a", pack_bits(rng.random((30, d)) < 0.3), seed=0)
    m.fit_class("b", pack_bits(rng.random((30, d)) < 0.7), seed=1, size=GBMSize(1, 8))
    m.fit_class("c", pack_bits(rng.random((30, d)) < 0.5), seed=2, size=GBMSize(2, 2))
    z = pack_bits(rng.random((7, d)) < 0.5)
    order = ("c", "a", "b")
    ll = m.log_likelihood(z, order)
    for i, name in enumerate(order):
        mu = np.clip(m.prototypes(name), MU_CLIP, 1 - MU_CLIP)
        pi = m.mixing_weights(name)
        want = bmm_log_likelihood_reference(z, d, mu, pi / pi.sum())
        np.testing.assert_allclose(ll[:, i], want, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(m.log_likelihood(z)[:, [2, 0, 1]], ll)
    with pytest.raises(KeyError, match="stored"):
        m.log_likelihood(z, ("a", "nope"))


def test_log_likelihood_tables_follow_every_change_of_state():
    """No stale tables: after each mutation the likelihood equals a fresh memory's."""
    rng = np.random.default_rng(3)
    d = 70
    m = GBMMemory(d, GBMConfig(components=2, bits=4, **FAST_EM))
    m.fit_class("a", pack_bits(rng.random((20, d)) < 0.3), seed=0)
    m.fit_class("b", pack_bits(rng.random((20, d)) < 0.6), seed=1)
    z = pack_bits(rng.random((9, d)) < 0.5)

    def check():
        fresh = memory_from_state(*m.to_state())
        np.testing.assert_array_equal(m.log_likelihood(z), fresh.log_likelihood(z))

    m.log_likelihood(z)  # tables built
    m.add_samples("a", pack_bits(rng.random((20, d)) < 0.9), seed=2)
    check()
    m.resize_class("b", GBMSize(1, 4), seed=3)
    check()
    m.remove_class("a")
    m.fit_class("a", pack_bits(rng.random((20, d)) < 0.1), seed=4)
    check()
    c = m.copy()
    c.add_samples("b", pack_bits(rng.random((20, d)) < 0.2), seed=5)
    check()  # a change of the copy leaves the original's tables right


def test_config_with_numpy_scalars_stays_json_able():
    import json

    cfg = GBMConfig(components=np.int64(3), bits=np.int32(4), epsilon=np.float64(1e-3))
    m = GBMMemory(np.int64(20), cfg)
    m.fit_class("a", pack_bits(np.random.default_rng(0).random((6, 20)) < 0.5), seed=0)
    spec, _ = m.to_state()
    assert json.loads(json.dumps(spec)) == spec
