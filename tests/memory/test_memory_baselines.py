"""On-device baselines: nearest prototype (Hamming) and streaming LDA."""

import numpy as np
import pytest

from edgecl.kernels.bits import pack_bits
from edgecl.memory import NearestPrototype, StreamingLDA


def _classes(rng, d=70, n=60, c=3, flip=0.15):
    protos = rng.random((c, d)) < 0.5
    return protos, [pack_bits(protos[i] ^ (rng.random((n, d)) < flip)) for i in range(c)]


def test_nearest_prototype_majority_and_prediction():
    rng = np.random.default_rng(0)
    protos, data = _classes(rng)
    m = NearestPrototype(70)
    for i, z in enumerate(data):
        m.fit_class(str(i), z)
    np.testing.assert_array_equal(m.prototypes(), pack_bits(protos))
    assert m.nbytes == 3 * 16
    x = np.concatenate(data)
    truth = np.repeat(np.arange(3), 60)
    assert np.mean(m.predict(x) == truth) > 0.99
    # ties in the majority go to 1; update counts every sample seen
    t = NearestPrototype(8)
    t.fit_class("a", pack_bits(np.array([[1] * 8, [0] * 8])))
    np.testing.assert_array_equal(t.prototypes(), pack_bits(np.ones((1, 8))))
    t.update("a", pack_bits(np.zeros((1, 8))))
    np.testing.assert_array_equal(t.prototypes(), pack_bits(np.zeros((1, 8))))
    with pytest.raises(ValueError, match="already stored"):
        t.fit_class("a", pack_bits(np.zeros((1, 8))))
    with pytest.raises(ValueError, match="at least one class"):
        NearestPrototype(8).predict(pack_bits(np.zeros((1, 8))))


def test_streaming_lda_is_batch_order_free_and_matches_lda():
    rng = np.random.default_rng(1)
    _, data = _classes(rng, d=40, n=50)
    one = StreamingLDA(40, shrinkage=0.1)
    parts = StreamingLDA(40, shrinkage=0.1)
    for i, z in enumerate(data):
        one.fit_class(str(i), z)
        parts.fit_class(str(i), z[:7])
        parts.update(str(i), z[7:30])
        parts.update(str(i), z[30:])
    x = np.concatenate(data)
    np.testing.assert_allclose(one.decision_function(x), parts.decision_function(x), atol=1e-8)
    # against the textbook LDA with the pooled within-class covariance
    from edgecl.kernels.bits import unpack_bits

    xs = [unpack_bits(z, 40).astype(float) for z in data]
    mus = np.array([a.mean(0) for a in xs])
    cov = sum((a - a.mean(0)).T @ (a - a.mean(0)) for a in xs) / sum(len(a) for a in xs)
    prec = np.linalg.pinv(0.9 * cov + 0.1 * np.eye(40))
    scores = np.concatenate(xs) @ prec @ mus.T - 0.5 * np.einsum("cd,de,ce->c", mus, prec, mus)
    np.testing.assert_allclose(one.decision_function(x), scores, rtol=1e-8, atol=1e-8)
    truth = np.repeat(np.arange(3), 50)
    assert np.mean(one.predict(x) == truth) > 0.95
    with pytest.raises(ValueError, match="shrinkage"):
        StreamingLDA(4, shrinkage=2.0)
    with pytest.raises(KeyError):
        one.update("zz", data[0])
