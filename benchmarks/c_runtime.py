"""The C99 runtime of ``edgecl export-c`` on a Cortex-M4 (QEMU mps2-an386) and on the host.

For a bundle (default: the shipped ``compile.ecl``, the demo's network at the demo's sizes:
float conv 64, binary convs 128 and 256, binary dense to D = 512, int8 head, GBM K = 6,
q = 2, 32 KiB adapt budget), learning the MNIST sample's classes 5..9 from 100 images each
on top of its five base classes: flash and RAM of the Cortex-M4 build (the context at the
full budget, the arena for 100 samples at 10 classes, ECL_STACK_BYTES), QEMU instruction
counts per predict and per learn_commit (``-icount shift=0``, SysTick ticks calibrated on a
2,000,000-instruction loop), host C predict latency beside Numba's
(:mod:`edgecl.codegen.c.bench`).

    python benchmarks/c_runtime.py [--bundle B.ecl] [--data-dir MNIST_IDX_DIR] [--json out.json]

Needs gcc, arm-none-eabi-gcc, libnewlib-arm-none-eabi and qemu-system-arm.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgecl.codegen.c.bench import bench_c
from edgecl.data import load_idx_pair, sample_dir
from edgecl.machine import machine_info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=sample_dir() / "compile.ecl")
    ap.add_argument("--data-dir", type=Path, default=sample_dir(), help="t10k IDX files")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    x, y = load_idx_pair(
        args.data_dir / "t10k-images-idx3-ubyte.gz", args.data_dir / "t10k-labels-idx1-ubyte.gz"
    )
    report = bench_c(args.bundle, x, y, samples=args.samples)
    print(report)
    if args.json:
        payload = {"benchmark": "c_runtime", "machine": machine_info(), **report.to_dict()}
        args.json.write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
