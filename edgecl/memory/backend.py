"""The kernels a GBM class memory runs on: EM statistics (eqs. 1-3), q-bit quantisation
and pseudo-exemplar sampling (§3.2). :func:`numba_memory_kernels` (the default) are
:mod:`edgecl.kernels`' Numba kernels, imported on first use so that a memory on other
kernels (the onnxruntime graphs of :mod:`edgecl.device.ort`) never imports Numba; the EM
schedule, stop rule and storage stay this package's NumPy code on any kernels."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgecl.memory.quantize import quantize

__all__ = ["MemoryKernels", "numba_memory_kernels"]


@dataclass(frozen=True)
class MemoryKernels:
    """``em_stats(words, n_bits, mu, pi) -> (S, N_k, ell, loglik)`` as
    :func:`edgecl.kernels.bmm.bmm_em_stats`; ``quantize(mu, q) -> levels`` as
    :func:`edgecl.memory.quantize.quantize`; ``sample_words(thresholds, rows, n_bits, seed)
    -> words`` as :func:`edgecl.kernels.sampling.sample_bernoulli_words`; ``name`` says
    which (``"numba"``, ``"onnxruntime"``)."""

    name: str
    em_stats: Callable[..., tuple[np.ndarray, np.ndarray, float, float]]
    quantize: Callable[[np.ndarray, int], np.ndarray]
    sample_words: Callable[..., np.ndarray]


@functools.cache
def numba_memory_kernels() -> MemoryKernels:
    """The Numba kernels (imported on the first call)."""
    from edgecl.kernels.bmm import bmm_em_stats
    from edgecl.kernels.sampling import sample_bernoulli_words

    return MemoryKernels("numba", bmm_em_stats, quantize, sample_bernoulli_words)
