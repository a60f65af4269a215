"""The torch-free device side: load a bundle, predict, (and, with the learner) learn.

``Runtime.load(path)`` reads a ``.ecl`` bundle (:mod:`edgecl.bundle`) and runs its
layers with the bit kernels of :mod:`edgecl.kernels`. Nothing here imports torch.
"""

from edgecl.device.head import HeadSettings
from edgecl.device.learner import Learner
from edgecl.device.reports import LearnReport, MemoryReport
from edgecl.device.runtime import InputSpec, Runtime, RuntimeSnapshot, run_layers

__all__ = [
    "HeadSettings",
    "InputSpec",
    "LearnReport",
    "Learner",
    "MemoryReport",
    "Runtime",
    "RuntimeSnapshot",
    "run_layers",
]
