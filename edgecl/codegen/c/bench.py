"""The figures of ``edgecl bench c``: a bundle's C runtime on a Cortex-M4 (QEMU's
mps2-an386) and on the host, beside the Numba runtime.

- sizes of the Cortex-M4 build of the measurement app (``runtime/bench/bench_app.c``):
  flash = .text + .data, RAM = .data + .bss (the context at the full budget and the arena
  for learning from ``samples`` images with the head at ``n_new + base`` classes, both as
  the Cortex-M4 build sizes them, and the app's own few words: built with ``make
  cortex-m4-bare``, it reads its images into ``ecl_input_buffer`` through semihosting,
  with no newlib stdio) plus ``ECL_STACK_BYTES``;
- instructions per predict and per learn_commit: QEMU runs with ``-icount shift=0`` (one
  instruction, one nanosecond of virtual time), the app counts SysTick ticks of the 25 MHz
  CPU clock around each call, and a 2,000,000-instruction loop turns ticks into
  instructions;
- host C predict latency (``clock()``, -O2) beside Numba's ``Runtime.predict`` of one image.
Torch-free; needs gcc, and arm-none-eabi-gcc + qemu-system-arm for the Cortex-M4 part.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from edgecl.codegen.c.export import export_c

__all__ = ["CBench", "bench_c"]

M4_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
CALIBRATION_INSNS = 2_000_000


@dataclass(frozen=True)
class CBench:
    """The figures (None where a toolchain is missing, with ``notes`` saying which)."""

    bundle: str
    classes_learned: int
    samples: int
    n_classes: int
    flash_bytes: int | None
    ram_bytes: int | None
    data_bytes: int | None
    bss_bytes: int | None
    ctx_bytes: int
    arena_bytes: int
    app_bytes: int | None
    stack_bytes: int | None
    m4_predict_insns: float | None
    m4_predict_learned_insns: float | None
    m4_commit_insns: tuple[float, ...]
    host_predict_us: float | None
    numba_predict_us: float
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        def kib(v):
            return "n/a" if v is None else f"{v / 1024:.1f} KiB ({v} bytes)"

        def mi(v):
            return "n/a" if v is None else f"{v / 1e6:.1f} M"

        host = "n/a" if self.host_predict_us is None else f"{self.host_predict_us:.0f} us"
        lines = [
            f"bundle        {self.bundle}: {self.classes_learned} classes learned from "
            f"{self.samples} images each ({self.n_classes} classes in all)",
            f"Cortex-M4     flash {kib(self.flash_bytes)}, RAM {kib(self.ram_bytes)}",
            f"              = .data {self.data_bytes} + .bss {self.bss_bytes} (context "
            f"{self.ctx_bytes}, arena {self.arena_bytes}, the app's {self.app_bytes}: its "
            f"command line, libm's errno) + stack {self.stack_bytes}",
            f"instructions  predict {mi(self.m4_predict_insns)} (base classes), "
            f"{mi(self.m4_predict_learned_insns)} ({self.n_classes} classes)",
            "              learn_commit "
            + (", ".join(mi(v) for v in self.m4_commit_insns) or "n/a"),
            f"host predict  C {host}, Numba {self.numba_predict_us:.0f} us (one image)",
        ]
        return "\n".join(lines + [f"note          {n}" for n in self.notes])


def _app() -> Path:
    return Path(str(resources.files("edgecl.codegen.c") / "runtime" / "bench" / "bench_app.c"))


def _macro(header: str, name: str) -> int:
    m = re.search(rf"#define {name} (\d+)", header)
    return int(m.group(1)) if m else 0


def _symbol_bytes(elf: Path, name: str) -> int | None:
    """The size of one object of the Cortex-M4 build (its own evaluation of the macros)."""
    out = subprocess.run(
        ["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    m = re.search(rf"^[0-9a-f]+ ([0-9a-f]+) [bBdD] {name}$", out, re.M)
    return int(m.group(1), 16) if m else None


def _arena_bytes(folder: Path, samples: int, classes: int) -> int:
    """ECL_ARENA_BYTES_FOR(samples, classes), evaluated by the host compiler."""
    src = folder / "arena_size.c"
    src.write_text(
        '#include <stdio.h>\n#include "edgecl.h"\nint main(void) { printf("%lu\\n", '
        f"(unsigned long)ECL_ARENA_BYTES_FOR({samples}, {classes})); return 0; }}\n"
    )
    exe = folder / "arena_size"
    subprocess.run(["cc", "-std=c99", f"-I{folder}", str(src), "-o", str(exe)], check=True)
    return int(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)


def bench_c(
    bundle: str | os.PathLike[str],
    x: np.ndarray,
    y: np.ndarray,
    *,
    new_classes: tuple[int, ...] = (5, 6, 7, 8, 9),
    samples: int = 100,
    predict_repeat: int = 5,
) -> CBench:
    """Measure the C runtime of ``bundle`` (the module docstring): learn ``new_classes``
    from ``samples`` images each of ``x`` (uint8 (N, H, W[, C])) with labels ``y``."""
    from edgecl.device import Runtime

    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "c"
        report = export_c(bundle, folder)
        header = (folder / "edgecl.h").read_text()
        n_total = report.n_classes + len(new_classes)
        flags = [f"-DBENCH_SAMPLES={samples}", f"-DBENCH_CLASSES={n_total}"]
        image = folder / "image.bin"
        image.write_bytes(np.ascontiguousarray(x[:1], np.uint8).tobytes())
        class_files = []
        for c in new_classes:
            path = folder / f"class{c}.bin"
            path.write_bytes(np.ascontiguousarray(x[y == c][:samples], np.uint8).tobytes())
            class_files.append(str(path))
        arena = _arena_bytes(folder, samples, n_total)
        flash = ram = data = bss = app = None
        ctx_bytes = _macro(header, "ECL_CTX_BYTES")
        p_base = p_learned = None
        commits: tuple[float, ...] = ()
        if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"):
            elf = folder / "bench.elf"
            subprocess.run(
                ["make", "-C", str(folder), "cortex-m4-bare", f"MAIN={_app()}", f"OUT={elf}",
                 "EXTRA=" + " ".join([*flags, "-DECL_BENCH_M4"])],
                check=True, capture_output=True,
            )  # fmt: skip
            size = subprocess.run(
                ["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True
            ).stdout
            sections = {m[0]: int(m[1]) for m in re.findall(r"^(\.\w+)\s+(\d+)", size, re.M)}
            data, bss = sections.get(".data", 0), sections.get(".bss", 0)
            flash = sum(v for k, v in sections.items() if k in (".text", ".ARM.exidx")) + data
            flash += sum(v for k, v in sections.items() if k.endswith("_array"))
            ram = data + bss + (report.stack_bytes or 0)
            # the arena macro uses sizeof: the Cortex-M4 build's own figures
            ctx_bytes = _symbol_bytes(elf, "ctx_mem") or ctx_bytes
            arena = _symbol_bytes(elf, "arena") or arena
            app = data + bss - ctx_bytes - arena
            out = subprocess.run(
                ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                 "-serial", "none", "-icount", "shift=0", "-semihosting-config",
                 "enable=on,target=native," + ",".join(
                     f"arg={a}" for a in [elf.name, image.name, predict_repeat,
                                          *(Path(f).name for f in class_files)]),
                 "-kernel", str(elf)],
                capture_output=True, text=True, check=True, timeout=3600, cwd=folder,
            ).stdout  # fmt: skip
            calib = float(re.search(r"^calib (\d+)", out, re.M).group(1))
            per_tick = CALIBRATION_INSNS / calib
            p_base = float(re.search(r"^predict ([\d.]+)", out, re.M).group(1)) * per_tick
            p_learned = float(re.search(r"^predict_learned ([\d.]+)", out, re.M).group(1))
            p_learned *= per_tick
            commits = tuple(float(v) * per_tick for v in re.findall(r"^commit (\d+)", out, re.M))
        else:
            notes.append(f"Cortex-M4 figures need: apt-get install {M4_PACKAGES}")
        host_us = None
        if shutil.which("cc"):
            exe = folder / "bench_host"
            subprocess.run(
                ["make", "-C", str(folder), "host", f"MAIN={_app()}", f"OUT={exe}",
                 "EXTRA=" + " ".join(flags)],
                check=True, capture_output=True,
            )  # fmt: skip
            out = subprocess.run(
                [str(exe), str(image), "200"], capture_output=True, text=True, check=True
            ).stdout
            host_us = float(re.search(r"^predict ([\d.]+)", out, re.M).group(1)) / 1000.0
        rt = Runtime.load(bundle)
        one = x[:1]
        rt.predict(one)  # compiled
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            rt.predict(one)
            times.append(time.perf_counter() - t0)
        numba_us = float(np.median(times) * 1e6)
        return CBench(
            bundle=str(bundle),
            classes_learned=len(new_classes),
            samples=samples,
            n_classes=n_total,
            flash_bytes=flash,
            ram_bytes=ram,
            data_bytes=data,
            bss_bytes=bss,
            ctx_bytes=ctx_bytes,
            arena_bytes=arena,
            app_bytes=app,
            stack_bytes=report.stack_bytes,
            m4_predict_insns=p_base,
            m4_predict_learned_insns=p_learned,
            m4_commit_insns=commits,
            host_predict_us=host_us,
            numba_predict_us=numba_us,
            notes=tuple(notes),
        )
