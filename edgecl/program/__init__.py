"""The device layer program, torch-free: the op classes and their registry
(:mod:`edgecl.program.ops`), the kernel sets (:mod:`edgecl.program.kernelset`), the
op-by-op runner (:mod:`edgecl.program.run`) and the fusing compiler
(:mod:`edgecl.program.compile`)."""

from edgecl.program.compile import Program, compile_program
from edgecl.program.kernelset import FAST_KERNELS, REFERENCE_KERNELS, LayerKernels
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
    output_kind,
    parse_layers,
)
from edgecl.program.run import run_layers

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
    "output_kind",
    "parse_layers",
    "run_layers",
]
