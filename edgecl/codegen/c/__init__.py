"""The C99 backend: ``edgecl export-c BUNDLE -o DIR`` writes a C project that predicts
and learns new classes with no Python on the device (:func:`export_c`). Torch-free."""

from edgecl.codegen.c.emit import EMITTERS, emit_program
from edgecl.codegen.c.export import CExport, export_c

__all__ = ["EMITTERS", "CExport", "emit_program", "export_c"]
