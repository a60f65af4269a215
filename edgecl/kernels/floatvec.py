"""float32 vectors for the first layer's register tiles (``@intrinsic`` LLVM IR).

A :class:`FloatVecType` value is an LLVM ``<lanes x float>``: ``lanes`` consecutive
float32 of one operand (16 = one AVX-512 zmm register, 8 = one AVX2 ymm, 4 = one NEON q).
Written out, these are as wide as the target's registers; LLVM's own loop vectoriser keeps
to 256 bits on the Intel cores whose tuning prefers them, and spends half of AVX-512 there.
:func:`fv_fma` is ``llvm.fma``: one rounding of ``a * b + c``.
Only callable from ``@njit`` code; nothing here compiles at import.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.datamodel import models, register_default
from numba.core.extending import intrinsic

from edgecl.kernels.wordvec import _item_pointer, c_array_at

__all__ = [
    "FloatVecType",
    "fv_fma",
    "fv_ge_bits",
    "fv_load",
    "fv_max4",
    "fv_splat",
    "fv_splat_at",
    "fv_store",
    "fv_zero",
]

_F32 = ir.FloatType()
_I32 = ir.IntType(32)


class FloatVecType(types.Type):
    """``lanes`` float32 in one LLVM vector register."""

    def __init__(self, lanes: int):
        self.lanes = lanes
        super().__init__(name=f"FloatVec({lanes})")


@register_default(FloatVecType)
class _FloatVecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(_F32, fe_type.lanes))


def _lanes_of(lanes) -> int | None:
    if isinstance(lanes, types.IntegerLiteral) and lanes.literal_value in (4, 8, 16):
        return lanes.literal_value
    return None


def _floats_array(arr, idx) -> bool:
    return c_array_at(arr, idx, types.float32)


@intrinsic
def fv_load(typingctx, lanes, arr, idx):
    """``arr[idx] .. arr[idx + lanes - 1]`` along the last axis (C-contiguous float32,
    ``idx`` a tuple with one index per axis; no bounds check)."""
    n = _lanes_of(lanes)
    if n is None or not _floats_array(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _item_pointer(context, builder, sig.args[1], args[1], sig.args[2], args[2])
        return builder.load(builder.bitcast(ptr, ir.VectorType(_F32, n).as_pointer()), align=4)

    return FloatVecType(n)(lanes, arr, idx), codegen


@intrinsic
def fv_store(typingctx, arr, idx, v):
    """Store ``v`` at ``arr[idx] ..`` along the last axis."""
    if not isinstance(v, FloatVecType) or not _floats_array(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _item_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        vty = ir.VectorType(_F32, sig.args[2].lanes)
        builder.store(args[2], builder.bitcast(ptr, vty.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.none(arr, idx, v), codegen


@intrinsic
def fv_zero(typingctx, lanes):
    """``lanes`` zeros (+0.0)."""
    n = _lanes_of(lanes)
    if n is None:
        return None

    def codegen(context, builder, sig, args):
        return ir.Constant(ir.VectorType(_F32, n), [0.0] * n)

    return FloatVecType(n)(lanes), codegen


@intrinsic
def fv_splat(typingctx, lanes, x):
    """``lanes`` copies of the float ``x`` (as float32)."""
    n = _lanes_of(lanes)
    if n is None or not isinstance(x, types.Float):
        return None

    def codegen(context, builder, sig, args):
        val = context.cast(builder, args[1], sig.args[1], types.float32)
        vty = ir.VectorType(_F32, n)
        vec = builder.insert_element(ir.Constant(vty, ir.Undefined), val, _I32(0))
        mask = ir.Constant(ir.VectorType(_I32, n), [0] * n)
        return builder.shuffle_vector(vec, ir.Constant(vty, ir.Undefined), mask)

    return FloatVecType(n)(lanes, x), codegen


@intrinsic
def fv_splat_at(typingctx, lanes, arr, idx):
    """``lanes`` copies of ``arr[idx]`` (C-contiguous float32, ``idx`` a tuple with one
    index per axis): one broadcast load, no bounds check and no negative-index wrap."""
    n = _lanes_of(lanes)
    if n is None or not _floats_array(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _item_pointer(context, builder, sig.args[1], args[1], sig.args[2], args[2])
        vty = ir.VectorType(_F32, n)
        vec = builder.insert_element(ir.Constant(vty, ir.Undefined), builder.load(ptr), _I32(0))
        mask = ir.Constant(ir.VectorType(_I32, n), [0] * n)
        return builder.shuffle_vector(vec, ir.Constant(vty, ir.Undefined), mask)

    return FloatVecType(n)(lanes, arr, idx), codegen


@intrinsic
def fv_fma(typingctx, a, b, c):
    """``a * b + c`` lane by lane, rounded once (``llvm.fma``)."""
    if not isinstance(a, FloatVecType) or a != b or a != c:
        return None

    def codegen(context, builder, sig, args):
        vty = ir.VectorType(_F32, sig.args[0].lanes)
        fnty = ir.FunctionType(vty, [vty, vty, vty])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.fma.v{vty.count}f32")
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def fv_ge_bits(typingctx, acc, thr):
    """Bit ``i`` set where ``acc[i] >= thr[i]`` (ordered: a NaN gives 0), as ``uint64``: one
    compare into a mask."""
    if not (isinstance(acc, FloatVecType) and acc == thr):
        return None

    def codegen(context, builder, sig, args):
        n = acc.lanes
        hit = builder.fcmp_ordered(">=", args[0], args[1])
        return builder.zext(builder.bitcast(hit, ir.IntType(n)), ir.IntType(64))

    return types.uint64(acc, thr), codegen


@intrinsic
def fv_max4(typingctx, a, b, c, d):
    """Lane-wise largest of ``a .. d``, for NaN-free vectors (``a > b ? a : b``, x86's
    ``maxps``: a NaN lane would not be ignored), in a tree of 3: ``any(v[i] >= t)`` over
    the 4 is ``max[i] >= t`` (a tie of zeros compares alike either way)."""
    if not (isinstance(a, FloatVecType) and a == b == c == d):
        return None

    def codegen(context, builder, sig, args):
        def larger(x, y):
            return builder.select(builder.fcmp_ordered(">", x, y), x, y)

        return larger(larger(args[0], args[1]), larger(args[2], args[3]))

    return a(a, b, c, d), codegen
