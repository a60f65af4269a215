"""The C99 backend of the layer program: one emitter per op class, in :data:`EMITTERS`.

Each emitter takes the checked program, the index of its op and the :class:`Emission`
being built, writes the op's constants (``static const`` arrays and one block descriptor)
and one call of a runtime block into the generated ``embed`` function, and returns how
many ops it consumed: the fusable runs of :mod:`edgecl.program.compile` become one call of
a fused block (``conv2d_float -> threshold_float [-> maxpool_bits]``, ``conv2d_binary ->
threshold [-> maxpool_bits]``, ``dense_binary -> threshold``), every other op one plain
call. Values flow through two ping-pong buffers of the forward scratch. Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgecl.errors import ExportError
from edgecl.kernels.bits import n_words
from edgecl.kernels.geometry import conv_pads
from edgecl.program.ops import (
    Affine,
    Conv2dBinary,
    Conv2dFloat,
    DenseBinary,
    DenseFloat,
    Flatten,
    MaxPoolBits,
    MaxPoolFloat,
    Op,
    Threshold,
    ThresholdFloat,
    ValueKind,
)

__all__ = ["EMITTERS", "Emission", "c_array", "emit_program"]


def _f32(v: float) -> str:
    x = float(np.float32(v))
    if math.isinf(x):
        return "INFINITY" if x > 0 else "(-INFINITY)"
    if math.isnan(x):
        return "NAN"
    return f"{x.hex()}f"


def c_array(ctype: str, name: str, values: np.ndarray) -> str:
    """``static const ctype name[] = {...};`` holding ``values`` exactly (hex floats)."""
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        flat = np.zeros(1, flat.dtype)
    if ctype == "float":
        items = [_f32(v) for v in flat.astype(np.float32)]
    elif ctype == "uint64_t":
        items = [f"0x{int(v):016x}u" for v in flat.astype(np.uint64)]
    elif ctype == "uint16_t":
        items = [f"0x{int(v):04x}u" for v in flat.astype(np.uint16)]
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i : i + 8]) for i in range(0, len(items), 8)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(items)}] = {{\n    {body}\n}};\n"


@dataclass
class Emission:
    """What the emitters build: constants, the calls of ``embed``, buffer sizes."""

    arrays: Mapping[str, np.ndarray]
    decls: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    buffer_bytes: int = 8  # the larger of the two ping-pong buffers
    acc_bytes: int = 8  # int32 accumulators of a fused binary block
    cur: str = "x"  # where the current value lives ("x", "A", "B")
    kind: ValueKind = ValueKind.FLOAT
    last: bool = False  # the next call writes the embedding
    n: int = 0

    def array(self, ctype: str, key: str) -> str:
        name = f"a{len(self.decls)}"
        self.decls.append(c_array(ctype, name, self.arrays[key]))
        return name

    def optional(self, ctype: str, key: str | None) -> str:
        return "NULL" if key is None else self.array(ctype, key)

    def struct(self, ctype: str, fields: str) -> str:
        name = f"op{self.n}"
        self.n += 1
        self.decls.append(f"static const {ctype} {name} = {{{fields}}};\n")
        return name

    def out(self, kind: ValueKind, shape: Sequence[int]) -> str:
        """The buffer the next value goes to (sized here), as a C expression."""
        lead = math.prod(shape[:-1])
        c = shape[-1]
        if kind is ValueKind.BITS:
            nbytes = lead * n_words(c) * 8
        else:
            nbytes = lead * c * 4
        self.buffer_bytes = max(self.buffer_bytes, nbytes)
        self.kind = kind
        if self.last:
            self.cur = "z"
            return "z"
        self.cur = "B" if self.cur == "A" else "A"
        return self.cur

    def src(self, ctype: str) -> str:
        return {"x": "x", "z": "z"}.get(self.cur, f"({ctype} *)(void *){self.cur}")


def _pads(p) -> str:
    return "{" + ", ".join(str(int(v)) for v in p) + "}"


def _float_layer(e: Emission, conv: Conv2dFloat, thr: ThresholdFloat | None, pool) -> str:
    # the fused Python kernel pads in float64, the plain conv (conv2d_float) in float32
    pad = float(conv.pad_value) if thr is not None else float(np.float32(conv.pad_value))
    h, w, c = conv.in_shape
    o = conv.out_shape[2]
    kh, kw = e.arrays[conv.weight].shape[1:3]
    fields = (
        f"{h}, {w}, {c}, {o}, {kh}, {kw}, {conv.stride}, {_pads(conv.pads)}, "
        f"{pool.size if pool else 0}, {pool.stride if pool else 1}, {pad.hex()}, "
        f"{e.array('float', conv.weight)}, {e.optional('float', conv.bias)}, "
        f"{e.array('float', thr.thresholds) if thr else 'NULL'}, "
        f"{e.array('uint8_t', thr.flip) if thr else 'NULL'}"
    )
    return e.struct("ecl_first_layer", fields)


def emit_conv2d_float(ops: Sequence[Op], i: int, e: Emission) -> int:
    conv = ops[i]
    assert isinstance(conv, Conv2dFloat)
    nxt = ops[i + 1] if i + 1 < len(ops) else None
    after = ops[i + 2] if i + 2 < len(ops) else None
    if isinstance(nxt, ThresholdFloat) and nxt.repeat == 1:
        pool = after if isinstance(after, MaxPoolBits) else None
        n = 3 if pool else 2
        e.last = i + n == len(ops)
        name = _float_layer(e, conv, nxt, pool)
        src = e.src("const float")
        out_shape = (pool or nxt).out_shape
        dst = e.out(ValueKind.BITS, out_shape)
        e.calls.append(f"ecl_blk_first_layer(&{name}, {src}, {_cast(dst, 'uint64_t')});")
        return n
    e.last = i + 1 == len(ops)
    name = _float_layer(e, conv, None, None)
    src = e.src("const float")
    dst = e.out(ValueKind.FLOAT, conv.out_shape)
    e.calls.append(f"ecl_blk_conv_float(&{name}, {src}, {_cast(dst, 'float')});")
    return 1


def _cast(dst: str, ctype: str) -> str:
    return dst if dst == "z" else f"({ctype} *)(void *){dst}"


def _binary_fields(e, weight, h, w, c, o, kh, kw, stride, pads, zero_pad, offset, thr, pool):
    repeat = thr.repeat if thr else 1
    return (
        f"{h}, {w}, {c}, {o}, {kh}, {kw}, {stride}, {_pads(pads)}, {zero_pad}, {repeat}, "
        f"{pool.size if pool else 0}, {pool.stride if pool else 1}, {int(offset)}, "
        f"{e.array('uint64_t', weight)}, "
        f"{e.array('int32_t', thr.thresholds) if thr else 'NULL'}, "
        f"{e.array('uint8_t', thr.flip) if thr else 'NULL'}"
    )


def _binary_call(e: Emission, name: str, thr, out_shape, n_out: int) -> None:
    src = e.src("const uint64_t")
    if thr is not None:
        dst = e.out(ValueKind.BITS, out_shape)
        e.acc_bytes = max(e.acc_bytes, 4 * n_out)
        e.calls.append(
            f"ecl_blk_binary(&{name}, {src}, {_cast(dst, 'uint64_t')}, (int32_t *)(void *)ACC);"
        )
    else:
        dst = e.out(ValueKind.INT, out_shape)
        e.calls.append(f"ecl_blk_binary_int(&{name}, {src}, {_cast(dst, 'int32_t')});")


def emit_conv2d_binary(ops: Sequence[Op], i: int, e: Emission) -> int:
    conv = ops[i]
    assert isinstance(conv, Conv2dBinary)
    nxt = ops[i + 1] if i + 1 < len(ops) else None
    after = ops[i + 2] if i + 2 < len(ops) else None
    thr = nxt if isinstance(nxt, Threshold) else None
    pool = after if thr is not None and isinstance(after, MaxPoolBits) else None
    n = 1 + (thr is not None) + (pool is not None)
    e.last = i + n == len(ops)
    h, w, c = conv.in_shape
    o, kh, kw, _ = e.arrays[conv.weight].shape
    fields = _binary_fields(
        e, conv.weight, h, w, c, o, kh, kw, conv.stride, conv_pads(conv.padding, kh, kw),
        int(conv.pad_value == 0), 0, thr, pool,
    )  # fmt: skip
    name = e.struct("ecl_binary_block", fields)
    out_shape = (pool or thr or conv).out_shape
    _binary_call(e, name, thr, out_shape, o)
    return n


def emit_dense_binary(ops: Sequence[Op], i: int, e: Emission) -> int:
    dense = ops[i]
    assert isinstance(dense, DenseBinary)
    nxt = ops[i + 1] if i + 1 < len(ops) else None
    thr = nxt if isinstance(nxt, Threshold) else None
    n = 2 if thr is not None else 1
    e.last = i + n == len(ops)
    o = dense.out_shape[0]
    fields = _binary_fields(
        e, dense.weight, 1, 1, dense.n, o, 1, 1, 1, (0, 0, 0, 0), 0, dense.offset, thr, None
    )
    name = e.struct("ecl_binary_block", fields)
    _binary_call(e, name, thr, (thr or dense).out_shape, o)
    return n


def _lead(shape: Sequence[int]) -> int:
    return math.prod(shape[:-1])


def emit_threshold(ops: Sequence[Op], i: int, e: Emission) -> int:
    t = ops[i]
    assert isinstance(t, (Threshold, ThresholdFloat))
    e.last = i + 1 == len(ops)
    is_float = isinstance(t, ThresholdFloat)
    fields = (
        f"{_lead(t.in_shape)}, {t.in_shape[-1]}, {t.repeat}, "
        f"{e.array('float' if is_float else 'int32_t', t.thresholds)}, "
        f"{e.array('uint8_t', t.flip)}"
    )
    ctype = "ecl_threshold_float_op" if is_float else "ecl_threshold_op"
    name = e.struct(ctype, fields)
    src = e.src("const float" if is_float else "const int32_t")
    dst = e.out(ValueKind.BITS, t.out_shape)
    fn = "ecl_op_threshold_float" if is_float else "ecl_op_threshold"
    e.calls.append(f"{fn}(&{name}, {src}, {_cast(dst, 'uint64_t')});")
    return 1


def emit_maxpool(ops: Sequence[Op], i: int, e: Emission) -> int:
    p = ops[i]
    assert isinstance(p, (MaxPoolBits, MaxPoolFloat))
    e.last = i + 1 == len(ops)
    h, w, c = p.in_shape
    name = e.struct("ecl_pool_op", f"{h}, {w}, {c}, {p.size}, {p.stride}")
    if isinstance(p, MaxPoolBits):
        src = e.src("const uint64_t")
        dst = e.out(ValueKind.BITS, p.out_shape)
        e.calls.append(f"ecl_op_maxpool_bits(&{name}, {src}, {_cast(dst, 'uint64_t')});")
    else:
        src = e.src("const float")
        dst = e.out(ValueKind.FLOAT, p.out_shape)
        e.calls.append(f"ecl_op_maxpool_float(&{name}, {src}, {_cast(dst, 'float')});")
    return 1


def emit_flatten(ops: Sequence[Op], i: int, e: Emission) -> int:
    f = ops[i]
    assert isinstance(f, Flatten)
    if i + 1 == len(ops):  # the embedding itself: copy it out
        h, w, c = f.in_shape
        per = n_words(c) * 8 if e.kind is ValueKind.BITS else c * 4
        src = e.src("const void")
        e.calls.append(f"ecl_op_copy({src}, z, {h * w * per}u);")
        e.cur = "z"
    return 1  # the same bytes, read as (H*W*C,)


def emit_affine(ops: Sequence[Op], i: int, e: Emission) -> int:
    a = ops[i]
    assert isinstance(a, Affine)
    e.last = i + 1 == len(ops)
    is_int = e.kind is ValueKind.INT
    fields = (
        f"{_lead(a.in_shape)}, {a.in_shape[-1]}, {e.array('float', a.scale)}, "
        f"{e.array('float', a.shift)}"
    )
    name = e.struct("ecl_affine_op", fields)
    src = e.src("const int32_t" if is_int else "const float")
    dst = e.out(ValueKind.FLOAT, a.out_shape)
    fn = "ecl_op_affine_int" if is_int else "ecl_op_affine"
    e.calls.append(f"{fn}(&{name}, {src}, {_cast(dst, 'float')});")
    return 1


def emit_dense_float(ops: Sequence[Op], i: int, e: Emission) -> int:
    d = ops[i]
    assert isinstance(d, DenseFloat)
    e.last = i + 1 == len(ops)
    f, o = e.arrays[d.weight].shape
    fields = f"{f}, {o}, {e.array('float', d.weight)}, {e.optional('float', d.bias)}"
    name = e.struct("ecl_dense_float_op", fields)
    src = e.src("const float")
    dst = e.out(ValueKind.FLOAT, d.out_shape)
    e.calls.append(f"ecl_op_dense_float(&{name}, {src}, {_cast(dst, 'float')});")
    return 1


Emitter = Callable[[Sequence[Op], int, Emission], int]

#: The C99 emitter of every op class: the only dispatch of this backend.
EMITTERS: dict[type[Op], Emitter] = {
    Conv2dFloat: emit_conv2d_float,
    DenseFloat: emit_dense_float,
    Affine: emit_affine,
    MaxPoolFloat: emit_maxpool,
    MaxPoolBits: emit_maxpool,
    Flatten: emit_flatten,
    Threshold: emit_threshold,
    ThresholdFloat: emit_threshold,
    Conv2dBinary: emit_conv2d_binary,
    DenseBinary: emit_dense_binary,
}


def emit_program(ops: Sequence[Op], arrays: Mapping[str, np.ndarray]) -> tuple[str, int]:
    """The C of the layer program: constants and ``static void model_embed(x, z,
    scratch)``, and the scratch bytes it needs. The program must end in bits (the
    embedding); ``ExportError`` otherwise."""
    e = Emission(arrays)
    i = 0
    while i < len(ops):
        emitter = EMITTERS.get(type(ops[i]))
        if emitter is None:  # an op class added to OPS without a C emitter
            raise ExportError(
                f"expected an op with a C emitter, got {ops[i].name}",
                module_type=ops[i].name,
                supported=tuple(sorted(c.name for c in EMITTERS)),
            )
        i += emitter(ops, i, e)
    if e.kind is not ValueKind.BITS or e.cur != "z":
        raise ExportError(f"expected a layer program ending in bits, got {e.kind} values")
    buf = -(-e.buffer_bytes // 8) * 8
    acc = -(-e.acc_bytes // 8) * 8
    body = "\n    ".join(e.calls)
    code = "".join(e.decls) + (
        "\n#define A (s)\n"
        f"#define B (s + {buf})\n"
        f"#define ACC (s + {2 * buf})\n"
        "static void model_embed(const float *x, uint64_t *z, void *scratch) {\n"
        "    uint8_t *s = (uint8_t *)scratch;\n"
        "    (void)s;\n"
        f"    {body}\n"
        "}\n#undef A\n#undef B\n#undef ACC\n"
    )
    return code, 2 * buf + acc
