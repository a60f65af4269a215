"""Popcount: LLVM's ``ctpop`` as a Numba intrinsic, and the popcount strategy per ISA.

``popcount64(x)`` on a ``uint64`` compiles to one ``ctpop`` (Numba has no popcount yet:
numba issue 10403). A loop of them vectorises to ``vpopcntq`` only with AVX-512
VPOPCNTDQ; on AVX2 and NEON LLVM lowers each vector ``ctpop`` to a byte popcount
followed at once by a widening (``vpsadbw`` / ``uaddlp``) per word, so the binary
kernels there use byte accumulators instead (:mod:`edgecl.kernels.wordvec`).

The strategies (:data:`STRATEGIES`), chosen once at import from the CPU Numba compiles
for (:func:`numba_target`: ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` if set, else the
host's), without compiling anything:

- ``vpopcntdq``: word loops of ``popcount64`` in 4x4 register tiles; LLVM vectorises
  them to ``vpopcntq`` on zmm registers.
- ``avx512bw``: AVX-512 without VPOPCNTDQ: byte accumulators on 8-word (zmm) vectors.
- ``avx2``: byte accumulators on 4-word (ymm) vectors: nibble-table ``vpshufb``
  popcount, ``vpaddb`` across up to 31 words, one ``vpsadbw`` widening.
- ``neon``: byte accumulators on 2-word (q register) vectors: ``cnt`` + ``add``, then
  one widening (``uaddlv``).
- ``scalar``: the portable word loop in 1x4 tiles (one ``popcnt`` a word where the
  CPU has it, whatever LLVM makes of ``ctpop`` elsewhere).

Every strategy gives bit-identical results; each kernel takes an explicit strategy
(tests run them all on any x86-64 machine).
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic


@intrinsic
def popcount64(typingctx, x):
    """Number of set bits of a 64-bit unsigned integer, as ``uint64``."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.uint64(x)

    def codegen(context, builder, signature, args):
        (val,) = args
        val64 = builder.zext(val, ir.IntType(64)) if val.type.width < 64 else val
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, [val64])

    return sig, codegen


#: ``mode`` of the word strategies (the kernels' compile-time switch); byte strategies
#: use their vector width in words (2, 4 or 8) as their mode.
WORD_WIDE = -1
WORD_NARROW = 0


@dataclass(frozen=True)
class PopcountStrategy:
    """One way of computing XOR-popcount reductions; ``mode`` is what the kernels take:
    :data:`WORD_WIDE`, :data:`WORD_NARROW`, or the byte-vector width in words."""

    name: str
    mode: int
    description: str

    @property
    def byte_lanes(self) -> int:
        """Words per vector of the byte accumulators (0 for the word strategies)."""
        return max(self.mode, 0)

    @property
    def token(self) -> tuple[int, ...]:
        """What the Numba cores take to select this strategy: a tuple of ``mode + 2`` zeros,
        whose Numba *type* (the tuple's length) carries the mode, so each strategy compiles
        its own core and Numba finds it by argument type at every call (a literal ``int``
        would go through Numba's slow literal dispatch on every call from Python)."""
        return (0,) * (self.mode + 2)


def token_mode(token) -> int:
    """The mode a strategy token carries: its length - 2 (a tuple, or its Numba type)."""
    return (token.count if isinstance(token, types.BaseTuple) else len(token)) - 2


STRATEGIES: dict[str, PopcountStrategy] = {
    s.name: s
    for s in (
        PopcountStrategy("vpopcntdq", WORD_WIDE, "AVX-512 VPOPCNTDQ: vpopcntq, 4x4 word tiles"),
        PopcountStrategy("avx512bw", 8, "AVX-512BW: byte accumulators on zmm (8 words)"),
        PopcountStrategy("avx2", 4, "AVX2: vpshufb byte popcount, vpaddb accumulators (4 words)"),
        PopcountStrategy("neon", 2, "NEON: cnt byte popcount, byte accumulators (2 words)"),
        PopcountStrategy("scalar", WORD_NARROW, "portable: popcount a word, 1x4 word tiles"),
    )
}


@dataclass(frozen=True)
class NumbaTarget:
    """The CPU Numba compiles for: its name, its feature flags (those turned on), the host's
    architecture, and whether ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` set them."""

    cpu_name: str
    features: frozenset[str]
    arch: str
    overridden: bool


def numba_target() -> NumbaTarget:
    """Numba's target as Numba decides it: ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` when
    set, else the host CPU (llvmlite's host name and features)."""
    import llvmlite.binding as ll
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features  # as Numba reads them (ENABLE_AVX)

    name = config.CPU_NAME or ll.get_host_cpu_name()
    spec = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    on = frozenset(f[1:] for f in spec.split(",") if f.startswith("+"))
    arch = ll.get_process_triple().split("-")[0]
    overridden = config.CPU_NAME is not None or config.CPU_FEATURES is not None
    return NumbaTarget(name, on, arch, overridden)


def choose_strategy(target: NumbaTarget) -> str:
    """The fastest strategy the target supports (a name of :data:`STRATEGIES`)."""
    f = target.features
    if target.arch in ("x86_64", "amd64"):
        if "avx512vpopcntdq" in f:
            return "vpopcntdq"
        if "avx512bw" in f:
            return "avx512bw"
        if "avx2" in f:
            return "avx2"
        return "scalar"
    if target.arch in ("aarch64", "arm64"):
        return "neon"
    return "scalar"


#: The strategy for this process's Numba target, chosen at import (Numba's target is
#: fixed for the process; reading it compiles nothing).
DEFAULT_STRATEGY: PopcountStrategy = STRATEGIES[choose_strategy(numba_target())]


def default_strategy() -> PopcountStrategy:
    """:data:`DEFAULT_STRATEGY`."""
    return DEFAULT_STRATEGY


def get_strategy(strategy: str | PopcountStrategy | None) -> PopcountStrategy:
    """``strategy`` by name (``None``: :func:`default_strategy`)."""
    if strategy is None:
        return default_strategy()
    if isinstance(strategy, PopcountStrategy):
        return strategy
    try:
        return STRATEGIES[strategy]
    except (KeyError, TypeError):
        raise ValueError(
            f"expected a popcount strategy among {sorted(STRATEGIES)}, got {strategy!r}"
        ) from None


__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "WORD_NARROW",
    "WORD_WIDE",
    "NumbaTarget",
    "PopcountStrategy",
    "choose_strategy",
    "default_strategy",
    "get_strategy",
    "numba_target",
    "popcount64",
    "token_mode",
]
