"""Build and run the exported C runtime with the test driver (driver.c beside this file):
host compilers, sanitizers, aarch64 Linux under qemu-aarch64, Cortex-M4 under
qemu-system-arm (mps2-an386, semihosting). Each runner returns the driver's output lines."""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DRIVER = Path(__file__).with_name("driver.c")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]
M4_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
A64_PACKAGES = "gcc-aarch64-linux-gnu qemu-user"


def have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


def build_host(src: Path, out: Path, cc: str = "gcc", extra: tuple[str, ...] = ()) -> Path:
    """The driver built with a host compiler (``-Werror``: any warning fails the test)."""
    sources = [str(src / "edgecl.c"), str(src / "edgecl_model.c"), str(DRIVER)]
    cmd = [cc, *CFLAGS, f"-I{src}", *extra, *sources, "-o", str(out), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise AssertionError(f"{cc} failed:\n{r.stderr}")
    return out


def build_m4(src: Path, out: Path, extra: tuple[str, ...] = ()) -> Path:
    r = subprocess.run(
        ["make", "-C", str(src), "cortex-m4", f"MAIN={DRIVER}", f"OUT={out}",
         "EXTRA=" + " ".join(extra)],
        capture_output=True, text=True,
    )  # fmt: skip
    if r.returncode:
        raise AssertionError(f"make cortex-m4 failed:\n{r.stdout}\n{r.stderr}")
    return out


def run(cmd: list[str], timeout: float = 600) -> list[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        raise AssertionError(f"{cmd[0]} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr}")
    return r.stdout.splitlines()


def run_m4(elf: Path, script: Path, timeout: float = 600) -> list[str]:
    return run(
        ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
         "-serial", "none", "-semihosting-config",
         f"enable=on,target=native,arg={elf},arg={script}", "-kernel", str(elf)],
        timeout,
    )  # fmt: skip


def write_images(path: Path, x: np.ndarray) -> Path:
    path.write_bytes(np.ascontiguousarray(x, np.uint8).tobytes())
    return path


def results(lines: list[str]) -> list[str]:
    """The driver's result lines without the first (sizes of its own buffers)."""
    return [line for line in lines if not line.startswith("I ")]


def embeddings(lines: list[str]) -> np.ndarray:
    rows = [[int(w, 16) for w in line.split()[1:]] for line in lines if line.startswith("E ")]
    return np.array(rows, dtype=np.uint64)


def predictions(lines: list[str]) -> np.ndarray:
    return np.array([int(line.split()[1]) for line in lines if line.startswith("P ")])


@dataclass(frozen=True)
class StoredClass:
    name: str
    k: int
    q: int
    words: np.ndarray
    head: bytes
    pi: np.ndarray
    count: int


def parse_state(data: bytes, n_bits: int, head_bits: int) -> list[StoredClass]:
    """The classes of an ``ecl_state_save`` blob (the format in edgecl.c)."""
    n = struct.unpack_from("<I", data, 12)[0]
    pos, heads = 16, []
    for _ in range(n):
        length = data[pos]
        name = data[pos + 1 : pos + 1 + length].decode()
        k, q = struct.unpack_from("<HH", data, pos + 1 + length)
        heads.append((name, k, q))
        pos += 1 + length + 4
    pos += 4
    out = []
    for name, k, q in heads:
        nw = -(-(k * n_bits * q) // 64)
        start = pos
        words = np.frombuffer(data, np.uint64, nw, pos)
        pos += 8 * nw
        row = n_bits * head_bits // 8
        head = data[pos : pos + row + (8 if head_bits == 8 else 4)]
        pos += len(head)
        pi = np.frombuffer(data, np.float32, k, pos)
        pos += 4 * k
        count = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        pos = start + -(-(pos - start) // 8) * 8
        out.append(StoredClass(name, k, q, words.copy(), head, pi.copy(), count))
    return out
