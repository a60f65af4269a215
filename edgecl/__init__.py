"""edgecl: binarized networks that keep learning new classes on the device.

``import edgecl`` never imports torch. The host side (``edgecl.train``,
``edgecl.export``) is imported explicitly.
"""

from edgecl.errors import BudgetError, BundleError, EdgeclError, ExportError

__version__ = "0.1.0"

__all__ = ["BudgetError", "BundleError", "EdgeclError", "ExportError", "__version__"]
