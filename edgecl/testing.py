"""Helpers for checking edgecl's promises from the outside (torch-free).

:func:`block_torch` installs an import hook that makes ``import torch`` fail, as on a
device without torch: the demo's device phase runs under it, and so can any test.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["TorchBlocker", "block_torch"]


class TorchBlocker:
    """A meta-path finder refusing ``torch`` and its submodules."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"torch is blocked here, as on a device (tried to import {name})")
        return None


def block_torch() -> None:
    """Install an import hook that makes ``import torch`` fail (the device has no torch).
    Refuses if torch is already imported."""
    if any(m == "torch" or m.startswith("torch.") for m in sys.modules):
        raise RuntimeError("expected torch not imported before blocking it, got it imported")
    if not any(isinstance(f, TorchBlocker) for f in sys.meta_path):
        sys.meta_path.insert(0, TorchBlocker())
