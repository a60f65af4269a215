"""Helpers shared by the class-memory tests."""

from edgecl.kernels.bits import pack_bits
from edgecl.memory import GBMConfig, GBMMemory, LatentBuffer, LatentBufferConfig

FAST_EM = dict(n_init=2, n_iter=2, n_max=4)


def mixture_words(rng, protos, n, pi=None, flip=0.1):
    """Packed samples of a known Bernoulli mixture: prototype bits flipped with prob `flip`."""
    k = rng.choice(len(protos), size=n, p=pi)
    return pack_bits(protos[k] ^ (rng.random((n, protos.shape[1])) < flip))


def make_memory(kind, n_bits, **kw):
    if kind == "gbm":
        cfg = {"components": 2, "bits": 8, **FAST_EM, **kw}
        return GBMMemory(n_bits, GBMConfig(**cfg))
    return LatentBuffer(n_bits, LatentBufferConfig(**{"per_class": 6, **kw}))
