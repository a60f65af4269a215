"""The head-update graph (issue §3c): one SGD step of the softmax head as a plain ONNX
inference graph, so stock onnxruntime (no training package) can retrain the head G.

Inputs: ``weight`` float32 (D, C), ``bias`` (C,), ``embeddings`` float32 {0,1} (B, D),
``targets`` float32 one-hot (B, C), ``lr`` float32 scalar. Outputs: ``new_weight``,
``new_bias`` and ``loss``, the mean cross-entropy before the update. The math is the
Numba step's (:func:`edgecl.kernels.head.softmax_head_step`)::

    logits = x @ W + b;  p = softmax(logits);  g = (p - y) / B
    W' = W - lr * (x^T g + weight_decay * W);  b' = b - lr * sum_rows(g)

The graph is built on the host (it needs ``onnx``); the device only feeds its bytes to
``onnxruntime.InferenceSession``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgecl.export._onnx import make_model

__all__ = ["HEAD_INPUTS", "HEAD_OUTPUTS", "head_update_bytes", "head_update_model"]

HEAD_INPUTS = ("weight", "bias", "embeddings", "targets", "lr")
HEAD_OUTPUTS = ("new_weight", "new_bias", "loss")


def head_update_model(
    n_bits: int, n_classes: int | None = None, *, weight_decay: float = 0.0
) -> onnx.ModelProto:
    """One SGD step of a softmax head with ``n_bits`` inputs and ``n_classes`` outputs.

    The batch size is dynamic; so is the number of classes when ``n_classes`` is None
    (the default: a device that learns new classes keeps using the same graph).
    ``weight_decay`` is fixed in the graph (L2 on W only)."""
    checks = [("n_bits", n_bits)] + ([] if n_classes is None else [("n_classes", n_classes)])
    for name, v in checks:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"expected {name} to be a positive int, got {v!r}")
    weight_decay = float(weight_decay)
    if not (np.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"expected a finite weight_decay >= 0, got {weight_decay}")
    d = int(n_bits)
    c: int | str = "classes" if n_classes is None else int(n_classes)
    f32 = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("weight", f32, [d, c]),
        helper.make_tensor_value_info("bias", f32, [c]),
        helper.make_tensor_value_info("embeddings", f32, ["batch", d]),
        helper.make_tensor_value_info("targets", f32, ["batch", c]),
        helper.make_tensor_value_info("lr", f32, []),
    ]
    outputs = [
        helper.make_tensor_value_info("new_weight", f32, [d, c]),
        helper.make_tensor_value_info("new_bias", f32, [c]),
        helper.make_tensor_value_info("loss", f32, []),
    ]
    init = [
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array(weight_decay, np.float32), "wd"),
    ]
    n = helper.make_node
    nodes = [
        n("MatMul", ["embeddings", "weight"], ["xw"]),
        n("Add", ["xw", "bias"], ["logits"]),
        n("ReduceMax", ["logits"], ["lmax"], axes=[1], keepdims=1),
        n("Sub", ["logits", "lmax"], ["z"]),
        n("Exp", ["z"], ["ez"]),
        n("ReduceSum", ["ez", "axis1"], ["sez"], keepdims=1),
        n("Log", ["sez"], ["lse"]),
        n("Sub", ["z", "lse"], ["logp"]),
        n("Exp", ["logp"], ["p"]),
        # loss = -mean_rows(sum_cols(y * logp))
        n("Mul", ["targets", "logp"], ["ylogp"]),
        n("ReduceSum", ["ylogp", "axis1"], ["row_ll"], keepdims=0),
        n("ReduceMean", ["row_ll"], ["mean_ll"], axes=[0], keepdims=0),
        n("Neg", ["mean_ll"], ["loss"]),
        # g = (p - y) / B
        n("Shape", ["embeddings"], ["xshape"], start=0, end=1),
        n("Cast", ["xshape"], ["bf"], to=f32),
        n("Sub", ["p", "targets"], ["py"]),
        n("Div", ["py", "bf"], ["g"]),
        n("Transpose", ["embeddings"], ["xt"], perm=[1, 0]),
        n("MatMul", ["xt", "g"], ["dw0"]),
        n("Mul", ["wd", "weight"], ["wdw"]),
        n("Add", ["dw0", "wdw"], ["dw"]),
        n("ReduceSum", ["g", "axis0"], ["db"], keepdims=0),
        n("Mul", ["lr", "dw"], ["step_w"]),
        n("Sub", ["weight", "step_w"], ["new_weight"]),
        n("Mul", ["lr", "db"], ["step_b"]),
        n("Sub", ["bias", "step_b"], ["new_bias"]),
    ]
    graph = helper.make_graph(nodes, "edgecl_head_update", inputs, outputs, initializer=init)
    return make_model(graph, doc="edgecl: one SGD step of the softmax head (issue 5 §3c)")


def head_update_bytes(
    n_bits: int, n_classes: int | None = None, *, weight_decay: float = 0.0
) -> bytes:
    """The serialized head-update graph (store it in a bundle as a uint8 array)."""
    return head_update_model(n_bits, n_classes, weight_decay=weight_decay).SerializeToString()
