"""The device layer program, torch-free: the op classes and their registry
(:mod:`edgecl.program.ops`), the kernel sets (:mod:`edgecl.program.kernelset`), the
op-by-op runner (:mod:`edgecl.program.run`) and the fusing compiler
(:mod:`edgecl.program.compile`).

Parsing and checking a program never imports Numba: the compiler and the kernel sets
(``Program``, ``compile_program``, ``FAST_KERNELS``, ``REFERENCE_KERNELS``) load on first
access."""

from __future__ import annotations

from typing import Any

from edgecl.program.kernelset import LayerKernels, fast_kernels, reference_kernels
from edgecl.program.ops import (
    OPS,
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
from edgecl.program.parse import output_kind, parse_layers
from edgecl.program.run import run_layers


def __getattr__(name: str) -> Any:
    if name in ("Program", "compile_program"):
        from edgecl.program import compile as compiler

        return getattr(compiler, name)
    if name == "FAST_KERNELS":
        return fast_kernels()
    if name == "REFERENCE_KERNELS":
        return reference_kernels()
    raise AttributeError(f"module 'edgecl.program' has no attribute {name!r}")


__all__ = [
    "FAST_KERNELS",
    "OPS",
    "REFERENCE_KERNELS",
    "Affine",
    "Conv2dBinary",
    "Conv2dFloat",
    "DenseBinary",
    "DenseFloat",
    "Flatten",
    "LayerKernels",
    "MaxPoolBits",
    "MaxPoolFloat",
    "Op",
    "Program",
    "Threshold",
    "ThresholdFloat",
    "ValueKind",
    "compile_program",
    "fast_kernels",
    "output_kind",
    "parse_layers",
    "reference_kernels",
    "run_layers",
]
