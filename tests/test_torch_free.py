"""The device side never imports torch: checked in a fresh interpreter with torch blocked."""

import subprocess
import sys

import pytest

BLOCK = """
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked")
sys.meta_path.insert(0, Block())
importlib.import_module({module!r})
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
"""

DEVICE_MODULES = [
    "edgecl",
    "edgecl.errors",
    "edgecl.validate",
    "edgecl.kernels",
    "edgecl.kernels.bmm",
    "edgecl.kernels.sampling",
    "edgecl.kernels.headstep",
    "edgecl.memory",
    "edgecl.memory.protocol",
    "edgecl.memory.batches",
    "edgecl.metrics",
    "edgecl.bundle",
    "edgecl.device",
    "edgecl.device.learner",
    "edgecl.device.reports",
    "edgecl.device.ort",
    "edgecl.memory.backend",
    "edgecl.device.head",
    "edgecl.device.persist",
    "edgecl.device.scores",
    "edgecl.program",
    "edgecl.program.lowering",
    "edgecl.base_bundle",
    "edgecl.kernels.first_layer",
    "edgecl.kernels.signs",
    "edgecl.demo",
    "edgecl.data",
    "edgecl.cli",
    "edgecl.cli.main",
    "edgecl.cli.learn",
    "edgecl.cli.bench",
    "edgecl.cli.compile",
    "edgecl.bench",
    "edgecl.machine",
    "edgecl.testing",
]


@pytest.mark.parametrize("module", DEVICE_MODULES)
def test_imports_without_torch(module):
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK.format(module=module)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
