"""The error the data readers raise for a file that is not what was expected. Torch-free.

:class:`DataFormatError` lives in :mod:`edgecl.errors` with every other error; this module
keeps the old import path ``edgecl.data.errors.DataFormatError``.
"""

from __future__ import annotations

from edgecl.errors import DataFormatError

__all__ = ["DataFormatError"]
