"""Research baselines of generative rehearsal, in torch, for ``benchmarks/rehearsal.py``:
BinPlay (:mod:`edgecl.train.baselines.binplay`) and Dynamic Generative Memory
(:mod:`edgecl.train.baselines.dgm`). Not part of ``edgecl.train``'s surface: import them
from here.
"""

from edgecl.train.baselines.binplay import (
    BinPlay,
    BinPlayConfig,
    BinPlayMemory,
    BinPlayReport,
    CodeSpec,
    ConvAutoencoder,
    VectorAutoencoder,
    greedy_assign,
    lemma1_bits,
    lemma1_multiplier,
)
from edgecl.train.baselines.dgm import (
    DGM,
    ACDiscriminator,
    DGMConfig,
    DGMTaskReport,
    MaskedGenerator,
    MaskedLinear,
    annealed_scale,
    gradient_penalty,
    sparsity_regularizer,
)

__all__ = [
    "DGM",
    "ACDiscriminator",
    "BinPlay",
    "BinPlayConfig",
    "BinPlayMemory",
    "BinPlayReport",
    "CodeSpec",
    "ConvAutoencoder",
    "DGMConfig",
    "DGMTaskReport",
    "MaskedGenerator",
    "MaskedLinear",
    "VectorAutoencoder",
    "annealed_scale",
    "gradient_penalty",
    "greedy_assign",
    "lemma1_bits",
    "lemma1_multiplier",
    "sparsity_regularizer",
]
