"""BinPlay: Lemma 1 codes, the code layout, Alg. 1's bijection, the memory's bookkeeping
and bytes, and tiny class-incremental runs (images and the latent variant)."""

import math

import numpy as np
import pytest
import torch

from edgecl.data import load_mnist_sample
from edgecl.train import mlp
from edgecl.train.baselines.binplay import (
    ODD_PRIMES,
    BinPlay,
    BinPlayConfig,
    BinPlayMemory,
    ClassifierConfig,
    CodeSpec,
    ConvAutoencoder,
    VectorAutoencoder,
    greedy_assign,
    lemma1_bits,
    lemma1_multiplier,
)


@pytest.mark.parametrize("p", [3, 5, 7, 11, 13, 31, 97, 101])
@pytest.mark.parametrize("m", [1, 2, 5, 8, 13, 19, 24, 32])
def test_lemma1_multiplier_bounds(m, p):
    q = lemma1_multiplier(m, p)
    e = round(math.log(q, p))
    assert p**e == q
    assert 2**m / p < q < 2**m  # Lemma 1, point 1
    assert q * p > 2**m  # the largest power of p below 2**m


@pytest.mark.parametrize("p", [3, 5, 7, 11, 13])
@pytest.mark.parametrize("m", [1, 2, 3, 4, 7, 10, 12])
def test_lemma1_codes_distinct_and_exact(m, p):
    i = np.arange(1, 2**m + 1)
    bits = lemma1_bits(i, m, p)
    assert bits.shape == (2**m, m) and bits.dtype == np.uint8
    assert set(np.unique(bits)) <= {0, 1}
    # exact against Python integers: bit j of (i * p^e mod 2^m)
    q = lemma1_multiplier(m, p)
    want = np.array([[((int(k) * q) % 2**m) >> j & 1 for j in range(m)] for k in i])
    np.testing.assert_array_equal(bits, want)
    # Lemma 1, point 2: all 2**m codes distinct (a permutation of the m-bit numbers)
    as_int = (bits.astype(np.int64) << np.arange(m)).sum(1)
    assert len(np.unique(as_int)) == 2**m


def test_lemma1_codes_repeat_past_capacity():
    m, p = 4, 3
    a = lemma1_bits(np.array([1]), m, p)
    b = lemma1_bits(np.array([1 + 2**m]), m, p)
    np.testing.assert_array_equal(a, b)  # the code is i mod 2**m: capacity is exactly 2**m


def test_lemma1_large_m_no_overflow():
    m, p = 32, 3
    i = np.array([1, 2, 2**31, 2**32 - 1, 2**32], dtype=np.int64)
    q = lemma1_multiplier(m, p)
    want = [(int(k) * q) % 2**m for k in i]
    got = (lemma1_bits(i, m, p).astype(np.uint64) << np.arange(m, dtype=np.uint64)).sum(1)
    assert [int(v) for v in got] == want


@pytest.mark.parametrize(
    "call",
    [
        lambda: lemma1_multiplier(4, 2),
        lambda: lemma1_multiplier(4, 9),
        lambda: lemma1_multiplier(0, 3),
        lambda: lemma1_bits(np.array([1]), 33, 3),
        lambda: lemma1_bits(np.array([-1]), 4, 3),
        lambda: lemma1_bits(np.array([1.0]), 4, 3),
        lambda: CodeSpec(index_bits=4, n_sub=2, primes=(3, 5, 5)),
        lambda: CodeSpec(index_bits=4, n_sub=2, primes=(3, 5)),
        lambda: CodeSpec(index_bits=4, n_sub=1, primes=(3, 4)),
        lambda: CodeSpec(index_bits=40),
        lambda: CodeSpec(index_bits=4).codes([0], [1]),
        lambda: CodeSpec(index_bits=4).codes([17], [1]),
    ],
)
def test_invalid_input_raises(call):
    with pytest.raises(ValueError, match="expected"):
        call()


def test_code_spec_layout():
    spec = CodeSpec(index_bits=6, n_sub=3, batch_bits=4)
    assert spec.n_bits == 4 + 18 and spec.capacity == 64
    assert spec.primes == ODD_PRIMES[:4]
    i = np.arange(1, 65)
    b = np.repeat([1, 2], 32)
    c = spec.codes(i, b)
    assert c.shape == (64, 22) and c.dtype == torch.float32
    assert set(c.unique().tolist()) == {-1.0, 1.0}
    bits = spec.bits(i, b)
    np.testing.assert_array_equal(bits[:, :4], lemma1_bits(b, 4, 3))  # batch prefix
    for k, p in enumerate(spec.primes[1:]):
        np.testing.assert_array_equal(bits[:, 4 + 6 * k : 10 + 6 * k], lemma1_bits(i, 6, p))
    assert len({tuple(r) for r in bits[:, 4:].tolist()}) == 64  # distinct for i <= 2**m
    np.testing.assert_array_equal(c.numpy(), bits * 2.0 - 1)  # bit 1 -> +1


def test_greedy_assign_is_a_bijection():
    g = torch.Generator().manual_seed(0)
    spec = CodeSpec(index_bits=9, n_sub=2, batch_bits=2)
    codes = spec.codes(np.arange(1, 301), np.ones(300, int))
    z = torch.randn(300, spec.n_bits, generator=g).tanh()
    a = greedy_assign(z, codes, generator=torch.Generator().manual_seed(1))
    assert a.dtype == torch.long and sorted(a.tolist()) == list(range(300))
    b = greedy_assign(z, codes, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_greedy_assign_finds_exact_codes_and_follows_alg1():
    spec = CodeSpec(index_bits=8, n_sub=2, batch_bits=0)
    codes = spec.codes(np.arange(1, 201), np.ones(200, int))
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(3))
    a = greedy_assign(codes[perm] * 0.7, codes)  # each latent is a scaled code
    assert torch.equal(a, perm)
    # the first visited sample takes its nearest code among all
    z = torch.randn(50, spec.n_bits, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(5)
    first = int(torch.randperm(50, generator=torch.Generator().manual_seed(5))[0])
    a = greedy_assign(z, codes[:50], generator=g)
    d = ((z[first][None] - codes[:50]) ** 2).sum(1)
    assert int(a[first]) == int(d.argmin())
    with pytest.raises(ValueError, match="expected z and codes"):
        greedy_assign(z, codes)


def test_conv_autoencoder_shapes():
    ae = ConvAutoencoder(20, enc_channels=(4, 8, 8), dec_hidden=16, dec_channels=(4, 4, 4, 4))
    x = torch.rand(3, 1, 28, 28)
    z = ae.encode(x)
    assert z.shape == (3, 20) and z.abs().max() <= 1
    y = ae.decode(torch.sign(z))
    assert y.shape == (3, 1, 28, 28) and 0 <= y.min() and y.max() <= 1
    # the paper's encoder: 128 filters x 4 x 4 = 2048 features into the latent
    assert ConvAutoencoder(200).encoder[-2].in_features == 2048


def _vector_memory(d=16, seed=0, **cfg):
    torch.manual_seed(seed)
    spec = CodeSpec(index_bits=8, n_sub=2, batch_bits=2)
    ae = VectorAutoencoder(d, spec.n_bits, hidden=(32,))
    conf = dict(warmup_epochs=1, assign_epochs=1, decoder_epochs=1, batch_size=16)
    conf.update(cfg)
    return BinPlayMemory(ae, spec, BinPlayConfig(**conf))


def test_memory_learn_indices_counts_and_bytes():
    mem = _vector_memory()
    x1 = (torch.rand(40, 16) > 0.5).float()
    x2 = (torch.rand(25, 16) > 0.5).float()
    i1 = mem.learn(x1, seed=0)
    assert sorted(i1.tolist()) == list(range(1, 41))  # a bijection onto the batch's indices
    i2 = mem.learn(x2, seed=1)
    assert sorted(i2.tolist()) == list(range(41, 66))
    assert mem.counts == (40, 25) and mem.n_samples == 65
    np.testing.assert_array_equal(mem.batches_of(np.array([1, 40, 41, 65])), [1, 1, 2, 2])
    dec = sum(p.numel() * 4 for p in mem.autoencoder.decoder.parameters())
    assert mem.decoder_nbytes == dec and mem.nbytes == dec + 4 * 2
    assert mem.encoder_nbytes > 0
    r = mem.regenerate(np.array([1, 65]))
    assert r.shape == (2, 16) and 0 <= r.min() and r.max() <= 1
    s = mem.sample(7, generator=torch.Generator().manual_seed(0))
    assert s.shape == (7, 16)
    torch.testing.assert_close(
        mem.sample(3, generator=torch.Generator().manual_seed(0), upto=1),
        mem.regenerate(np.ones(3, int)),
    )
    with pytest.raises(ValueError, match="holding samples"):
        mem.sample(1, upto=66)
    assert mem.history[1]["replay_ratio"] == pytest.approx(40 / 25)


def test_memory_refuses_without_change():
    mem = _vector_memory()
    with pytest.raises(ValueError, match="expected samples of shape"):
        mem.learn(torch.rand(5, 15))
    with pytest.raises(ValueError, match="at most 256 samples"):
        mem.learn(torch.rand(300, 16))
    with pytest.raises(ValueError, match="holding samples"):
        mem.sample(1)
    assert mem.counts == ()
    with pytest.raises(ValueError, match="latent"):
        BinPlayMemory(VectorAutoencoder(16, 7), CodeSpec(index_bits=8, n_sub=2))


def test_memory_reconstructs_a_batch_from_codes():
    """Decoder-only epochs on <c(i), x_i> fit a small batch: each sample is rebuilt from
    the code of the index assigned to it, closer to itself than to the others."""
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(4, 32, generator=g) > 0.5).float()
    x = protos.repeat_interleave(10, 0)
    mem = _vector_memory(d=32, decoder_epochs=30, assign_epochs=2, batch_size=8, lr=1e-2)
    idx = mem.learn(x, seed=0)
    r = (mem.regenerate(idx) > 0.5).float()
    err = (r != x).float().mean(1)
    assert float(err.mean()) < 0.1


def _sub(x, y, classes, n):
    idx = np.concatenate([np.flatnonzero(y == c)[:n] for c in classes])
    return x[idx], y[idx]


@pytest.fixture(scope="module")
def sample():
    return load_mnist_sample()


def test_binplay_tiny_run_learns_above_chance(sample):
    x, y, xt, yt = sample
    torch.manual_seed(0)
    spec = CodeSpec(index_bits=12, n_sub=4, batch_bits=3)
    ae = ConvAutoencoder(
        spec.n_bits, enc_channels=(8, 16, 16), dec_hidden=64, dec_channels=(16, 16, 16, 8)
    )
    cfg = BinPlayConfig(warmup_epochs=1, assign_epochs=2, decoder_epochs=3, batch_size=32, lr=3e-3)
    mem = BinPlayMemory(ae, spec, cfg)
    model = mlp(4, hidden=(64,), n_bits=64)
    bp = BinPlay(
        model, mem, n_outputs=4, classifier=ClassifierConfig(epochs=3, batch_size=32, lr=3e-3)
    )
    for cls in ([0, 1], [2, 3]):
        bp.learn_task(*_sub(x, y, cls, 100), seed=0)
    assert bp.classes_ == (0, 1, 2, 3)
    xe, ye = _sub(xt, yt, [0, 1, 2, 3], 100)
    pred = bp.predict(xe)
    assert set(np.unique(pred)) <= {0, 1, 2, 3}
    assert float((pred == ye).mean()) > 0.6  # chance is 0.25
    old = np.isin(ye, [0, 1])
    assert float((pred[old] == ye[old]).mean()) > 0.5  # the first task is remembered
    rep = bp.reports[-1]
    assert rep.stored_nbytes == mem.nbytes and rep.autoencoder["replay_ratio"] == 1.0
    assert rep.to_dict()["classes"] == [2, 3] and len(rep.classifier_loss) == 3
    with pytest.raises(ValueError, match="at most 4 classes"):
        bp.learn_task(*_sub(x, y, [4], 5))
    assert bp.classes_ == (0, 1, 2, 3) and mem.counts == (200, 200)


def test_binplay_latent_variant_learns_above_chance(sample):
    """Regenerates 0/1 vectors (here thresholded pixels standing in for F's bits) and
    retrains a linear head on them, as the device's memory would."""
    x, y, xt, yt = sample
    torch.manual_seed(0)

    def bits(a):
        return (a.reshape(len(a), -1) > 127).astype(np.float32)

    spec = CodeSpec(index_bits=12, n_sub=3, batch_bits=3)
    mem = BinPlayMemory(
        VectorAutoencoder(784, spec.n_bits, hidden=(64,)),
        spec,
        BinPlayConfig(warmup_epochs=1, assign_epochs=2, decoder_epochs=3, batch_size=32, lr=3e-3),
    )
    head = torch.nn.Linear(784, 4)
    bp = BinPlay(
        head,
        mem,
        n_outputs=4,
        inputs="vectors",
        input_scale=1.0,
        binarize_replay=True,
        classifier=ClassifierConfig(epochs=3, batch_size=32, lr=3e-3),
    )
    for cls in ([0, 1], [2, 3]):
        xa, ya = _sub(x, y, cls, 100)
        bp.learn_task(bits(xa), ya, seed=0)
    xe, ye = _sub(xt, yt, [0, 1, 2, 3], 100)
    pred = bp.predict(bits(xe))
    # chance is 0.25; 0.69-0.76 seen over 4 seeds x 3 torch ISAs (0.6 left a 0.09 margin)
    assert float((pred == ye).mean()) > 0.5
    with pytest.raises(ValueError, match="vectors of shape"):
        bp.predict(xe)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BinPlayConfig(assign_epochs=0),
        lambda: BinPlayConfig(lr=0),
        lambda: BinPlayConfig(replay_ratio=-1),
        lambda: ClassifierConfig(epochs=0),
        lambda: ClassifierConfig(temperature=0),
    ],
)
def test_configs_validate(make):
    with pytest.raises(ValueError, match="expected"):
        make()
