"""The error the data readers raise for a file that is not what was expected. Torch-free."""

from __future__ import annotations

from edgecl.errors import EdgeclError

__all__ = ["DataFormatError"]


class DataFormatError(EdgeclError, ValueError):
    """A data file is truncated, corrupt or of another format; the message names the file
    and what was expected. (A missing file raises ``FileNotFoundError``.)"""
