"""Thresholds read off torch's own modules: where, over every value an op can hand on,
the bit that the BatchNorms, biases and step after it compute turns on.

A binary layer's accumulator is an integer in ``[-n, n]`` (n = fan-in): the step function
is evaluated on every integer of that range and the threshold read off, ``acc >= t``
(``acc <= t`` where the bit falls, the flip), ties included, with extreme thresholds for
constant channels. A float input (the float first layer) is bisected over all float32
values instead. The reading off is :mod:`edgecl.program.lowering`' (the Larq importer's
too); this module computes the bits with torch. Used by :mod:`edgecl.export.lower`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from edgecl.program.lowering import bisect_float_thresholds, int_thresholds_from_bits

__all__ = ["StepFn", "float_thresholds", "int_thresholds"]

# A step function maps a torch value (channel axis 1) to 0/1 bits with C * r channels,
# channel c * r + j for input channel c and repeat j.
StepFn = Callable[[torch.Tensor], torch.Tensor]


def _arrange(values: torch.Tensor, c: int, r: int, layout: str) -> tuple[torch.Tensor, Any]:
    """Place candidate values (C*r,) so output bit c*r+j reads input channel c at slot j.

    ``values`` is (C, K) (the same K candidates for every channel) or (C, r) (one per
    output bit). Returns the torch input and a function picking the output bits (C*r, K).
    """
    k = values.shape[1]
    if layout == "1d":
        x = values.T.contiguous()  # (K, C)

        def pick(out):
            return out.T  # (C*r, K)

    elif layout == "2d_spatial":
        x = values.reshape(1, c, 1, k).contiguous()

        def pick(out):
            return out[0, :, 0, :]

    else:  # "2d_point"
        x = values.T.reshape(k, c, 1, 1).contiguous()

        def pick(out):
            return out[:, :, 0, 0].T

    return x, pick


def int_thresholds(
    fn: StepFn, c: int, r: int, n: int, layout: str
) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds for integer accumulators in [-n, n], read off ``fn`` on every integer."""
    a = torch.arange(-n, n + 1, dtype=torch.float32)
    x, pick = _arrange(a.expand(c, -1), c, r, layout)
    with torch.no_grad():
        bits = pick(fn(x)).cpu().numpy() > 0.5  # (C*r, K)
    return int_thresholds_from_bits(
        bits, n, lambda o: f"channel {o // r}: the bit is not monotone in the accumulator"
    )


def float_thresholds(fn: StepFn, c: int, r: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds on float32 inputs, by bisection over every float32 value per bit."""
    slots = max(r, 2) if layout == "2d_spatial" else r
    o = np.arange(c * r)

    def g(vals: np.ndarray) -> np.ndarray:
        cand = np.zeros((c, slots), np.float32)
        cand[:, :r] = vals.reshape(c, r)
        x, pick = _arrange(torch.from_numpy(cand), c, r, layout)
        with torch.no_grad():
            out = pick(fn(x)).cpu().numpy() > 0.5  # (C*r, slots)
        return out[o, o % r]

    return bisect_float_thresholds(g, c * r)
