"""Embedding binarizers (GBM paper §3.3, eqs. 5-6) and the thermometer input encoder.

A binarizer is the last module of a backbone's ``features``: it maps the flattened
features to a ``D``-bit embedding, a float tensor of 0/1 in the forward pass, with a
straight-through estimator (STE) in the backward pass. Each exposes ``.n_bits`` (D),
``.kind`` (``"heaviside"`` / ``"thermometer"``), ``.proj`` (the point-wise layer: a binary
:class:`~edgecl.train.layers.QuantLinear` with ``ste_sign`` input and kernel, or a float
``nn.Linear`` without bias when ``binary=False``) and ``.bn`` (``nn.BatchNorm1d`` or
``None``).

:class:`HeavisideBinarizer` (GBM §3.3, "Heaviside binarizer"): ``bit_i = H(bn(proj(x))_i)``
with ``H(y) = 1 if y >= 0 else 0``; backward passes the gradient where ``|y| <= 1``.

:class:`ThermometerBinarizer` (GBM §3.3, eqs. 5-6): ``z = clip(bn(proj(x)), 0, 1)`` with
``features`` values, each coded on ``p = levels`` bits, ``D = features * p``, bit
``p * i + j`` for feature ``i`` and level ``j`` (the layout of eq. 5). The printed eq. 5
(``1 if j * floor(clip(z_i) * p) >= 1``) is garbled; we read it as the thermometer code it
describes — the number of ones is ``floor(clip(z_i) * p)`` — so bit ``j`` (0-based) is
``1 iff floor(clip(z_i) * p) >= j + 1``, i.e. ``z_i >= (j + 1) / p``; ``.thresholds``
holds ``t_j = (j + 1) / p`` (float32) and the forward pass computes exactly
``bit = (bn_out >= t_j)``. Eq. 6 (the mean of a segment, ``floor(clip(z)·p)/p``) is the
linear map a head on the bits can learn; the head reads the D bits.

Training phases (GBM §3.3 and its Table 3, which shows phase 2 is needed):

- phase 1 (``set_phase(1)``): a float relaxation in training mode — each bit is
  ``clamp(p * z - j, 0, 1)`` (continuous; the segment sum is ``p * clip(z)``), so F and G
  train on real values;
- phase 2 (``set_phase(2)``, the default): the hard bits in the forward pass, with an STE
  from F's outputs to G's inputs: the gradient of the phase-1 relaxation (gradient ``p``
  for the bit whose interval holds ``z``, none outside ``[0, 1]``), so F learns to fit its
  range to the saturation and the coding.

In eval mode both phases give the hard bits. :func:`set_thermometer_phase` sets the
phase of every thermometer binarizer in a model.

:class:`ThermometerEncoder` (``levels``) codes an input image in ``[0, 1]`` (after a
``Normalize(0, 1)``) into ±1 channels for a fully binary first layer: output channel
``c * levels + j`` is ``+1 iff x_c >= (j + 1) / (levels + 1)`` (``.thresholds``), else
``-1`` — ±1 so that the next layer's ``ste_sign`` leaves it unchanged and one-padding
stays exact. It has no parameters and no gradient.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from edgecl.train.layers import QuantLinear

__all__ = [
    "HeavisideBinarizer",
    "ThermometerBinarizer",
    "ThermometerEncoder",
    "heaviside",
    "set_thermometer_phase",
]


class _HeavisideFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(y)
        return (y >= 0).to(y.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return grad * (y.abs() <= 1).to(grad.dtype)


def heaviside(y: torch.Tensor) -> torch.Tensor:
    """``H(y) = 1 if y >= 0 else 0`` (float); STE gradient where ``|y| <= 1``."""
    return _HeavisideFn.apply(y)


def _check_pos(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"expected {name} to be a positive int, got {v!r}")
    return int(v)


def _projection(in_features: int, out_features: int, binary: bool) -> nn.Module:
    if binary:
        return QuantLinear(
            in_features, out_features, input_quantizer="ste_sign", kernel_quantizer="ste_sign"
        )
    return nn.Linear(in_features, out_features, bias=False)


class HeavisideBinarizer(nn.Module):
    """``proj -> BatchNorm1d -> Heaviside``: a D-bit {0,1} embedding (GBM §3.3)."""

    kind = "heaviside"

    def __init__(self, in_features: int, n_bits: int, *, binary: bool = True) -> None:
        super().__init__()
        self.in_features = _check_pos("in_features", in_features)
        self.n_bits = _check_pos("n_bits", n_bits)
        self.binary = bool(binary)
        self.proj = _projection(self.in_features, self.n_bits, self.binary)
        self.bn = nn.BatchNorm1d(self.n_bits)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """``bn(proj(x))``, the values the step compares with 0."""
        return self.bn(self.proj(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return heaviside(self.pre_activation(x))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, n_bits={self.n_bits}, binary={self.binary}"


class ThermometerBinarizer(nn.Module):
    """``proj -> [BatchNorm1d] -> clip [0,1] -> thermometer code on p levels`` (GBM eqs. 5-6)."""

    kind = "thermometer"

    def __init__(
        self,
        in_features: int,
        features: int,
        levels: int,
        *,
        binary: bool = True,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = _check_pos("in_features", in_features)
        self.features = _check_pos("features", features)
        self.levels = _check_pos("levels", levels)
        self.n_bits = self.features * self.levels
        self.binary = bool(binary)
        self.proj = _projection(self.in_features, self.features, self.binary)
        self.bn = nn.BatchNorm1d(self.features) if batchnorm else None
        t = torch.arange(1, self.levels + 1, dtype=torch.float32) / self.levels
        self.register_buffer("thresholds", t, persistent=False)
        self.phase = 2

    def set_phase(self, phase: int) -> None:
        """1: float relaxation while training; 2: hard bits with STE (GBM §3.3)."""
        if phase not in (1, 2):
            raise ValueError(f"expected phase 1 or 2, got {phase!r}")
        self.phase = int(phase)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """``z = bn(proj(x))`` of shape ``(N, features)``, before the clip."""
        z = self.proj(x)
        return self.bn(z) if self.bn is not None else z

    def code(self, z: torch.Tensor) -> torch.Tensor:
        """Eq. 5: the hard code, bit ``p*i + j = (z_i >= (j+1)/p)``, shape ``(N, features*p)``."""
        bits = (z.unsqueeze(-1) >= self.thresholds.to(z.dtype)).to(z.dtype)
        return bits.reshape(z.shape[0], self.n_bits)

    def relaxed(self, z: torch.Tensor) -> torch.Tensor:
        """The phase-1 relaxation, ``clamp(p*z - j, 0, 1)`` per bit."""
        j = torch.arange(self.levels, dtype=z.dtype, device=z.device)
        soft = torch.clamp(z.unsqueeze(-1) * self.levels - j, 0.0, 1.0)
        return soft.reshape(z.shape[0], self.n_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.pre_activation(x)
        if not self.training:
            return self.code(z)
        soft = self.relaxed(z)
        if self.phase == 1:
            return soft
        return soft + (self.code(z.detach()) - soft).detach()

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, features={self.features}, levels={self.levels}, "
            f"n_bits={self.n_bits}, binary={self.binary}, batchnorm={self.bn is not None}"
        )


class ThermometerEncoder(nn.Module):
    """Input thermometer code: ``(N, C, H, W)`` in [0, 1] -> ``(N, C*levels, H, W)`` of ±1."""

    kind = "thermometer_input"

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.levels = _check_pos("levels", levels)
        t = torch.arange(1, self.levels + 1, dtype=torch.float32) / (self.levels + 1)
        self.register_buffer("thresholds", t, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected input of shape (N, C, H, W), got {tuple(x.shape)}")
        n, c, h, w = x.shape
        t = self.thresholds.to(x.dtype).view(1, 1, -1, 1, 1)
        bits = x.detach().unsqueeze(2) >= t  # (N, C, levels, H, W)
        out = torch.where(bits, 1.0, -1.0).to(x.dtype)
        return out.reshape(n, c * self.levels, h, w)

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


def set_thermometer_phase(model: nn.Module, phase: int) -> int:
    """Set the phase of every :class:`ThermometerBinarizer` in ``model``; returns how many."""
    n = 0
    for m in model.modules():
        if isinstance(m, ThermometerBinarizer):
            m.set_phase(phase)
            n += 1
    return n
