"""LLVM's ``ctpop`` as a Numba intrinsic (Numba has no popcount yet: numba issue 10403).

``popcount64(x)`` on a ``uint64`` compiles to one ``ctpop`` instruction; in a
plain loop LLVM vectorises it with AVX2. Only callable from ``@njit`` code.
"""

from __future__ import annotations

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


__all__ = ["popcount64"]
