"""Word vectors for the byte-accumulating popcount strategies (``@intrinsic`` LLVM IR).

A :class:`WordVecType` value is an LLVM ``<lanes x i64>`` vector: ``lanes`` consecutive
``uint64`` words of one operand (4 = one AVX2 ymm register, 2 = one NEON q register).
The kernels XOR two of them, take the popcount of every *byte* (``llvm.ctpop`` on
``<8 * lanes x i8>``: AVX2's nibble-table ``vpshufb`` popcount, NEON's ``cnt``, AVX-512
BITALG's ``vpopcntb``) and add those byte counts in 8-bit lanes (``vpaddb`` / ``add .16b``)
for up to :data:`BYTE_STEPS` words of the reduction; only then is the accumulator widened
(:func:`wv_total`, :func:`wv_lane_sums`), instead of a widening after every word as
LLVM's own lowering of a vectorised 64-bit ``ctpop`` does on AVX2 and NEON.

A byte holds 8 bits, so one step adds at most 8 to a byte lane: 31 steps stay within 248,
below 256. Only callable from ``@njit`` code; nothing here compiles at import.
"""

from __future__ import annotations

from functools import cache

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.datamodel import models, register_default
from numba.core.extending import intrinsic

from edgecl.kernels.popcount import numba_target

#: Words (steps) one byte accumulator takes before it must be widened: 31 * 8 = 248 < 256.
BYTE_STEPS = 31

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_I16 = ir.IntType(16)
_I8 = ir.IntType(8)


class WordVecType(types.Type):
    """``lanes`` uint64 words in one LLVM vector register."""

    def __init__(self, lanes: int):
        self.lanes = lanes
        super().__init__(name=f"WordVec({lanes})")


@register_default(WordVecType)
class _WordVecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(_I64, fe_type.lanes))


def _vec(lanes: int, bits: int = 64) -> ir.VectorType:
    return ir.VectorType(ir.IntType(bits), lanes * 64 // bits)


def _declare(builder, name: str, ret: ir.Type, arg: ir.VectorType):
    """An LLVM intrinsic on a vector type (``llvm.<name>.v<N>i<B>``)."""
    suffix = f"v{arg.count}i{arg.element.width}"
    fnty = ir.FunctionType(ret, [arg])
    return cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.{suffix}")


def _lanes_of(lanes) -> int | None:
    if isinstance(lanes, types.IntegerLiteral) and lanes.literal_value in (2, 4, 8):
        return lanes.literal_value
    return None


def _item_pointer(context, builder, arrty, arr, idxty, idx):
    ary = context.make_array(arrty)(context, builder, arr)
    inds = cgutils.unpack_tuple(builder, idx, len(idxty))
    inds = [context.cast(builder, v, t, types.intp) for v, t in zip(inds, idxty, strict=True)]
    shapes = cgutils.unpack_tuple(builder, ary.shape, arrty.ndim)
    strides = cgutils.unpack_tuple(builder, ary.strides, arrty.ndim)
    return cgutils.get_item_pointer2(
        context, builder, ary.data, shapes, strides, arrty.layout, inds, wraparound=False
    )


def _words_array(arr, idx) -> bool:
    return c_array_at(arr, idx, types.uint64)


def c_array_at(arr, idx, dtype) -> bool:
    """``arr`` a C-contiguous array of ``dtype`` and ``idx`` a tuple of one integer index
    per axis (what the vector loads and stores take)."""
    return (
        isinstance(arr, types.Array)
        and arr.dtype == dtype
        and arr.layout == "C"
        and isinstance(idx, types.BaseTuple)
        and len(idx) == arr.ndim
        and all(isinstance(t, types.Integer) for t in idx)
    )


@intrinsic
def wv_load(typingctx, lanes, arr, idx):
    """Words ``arr[idx] .. arr[idx + lanes - 1]`` along the last axis (C-contiguous uint64,
    ``idx`` a tuple with one index per axis; no bounds check)."""
    n = _lanes_of(lanes)
    if n is None or not _words_array(arr, idx):
        return None
    vt = WordVecType(n)

    def codegen(context, builder, sig, args):
        ptr = _item_pointer(context, builder, sig.args[1], args[1], sig.args[2], args[2])
        vptr = builder.bitcast(ptr, _vec(n).as_pointer())
        return builder.load(vptr, align=8)

    return vt(lanes, arr, idx), codegen


@intrinsic
def wv_store(typingctx, arr, idx, v):
    """Store the words of ``v`` at ``arr[idx] ..`` along the last axis."""
    if not isinstance(v, WordVecType) or not _words_array(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _item_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        vptr = builder.bitcast(ptr, _vec(sig.args[2].lanes).as_pointer())
        builder.store(args[2], vptr, align=8)
        return context.get_dummy_value()

    return types.none(arr, idx, v), codegen


@intrinsic
def wv_zero(typingctx, lanes):
    """All-zero words."""
    n = _lanes_of(lanes)
    if n is None:
        return None

    def codegen(context, builder, sig, args):
        return ir.Constant(_vec(n), None)

    return WordVecType(n)(lanes), codegen


@intrinsic
def wv_splat(typingctx, lanes, x):
    """``lanes`` copies of the word ``x``."""
    n = _lanes_of(lanes)
    if n is None or not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        val = context.cast(builder, args[1], sig.args[1], types.uint64)
        vec = builder.insert_element(ir.Constant(_vec(n), ir.Undefined), val, _I32(0))
        mask = ir.Constant(ir.VectorType(_I32, n), [0] * n)
        return builder.shuffle_vector(vec, ir.Constant(_vec(n), ir.Undefined), mask)

    return WordVecType(n)(lanes, x), codegen


@intrinsic
def wv_splat_at(typingctx, lanes, arr, idx):
    """``lanes`` copies of the word ``arr[idx]`` (C-contiguous uint64, ``idx`` a tuple with
    one index per axis): one broadcast load, no bounds check and no negative-index wrap."""
    n = _lanes_of(lanes)
    if n is None or not _words_array(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _item_pointer(context, builder, sig.args[1], args[1], sig.args[2], args[2])
        vec = builder.insert_element(ir.Constant(_vec(n), ir.Undefined), builder.load(ptr), _I32(0))
        mask = ir.Constant(ir.VectorType(_I32, n), [0] * n)
        return builder.shuffle_vector(vec, ir.Constant(_vec(n), ir.Undefined), mask)

    return WordVecType(n)(lanes, arr, idx), codegen


def _binary(op):
    def typer(typingctx, a, b):
        if not isinstance(a, WordVecType) or a != b:
            return None

        def codegen(context, builder, sig, args):
            return op(builder, *args)

        return a(a, b), codegen

    return typer


wv_xor = intrinsic(_binary(lambda b, x, y: b.xor(x, y)))
wv_xor.__doc__ = "Word-wise XOR."


@intrinsic
def wv_byte_counts(typingctx, v):
    """Popcount of every byte (``llvm.ctpop`` on ``<8 * lanes x i8>``), as words."""
    if not isinstance(v, WordVecType):
        return None

    def codegen(context, builder, sig, args):
        bt = _vec(v.lanes, 8)
        fn = _declare(builder, "ctpop", bt, bt)
        counts = builder.call(fn, [builder.bitcast(args[0], bt)])
        return builder.bitcast(counts, _vec(v.lanes))

    return v(v), codegen


@intrinsic
def wv_add_bytes(typingctx, a, b):
    """Byte-wise add (8-bit lanes, no carry between bytes)."""
    if not isinstance(a, WordVecType) or a != b:
        return None

    def codegen(context, builder, sig, args):
        bt = _vec(a.lanes, 8)
        s = builder.add(builder.bitcast(args[0], bt), builder.bitcast(args[1], bt))
        return builder.bitcast(s, _vec(a.lanes))

    return a(a, b), codegen


@intrinsic
def wv_total(typingctx, v):
    """Sum of all the bytes of ``v`` as ``uint64`` (a byte accumulator widened once:
    ``vpsadbw`` on x86, ``uaddlv`` on NEON; each byte at most 255)."""
    if not isinstance(v, WordVecType):
        return None

    def codegen(context, builder, sig, args):
        bt = _vec(v.lanes, 8)
        # 16-bit sums: at most 64 bytes of at most 248 each (15872 < 65536)
        wide = builder.zext(builder.bitcast(args[0], bt), ir.VectorType(_I16, bt.count))
        fn = _declare(builder, "vector.reduce.add", _I16, wide.type)
        return builder.zext(builder.call(fn, [wide]), _I64)

    return types.uint64(v), codegen


#: x86 ``pshufb`` per vector width (the LLVM intrinsic, the feature it needs)
_SHUF = {
    4: ("llvm.x86.avx2.pshuf.b", "avx2"),
    8: ("llvm.x86.avx512.pshuf.b.512", "avx512bw"),
}


@intrinsic
def wv_nibble_counts(typingctx, v):
    """Popcount of every byte of ``v`` whose bytes are all below 16 (nibbles): one table
    ``vpshufb`` where the target has it for this width (AVX2: 4 words, AVX-512BW: 8),
    else ``llvm.ctpop`` on bytes (right for any byte)."""
    if not isinstance(v, WordVecType):
        return None

    def codegen(context, builder, sig, args):
        bt = _vec(v.lanes, 8)
        x = builder.bitcast(args[0], bt)
        shuf = _SHUF.get(v.lanes)
        if shuf is not None and shuf[1] in _target_features():
            fnty = ir.FunctionType(bt, [bt, bt])
            fn = cgutils.get_or_insert_function(builder.module, fnty, shuf[0])
            table = ir.Constant(bt, [bin(i % 16).count("1") for i in range(bt.count)])
            counts = builder.call(fn, [table, x])
        else:
            counts = builder.call(_declare(builder, "ctpop", bt, bt), [x])
        return builder.bitcast(counts, _vec(v.lanes))

    return v(v), codegen


#: x86 ``psadbw`` against zero per vector width (the LLVM intrinsic, the feature it needs)
_SAD = {
    4: ("llvm.x86.avx2.psad.bw", "avx2"),
    8: ("llvm.x86.avx512.psad.bw.512", "avx512bw"),
}


@cache
def _target_features() -> frozenset[str]:
    """The features of Numba's target on x86-64 (empty elsewhere: no x86 intrinsic)."""
    t = numba_target()
    return t.features if t.arch in ("x86_64", "amd64") else frozenset()


@intrinsic
def wv_lane_sums(typingctx, v):
    """Sum of the 8 bytes of each word, word by word: ``vpsadbw`` against zero where the
    target has it for this width (AVX2: 4 words, AVX-512BW: 8), else shifts and adds."""
    if not isinstance(v, WordVecType):
        return None

    def codegen(context, builder, sig, args):
        vt = _vec(v.lanes)
        x = args[0]
        sad = _SAD.get(v.lanes)
        if sad is not None and sad[1] in _target_features():
            bt = _vec(v.lanes, 8)
            fnty = ir.FunctionType(vt, [bt, bt])
            fn = cgutils.get_or_insert_function(builder.module, fnty, sad[0])
            return builder.call(fn, [builder.bitcast(x, bt), ir.Constant(bt, None)])
        m8 = ir.Constant(vt, [0x00FF00FF00FF00FF] * v.lanes)
        s = builder.add(builder.and_(x, m8), builder.and_(builder.lshr(x, vt([8] * v.lanes)), m8))
        s = builder.add(s, builder.lshr(s, vt([16] * v.lanes)))
        s = builder.add(s, builder.lshr(s, vt([32] * v.lanes)))
        return builder.and_(s, vt([0xFFFF] * v.lanes))

    return v(v), codegen


@intrinsic
def wv_word_counts(typingctx, v):
    """Popcount of every 64-bit word (``llvm.ctpop`` on ``<lanes x i64>``: ``vpopcntq``
    with AVX-512 VPOPCNTDQ)."""
    if not isinstance(v, WordVecType):
        return None

    def codegen(context, builder, sig, args):
        return builder.call(_declare(builder, "ctpop", _vec(v.lanes), _vec(v.lanes)), [args[0]])

    return v(v), codegen


@intrinsic
def wv_store_dots(typingctx, arr, idx, counts, nbits):
    """Store ``nbits - 2 * counts`` word by word as ``int32`` at ``arr[idx] ..`` along the
    last axis (``arr`` a C-contiguous int32 array): the ±1 dot products of the counts."""
    if not (
        isinstance(counts, WordVecType)
        and isinstance(nbits, types.Integer)
        and isinstance(arr, types.Array)
        and arr.dtype == types.int32
        and arr.layout == "C"
        and isinstance(idx, types.BaseTuple)
        and len(idx) == arr.ndim
    ):
        return None

    def codegen(context, builder, sig, args):
        n = counts.lanes
        ptr = _item_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        nb = context.cast(builder, args[3], sig.args[3], types.int64)
        vec = builder.insert_element(ir.Constant(_vec(n), ir.Undefined), nb, _I32(0))
        nbv = builder.shuffle_vector(
            vec, ir.Constant(_vec(n), ir.Undefined), ir.Constant(ir.VectorType(_I32, n), [0] * n)
        )
        dots = builder.sub(nbv, builder.shl(args[2], ir.Constant(_vec(n), [1] * n)))
        narrow = builder.trunc(dots, ir.VectorType(_I32, n))
        builder.store(narrow, builder.bitcast(ptr, narrow.type.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.none(arr, idx, counts, nbits), codegen


@intrinsic
def wv_range_bits(typingctx, v, lo, width):
    """Bit ``i`` set where ``lo[i] <= v[i] <= lo[i] + width[i]`` (unsigned ``v - lo <=
    width``), as ``uint64``: one compare and a mask move (``vmovmskpd`` on AVX2)."""
    if not (isinstance(v, WordVecType) and v == lo and v == width):
        return None

    def codegen(context, builder, sig, args):
        n = v.lanes
        hit = builder.icmp_unsigned("<=", builder.sub(args[0], args[1]), args[2])
        return builder.zext(builder.bitcast(hit, ir.IntType(n)), _I64)

    return types.uint64(v, lo, width), codegen


@intrinsic
def wv_max_small(typingctx, a, b):
    """Word-wise maximum of words below ``2**32`` (counts): the unsigned maximum of their
    32-bit halves (``vpmaxud``; AVX2 has no 64-bit one), the high halves being 0."""
    if not (isinstance(a, WordVecType) and a == b):
        return None

    def codegen(context, builder, sig, args):
        h = ir.VectorType(_I32, 2 * a.lanes)
        x, y = builder.bitcast(args[0], h), builder.bitcast(args[1], h)
        m = builder.select(builder.icmp_unsigned(">", x, y), x, y)
        return builder.bitcast(m, _vec(a.lanes))

    return a(a, b), codegen


wv_add = intrinsic(_binary(lambda b, x, y: b.add(x, y)))
wv_add.__doc__ = "Word-wise 64-bit add."


__all__ = [
    "BYTE_STEPS",
    "WordVecType",
    "wv_add",
    "wv_add_bytes",
    "wv_byte_counts",
    "wv_lane_sums",
    "wv_max_small",
    "wv_load",
    "wv_nibble_counts",
    "wv_range_bits",
    "wv_splat",
    "wv_splat_at",
    "wv_store",
    "wv_store_dots",
    "wv_total",
    "wv_word_counts",
    "wv_xor",
    "wv_zero",
]
