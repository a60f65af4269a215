"""Binarized layers and the input normalization, as plain ``nn.Module`` s.

Contract (the exporter relies on it):

- :class:`QuantConv2d` ``(in_ch, out_ch, kernel_size, *, stride=1, padding="same"|"valid",
  pad_value=1.0, input_quantizer=None, kernel_quantizer=None, bias=False)`` and
  :class:`QuantLinear` ``(in_f, out_f, *, input_quantizer=None, kernel_quantizer=None,
  bias=False)`` hold a float latent ``weight`` in torch layout (conv ``(O, I, kh, kw)``,
  linear ``(O, I)``) and an optional ``bias``.
- Forward: ``x_q = input_quantizer(x)``; for ``padding="same"`` the quantized input is
  padded by ``k // 2`` on every side with the constant ``pad_value`` (``+1`` by default:
  one-padding of the ±1 input, as larq's ``pad_values=1``; ``0`` allowed) with
  ``F.pad``; then ``F.conv2d(x_q, kernel_quantizer(weight), bias, stride, padding=0)``.
- Readable attributes: ``input_quantizer``, ``kernel_quantizer`` (quantizer instances,
  never ``None``: ``None`` becomes :class:`~edgecl.train.quantizers.Identity`),
  ``stride`` (int), ``padding`` (``"same"``/``"valid"``), ``pad_value`` (float),
  ``kernel_size`` ``(kh, kw)``, ``in_channels``/``out_channels`` (conv),
  ``in_features``/``out_features`` (linear).
- ``clip_weights_()`` clamps the latent weight to ``[-1, 1]`` when the kernel is binary
  (``kernel_quantizer.precision == 1``), as larq's weight clip constraint; the training
  loop calls it after every optimizer step (:func:`clip_weights_` walks a model).
- :class:`Normalize` ``(mean, std, scale=1/255)`` takes raw pixel values (a float tensor
  of 0..255, shape ``(N, C, H, W)``) and returns ``(x * scale - mean) / std`` per channel;
  ``.mean``/``.std`` are tuples of floats (one per channel, or one for all), ``.scale`` a
  float. It is the first module of every backbone's ``features``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from edgecl.train.quantizers import Quantizer, get_quantizer

__all__ = ["Normalize", "QuantConv2d", "QuantLinear", "clip_weights_"]


def _positive_int(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"expected {name} to be a positive int, got {v!r}")
    return int(v)


class QuantLinear(nn.Module):
    """Dense layer ``y = input_quantizer(x) @ kernel_quantizer(W).T (+ b)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        input_quantizer: str | Quantizer | None = None,
        kernel_quantizer: str | Quantizer | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.in_features = _positive_int("in_features", in_features)
        self.out_features = _positive_int("out_features", out_features)
        self.input_quantizer = get_quantizer(input_quantizer)
        self.kernel_quantizer = get_quantizer(kernel_quantizer)
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.bias = nn.Parameter(torch.zeros(self.out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.input_quantizer(x), self.kernel_quantizer(self.weight), self.bias)

    @torch.no_grad()
    def clip_weights_(self) -> None:
        """Clamp the latent weight to [-1, 1] if the kernel is binary."""
        if self.kernel_quantizer.precision == 1:
            self.weight.clamp_(-1.0, 1.0)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, "
            f"input_quantizer={self.input_quantizer.name}, "
            f"kernel_quantizer={self.kernel_quantizer.name}, bias={self.bias is not None}"
        )


class QuantConv2d(nn.Module):
    """2-D convolution on quantized input and kernel; 'same' padding with ``pad_value``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        stride: int = 1,
        padding: str = "same",
        pad_value: float = 1.0,
        input_quantizer: str | Quantizer | None = None,
        kernel_quantizer: str | Quantizer | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = _positive_int("in_channels", in_channels)
        self.out_channels = _positive_int("out_channels", out_channels)
        if isinstance(kernel_size, int) and not isinstance(kernel_size, bool):
            ks = (kernel_size, kernel_size)
        elif isinstance(kernel_size, (tuple, list)) and len(kernel_size) == 2:
            ks = tuple(kernel_size)
        else:
            raise ValueError(f"expected kernel_size to be an int or (kh, kw), got {kernel_size!r}")
        self.kernel_size = (
            _positive_int("kernel height", ks[0]),
            _positive_int("kernel width", ks[1]),
        )
        self.stride = _positive_int("stride", stride)
        if padding not in ("same", "valid"):
            raise ValueError(f"expected padding 'same' or 'valid', got {padding!r}")
        self.padding = padding
        pad_value = float(pad_value)
        if not math.isfinite(pad_value):
            raise ValueError(f"expected a finite pad_value, got {pad_value}")
        self.pad_value = pad_value
        self.input_quantizer = get_quantizer(input_quantizer)
        self.kernel_quantizer = get_quantizer(kernel_quantizer)
        self.weight = nn.Parameter(
            torch.empty(self.out_channels, self.in_channels, *self.kernel_size)
        )
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) padding applied after input quantization."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        ph, pw = self.kernel_size[0] // 2, self.kernel_size[1] // 2
        return (pw, pw, ph, ph)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = self.input_quantizer(x)
        if self.padding == "same":
            xq = F.pad(xq, self.pads, mode="constant", value=self.pad_value)
        return F.conv2d(xq, self.kernel_quantizer(self.weight), self.bias, self.stride, 0)

    @torch.no_grad()
    def clip_weights_(self) -> None:
        """Clamp the latent weight to [-1, 1] if the kernel is binary."""
        if self.kernel_quantizer.precision == 1:
            self.weight.clamp_(-1.0, 1.0)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding!r}, pad_value={self.pad_value}, "
            f"input_quantizer={self.input_quantizer.name}, "
            f"kernel_quantizer={self.kernel_quantizer.name}, bias={self.bias is not None}"
        )


def _floats(name: str, v: float | Sequence[float]) -> tuple[float, ...]:
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        vals: tuple[float, ...] = (float(v),)
    else:
        try:
            vals = tuple(float(a) for a in v)  # type: ignore[union-attr]
        except TypeError:
            raise TypeError(
                f"expected {name} to be a float or a sequence of floats, got {v!r}"
            ) from None
    if not vals or not all(math.isfinite(a) for a in vals):
        raise ValueError(f"expected {name} to be finite floats, got {v!r}")
    return vals


class Normalize(nn.Module):
    """``(x * scale - mean) / std`` per channel, on raw pixel values 0..255 ``(N, C, H, W)``."""

    def __init__(
        self,
        mean: float | Sequence[float],
        std: float | Sequence[float],
        scale: float = 1.0 / 255.0,
    ) -> None:
        super().__init__()
        self.mean = _floats("mean", mean)
        self.std = _floats("std", std)
        if any(s <= 0 for s in self.std):
            raise ValueError(f"expected std > 0, got {self.std}")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise ValueError(
                f"expected mean and std of equal length (or one of length 1), "
                f"got {len(self.mean)} and {len(self.std)}"
            )
        self.scale = float(scale)
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"expected a positive scale, got {scale}")
        self.register_buffer("_mean", torch.tensor(self.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(self.std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected input of shape (N, C, H, W), got {tuple(x.shape)}")
        if not torch.is_floating_point(x):
            x = x.float()
        return (x * self.scale - self._mean) / self._std

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}, scale={self.scale}"


def clip_weights_(model: nn.Module) -> None:
    """Call ``clip_weights_()`` on every submodule that has it (binary latent weights)."""
    for m in model.modules():
        if isinstance(m, (QuantLinear, QuantConv2d)):
            m.clip_weights_()
