"""``edgecl export-c``: a device bundle -> a C99 project (runtime, model, Makefile, board).

The runtime (``edgecl.c``, ``edgecl_blocks.h``, the API of ``edgecl.h``) is hand-written
package data, the same for every model; ``edgecl_model.c`` is generated per bundle: the
bundle as ``const`` data and its layer program as straight-line calls of the runtime's
blocks (:mod:`edgecl.codegen.c.emit`). Torch-free.

What the C runtime supports (``ExportError`` otherwise): a GBM class memory holding every
head class, in the head's order, prototypes of 1..8 bits; a byte budget (the context is
sized for it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from edgecl.bundle import HEAD_BITS, read_bundle
from edgecl.bundle.manifest import Manifest
from edgecl.codegen.c.emit import c_array, emit_program
from edgecl.errors import ExportError
from edgecl.kernels.bits import n_words

__all__ = ["CExport", "export_c", "runtime_file"]

RUNTIME_FILES = ("edgecl.c", "edgecl_blocks.h")
BOARD_FILES = ("startup_mps2_an386.c", "mps2_an386.ld", "semihost.c", "semihost.h")
#: Name pool bytes per class beyond the bundle's own names (names are not stored bytes).
NAME_BYTES_PER_CLASS = 24
#: Bytes reserved for the context header (struct ecl_ctx; checked at compile time).
CTX_HEADER = 128
#: Bytes of the context's class table per class (ecl_cls; checked at compile time).
CLS_BYTES = 12


def runtime_file(name: str) -> str:
    """The text of one file of the hand-written runtime (package data)."""
    base = resources.files("edgecl.codegen.c") / "runtime"
    return (base / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class CExport:
    """What :func:`export_c` wrote: the folder, its files, the model's sizes."""

    out_dir: Path
    files: tuple[str, ...]
    n_bits: int
    n_classes: int
    max_classes: int
    ctx_bytes: int
    budget_bytes: int
    stack_bytes: int | None

    def to_dict(self) -> dict:
        return {
            "out_dir": str(self.out_dir),
            "files": list(self.files),
            "n_bits": self.n_bits,
            "n_classes": self.n_classes,
            "max_classes": self.max_classes,
            "ctx_bytes": self.ctx_bytes,
            "budget_bytes": self.budget_bytes,
            "stack_bytes": self.stack_bytes,
        }

    def __str__(self) -> str:
        stack = "not measured" if self.stack_bytes is None else f"{self.stack_bytes} bytes"
        return (
            f"wrote {len(self.files)} files to {self.out_dir}: D={self.n_bits}, "
            f"{self.n_classes} classes (room for {self.max_classes}), context "
            f"{self.ctx_bytes} bytes for a {self.budget_bytes}-byte budget, stack {stack}"
        )


def _c_string(s: str) -> str:
    out = []
    for byte in s.encode("utf-8"):
        ch = chr(byte)
        out.append(ch if ch.isalnum() or ch in " _-.:+" else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _gbm_classes(man: Manifest, arrays):
    mem = man.memory
    if mem is None or mem.kind != "gbm":
        raise ExportError(
            f"expected a bundle with a GBM class memory, got {None if mem is None else mem.kind}",
            supported=("gbm",),
        )
    spec = mem.spec
    entries = spec["classes"]
    names = [e["name"] for e in entries]
    if tuple(names) != tuple(man.classes):
        raise ExportError(
            f"expected the GBM memory to hold every head class in the head's order, got "
            f"{names} for head classes {list(man.classes)}"
        )
    words = arrays[mem.arrays["prototypes"]]
    pi = arrays[mem.arrays["pi"]]
    counts = arrays[mem.arrays["counts"]]
    d = int(spec["n_bits"])
    out, w0, p0 = [], 0, 0
    for i, e in enumerate(entries):
        k, q = int(e["components"]), int(e["bits"])
        if not 1 <= q <= 8:
            raise ExportError(f"expected prototypes of 1..8 bits for C, got q={q} ({e['name']})")
        nw = n_words(k * d * q)
        out.append((e["name"], k, q, int(counts[i]), words[w0 : w0 + nw], pi[p0 : p0 + k]))
        w0, p0 = w0 + nw, p0 + k
    return out, spec["config"]


def _stack_bytes(out_dir: Path) -> tuple[int | None, str]:
    """The deepest call chain's stack use from GCC's ``-fcallgraph-info=su`` (the
    Cortex-M4 compiler when present, else the host's), or None without GCC."""
    m4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
    for cc, flags in (("arm-none-eabi-gcc", m4), ("gcc", [])):
        if shutil.which(cc) is None:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [cc, "-std=c99", "-O2", *flags, "-fcallgraph-info=su", "-c"]
            ok = True
            for src in ("edgecl.c", "edgecl_model.c"):
                r = subprocess.run(
                    [*cmd, str(out_dir / src), "-o", str(Path(tmp) / (src + ".o"))],
                    cwd=tmp,
                    capture_output=True,
                    text=True,
                )
                ok = ok and r.returncode == 0
            cis = list(Path(tmp).glob("*.ci"))
            if not ok or not cis:
                continue
            # the generated program runs through a function pointer the call graph cannot
            # follow: its deepest chain is added to the runtime's (an upper bound)
            return sum(_deepest([ci]) for ci in cis), cc
    return None, "none"


def _deepest(ci_files) -> int:
    """The largest sum of frame sizes along a call path of the ``.ci`` call graphs."""
    import re

    frames: dict[str, int] = {}
    edges: dict[str, set[str]] = {}
    node = re.compile(r'node: \{ title: "([^"]+)" label: "[^\\]*\\n[^\\]*\\n(\d+) bytes')
    edge = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
    for f in ci_files:
        text = f.read_text()
        for name, size in node.findall(text):
            frames[name] = max(frames.get(name, 0), int(size))
        for a, b in edge.findall(text):
            edges.setdefault(a, set()).add(b)
    memo: dict[str, int] = {}

    def depth(n: str, seen: frozenset) -> int:
        if n in memo:
            return memo[n]
        best = 0
        for m in edges.get(n, ()):
            if m not in seen:
                best = max(best, depth(m, seen | {m}))
        memo[n] = frames.get(n, 0) + best
        return memo[n]

    return max((depth(n, frozenset({n})) for n in frames), default=0)


def export_c(
    bundle: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    measure_stack: bool = True,
) -> CExport:
    """Write the C99 project of ``bundle`` to ``out_dir`` (the module docstring lists
    what is supported). Refuses a non-empty ``out_dir`` unless ``overwrite``."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"expected an empty or new folder, got {out} (use overwrite)")
    manifest, arrays = read_bundle(bundle)
    man = Manifest.from_dict(manifest, arrays)
    h, w, c = man.input.shape
    ops = man.layers  # the checked layer program
    d = int(man.embedding.bits)
    if ops[-1].out_shape != (d,):
        raise ExportError(f"expected a program ending in ({d},) bits, got {ops[-1].out_shape}")
    classes, cfg = _gbm_classes(man, arrays)
    head = man.head
    if head.bits not in HEAD_BITS:
        raise ExportError(f"expected head bits in {HEAD_BITS}, got {head.bits}")
    budget = man.budget.bytes
    if budget is None:
        raise ExportError("expected a bundle with a byte budget (the context is sized for it)")
    hb = head.bits
    head_row = d * hb // 8 + 4 + (4 if hb == 8 else 0)
    smallest = 8 * n_words(d) + 8  # K = 1, q = 1
    max_classes = max(len(classes), budget // (head_row + smallest))
    name_pool = sum(len(n.encode()) + 1 for n, *_ in classes) + NAME_BYTES_PER_CLASS * max_classes
    # a class's record in the pool is its stored bytes padded to 8 (words first, then the
    # head row, [scale], bias, pi, count: a multiple of 4 when the row is)
    pad = 4 if (d * hb // 8) % 4 == 0 else 7
    base_stored = sum(8 * n_words(k * d * q) + 4 * k + 4 + head_row for _, k, q, *_ in classes)
    pool_bytes = max(budget, base_stored) + pad * max_classes
    ctx_bytes = (
        CTX_HEADER
        + 8 * (-(-CLS_BYTES * max_classes // 8))
        + 8 * (-(-name_pool // 8))
        + 8 * (-(-pool_bytes // 8))
    )

    program, scratch = emit_program(ops, arrays)
    parts = ['/* edgecl_model.c - generated by `edgecl export-c`; do not edit. */\n',
             '#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n\n',
             '#include "edgecl_blocks.h"\n\n', program, "\n"]  # fmt: skip
    parts.append(c_array("float", "input_mean", np.asarray(man.input.mean, np.float32)))
    parts.append(c_array("float", "input_std", np.asarray(man.input.std, np.float32)))
    refs = man.head_refs
    wt = arrays[refs.weight]
    ctype = {32: "float", 16: "uint16_t", 8: "int8_t"}[hb]
    parts.append(c_array(ctype, "head_weight", wt.view(np.uint16) if hb == 16 else wt))
    parts.append(c_array("float", "head_bias", arrays[refs.bias]))
    scale = "NULL"
    if hb == 8:
        parts.append(c_array("float", "head_scale", arrays[refs.scale]))
        scale = "head_scale"
    rows = []
    for i, (name, k, q, count, words, pi) in enumerate(classes):
        parts.append(c_array("uint64_t", f"mem_words_{i}", words))
        parts.append(c_array("float", f"mem_pi_{i}", pi))
        rows.append(f"    {{{_c_string(name)}, {k}, {q}, {count}u, mem_words_{i}, mem_pi_{i}}},")
    parts.append("static const ecl_model_class classes[] = {\n" + "\n".join(rows) + "\n};\n\n")
    ident = json.dumps(
        {"layers": [op.to_dict() for op in ops], "d": d, "head_bits": hb, "budget": budget},
        sort_keys=True,
    ).encode() + b"".join(np.ascontiguousarray(arrays[op_a]).tobytes()[:4096]
                           for op in ops for op_a in op.arrays())  # fmt: skip
    model_id = zlib.crc32(ident) & 0xFFFFFFFF
    policy = 1 if man.budget.policy == "adapt" else 0
    parts.append(
        "const ecl_model ecl_the_model = {\n"
        f"    0x{model_id:08x}u, {h}, {w}, {c}, {float(np.float32(man.input.scale)).hex()}f,\n"
        f"    input_mean, input_std, {d}, model_embed, {scratch}u,\n"
        f"    {hb}, {len(classes)}, classes, head_weight, {scale}, head_bias,\n"
        f"    {float(head.lr).hex()}, {float(head.weight_decay).hex()}, "
        f"{float(head.gbm_weight).hex()},\n"
        f"    {int(head.epochs)}, {int(head.batch_size)},\n"
        f"    {int(cfg['components'])}, {int(cfg['bits'])}, {int(bool(cfg['trainable_pi']))}, "
        f"{int(cfg['n_init'])}, {int(cfg['n_iter'])}, {int(cfg['n_max'])}, "
        f"{float(cfg['epsilon']).hex()},\n"
        f"    {budget}u, {policy}, {max_classes}, {name_pool}u, {pool_bytes}u\n"
        "};\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "board").mkdir(exist_ok=True)
    (out / "edgecl_model.c").write_text("".join(parts), encoding="utf-8")
    for name in RUNTIME_FILES:
        (out / name).write_text(runtime_file(name), encoding="utf-8")
    for name in BOARD_FILES:
        (out / "board" / name).write_text(runtime_file(f"board/{name}"), encoding="utf-8")
    (out / "Makefile").write_text(runtime_file("Makefile"), encoding="utf-8")
    (out / "README.md").write_text(runtime_file("README.md"), encoding="utf-8")
    k_max = max([int(cfg["components"])] + [k for _, k, *_ in classes])
    q_max = max([int(cfg["bits"])] + [q for _, _, q, *_ in classes])  # a class's q never grows
    macros = _macros(
        h, w, c, d, len(classes), max_classes, ctx_bytes, scratch, (k_max, q_max), head, hb,
        pool_bytes,
    )  # fmt: skip
    header = runtime_file("edgecl.h")
    (out / "edgecl.h").write_text(
        header.replace('#include "edgecl_config.h"\n', macros + "ECL_STACK_PLACEHOLDER\n"),
        encoding="utf-8",
    )
    placeholder = (out / "edgecl.h").read_text(encoding="utf-8")
    (out / "edgecl.h").write_text(
        placeholder.replace("ECL_STACK_PLACEHOLDER\n", "#define ECL_STACK_BYTES 0\n"),
        encoding="utf-8",
    )
    stack, cc = _stack_bytes(out) if measure_stack else (None, "none")
    line = (
        f"/* the deepest stack use of an API call (upper bound), from {cc} "
        "-fcallgraph-info=su at -O2 */\n"
        f"#define ECL_STACK_BYTES {stack}\n"
        if stack is not None
        else "/* ECL_STACK_BYTES: not measured (no GCC at export time) */\n"
    )
    text = placeholder.replace("ECL_STACK_PLACEHOLDER\n", line)
    (out / "edgecl.h").write_text(text, encoding="utf-8")
    files = (
        "edgecl.h", "edgecl_blocks.h", "edgecl.c", "edgecl_model.c", "Makefile", "README.md",
        *(f"board/{n}" for n in BOARD_FILES),
    )  # fmt: skip
    return CExport(out, files, d, len(classes), max_classes, ctx_bytes, budget, stack)


def _a8(n: int) -> int:
    return 8 * (-(-n // 8))


def _macros(h, w, c, d, n_cls, max_cls, ctx_bytes, scratch, kq_max, head, hb, pool_bytes) -> str:
    """The per-model macros of edgecl.h. The arena bound is the runtime's allocations,
    each rounded to 8 bytes as its bump allocator rounds them, phase by phase: the samples
    of a learning session, then the largest of predict (with the input buffer at the
    arena's end) and the commit (which may reuse that buffer); in the commit the
    per-class tables and the new class's prototypes, then the larger of EM's working
    memory and the head's (the rows of its float32 copy that the pool's unused tail cannot
    hold at the fullest pool of c classes, then one SGD step's scratch)."""
    k_max, q_max = kq_max
    nw8 = n_words(d) * 8
    # the runtime's record_bytes at the largest K and q: words, head row, [scale], bias, pi, count
    rec_max = _a8(8 * n_words(k_max * d * q_max) + d * hb // 8 + 4 * (k_max + 2 + (hb == 8)))
    fwd = _a8(h * w * c * 4) + _a8(max(scratch, 8))
    inp = _a8(h * w * c)  # the input buffer at the arena's end
    work = _a8(8 * (2 * k_max + d + 256) + 4 * 256)
    predict = nw8 + _a8(2 * d) + work + fwd
    batch = int(head.batch_size)
    em_fixed = 2 * 8 * max(d, k_max) + 32 * k_max + _a8(k_max)
    new_class = 8 * n_words(k_max * d * q_max) + _a8(4 * k_max)
    return "\n".join(
        [
            f"#define ECL_INPUT_H {h}",
            f"#define ECL_INPUT_W {w}",
            f"#define ECL_INPUT_C {c}",
            f"#define ECL_EMBED_BITS {d}",
            f"#define ECL_EMBED_WORDS {n_words(d)}",
            f"#define ECL_NUM_BASE_CLASSES {n_cls}",
            f"#define ECL_MAX_CLASSES {max_cls}",
            f"#define ECL_HEAD_BITS {hb}",
            "/* the context, with room for the learned state at the bundle's full budget */",
            f"#define ECL_CTX_BYTES {ctx_bytes}u",
            "/* working memory: predict, and learning a class from up to n samples when the",
            "   head has c classes after it (ECL_ARENA_BYTES: c = ECL_MAX_CLASSES); an adapt",
            "   budget that shrinks stored classes needs room for their shrunk copies and the",
            "   new class's prototypes too */",
            "#define ECL__MAX(a, b) ((a) > (b) ? (a) : (b))",
            "#define ECL__A(x) (((size_t)(x) + 7u) & ~(size_t)7u)",
            f"#define ECL__B(c) ECL__MAX({batch}u, (size_t)(c))",
            "/* a commit's view of a stored class: 12 bytes, then 2 pointers */",
            "#define ECL__VIEW "
            "(((12u + sizeof(void *) - 1u) / sizeof(void *) + 2u) * sizeof(void *))",
            "/* predict with c classes: the embedding, its set bits, the scores, the scorer's",
            "   tables, the forward pass (input and layer scratch) */",
            f"#define ECL__PREDICT(c) ({predict}u + (size_t)(c) * 32u)",
            "/* the commit's tables: sizes, views, eq. 4 counts and draw offsets (a new",
            "   class's prototypes go to the context's pool, where its record will be) */",
            "#define ECL__FIXED(c) (2u * ECL__A(4u * ((size_t)(c) + 1u)) + "
            "ECL__A(((size_t)(c) + 1u) * ECL__VIEW) + "
            "ECL__A(4u * ((size_t)(c) + 1u)) + "
            "2u * ECL__A(((size_t)(c) + 1u) * sizeof(long)))",
            "/* EM on n samples: two N x K float64 tables, two D rows, K-sized vectors */",
            f"#define ECL__EM(n) ({em_fixed}u + (size_t)(n) * {16 * k_max}u)",
            "/* one SGD step: entries, targets, G (B x C float32), 4 rows of bits, logits */",
            "#define ECL__TRAIN(c) (ECL__A(4u * ECL__B(c)) + ECL__A(2u * ECL__B(c)) + "
            f"ECL__A(4u * ECL__B(c) * (size_t)(c)) + {4 * nw8}u + (size_t)(c) * 8u + "
            "ECL__A(4u * (size_t)(c)))",
            "/* the head's float32 copy (C rows of D) fills the pool's unused tail first: with",
            f"   c classes the pool holds at most c records of {rec_max} bytes (the largest K, q),",
            f"   so at least ECL__POOL_ROWS(c) rows of {4 * d} bytes fit after them */",
            f"#define ECL__POOL_ROWS(c) ((size_t)(c) * {rec_max}u < {pool_bytes}u ? "
            f"({pool_bytes}u - (size_t)(c) * {rec_max}u) / {4 * d}u : 0u)",
            "#define ECL__ARENA_ROWS(c) "
            "((size_t)(c) - (ECL__POOL_ROWS(c) < (size_t)(c) ? ECL__POOL_ROWS(c) : (size_t)(c)))",
            "/* the head: its row table and arena rows, the biases, the samples' order, a step */",
            f"#define ECL__HEAD(n, c) (ECL__A((size_t)(c) * sizeof(void *)) + "
            f"ECL__ARENA_ROWS(c) * {_a8(4 * d)}u + "
            "ECL__A(4u * ((size_t)(c) + 1u)) + ECL__A(2u * (size_t)(n)) + "
            "ECL__MAX(ECL__TRAIN(c), ECL__A(4u * ((size_t)(c) + 1u))))",
            "/* predict, embed and learn_add leave the input buffer (ecl_input_buffer) at",
            "   the arena's end alone; a commit uses the whole arena after the samples */",
            f"#define ECL_ARENA_BYTES_FOR(n, c) ((size_t)(n) * {nw8}u + "
            f"ECL__MAX(ECL__PREDICT(c) + {inp}u, ECL__MAX({fwd + inp}u, "
            "ECL__FIXED(c) + ECL__MAX(ECL__EM(n), ECL__HEAD(n, c)))))",
            "#define ECL_ARENA_BYTES(max_samples) "
            "ECL_ARENA_BYTES_FOR(max_samples, ECL_MAX_CLASSES)",
            "/* an update (learn_begin with a learned name) of a class of `count` samples from n",
            "   new ones: EM on count + n samples, drawn into the arena, and the refit",
            "   prototypes */",
            "#define ECL_ARENA_BYTES_UPDATE(count, n, c) (ECL_ARENA_BYTES_FOR((count) + (n), c)"
            f" + ((size_t)(count) + (size_t)(n)) * {nw8}u + {new_class}u)",
            "",
        ]
    )
