"""DGM: the annealing of eqs. 3-4, eq. 6 on a hand-checked case, exact gradient blocking
(eq. 5) for DGMw and DGMa, network expansion (§3.2), stored bytes, and a tiny run."""

import math

import numpy as np
import pytest
import torch

from edgecl.data import load_mnist_sample
from edgecl.kernels.bits import n_words
from edgecl.train.baselines.dgm import (
    DGM,
    ACDiscriminator,
    DGMConfig,
    MaskedGenerator,
    MaskedLinear,
    annealed_scale,
    sparsity_regularizer,
)


def test_annealed_scale_eqs_3_4():
    s_max, n_ep, n_b = 400.0, 5, 11
    # eq. 3: s^i_max from 1/s_max (epoch 1) to s_max (epoch I), linearly
    for i in range(1, n_ep + 1):
        si = 1 / s_max + (s_max - 1 / s_max) * (i - 1) / (n_ep - 1)
        assert annealed_scale(i, n_ep, 3, n_b, s_max, local=False) == pytest.approx(si)
        # eq. 4: s from 1/s^i_max (batch 1) to s^i_max (batch B) within epoch i
        assert annealed_scale(i, n_ep, 1, n_b, s_max) == pytest.approx(1 / si)
        assert annealed_scale(i, n_ep, n_b, n_b, s_max) == pytest.approx(si)
        mid = 1 / si + (si - 1 / si) * 5 / 10
        assert annealed_scale(i, n_ep, 6, n_b, s_max) == pytest.approx(mid)
    assert annealed_scale(5, 5, 11, 11, s_max) == pytest.approx(s_max)
    assert annealed_scale(1, 1, 1, 1, s_max) == pytest.approx(s_max)
    with pytest.raises(ValueError, match="expected"):
        annealed_scale(0, 5, 1, 1, s_max)
    with pytest.raises(ValueError, match="expected s_max"):
        annealed_scale(1, 5, 1, 1, 0.5)


def test_mask_forward_eq_1_2():
    torch.manual_seed(0)
    for mode in ("weights", "activations"):
        layer = MaskedLinear(3, 2, mode=mode)
        layer.begin_task()
        with torch.no_grad():
            layer.embedding.copy_(torch.randn(layer.embedding.shape))
        x = torch.randn(4, 3)
        m = torch.sigmoid(7.0 * layer.embedding)
        if mode == "weights":
            want = x @ (layer.weight * m[:, :3]).T + layer.bias * m[:, 3]
        else:
            want = (x @ layer.weight.T + layer.bias) * m
        torch.testing.assert_close(layer(x, None, 7.0), want)
        hard = layer.embedding.detach() > 0
        layer.end_task()
        if mode == "weights":
            want = x @ (layer.weight * hard[:, :3]).T + layer.bias * hard[:, 3]
        else:
            want = (x @ layer.weight.T + layer.bias) * hard
        torch.testing.assert_close(layer(x, 0), want)


def test_sparsity_regularizer_eq_6_by_hand():
    a = MaskedLinear(2, 2, mode="activations")
    b = MaskedLinear(2, 3, mode="activations")
    for layer, e in ((a, [1.0, -1.0]), (b, [2.0, 2.0, -3.0])):
        layer.begin_task()
        with torch.no_grad():
            layer.embedding.copy_(torch.tensor(e))
        layer.end_task()  # reserves a[0], b[0], b[1]
        layer.begin_task()
    with torch.no_grad():
        a.embedding.copy_(torch.tensor([0.3, 0.5]))
        b.embedding.copy_(torch.tensor([0.1, -0.2, 0.4]))
    s = 2.0
    free_num = torch.sigmoid(torch.tensor(s * 0.5)) + torch.sigmoid(torch.tensor(s * 0.4))
    want = free_num / 2.0  # two free units: a[1], b[2]; reserved ones are not penalised
    torch.testing.assert_close(sparsity_regularizer([a, b], s), want)


def _train_steps(g, steps, seed, s=50.0):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(g.weight_parameters(), lr=1e-2)
    opt_m = torch.optim.Adam(g.mask_parameters(), lr=1e-2)
    for _ in range(steps):
        z = torch.randn(8, g.noise_dim, generator=gen)
        y = torch.randint(0, g.n_classes, (8,), generator=gen)
        target = torch.rand(8, *g.out_shape, generator=gen)
        loss = ((g(z, y, None, s) - target) ** 2).mean() + sparsity_regularizer(g.masked_layers, s)
        opt.zero_grad()
        opt_m.zero_grad()
        loss.backward()
        g.block_gradients_()
        opt.step()
        opt_m.step()
        g.clamp_embeddings_()


@pytest.mark.parametrize("mode", ["weights", "activations"])
@pytest.mark.parametrize("expand", [False, True])
def test_gradient_blocking_is_exact(mode, expand):
    torch.manual_seed(0)
    g = MaskedGenerator(3, noise_dim=4, hidden=(6, 8), out_shape=(1, 4, 4), mode=mode)
    g.begin_task()
    with torch.no_grad():  # a mixed mask: some units reserved, some free
        for layer in g.masked_layers:
            layer.embedding.copy_(torch.randn(layer.embedding.shape))
    _train_steps(g, 5, seed=1)
    g.end_task(expand=expand)
    z = torch.randn(10, 4, generator=torch.Generator().manual_seed(9))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    before_out = g(z, y, task=0).detach().clone()
    snap = [(layer.weight.detach().clone(), layer.bias.detach().clone()) for layer in g.layers]
    cum = [(layer.cum_weight.clone(), layer.cum_bias.clone()) for layer in g.layers]
    assert any(c[0].any() for c in cum) and any((~c[0]).any() for c in cum)

    g.begin_task()
    _train_steps(g, 20, seed=2)
    changed_free = 0
    for k, layer in enumerate(g.layers):
        w0, b0 = snap[k]
        cw, cb = cum[k]
        w, b = layer.weight.detach(), layer.bias.detach()
        o, i = w0.shape
        old_w = w[:o, :i]
        if mode == "activations" and k == len(g.layers) - 1:
            # the unmasked pixel layer: columns of reserved hidden units and the bias
            cols = g.layers[k - 1].cum_bias[:i]
            assert torch.equal(old_w[:, cols], w0[:, cols])
            assert torch.equal(b[:o], b0)
            continue
        assert torch.equal(old_w[cw], w0[cw])  # bit-exact: reserved weights never move
        assert torch.equal(b[:o][cb], b0[cb])
        changed_free += int((old_w[~cw] != w0[~cw]).sum())
    assert changed_free > 0  # the free ones did learn
    after_out = g(z, y, task=0)
    if expand:
        torch.testing.assert_close(after_out, before_out, rtol=0, atol=1e-6)
    else:
        assert torch.equal(after_out, before_out)  # task 0's images are unchanged


def test_expansion_keeps_free_capacity():
    torch.manual_seed(0)
    # DGMa: each hidden layer grows by exactly its newly reserved units
    g = MaskedGenerator(2, noise_dim=4, hidden=(10, 12), out_shape=(1, 2, 2), mode="activations")
    free0 = [layer.n_free() for layer in g.masked_layers]
    g.begin_task()
    with torch.no_grad():
        g.layers[0].embedding.copy_(torch.tensor([1.0] * 4 + [-1.0] * 6))
        g.layers[1].embedding.copy_(torch.tensor([1.0] * 5 + [-1.0] * 7))
    add = g.end_task()
    assert add == [4, 5] and g.hidden_sizes() == [14, 17]
    assert [layer.n_free() for layer in g.masked_layers] == free0
    assert g.layers[1].in_features == 14 and g.layers[2].in_features == 17
    # DGMw: ceil(new weights / fan-in) units (fan-in counts the bias)
    g = MaskedGenerator(2, noise_dim=4, hidden=(10, 12), out_shape=(1, 2, 2), mode="weights")
    free_before = g.n_free()
    g.begin_task()
    with torch.no_grad():
        for layer in g.masked_layers:
            layer.embedding.copy_(torch.randn(layer.embedding.shape))
    new = [
        int((layer.embedding > 0).sum()) for layer in g.masked_layers
    ]  # nothing reserved before: all positive entries are new
    add = g.end_task()
    assert add == [math.ceil(new[0] / 7), math.ceil(new[1] / 11)]
    assert g.n_free() >= free_before
    for k, layer in enumerate(g.masked_layers[:2]):  # free weights per hidden layer >= n * p
        fan_in = layer.in_features - (add[k - 1] if k else 0) + 1
        assert layer.n_free() >= fan_in * [10, 12][k]
    assert len(g.growth) == 1


def test_expansion_is_seeded():
    def grown(seed):
        torch.manual_seed(0)
        g = MaskedGenerator(2, noise_dim=4, hidden=(6,), out_shape=(1, 2, 2), mode="activations")
        g.begin_task()
        with torch.no_grad():
            g.layers[0].embedding.fill_(1.0)
        g.end_task(generator=torch.Generator().manual_seed(seed))
        return g.layers[0].weight.detach().clone()

    a, b, c = grown(1), grown(1), grown(2)
    assert a.shape == (12, 6) and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a[6:].abs().max()) <= 1 / math.sqrt(6)


def test_stored_bytes_and_masks():
    g = MaskedGenerator(2, noise_dim=4, hidden=(5,), out_shape=(1, 2, 2), mode="weights")
    for _ in range(2):
        g.begin_task()
        g.end_task(expand=False)
    nb = g.stored_nbytes()
    w = sum((layer.weight.numel() + layer.bias.numel()) * 4 for layer in g.layers)
    m = 2 * (8 * n_words(5 * 7) + 8 * n_words(4 * 6))
    assert nb == {"weights": w, "masks": m, "total": w + m}
    with pytest.raises(RuntimeError, match="between tasks"):
        g.begin_task()
        g.layers[0].expand_(extra_out=1)


def test_dgm_validates():
    g = MaskedGenerator(3, hidden=(8,))
    with pytest.raises(ValueError, match="class outputs"):
        DGM(g, ACDiscriminator(4))
    with pytest.raises(ValueError, match="mode"):
        MaskedGenerator(3, mode="both")
    with pytest.raises(ValueError, match="expected"):
        DGMConfig(s_max=0.5)
    d = DGM(g, ACDiscriminator(3))
    with pytest.raises(ValueError, match="at least one task"):
        d.predict(np.zeros((1, 28, 28), np.uint8))


def _sub(x, y, classes, n):
    idx = np.concatenate([np.flatnonzero(y == c)[:n] for c in classes])
    return x[idx], y[idx]


@pytest.mark.parametrize("mode", ["weights", "activations"])
def test_dgm_tiny_run_learns_above_chance(mode):
    x, y, xt, yt = load_mnist_sample()
    torch.manual_seed(0)
    g = MaskedGenerator(4, noise_dim=16, hidden=(32, 64), mode=mode)
    d = ACDiscriminator(4, channels=(8, 16), hidden=32)
    cfg = DGMConfig(epochs=6, batch_size=32, lr=1e-3, mask_lr=1e-3, lambda_ru=0.1)
    dgm = DGM(g, d, config=cfg)
    for cls in ([0, 1], [2, 3]):
        rep = dgm.learn_task(*_sub(x, y, cls, 150), seed=0)
        assert rep.reserved_new > 0
        d_rep = rep.to_dict()
        assert len(d_rep["d_loss"]) == 6 and d_rep["growth"] == rep.growth
    assert dgm.classes_ == (0, 1, 2, 3) and g.n_tasks == 2
    xe, ye = _sub(xt, yt, [0, 1, 2, 3], 100)
    pred = dgm.predict(xe)
    assert float((pred == ye).mean()) > 0.35  # chance is 0.25
    imgs = dgm.sample([0, 3, 3], seed=1)
    assert imgs.shape == (3, 1, 28, 28) and 0 <= imgs.min() and imgs.max() <= 1
    with pytest.raises(ValueError, match="only new classes"):
        dgm.learn_task(*_sub(x, y, [3], 5))
    assert dgm.classes_ == (0, 1, 2, 3) and g.n_tasks == 2
