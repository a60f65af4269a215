"""torch -> device bundle and torch -> ONNX (host side; imports torch).

- :func:`export_bundle` with :class:`ExportConfig`: the device bundle (``.ecl``).
- :func:`export_onnx`: the forward graph (input -> logits and embedding bits).
- :mod:`edgecl.export.onnx_head`: the head-update graph (one SGD step of the head).
- :mod:`edgecl.export.onnx_learn`: the learning graphs of the onnxruntime backend (the whole
  device side: embed, scores, EM, quantisation, sampling, head step) and
  ``add_learning_graphs(path)``, which stores them in a bundle.

Import it explicitly (``import edgecl.export``); ``import edgecl`` never imports torch.
"""

from edgecl.export.exporter import ExportConfig, HeadConfig, export_bundle, torch_reference
from edgecl.export.lower import SUPPORTED_MODULES, check_model, lower_model
from edgecl.export.onnx_forward import export_onnx, forward_model

__all__ = [
    "SUPPORTED_MODULES",
    "ExportConfig",
    "HeadConfig",
    "check_model",
    "export_bundle",
    "export_onnx",
    "forward_model",
    "lower_model",
    "torch_reference",
]
