"""Run a layer program op by op: :func:`run_layers`, the unfused path (the fast runtime
runs the compiled :class:`~edgecl.program.compile.Program`, which equals it bit for bit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from edgecl.program.kernelset import LayerKernels, fast_kernels
from edgecl.program.ops import Op

__all__ = ["run_layers"]


def run_layers(
    x: np.ndarray,
    ops: Sequence[Op],
    arrays: Mapping[str, np.ndarray],
    *,
    threads: int = 1,
    kernels: LayerKernels | None = None,
) -> np.ndarray:
    """Run a (checked) layer program (:func:`edgecl.program.parse.parse_layers`) on
    normalised float32 NHWC input on ``kernels`` (default: the fast Numba kernels); returns
    the last value (for a complete program, the packed embedding bits (N, n_words(D)))."""
    kernels = fast_kernels() if kernels is None else kernels
    v = x
    for op in ops:
        v = op.run(v, arrays, kernels, threads=threads)
    return v
