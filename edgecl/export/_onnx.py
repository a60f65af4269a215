"""Shared ONNX settings: the IR version and opset every edgecl graph is written with.

onnx 1.23 writes IR version 14 by default and onnxruntime 1.31 refuses it, so both are
set explicitly. Opset 17 is supported by every onnxruntime >= 1.14.
"""

from __future__ import annotations

import onnx
from onnx import helper

IR_VERSION = 8  # the IR version of opsets 16-18 (onnx 1.13)
OPSET = 17


def make_model(graph: onnx.GraphProto, *, doc: str, opset: int = OPSET) -> onnx.ModelProto:
    """Wrap ``graph`` in a model with the fixed IR version and opset, then check it:
    ``onnx.checker`` (full) and strict shape inference; returns the inferred model."""
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="edgecl",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
