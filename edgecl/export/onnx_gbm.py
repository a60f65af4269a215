"""The ``scores`` output of the ONNX forward graph: what ``Runtime.predict`` ranks.

With a head ``gbm_weight`` lambda > 0 and a GBM class memory holding every head class, the
device ranks ``log_softmax(logits) + lambda * log_softmax(log p(z | class))``
(:meth:`edgecl.device.learner.Learner.scores`); otherwise it ranks the head logits. This
module builds the same term in standard ONNX ops from the bundle's dequantized prototypes
``mu`` (clipped to ``[MU_CLIP, 1 - MU_CLIP]``, the clip of the device and of the M-step)
and normalised mixing weights ``pi``:

    log pi_kj p(z | mu_kj) = sum_d [z_d log mu_kjd + (1 - z_d) log(1 - mu_kjd)] + log pi_kj
                           = z . (log mu_kj - log(1 - mu_kj)) + sum_d log(1 - mu_kjd) + log pi_kj

(the Bernoulli mixture of eqs. 1-3), one ``MatMul`` of the {0,1} embedding bits with a
(D, C * K) table, then a max-shifted logsumexp over each class's K components. Classes
with fewer components than the largest are padded with components of log-weight -inf.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgecl.export._onnx import OPSET
from edgecl.memory import GBMMemory, memory_from_state
from edgecl.memory.em import MU_CLIP

__all__ = ["GBMTables", "gbm_tables", "scores_nodes"]


@dataclass(frozen=True)
class GBMTables:
    """``log pi_kj p(z | mu_kj) = z @ weight[:, k, j] + const[k, j]`` for head class k and
    component j; ``weight`` float32 (D, C, K), ``const`` float32 (C, K) (-inf pads)."""

    weight: np.ndarray
    const: np.ndarray


def gbm_tables(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> GBMTables | None:
    """The GBM tables of a (validated) bundle in head class order, or None when the device
    ranks the head logits alone (``gbm_weight`` 0, no GBM memory, or a head class that has
    no mixture)."""
    if float(manifest["head"].get("gbm_weight", 0.0)) <= 0:
        return None
    spec = manifest.get("memory")
    if spec is None:
        return None
    refs = spec.get("arrays", {})
    memory = memory_from_state(spec.get("spec", {}), {k: arrays[r] for k, r in refs.items()})
    classes = list(manifest["classes"])
    if not isinstance(memory, GBMMemory) or any(c not in memory.classes for c in classes):
        return None
    n_bits = int(manifest["embedding"]["bits"])
    k_max = max(memory.prototypes(c).shape[0] for c in classes)
    weight = np.zeros((n_bits, len(classes), k_max), np.float64)
    const = np.full((len(classes), k_max), -np.inf)
    for i, c in enumerate(classes):
        mu = np.clip(memory.prototypes(c), MU_CLIP, 1.0 - MU_CLIP)  # (K, D)
        pi = memory.mixing_weights(c)
        pi = pi / pi.sum()
        k = mu.shape[0]
        weight[:, i, :k] = (np.log(mu) - np.log1p(-mu)).T
        with np.errstate(divide="ignore"):  # pi == 0: a component that never wins
            const[i, :k] = np.log1p(-mu).sum(axis=1) + np.log(pi)
    return GBMTables(weight.astype(np.float32), const.astype(np.float32))


def _reduce(nodes: list, op_type: str, x: str, axis: int, out: str, init: list) -> None:
    """A keepdims reduction over one axis, spelled for :data:`OPSET` (axes became an input
    of ReduceMax in opset 18, of ReduceSum in opset 13)."""
    takes_input = OPSET >= (13 if op_type == "ReduceSum" else 18)
    if takes_input:
        axes = f"{out}_axes"
        init.append(numpy_helper.from_array(np.array([axis], np.int64), axes))
        nodes.append(helper.make_node(op_type, [x, axes], [out], keepdims=1))
    else:
        nodes.append(helper.make_node(op_type, [x], [out], axes=[axis], keepdims=1))


def scores_nodes(
    manifest: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    embedding: str,
    logits: str,
    output: str = "scores",
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes and initializers computing ``output`` (N, C) float32 from the tensors named
    ``embedding`` (N, D) {0,1} float32 and ``logits`` (N, C): the head logits, or with the
    GBM term ``log_softmax(logits) + gbm_weight * log_softmax(log p(z | class))``."""
    tables = gbm_tables(manifest, arrays)
    if tables is None:
        return [helper.make_node("Identity", [logits], [output])], []
    d, n_cls, k = tables.weight.shape
    lam = np.float32(manifest["head"]["gbm_weight"])
    init = [
        numpy_helper.from_array(tables.weight.reshape(d, n_cls * k), "gbm_weight_table"),
        numpy_helper.from_array(tables.const.reshape(1, n_cls, k), "gbm_const"),
        numpy_helper.from_array(np.array([0, n_cls, k], np.int64), "gbm_shape"),
        numpy_helper.from_array(np.array([0, n_cls], np.int64), "gbm_shape2"),
        numpy_helper.from_array(lam, "gbm_lambda"),
    ]
    mk = helper.make_node
    nodes = [
        mk("MatMul", [embedding, "gbm_weight_table"], ["gbm_dot"]),
        mk("Reshape", ["gbm_dot", "gbm_shape"], ["gbm_dot3"]),
        mk("Add", ["gbm_dot3", "gbm_const"], ["gbm_comp"]),  # (N, C, K)
    ]
    _reduce(nodes, "ReduceMax", "gbm_comp", 2, "gbm_top", init)
    nodes += [
        mk("Sub", ["gbm_comp", "gbm_top"], ["gbm_shifted"]),
        mk("Exp", ["gbm_shifted"], ["gbm_exp"]),
    ]
    _reduce(nodes, "ReduceSum", "gbm_exp", 2, "gbm_sum", init)
    nodes += [
        mk("Log", ["gbm_sum"], ["gbm_logsum"]),
        mk("Add", ["gbm_top", "gbm_logsum"], ["gbm_ll3"]),
        mk("Reshape", ["gbm_ll3", "gbm_shape2"], ["gbm_ll"]),  # log p(z | class) (N, C)
        mk("LogSoftmax", ["gbm_ll"], ["gbm_ll_norm"], axis=-1),
        mk("LogSoftmax", [logits], ["gbm_logits_norm"], axis=-1),
        mk("Mul", ["gbm_ll_norm", "gbm_lambda"], ["gbm_term"]),
        mk("Add", ["gbm_logits_norm", "gbm_term"], [output]),
    ]
    return nodes, init
