"""Shared builders for the export tests: small random models with awkward BatchNorms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgecl.train import mlp, mnist_bnn, vgg_small


def randomize_batchnorm(model: nn.Module, seed: int = 1) -> nn.Module:
    """Random BN statistics and affine: about half of gamma < 0, every 5th gamma == 0
    (a constant channel), integer running means with beta == 0 on every 3rd channel
    (so BN output is exactly 0 at an integer accumulator: a tie, where sign(0) = +1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                m.running_mean.copy_(torch.round(torch.randn(c, generator=g) * 3))
                m.running_var.copy_(torch.rand(c, generator=g) * 5 + 0.1)
                m.weight.copy_(torch.randn(c, generator=g))
                m.weight[::5] = 0.0
                m.bias.copy_(torch.randn(c, generator=g) * 0.5)
                m.bias[::3] = 0.0
    return model.eval()


# name -> (builder, sample shape (H, W, C)); odd channel counts throughout
BACKBONES = {
    "mnist_heaviside": (lambda: mnist_bnn(5, channels=(7, 13, 65), n_bits=37), (28, 28, 1)),
    "mnist_thermometer": (
        lambda: mnist_bnn(5, channels=(7, 13, 65), n_bits=40, embedding="thermometer", levels=4),
        (28, 28, 1),
    ),
    "mnist_fully_binary_zero_pad": (
        lambda: mnist_bnn(3, channels=(9, 13), n_bits=37, fully_binary=True, pad_value=0.0),
        (28, 28, 1),
    ),
    "mnist_float_embedding": (
        lambda: mnist_bnn(4, channels=(7, 13), n_bits=37, binary_embedding=False),
        (28, 28, 1),
    ),
    "vgg_small": (
        lambda: vgg_small(3, channels=(5, 7, 9), n_bits=33, image_size=32),
        (32, 32, 3),
    ),
    "mlp": (lambda: mlp(4, hidden=(70, 33), n_bits=29), (28, 28, 1)),
    "mlp_fully_binary_thermometer": (
        lambda: mlp(
            4, hidden=(70,), n_bits=30, fully_binary=True, embedding="thermometer", levels=3
        ),
        (28, 28, 1),
    ),
}


def random_samples(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    if shape[2] == 1:
        x = x[..., 0]
    # some flat regions, as real images have
    x[: n // 2, :4] = 0
    return x


@pytest.fixture(params=sorted(BACKBONES))
def random_model(request):
    torch.manual_seed(0)
    build, shape = BACKBONES[request.param]
    return request.param, randomize_batchnorm(build()), shape


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread: the machine's cores are shared, and oversubscribed torch threads
    make small models tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
