"""The instructions each popcount strategy compiles to (``inspect_asm`` of the dense kernel).

- AVX2-only target (``NUMBA_CPU_NAME=haswell`` and this CPU's features with every AVX-512 /
  AVX10 / AMX feature off, as ``benchmarks/kernels.py --isa avx2`` sets them): the hot
  loops take ``vpshufb`` byte popcounts and add them with ``vpaddb``, with no ``vpsadbw``
  inside the loop (one widening per accumulator after up to 31 vectors); the portable
  word loop, compiled for the same target, widens with a ``vpsadbw`` after every vector.
- Native target with AVX-512 VPOPCNTDQ: ``vpopcntq`` in the hot loops.
- NEON: the kernel's LLVM IR (the neon strategy, as Numba generates it here) compiled by
  llvmlite for ``aarch64-unknown-linux-gnu``: ``cnt`` + byte ``add`` in the loop, the
  widening (``uaddlp``/``uadalp``/``uaddlv``) outside it. Only the assembly is checked: no
  aarch64 machine or ``qemu-aarch64`` runs it here.

Each compile runs in a subprocess with its own ``NUMBA_CACHE_DIR``, so Numba really
compiles (and the target overrides apply from the start).
"""

import json
import os
import re
import subprocess
import sys

import llvmlite.binding as ll
import pytest

from edgecl.machine import avx2_only_env

_HOST_ARCH = ll.get_process_triple().split("-")[0]
_HOST_FEATURES = ll.get_host_cpu_features()

_SCRIPT = r"""
import json, re, sys
import numpy as np
from numba.core import codegen

captured = []
_add = codegen.CPUCodeLibrary.add_ir_module


def _capture(self, ir_module):  # the IR as Numba generates it, before LLVM's passes
    captured.append(str(ir_module))
    return _add(self, ir_module)


codegen.CPUCodeLibrary.add_ir_module = _capture

from edgecl.kernels import pack_bits
from edgecl.kernels.dense import _dense_serial, dense_words
from edgecl.kernels.popcount import DEFAULT_STRATEGY

rng = np.random.default_rng(0)
x = pack_bits(rng.integers(0, 2, (2, 4096), dtype=np.uint8))
w = pack_bits(rng.integers(0, 2, (8, 4096), dtype=np.uint8))
dense_words(x, w, 4096, 1, sys.argv[1] or None)
(sig,) = _dense_serial.signatures
ir = [m for m in captured if re.search(r"^define .*bytes_range", m, re.M)]
asm = _dense_serial.inspect_asm(sig)
print(json.dumps({"default": DEFAULT_STRATEGY.name, "asm": asm, "ir": ir}))
"""


def _compile(tmp_path, strategy: str, env_overrides: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    env.update(env_overrides)
    env["NUMBA_CACHE_DIR"] = str(tmp_path / f"cache-{strategy or 'default'}")
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, strategy], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _loops(asm: str) -> list[str]:
    """The innermost loops: from a label to the last branch back to it, with no other
    label in between."""
    blocks = re.split(r"^(\.?L\w+):", asm, flags=re.M)
    loops = []
    for label, body in zip(blocks[1::2], blocks[2::2], strict=True):
        back = rf"^\s+(j\w+|b\.\w+|b|cbn?z|tbn?z)\s+(.*,\s*)?{re.escape(label)}\s*$"
        ends = [m.end() for m in re.finditer(back, body, re.M)]
        if ends:
            loops.append(body[: ends[-1]])
    return loops


def _count(mnemonic: str, text: str) -> int:
    return len(re.findall(rf"^\s+{mnemonic}\s", text, re.M))


def _avx2_env() -> dict:
    return dict(avx2_only_env(), NUMBA_CPU_NAME="haswell")


@pytest.mark.skipif(
    _HOST_ARCH != "x86_64" or not _HOST_FEATURES.get("avx2"), reason="needs an x86-64 AVX2 host"
)
def test_avx2_target_accumulates_bytes_and_widens_outside_the_loop(tmp_path):
    env = _avx2_env()
    got = _compile(tmp_path, "", env)
    assert got["default"] == "avx2"
    assert "vpopcntq" not in got["asm"]
    loops = [b for b in _loops(got["asm"]) if _count("vpshufb", b)]
    assert loops, "no loop with a vpshufb popcount"
    for body in loops:
        assert _count("vpsadbw", body) == 0
        assert 2 * _count("vpaddb", body) >= _count("vpshufb", body)
    # the portable word loop on the same target: a vpsadbw after every vector popcount
    word = _compile(tmp_path, "scalar", env)
    word_loops = [b for b in _loops(word["asm"]) if _count("vpshufb", b)]
    assert word_loops
    assert all(2 * _count("vpsadbw", b) >= _count("vpshufb", b) for b in word_loops)


@pytest.mark.skipif(
    _HOST_ARCH != "x86_64" or not _HOST_FEATURES.get("avx512vpopcntdq"),
    reason="needs a host with AVX-512 VPOPCNTDQ",
)
def test_native_target_uses_vpopcntq(tmp_path):
    got = _compile(tmp_path, "", {})
    assert got["default"] == "vpopcntdq"
    assert any(_count("vpopcntq", b) for b in _loops(got["asm"]))


def _aarch64_machine():
    ll.initialize_all_targets()
    ll.initialize_all_asmprinters()
    try:
        target = ll.Target.from_triple("aarch64-unknown-linux-gnu")
    except RuntimeError:
        return None
    # Cortex-A72 (Raspberry Pi 4): NEON without the dot-product extension
    return target.create_target_machine(cpu="cortex-a72", features="+neon", opt=3)


def test_neon_strategy_compiles_to_cnt_and_byte_adds_on_aarch64(tmp_path):
    machine = _aarch64_machine()
    if machine is None:
        pytest.skip("llvmlite here has no aarch64 target compiled in")
    got = _compile(tmp_path, "neon", {})
    assert got["ir"], "no module defines the byte-accumulating core"
    text = re.sub(r"^target (datalayout|triple) = .*$", "", got["ir"][0], flags=re.M)
    mod = ll.parse_assembly(text)
    mod.triple = "aarch64-unknown-linux-gnu"
    mod.data_layout = str(machine.target_data)
    mod.verify()
    builder = ll.create_pass_builder(machine, ll.create_pipeline_tuning_options(speed_level=3))
    builder.getModulePassManager().run(mod, builder)
    asm = machine.emit_assembly(mod)
    loops = [b for b in _loops(asm) if re.search(r"^\s+cnt\s+v\d+\.16b", b, re.M)]
    assert loops, "no loop with a 16-byte cnt"
    widen = ("uaddlp", "uadalp", "uaddlv", "addv", "ushll", "ushll2")
    for body in loops:
        assert re.search(r"^\s+add\s+v\d+\.16b", body, re.M)
        assert not any(_count(m, body) for m in widen)
    assert any(_count(m, asm) for m in ("uaddlp", "uadalp", "uaddlv"))
