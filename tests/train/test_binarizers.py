"""Embedding binarizers (GBM §3.3, eqs. 5-6) and the input thermometer encoder."""

import math

import pytest
import torch

from edgecl.train import (
    HeavisideBinarizer,
    ThermometerBinarizer,
    ThermometerEncoder,
    heaviside,
    set_thermometer_phase,
)


def test_heaviside_values_and_ste():
    y = torch.tensor([-2.0, -1.0, -0.1, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    out = heaviside(y)
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    out.backward(torch.ones_like(y))
    assert y.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("binary", [True, False])
def test_heaviside_binarizer(binary):
    b = HeavisideBinarizer(17, 33, binary=binary)
    assert b.n_bits == 33 and b.kind == "heaviside"
    assert (b.proj.kernel_quantizer.precision == 1) == binary if binary else True
    x = torch.randn(8, 17, requires_grad=True)
    z = b(x)
    assert z.shape == (8, 33)
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    z.sum().backward()
    assert x.grad.shape == x.shape
    b.eval()
    assert torch.equal(b(x), (b.pre_activation(x) >= 0).float())


def test_thermometer_code_is_eq5():
    p, f = 4, 3
    b = ThermometerBinarizer(5, f, p).eval()
    z = torch.tensor([[-0.3, 0.0, 0.24], [0.25, 0.26, 0.5], [0.74, 0.99, 1.0], [1.5, 0.75, 0.49]])
    bits = b.code(z)
    assert bits.shape == (4, f * p)
    for n in range(z.shape[0]):
        for i in range(f):
            ones = math.floor(min(max(z[n, i].item(), 0.0), 1.0) * p)
            for j in range(p):
                assert bits[n, p * i + j].item() == (1.0 if ones >= j + 1 else 0.0)
    # eq. 6: segment means give the quantized, clipped value
    seg = bits.view(4, f, p).mean(-1)
    assert torch.allclose(seg, torch.floor(z.clamp(0, 1) * p) / p)
    assert torch.allclose(b.thresholds, torch.tensor([0.25, 0.5, 0.75, 1.0]))


def test_thermometer_phases():
    torch.manual_seed(0)
    b = ThermometerBinarizer(6, 5, 3, binary=False)
    assert b.kind == "thermometer" and b.n_bits == 15 and b.phase == 2
    x = torch.randn(16, 6, requires_grad=True)
    b.train()
    hard = b(x)
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    hard.sum().backward()
    assert x.grad is not None and torch.any(x.grad != 0)
    b.set_phase(1)
    soft = b(x)
    assert torch.any((soft > 0) & (soft < 1))
    z = b.pre_activation(x)
    assert torch.allclose(soft.view(16, 5, 3).sum(-1), 3 * z.clamp(0, 1), atol=1e-6)
    b.eval()
    assert torch.equal(b(x), b.code(b.pre_activation(x)))
    with pytest.raises(ValueError, match="phase"):
        b.set_phase(3)
    model = torch.nn.Sequential(b, torch.nn.ReLU(), ThermometerBinarizer(15, 2, 2))
    assert set_thermometer_phase(model, 1) == 2
    assert model[2].phase == 1


def test_thermometer_encoder():
    enc = ThermometerEncoder(3)
    x = torch.tensor([0.0, 0.25, 0.26, 0.5, 0.75, 1.0]).view(1, 1, 1, 6).repeat(2, 2, 1, 1)
    y = enc(x)
    assert y.shape == (2, 6, 1, 6)
    assert set(y.unique().tolist()) == {-1.0, 1.0}
    ones = (y[0, :3, 0] > 0).sum(0).tolist()  # channel 0's three levels
    assert ones == [0, 1, 1, 2, 3, 3]  # thresholds 1/4, 2/4, 3/4
    assert torch.equal(y[:, 3:], y[:, :3])
