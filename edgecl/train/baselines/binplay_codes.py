"""BinPlay's index codes (binplay paper, §3.2, Lemma 1) and their assignment (Alg. 1).

The code of the sample with chronological index ``i`` (1-based, over all batches) is the
concatenation of sub-vectors, each the ``m`` least significant bits of
``i * p**floor(m ln2 / ln p)`` for a different odd prime ``p``; the batch index is coded the
same way (its own prime and width) as a prefix. Bits are little-endian (bit ``j`` of a
sub-vector is bit ``j`` of the product) and used as ``{-1, 1}`` (bit 1 -> +1), §3.4. For
``i`` in ``1..2**m`` the codes are distinct. :func:`greedy_assign` (Alg. 1) gives each sample
of a batch the nearest code not yet taken. :mod:`edgecl.train.baselines.binplay` trains on
them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from edgecl.validate import pos_int

__all__ = ["ODD_PRIMES", "CodeSpec", "greedy_assign", "lemma1_bits", "lemma1_multiplier"]

#: Odd primes for the sub-vectors (the batch prefix takes the first by default).
ODD_PRIMES = (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79)

_MAX_M = 32  # (2**32 - 1)**2 < 2**64: the product of two m-bit numbers fits in uint64


def _is_odd_prime(p: int) -> bool:
    if p < 3 or p % 2 == 0:
        return False
    return all(p % d for d in range(3, math.isqrt(p) + 1, 2))


def lemma1_multiplier(m: int, p: int) -> int:
    """``p ** floor(m ln2 / ln p)`` (Lemma 1, eq. 1); it lies strictly between ``2**m / p``
    and ``2**m``. The exponent is corrected in exact integers against float rounding."""
    m = pos_int(m, "m")
    p = pos_int(p, "p", 3)
    if not _is_odd_prime(p):
        raise ValueError(f"expected an odd prime p, got {p}")
    e = math.floor(m * math.log(2) / math.log(p))
    while p**e > 2**m:
        e -= 1
    while p ** (e + 1) < 2**m:
        e += 1
    return p**e


def lemma1_bits(indices: np.ndarray | Sequence[int], m: int, p: int) -> np.ndarray:
    """The ``m`` least significant bits of ``i * p**floor(m ln2/ln p)`` for each index:
    ``(N, m)`` uint8 of {0, 1}, bit ``j`` in column ``j`` (Lemma 1)."""
    m = pos_int(m, "m")
    if m > _MAX_M:
        raise ValueError(f"expected m <= {_MAX_M} bits per sub-vector, got {m}")
    idx = np.asarray(indices)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(
            f"expected integer indices of shape (N,), got {idx.dtype.name} {idx.shape}"
        )
    if idx.size and int(idx.min()) < 0:
        raise ValueError(f"expected non-negative indices, got {int(idx.min())}")
    mask = np.uint64((1 << m) - 1)
    mult = np.uint64(lemma1_multiplier(m, p) & int(mask))
    v = (idx.astype(np.uint64) & mask) * mult & mask
    shifts = np.arange(m, dtype=np.uint64)
    return ((v[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.uint8)


@dataclass(frozen=True)
class CodeSpec:
    """Layout of a code: ``batch_bits`` of batch prefix, then ``n_sub`` sub-vectors of
    ``index_bits`` each; ``primes[0]`` codes the batch, ``primes[1:]`` the sub-vectors.
    Indices ``1..2**index_bits`` and batches ``1..2**batch_bits`` get distinct codes."""

    index_bits: int = 19
    n_sub: int = 10
    batch_bits: int = 10
    primes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        m = pos_int(self.index_bits, "index_bits")
        pos_int(self.n_sub, "n_sub")
        pos_int(self.batch_bits, "batch_bits", 0)
        if m > _MAX_M or self.batch_bits > _MAX_M:
            raise ValueError(
                f"expected index_bits and batch_bits <= {_MAX_M}, "
                f"got {self.index_bits} and {self.batch_bits}"
            )
        primes = self.primes
        if primes is None:
            if self.n_sub + 1 > len(ODD_PRIMES):
                raise ValueError(
                    f"expected n_sub <= {len(ODD_PRIMES) - 1} with the default primes, "
                    f"got {self.n_sub}"
                )
            primes = ODD_PRIMES[: self.n_sub + 1]
        primes = tuple(int(p) for p in primes)
        if len(primes) != self.n_sub + 1:
            raise ValueError(
                f"expected {self.n_sub + 1} primes (batch prefix + one per sub-vector), "
                f"got {len(primes)}"
            )
        if not all(_is_odd_prime(p) for p in primes) or len(set(primes[1:])) != self.n_sub:
            raise ValueError(f"expected distinct odd primes for the sub-vectors, got {primes}")
        object.__setattr__(self, "primes", primes)

    @property
    def n_bits(self) -> int:
        """Latent size: ``batch_bits + n_sub * index_bits``."""
        return self.batch_bits + self.n_sub * self.index_bits

    @property
    def capacity(self) -> int:
        """How many indices get distinct codes: ``2**index_bits``."""
        return 2**self.index_bits

    def bits(
        self, indices: np.ndarray | Sequence[int], batches: np.ndarray | Sequence[int]
    ) -> np.ndarray:
        """``(N, n_bits)`` uint8 {0, 1}: batch prefix, then the sub-vectors."""
        idx = np.asarray(indices)
        bat = np.asarray(batches)
        if idx.shape != bat.shape:
            raise ValueError(f"expected batches of shape {idx.shape}, got {bat.shape}")
        if idx.size and (int(idx.min()) < 1 or int(idx.max()) > self.capacity):
            raise ValueError(
                f"expected indices in 1..{self.capacity}, got {int(idx.min())}..{int(idx.max())}"
            )
        parts = []
        if self.batch_bits:
            parts.append(lemma1_bits(bat, self.batch_bits, self.primes[0]))
        parts += [lemma1_bits(idx, self.index_bits, p) for p in self.primes[1:]]
        return np.concatenate(parts, axis=1)

    def codes(
        self, indices: np.ndarray | Sequence[int], batches: np.ndarray | Sequence[int]
    ) -> torch.Tensor:
        """``(N, n_bits)`` float32 codes in {-1, 1} (bit 1 -> +1)."""
        return torch.from_numpy(self.bits(indices, batches).astype(np.float32) * 2 - 1)


def greedy_assign(
    z: torch.Tensor, codes: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Alg. 1: visit the samples in random order; each takes the code closest in L2 to its
    latent ``z_i`` among those not yet taken (for ±1 codes, the largest ``z_i . c``).
    Returns ``a`` (N,) long with ``codes[a[i]]`` assigned to sample ``i``: a permutation."""
    if z.dim() != 2 or codes.dim() != 2 or z.shape != codes.shape:
        raise ValueError(
            f"expected z and codes of the same shape (N, n), got {tuple(z.shape)} "
            f"and {tuple(codes.shape)}"
        )
    n = z.shape[0]
    order = torch.randperm(n, generator=generator).numpy()
    zc = z.detach().float()
    cc = codes.detach().float()
    # ||z - c||^2 = ||z||^2 + ||c||^2 - 2 z.c ; ||c||^2 is kept for codes that are not ±1
    c2 = (cc * cc).sum(1).numpy()
    taken = np.zeros(n, bool)
    out = np.empty(n, np.int64)
    chunk = 256
    for s in range(0, n, chunk):
        rows = order[s : s + chunk]
        dist = c2[None, :] - 2.0 * (zc[torch.from_numpy(rows)] @ cc.T).numpy()
        for r, i in enumerate(rows):
            d = np.where(taken, np.inf, dist[r])
            k = int(np.argmin(d))
            taken[k] = True
            out[i] = k
    return torch.from_numpy(out)
