"""The error hierarchy of edgecl. Torch-free; every part raises these.

Messages say what was expected and what came, e.g.
``expected (k, 784) samples, got (784,)``. Every class is an :class:`EdgeclError` and also
the builtin a caller would catch without knowing edgecl (``ValueError``, ``KeyError``,
``FileExistsError``). Each carries the CLI's exit code for it as ``exit_code``:

====  ==========================================================================
code  family
====  ==========================================================================
0     success
2     usage: a bad argument or input the caller can fix (the CLI's own usage errors,
      :class:`InvalidValueError`, :class:`InvalidTypeError`, :class:`UnknownClassError`,
      :class:`ClassExistsError`, :class:`TargetExistsError`, :class:`DataFormatError`)
3     bundle: :class:`BundleError` (missing, corrupt, other version, inconsistent)
4     budget: :class:`BudgetError`
5     export: :class:`ExportError`
1     anything else (:class:`CheckpointError` included)
====  ==========================================================================
"""

from __future__ import annotations

from typing import ClassVar


class EdgeclError(Exception):
    """Base class of every error edgecl raises on purpose."""

    exit_code: ClassVar[int] = 1


class BundleError(EdgeclError, ValueError):
    """A device bundle is missing, corrupt, of another version, or inconsistent. CLI exit 3."""

    exit_code: ClassVar[int] = 3


class BudgetError(EdgeclError):
    """A change would make the stored bytes exceed the memory budget. CLI exit 4.

    Carries ``needed`` (bytes the stored state would take after the change),
    ``free`` (bytes the budget has left before it) and ``part`` (what asked).
    """

    exit_code: ClassVar[int] = 4

    def __init__(self, message: str, *, needed: int, free: int, part: str) -> None:
        super().__init__(message)
        self.needed = int(needed)
        self.free = int(free)
        self.part = str(part)


class ExportError(EdgeclError, ValueError):
    """A model cannot be exported: names the module path, its type and what is supported.
    CLI exit 5."""

    exit_code: ClassVar[int] = 5

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
    """A data file or folder is truncated, corrupt or of another form; the message names the file
    and what was expected. (A missing file raises ``FileNotFoundError``.) CLI exit 2."""

    exit_code: ClassVar[int] = 2


class CheckpointError(EdgeclError, ValueError):
    """A file is not a valid edgecl checkpoint (wrong format, version or contents). CLI exit 1."""

    exit_code: ClassVar[int] = 1


class TargetExistsError(EdgeclError, FileExistsError):
    """A file would be replaced that the caller did not allow to be (``overwrite=False``,
    no ``--overwrite``). The one "target file exists" error of every writer. CLI exit 2."""

    exit_code: ClassVar[int] = 2


class UnknownClassError(EdgeclError, KeyError):
    """A class name that is not learned (``forget_class``, ``update_class``); the message
    lists the known names. CLI exit 2."""

    exit_code: ClassVar[int] = 2

    def __str__(self) -> str:  # KeyError quotes its argument; say the message plainly
        return str(self.args[0]) if self.args else ""


class InvalidValueError(EdgeclError, ValueError):
    """A value given to the API is of the right kind but wrong (an empty or too long class
    name, a count below 1, packed words of the wrong width). CLI exit 2."""

    exit_code: ClassVar[int] = 2


class InvalidTypeError(EdgeclError, TypeError):
    """A value given to the API is of the wrong kind (a class name that is not a str,
    embeddings that are not uint64 words). CLI exit 2."""

    exit_code: ClassVar[int] = 2


class ClassExistsError(EdgeclError, ValueError):
    """Learning a class name that is already learned (``update_class`` adds samples to it;
    the CLI's ``learn --update``). CLI exit 2."""

    exit_code: ClassVar[int] = 2


__all__ = [
    "BudgetError",
    "BundleError",
    "CheckpointError",
    "ClassExistsError",
    "DataFormatError",
    "EdgeclError",
    "ExportError",
    "InvalidTypeError",
    "InvalidValueError",
    "TargetExistsError",
    "UnknownClassError",
]
