"""Checks every kernel module shares: a NumPy twin per kernel, nothing compiled at import."""

import inspect
import subprocess
import sys

import edgecl.kernels as K

KERNELS = [
    "binary_dense",
    "binary_conv2d",
    "threshold",
    "threshold_float",
    "maxpool_bits",
    "maxpool2d",
    "binary_float_dense",
    "softmax_head_step",
    "bmm_em_stats",
    "bmm_responsibilities",
    "bmm_log_likelihood",
    "hamming_distances",
    "sample_bernoulli_words",
    "binary_conv_threshold_pool",
    "binary_dense_threshold",
]


def test_every_kernel_has_a_reference_twin_with_the_same_parameters():
    for name in KERNELS:
        kernel = getattr(K, name)
        twin = getattr(K, f"{name}_reference")
        assert twin.__module__ == kernel.__module__
        kernel_params = [p for p in inspect.signature(kernel).parameters if p != "threads"]
        assert list(inspect.signature(twin).parameters) == kernel_params, name


def test_nothing_compiles_at_import():
    code = """
import importlib
import edgecl.kernels
from numba.core.dispatcher import Dispatcher
mods = [importlib.import_module("edgecl.kernels." + n) for n in (
    "dense", "conv", "threshold", "pool", "float_dense", "head", "bmm", "sampling", "block",
    "bytegemm", "fused_bytes", "outvec", "popcount")]
found = 0
for mod in mods:
    for obj in vars(mod).values():
        if isinstance(obj, Dispatcher):
            found += 1
            assert not obj.signatures, obj
assert found > 20, found
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
