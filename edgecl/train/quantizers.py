"""Quantizers: tiny objects with a ``precision`` in bits, as larq defines them.

Contract (the exporter relies on it):

- Every quantizer has ``.precision`` (bits) and ``__call__(x) -> tensor``.
- Binary means ``precision == 1``; never test class names.
- :class:`SteSign` — forward ``sign(x)`` with ``sign(0) = +1`` (``x >= 0 -> +1``, else
  ``-1``), the bit convention of :mod:`edgecl.kernels.bits`; backward passes the gradient
  where ``|x| <= 1`` and zeroes it elsewhere (the straight-through estimator).
- :class:`ApproxSign` — the same forward; backward ``2 - 2|x|`` for ``|x| <= 1``
  (Bi-Real Net's piecewise-polynomial estimator), precision 1.
- :class:`Identity` — precision 32, returns its input. Layers given ``None`` store an
  ``Identity`` instance, so ``layer.input_quantizer.precision`` is always readable.

:func:`get_quantizer` accepts ``"ste_sign"``, ``"approx_sign"``, ``"identity"``, ``None`` or
an instance. Quantizers are plain Python objects (not ``nn.Module``), hold no state and
compare equal by name.
"""

from __future__ import annotations

import torch

__all__ = ["ApproxSign", "Identity", "Quantizer", "SteSign", "get_quantizer", "ste_sign"]


class _SteSignFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        return torch.where(x >= 0, one, -one)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class _ApproxSignFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        return torch.where(x >= 0, one, -one)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * torch.clamp(2.0 - 2.0 * x.abs(), min=0.0)


def ste_sign(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)`` with ``sign(0) = +1``; straight-through gradient where ``|x| <= 1``."""
    return _SteSignFn.apply(x)


class Quantizer:
    """Base class: ``name``, ``precision`` (bits) and ``__call__``."""

    name: str = "quantizer"
    precision: int = 32

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantizer) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class SteSign(Quantizer):
    """Binary: forward ``x >= 0 -> +1`` else ``-1``; gradient passed where ``|x| <= 1``."""

    name = "ste_sign"
    precision = 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SteSignFn.apply(x)


class ApproxSign(Quantizer):
    """Binary quantizer: forward as :class:`SteSign`; backward ``max(0, 2 - 2|x|)``."""

    name = "approx_sign"
    precision = 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _ApproxSignFn.apply(x)


class Identity(Quantizer):
    """No quantization (precision 32)."""

    name = "identity"
    precision = 32

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


_BY_NAME: dict[str, type[Quantizer]] = {
    "ste_sign": SteSign,
    "approx_sign": ApproxSign,
    "identity": Identity,
}


def get_quantizer(q: str | Quantizer | None) -> Quantizer:
    """Return a quantizer instance for a name (``"ste_sign"``, ``"approx_sign"``,
    ``"identity"``), ``None`` (identity) or an instance (returned as is)."""
    if q is None:
        return Identity()
    if isinstance(q, Quantizer):
        return q
    if isinstance(q, str):
        cls = _BY_NAME.get(q)
        if cls is None:
            raise ValueError(f"expected a quantizer name in {sorted(_BY_NAME)} or None, got {q!r}")
        return cls()
    raise TypeError(f"expected a quantizer name, instance or None, got {type(q).__name__}")
