"""BayesBiNN (Algorithm 1): learns two moons, mu == tanh(lambda) after every step, the exact
update rule, posterior-as-prior, sampling from the posterior."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgecl.train import BayesBiNN, QuantLinear, binary_parameters, predict_mean


def moons(n, noise=0.1, seed=0):
    r = np.random.default_rng(seed)
    t = r.uniform(0, np.pi, n)
    lab = r.integers(0, 2, n)
    upper = np.c_[np.cos(t), np.sin(t)]
    lower = np.c_[1 - np.cos(t), 0.5 - np.sin(t)]
    x = np.where(lab[:, None] == 0, upper, lower) + r.normal(0, noise, (n, 2))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(lab)


def moons_net():
    return nn.Sequential(
        QuantLinear(2, 64, kernel_quantizer="ste_sign"),
        nn.BatchNorm1d(64),
        QuantLinear(64, 64, input_quantizer="ste_sign", kernel_quantizer="ste_sign"),
        nn.BatchNorm1d(64),
        QuantLinear(64, 2, input_quantizer="ste_sign", kernel_quantizer="ste_sign"),
        nn.BatchNorm1d(2),
    )


def test_learns_two_moons_and_keeps_mu_tanh_lambda():
    torch.manual_seed(0)
    x, y = moons(400)
    xt, yt = moons(400, seed=1)
    model = moons_net()
    bp = binary_parameters(model)
    assert len(bp) == 3
    ids = {id(p) for p in bp}
    # the paper's two-moons settings: MC 5, lr 1e-3, tau 1 (Table 1)
    bayes = BayesBiNN(bp, lr=1e-3, num_data=400, temperature=1.0, mc_samples=5, seed=0)
    adam = torch.optim.Adam([p for p in model.parameters() if id(p) not in ids], lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):  # 30 epochs gave 0.80-0.998 over seeds; 100 give 0.86-0.998
        perm = torch.randperm(400, generator=g)
        for i in range(0, 400, 50):
            idx = perm[i : i + 50]

            def closure(idx=idx):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                loss.backward()
                return loss

            adam.zero_grad()
            bayes.step(closure)
            adam.step()
            for p in bp:
                st = bayes.state[p]
                assert torch.equal(st["mu"], torch.tanh(st["lambda"]))
                assert torch.equal(p.detach(), st["mu"])
    model.eval()
    acc = (model(xt).argmax(1) == yt).float().mean().item()
    assert acc > 0.8
    probs = predict_mean(model, xt, bayes, samples=5)
    assert probs.shape == (400, 2) and torch.allclose(probs.sum(1), torch.ones(400))
    assert (probs.argmax(1) == yt).float().mean().item() > 0.8


def test_update_rule_is_algorithm_1_with_fresh_mu():
    p = nn.Parameter(torch.tensor([0.3, -0.2, 0.0, 0.9]))
    opt = BayesBiNN(
        [p], lr=0.1, num_data=7, temperature=0.5, lambda_init=0.5, eps_scale=0.0, seed=3
    )
    assert torch.equal(opt.state[p]["lambda"], torch.tensor([0.5, -0.5, 0.5, 0.5]))  # sign(0)=+1
    c = torch.tensor([1.0, -2.0, 0.5, 3.0])
    seen = []

    def closure():
        seen.append(p.detach().clone())
        loss = (c * p * p).sum()
        loss.backward()
        return loss

    for _ in range(3):
        lam = opt.state[p]["lambda"].clone()
        mu = torch.tanh(lam)
        opt.step(closure)
        w = seen[-1]
        assert torch.all(w.abs() < 1) and not torch.allclose(w, mu)  # a relaxed sample
        g = 2 * c * w
        s = (1 - w * w) / (0.5 * (1 - mu * mu))
        expect = 0.9 * lam - 0.1 * (7 * s * g - 0.0)
        assert torch.allclose(opt.state[p]["lambda"], expect, rtol=1e-5, atol=1e-6)
        # mu from the NEW lambda, not the previous step's (the reference code's lag)
        assert torch.equal(opt.state[p]["mu"], torch.tanh(opt.state[p]["lambda"]))
        assert not torch.allclose(opt.state[p]["mu"], mu)


def test_posterior_as_prior_carries_over():
    p = nn.Parameter(torch.tensor([0.4, -0.7, 0.1]))
    opt = BayesBiNN([p], lr=0.2, num_data=10, temperature=1.0, lambda_init=2.0, seed=0)
    lam0 = opt.state[p]["lambda"].clone()

    def no_data():  # a task with no gradient on these weights: only the prior acts
        return torch.tensor(0.0)

    opt.step(no_data)
    assert torch.allclose(opt.state[p]["lambda"], 0.8 * lam0)  # pulled toward prior 0
    opt.posterior_as_prior_()
    kept = opt.state[p]["lambda"].clone()
    assert torch.equal(opt.state[p]["prior_lambda"], kept)
    for _ in range(5):
        opt.step(no_data)
    assert torch.allclose(opt.state[p]["lambda"], kept)  # the posterior is the new prior
    # the prior travels with the optimizer state
    q = nn.Parameter(torch.zeros(3))
    opt2 = BayesBiNN([q], lr=0.2, num_data=10, temperature=1.0)
    opt2.load_state_dict(opt.state_dict())
    assert torch.equal(opt2.state[q]["prior_lambda"], kept)


def test_sampled_weights_follow_the_posterior():
    p = nn.Parameter(torch.zeros(20000))
    opt = BayesBiNN([p], lr=0.1, num_data=1, lambda_init=1.0, seed=0)
    with torch.no_grad():
        opt.state[p]["lambda"].fill_(0.5)
        opt.state[p]["mu"] = torch.tanh(opt.state[p]["lambda"])
        p.copy_(opt.state[p]["mu"])
    with opt.sampled_weights():
        vals = p.detach().clone()
    assert set(vals.unique().tolist()) == {-1.0, 1.0}
    freq = (vals > 0).float().mean().item()
    assert abs(freq - torch.sigmoid(torch.tensor(1.0)).item()) < 0.015
    assert torch.allclose(p.detach(), torch.tanh(torch.tensor(0.5)).expand(20000))


def test_validation():
    p = nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="num_data"):
        BayesBiNN([p], num_data=0)
    with pytest.raises(ValueError, match="temperature"):
        BayesBiNN([p], num_data=1, temperature=0.0)
    with pytest.raises(ValueError, match="closure"):
        BayesBiNN([p], num_data=1).step()


def test_works_with_torch_lr_schedulers():
    p = nn.Parameter(torch.tensor([0.5, -0.5]))
    opt = BayesBiNN([p], lr=0.1, num_data=1, temperature=1.0, lambda_init=1.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    lrs = []
    for _ in range(4):
        opt.step(lambda: torch.tensor(0.0))
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12) and lrs[0] < 0.1
    # with a zero learning rate lambda no longer moves
    lam = opt.state[p]["lambda"].clone()
    opt.step(lambda: torch.tensor(0.0))
    assert torch.equal(opt.state[p]["lambda"], lam)
