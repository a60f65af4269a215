"""The torch-free device side: load a bundle, predict, (and, with the learner) learn.

``Runtime.load(path)`` reads a ``.ecl`` bundle (:mod:`edgecl.bundle`) and runs its
layers with the bit kernels of :mod:`edgecl.kernels`. Nothing here imports torch.
"""

from edgecl.device.learner import HeadSettings, Learner
from edgecl.device.reports import LearnReport, MemoryReport
from edgecl.device.runtime import InputSpec, Runtime, run_layers

__all__ = [
    "HeadSettings",
    "InputSpec",
    "LearnReport",
    "Learner",
    "MemoryReport",
    "Runtime",
    "run_layers",
]
