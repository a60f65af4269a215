"""The class memories, their kernels and the metrics run with torch blocked."""

import subprocess
import sys

CODE = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked")
sys.meta_path.insert(0, Block())
import numpy as np
import edgecl.metrics
from edgecl.kernels.bits import pack_bits
from edgecl.memory import GBMConfig, GBMMemory, LatentBuffer, NearestPrototype, StreamingLDA
z = pack_bits(np.random.default_rng(0).random((20, 70)) < 0.5)
for m in (GBMMemory(70, GBMConfig(components=2, n_init=1, n_iter=1, n_max=1)), LatentBuffer(70)):
    m.fit_class("a", z, seed=0)
    m.sample({"a": 3}, seed=0)
NearestPrototype(70).fit_class("a", z)
StreamingLDA(70).fit_class("a", z)
assert not any(k == "torch" or k.startswith("torch.") for k in sys.modules)
"""


def test_memory_runs_without_torch():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
