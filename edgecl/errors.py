"""The error hierarchy of edgecl. Torch-free; every part raises these.

Messages say what was expected and what came, e.g.
``expected (k, 784) samples, got (784,)``.
"""

from __future__ import annotations


class EdgeclError(Exception):
    """Base class of every error edgecl raises on purpose."""


class BundleError(EdgeclError, ValueError):
    """A device bundle is missing, corrupt, of another version, or inconsistent."""


class BudgetError(EdgeclError):
    """A change would make the stored bytes exceed the memory budget.

    Carries ``needed`` (bytes the stored state would take after the change),
    ``free`` (bytes the budget has left before it) and ``part`` (what asked).
    """

    def __init__(self, message: str, *, needed: int, free: int, part: str) -> None:
        super().__init__(message)
        self.needed = int(needed)
        self.free = int(free)
        self.part = str(part)


class ExportError(EdgeclError):
    """A model cannot be exported: names the module path, its type and what is supported."""

    def __init__(
        self,
        message: str,
        *,
        module_path: str | None = None,
        module_type: str | None = None,
        supported: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.module_path = module_path
        self.module_type = module_type
        self.supported = tuple(supported)


class DataFormatError(EdgeclError, ValueError):
    """A data file or folder is truncated, corrupt or of another form; the message names
    the file and what was expected. (A missing file raises ``FileNotFoundError``.)"""


__all__ = ["EdgeclError", "BundleError", "BudgetError", "ExportError", "DataFormatError"]
