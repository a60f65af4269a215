"""Quantizers, binarized layers, Normalize: forward values, shapes, STE gradient masks."""

import pytest
import torch
import torch.nn.functional as F

from edgecl.train import (
    ApproxSign,
    Identity,
    Normalize,
    QuantConv2d,
    QuantLinear,
    SteSign,
    clip_weights_,
    get_quantizer,
    ste_sign,
)


def test_sign_of_zero_is_plus_one():
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-30, -1e-30, 3.0])
    assert ste_sign(x).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0, 1.0]
    assert ApproxSign()(x).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0, 1.0]


def test_ste_gradient_mask():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    SteSign()(x).backward(torch.arange(1.0, 8.0))
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


def test_approx_sign_gradient():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.25, 1.0], requires_grad=True)
    ApproxSign()(x).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([0.0, 1.0, 2.0, 1.5, 0.0]))


def test_get_quantizer():
    assert get_quantizer("ste_sign").precision == 1
    assert get_quantizer("approx_sign").precision == 1
    assert get_quantizer(None).precision == 32
    assert get_quantizer("identity") == Identity()
    q = SteSign()
    assert get_quantizer(q) is q
    with pytest.raises(ValueError, match="expected a quantizer name"):
        get_quantizer("sign")
    with pytest.raises(TypeError):
        get_quantizer(3)


@pytest.mark.parametrize(
    "cin,cout,k,stride", [(1, 1, 3, 1), (3, 5, 3, 1), (7, 9, 3, 2), (4, 3, 5, 1)]
)
@pytest.mark.parametrize("pad_value", [1.0, 0.0])
def test_quant_conv_matches_manual(cin, cout, k, stride, pad_value):
    torch.manual_seed(0)
    conv = QuantConv2d(
        cin,
        cout,
        k,
        stride=stride,
        pad_value=pad_value,
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
    )
    x = torch.randn(2, cin, 9, 11)
    y = conv(x)
    xs = torch.where(x >= 0, 1.0, -1.0)
    p = k // 2
    ref = F.conv2d(
        F.pad(xs, (p, p, p, p), value=pad_value),
        torch.where(conv.weight >= 0, 1.0, -1.0),
        stride=stride,
    )
    assert y.shape == ref.shape
    assert torch.equal(y, ref)
    # values are integers of the right parity for +-1 operands with one-padding
    if pad_value == 1.0:
        n = cin * k * k
        assert torch.all((y - n) % 2 == 0)


def test_quant_conv_padding_value_matters_and_valid():
    conv = QuantConv2d(2, 3, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    conv0 = QuantConv2d(
        2, 3, 3, pad_value=0.0, input_quantizer="ste_sign", kernel_quantizer="ste_sign"
    )
    conv0.load_state_dict(conv.state_dict())
    x = torch.randn(1, 2, 5, 5)
    a, b = conv(x), conv0(x)
    assert torch.equal(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1])
    assert not torch.equal(a, b)
    v = QuantConv2d(2, 3, 3, padding="valid")
    assert v(x).shape == (1, 3, 3, 3)
    assert (conv.stride, conv.padding, conv.pad_value) == (1, "same", 1.0)
    assert conv.input_quantizer.precision == 1 and v.input_quantizer.precision == 32


def test_quant_conv_backward_masks():
    conv = QuantConv2d(3, 4, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    with torch.no_grad():
        conv.weight.mul_(0).add_(
            torch.linspace(-1.5, 1.5, conv.weight.numel()).view_as(conv.weight)
        )
    x = (torch.randn(2, 3, 6, 7) * 2).requires_grad_()
    conv(x).backward(torch.randn(2, 4, 6, 7))
    assert x.grad.shape == x.shape and conv.weight.grad.shape == conv.weight.shape
    assert torch.all(x.grad[x.detach().abs() > 1] == 0)
    assert torch.all(conv.weight.grad[conv.weight.detach().abs() > 1] == 0)
    assert torch.any(x.grad[x.detach().abs() <= 1] != 0)


def test_quant_linear_and_clip():
    lin = QuantLinear(13, 5, input_quantizer="ste_sign", kernel_quantizer="ste_sign", bias=True)
    x = torch.randn(4, 13, requires_grad=True)
    y = lin(x)
    ref = torch.where(x >= 0, 1.0, -1.0) @ torch.where(lin.weight >= 0, 1.0, -1.0).T + lin.bias
    assert torch.allclose(y, ref)
    y.sum().backward()
    assert lin.weight.grad.shape == (5, 13)
    with torch.no_grad():
        lin.weight.mul_(10)
    model = torch.nn.Sequential(lin, QuantLinear(5, 2))
    with torch.no_grad():
        model[1].weight.fill_(3.0)
    clip_weights_(model)
    assert lin.weight.abs().max() <= 1.0
    assert torch.all(model[1].weight == 3.0)  # float kernel: not clipped


def test_layer_validation():
    with pytest.raises(ValueError, match="padding"):
        QuantConv2d(1, 1, 3, padding="full")
    with pytest.raises(ValueError, match="positive int"):
        QuantConv2d(0, 1, 3)
    with pytest.raises(ValueError, match="pad_value"):
        QuantConv2d(1, 1, 3, pad_value=float("nan"))
    with pytest.raises(ValueError):
        QuantLinear(3, -1)


def test_normalize():
    n = Normalize((0.5, 0.25), (0.5, 2.0))
    x = torch.tensor([0.0, 255.0]).view(1, 1, 1, 2).expand(1, 2, 1, 2).contiguous()
    y = n(x)
    assert torch.allclose(y[0, 0, 0], torch.tensor([-1.0, 1.0]))
    assert torch.allclose(y[0, 1, 0], torch.tensor([-0.125, 0.375]))
    assert n.mean == (0.5, 0.25) and n.std == (0.5, 2.0) and n.scale == pytest.approx(1 / 255)
    u8 = n(torch.zeros(1, 2, 1, 1, dtype=torch.uint8))
    assert u8.dtype == torch.float32
    with pytest.raises(ValueError, match="std > 0"):
        Normalize(0.0, 0.0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        n(torch.zeros(3, 4))
