"""Helpers for checking edgecl's promises from the outside (torch-free).

:func:`block_torch` installs an import hook that makes ``import torch`` fail, as on a
device without torch: the demo's device phase runs under it, and so can any test.
:func:`block_numba` does the same for Numba (a phone or a browser running the
onnxruntime backend, :mod:`edgecl.device.ort`).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["NumbaBlocker", "TorchBlocker", "block_numba", "block_torch"]


class _Blocker:
    """A meta-path finder refusing one top-level package and its submodules."""

    package = ""
    where = ""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == self.package or name.startswith(self.package + "."):
            raise ImportError(f"{self.package} is blocked here, {self.where} (tried {name})")
        return None


class TorchBlocker(_Blocker):
    """A meta-path finder refusing ``torch`` and its submodules."""

    package = "torch"
    where = "as on a device"


class NumbaBlocker(_Blocker):
    """A meta-path finder refusing ``numba`` and its submodules."""

    package = "numba"
    where = "as on a device with onnxruntime alone"


def _block(finder: type[_Blocker]) -> None:
    pkg = finder.package
    if any(m == pkg or m.startswith(pkg + ".") for m in sys.modules):
        raise RuntimeError(f"expected {pkg} not imported before blocking it, got it imported")
    if not any(isinstance(f, finder) for f in sys.meta_path):
        sys.meta_path.insert(0, finder())


def block_torch() -> None:
    """Install an import hook that makes ``import torch`` fail (the device has no torch).
    Refuses if torch is already imported."""
    _block(TorchBlocker)


def block_numba() -> None:
    """Install an import hook that makes ``import numba`` fail (onnxruntime alone).
    Refuses if numba is already imported."""
    _block(NumbaBlocker)
