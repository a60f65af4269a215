"""The device side as ONNX graphs: what a device with onnxruntime and no Numba needs to
classify *and* learn new classes (GBM paper §3.1-3.2). Host side (needs ``onnx``); the
bundle stores each graph's bytes as a uint8 array and the driver
(:mod:`edgecl.device.ort`) feeds them to ``onnxruntime.InferenceSession``.

Learned state (head weights, prototypes, mixing weights) enters every graph as an INPUT,
never as an initializer, so one graph serves every state the device reaches. Only the
frozen feature extractor F is baked into ``embed``. ``D`` is fixed per bundle; every other
axis is dynamic.

==========  =================================================================================
graph       inputs -> outputs
==========  =================================================================================
embed       x f32 (N, H, W, C) raw 0..255 -> embedding f32 (N, D) {0,1} bits
logits      embedding f32 (N, D), weight f32 (D, C), bias f32 (C,) -> logits f32 (N, C)
scores      embedding, weight, bias, mu f64 (C, K, D), log_pi f64 (C, K), gbm_weight f64 ()
            -> logits f32 (N, C), loglik f64 (N, C) = log p(z | class), scores f64 (N, C)
em_step     embedding f64 (N, D), mu f64 (K, D), pi f64 (K,) -> stats f64 (K, D),
            nk f64 (K,), ell f64 (), loglik f64 (), mu_next f64 (K, D), pi_next f64 (K,)
quantize    mu f64 (K, D), levels f64 () = 2^q -> level u8 (K, D), probability f64 (K, D),
            threshold f32 (K, D)
sample      threshold f32 (P, D), rows i64 (M,), uniforms f32 (M, D) -> bits f32 (M, D)
head_step   weight, bias, embeddings f32 (B, D), targets f32 (B, C), lr f32 ()
            -> new_weight, new_bias, loss (:mod:`edgecl.export.onnx_head`)
==========  =================================================================================

The math, equation by equation:

- ``scores``: ``logits = z @ W + b``; with ``mu`` clipped to ``[MU_CLIP, 1 - MU_CLIP]``,
  ``log pi_ck p(z | mu_ck) = z . logit(mu_ck) + sum_d log(1 - mu_ckd) + log pi_ck`` (the
  Bernoulli mixture of eqs. 1-3), ``loglik = logsumexp_k`` of that, and ``scores =
  log_softmax(logits) + gbm_weight * log_softmax(loglik)`` (what ``Runtime.predict`` ranks
  when the head sets ``gbm_weight``; ``logits`` otherwise). Pad a class with fewer
  components with ``mu = 0.5`` and ``log_pi = -inf``.
- ``em_step`` (one EM iteration, eqs. 1-3, ``mu`` already clipped): ``a = z @ logit(mu)^T +
  log pi + sum_d log(1 - mu)``; ``gamma = softmax_k(a)`` (eq. 1); ``stats = gamma^T z``,
  ``nk = sum_i gamma``; ``ell = sum gamma * a`` (eq. 3, the stop-rule quantity) and
  ``loglik = sum_i logsumexp_k a``; M-step eq. 2: ``mu_next = clip(stats / nk)`` (a
  component with ``nk == 0`` keeps its ``mu``), ``pi_next = nk / N``.
- ``quantize`` (q <= 8, mid-point levels, :mod:`edgecl.memory.quantize`): ``level =
  clip(floor(mu * 2^q), 0, 2^q - 1)``, ``probability = (level + 0.5) / 2^q``, ``threshold =
  (2 level + 1) * 2^(15 - q)`` (the 16-bit sampling threshold).
- ``sample`` (§3.2 pseudo-exemplars): ``bits[m, j] = uniforms[m, j] < threshold[rows[m], j]``
  with ``uniforms`` integers in ``[0, 65536)`` fed by the driver (SplitMix64 streams in
  edgecl, so the draws equal the Numba kernel's; any uniform source works on a phone).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgecl.bundle import (
    LEARNING_GRAPHS,
    BundleInfo,
    read_bundle,
    validate_manifest,
    write_bundle,
)
from edgecl.bundle.manifest import CONTAINER_KEYS
from edgecl.export._onnx import make_model
from edgecl.export.onnx_forward import forward_model
from edgecl.export.onnx_head import head_update_model
from edgecl.memory.em import MU_CLIP

__all__ = [
    "GRAPH_NAMES",
    "add_learning_graphs",
    "em_step_model",
    "embed_model",
    "learning_graphs",
    "logits_model",
    "quantize_model",
    "sample_model",
    "scores_model",
    "with_learning_graphs",
]

#: Every graph a bundle exported for the onnxruntime backend carries, in driver order.
GRAPH_NAMES = LEARNING_GRAPHS

_F32, _F64 = TensorProto.FLOAT, TensorProto.DOUBLE
_mk = helper.make_node
_vi = helper.make_tensor_value_info


def _check_bits(n_bits: int) -> int:
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
        raise ValueError(f"expected n_bits as an int >= 1, got {n_bits!r}")
    return int(n_bits)


def _const(init: list, name: str, value: Any) -> str:
    init.append(numpy_helper.from_array(np.asarray(value), name))
    return name


def embed_model(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """The frozen F alone: the bundle's forward graph pruned to its ``embedding`` output
    (normalisation and every layer baked in as initializers; the head left out)."""
    full = forward_model(manifest, arrays).graph
    keep: set[str] = {"embedding"}
    nodes = []
    for node in reversed(full.node):
        if any(o in keep for o in node.output):
            nodes.append(node)
            keep.update(node.input)
    nodes.reverse()
    init = [t for t in full.initializer if t.name in keep]
    out = [o for o in full.output if o.name == "embedding"]
    graph = helper.make_graph(nodes, "edgecl_embed", list(full.input), out, initializer=init)
    return make_model(graph, doc="edgecl embed: raw samples -> {0,1} embedding bits (F frozen)")


def _logits_nodes(nodes: list) -> None:
    nodes += [
        _mk("MatMul", ["embedding", "weight"], ["xw"]),
        _mk("Add", ["xw", "bias"], ["logits"]),
    ]


def _head_inputs(d: int) -> list:
    return [
        _vi("embedding", _F32, ["batch", d]),
        _vi("weight", _F32, [d, "classes"]),
        _vi("bias", _F32, ["classes"]),
    ]


def logits_model(n_bits: int) -> onnx.ModelProto:
    """Head logits ``z @ W + b`` of {0,1} embeddings (the score when ``gbm_weight`` is 0)."""
    d = _check_bits(n_bits)
    nodes: list = []
    _logits_nodes(nodes)
    graph = helper.make_graph(
        nodes, "edgecl_logits", _head_inputs(d), [_vi("logits", _F32, ["batch", "classes"])]
    )
    return make_model(graph, doc="edgecl logits: embedding bits, head state -> logits")


def scores_model(n_bits: int) -> onnx.ModelProto:
    """Head logits plus the GBM likelihood term (the module docstring's ``scores``)."""
    d = _check_bits(n_bits)
    init: list = []
    lo = _const(init, "clip_lo", np.float64(MU_CLIP))
    hi = _const(init, "clip_hi", np.float64(1.0 - MU_CLIP))
    one = _const(init, "one", np.float64(1.0))
    ax_d = _const(init, "axis_d", np.array([2], np.int64))
    ax_k = _const(init, "axis_k", np.array([2], np.int64))
    nodes: list = []
    _logits_nodes(nodes)
    nodes += [
        _mk("Clip", ["mu", lo, hi], ["mu_c"]),  # (C, K, D)
        _mk("Log", ["mu_c"], ["log_mu"]),
        _mk("Sub", [one, "mu_c"], ["one_m"]),
        _mk("Log", ["one_m"], ["log1m"]),
        _mk("Sub", ["log_mu", "log1m"], ["logit"]),
        _mk("ReduceSum", ["log1m", ax_d], ["log1m_sum"], keepdims=0),  # (C, K)
        _mk("Add", ["log1m_sum", "log_pi"], ["const"]),
        _mk("Cast", ["embedding"], ["z64"], to=_F64),
        # z (N, D) . logit (C, K, D) -> (N, C, K): broadcast MatMul over (C,)
        _mk("Transpose", ["logit"], ["logit_t"], perm=[0, 2, 1]),  # (C, D, K)
        _mk("Unsqueeze", ["z64", _const(init, "axis_c", np.array([0], np.int64))], ["z3"]),
        _mk("MatMul", ["z3", "logit_t"], ["dot_cnk"]),  # (C, N, K)
        _mk("Transpose", ["dot_cnk"], ["dot"], perm=[1, 0, 2]),  # (N, C, K)
        _mk("Add", ["dot", "const"], ["comp"]),
        _mk("ReduceMax", ["comp"], ["top"], axes=[2], keepdims=1),
        _mk("Sub", ["comp", "top"], ["shifted"]),
        _mk("Exp", ["shifted"], ["ex"]),
        _mk("ReduceSum", ["ex", ax_k], ["sx"], keepdims=1),
        _mk("Log", ["sx"], ["lsx"]),
        _mk("Add", ["top", "lsx"], ["ll3"]),
        _mk("Squeeze", ["ll3", _const(init, "axis_sq", np.array([2], np.int64))], ["loglik"]),
        _mk("LogSoftmax", ["loglik"], ["ll_norm"], axis=-1),
        _mk("Cast", ["logits"], ["logits64"], to=_F64),
        _mk("LogSoftmax", ["logits64"], ["logits_norm"], axis=-1),
        _mk("Mul", ["ll_norm", "gbm_weight"], ["term"]),
        _mk("Add", ["logits_norm", "term"], ["scores"]),
    ]
    inputs = _head_inputs(d) + [
        _vi("mu", _F64, ["classes", "components", d]),
        _vi("log_pi", _F64, ["classes", "components"]),
        _vi("gbm_weight", _F64, []),
    ]
    outputs = [
        _vi("logits", _F32, ["batch", "classes"]),
        _vi("loglik", _F64, ["batch", "classes"]),
        _vi("scores", _F64, ["batch", "classes"]),
    ]
    graph = helper.make_graph(nodes, "edgecl_scores", inputs, outputs, initializer=init)
    return make_model(graph, doc="edgecl scores: head logits + GBM log-likelihood term")


def em_step_model(n_bits: int) -> onnx.ModelProto:
    """One EM iteration of a Bernoulli mixture on {0,1} embeddings (eqs. 1-3, the module
    docstring's ``em_step``); ``mu`` must come clipped (the M-step output is)."""
    d = _check_bits(n_bits)
    init: list = []
    lo = _const(init, "clip_lo", np.float64(MU_CLIP))
    hi = _const(init, "clip_hi", np.float64(1.0 - MU_CLIP))
    one = _const(init, "one", np.float64(1.0))
    zero = _const(init, "zero", np.float64(0.0))
    ax0 = _const(init, "axis0", np.array([0], np.int64))
    ax1 = _const(init, "axis1", np.array([1], np.int64))
    nodes = [
        _mk("Log", ["mu"], ["log_mu"]),
        _mk("Sub", [one, "mu"], ["one_m"]),
        _mk("Log", ["one_m"], ["log1m"]),
        _mk("Sub", ["log_mu", "log1m"], ["logit"]),
        _mk("ReduceSum", ["log1m", ax1], ["log1m_sum"], keepdims=0),  # (K,)
        _mk("Log", ["pi"], ["log_pi"]),
        _mk("Add", ["log_pi", "log1m_sum"], ["base"]),
        _mk("Transpose", ["logit"], ["logit_t"], perm=[1, 0]),
        _mk("MatMul", ["embedding", "logit_t"], ["dot"]),  # (N, K)
        _mk("Add", ["dot", "base"], ["a"]),
        # eq. 1: gamma = softmax_k(a), in log space
        _mk("ReduceMax", ["a"], ["top"], axes=[1], keepdims=1),
        _mk("Sub", ["a", "top"], ["shifted"]),
        _mk("Exp", ["shifted"], ["ex"]),
        _mk("ReduceSum", ["ex", ax1], ["sx"], keepdims=1),
        _mk("Div", ["ex", "sx"], ["gamma"]),
        _mk("Log", ["sx"], ["lsx"]),
        _mk("Add", ["top", "lsx"], ["lse"]),
        _mk("ReduceSum", ["lse"], ["loglik"], keepdims=0),
        # eq. 3: ell = sum gamma * a over gamma > 0 (a = -inf where pi = 0)
        _mk("Greater", ["gamma", zero], ["alive_ik"]),
        _mk("Mul", ["gamma", "a"], ["ga"]),
        _mk("Where", ["alive_ik", "ga", zero], ["ga0"]),
        _mk("ReduceSum", ["ga0"], ["ell"], keepdims=0),
        # M-step statistics and eq. 2
        _mk("Transpose", ["gamma"], ["gamma_t"], perm=[1, 0]),
        _mk("MatMul", ["gamma_t", "embedding"], ["stats"]),  # (K, D)
        _mk("ReduceSum", ["gamma", ax0], ["nk"], keepdims=0),
        _mk("Unsqueeze", ["nk", ax1], ["nk_col"]),
        _mk("Div", ["stats", "nk_col"], ["ratio"]),
        _mk("Greater", ["nk_col", zero], ["alive_k"]),
        _mk("Where", ["alive_k", "ratio", "mu"], ["mu_raw"]),
        _mk("Clip", ["mu_raw", lo, hi], ["mu_next"]),
        _mk("Shape", ["embedding"], ["n_shape"], start=0, end=1),
        _mk("Cast", ["n_shape"], ["n_f"], to=_F64),
        _mk("Div", ["nk", "n_f"], ["pi_next"]),
    ]
    inputs = [
        _vi("embedding", _F64, ["batch", d]),
        _vi("mu", _F64, ["components", d]),
        _vi("pi", _F64, ["components"]),
    ]
    outputs = [
        _vi("stats", _F64, ["components", d]),
        _vi("nk", _F64, ["components"]),
        _vi("ell", _F64, []),
        _vi("loglik", _F64, []),
        _vi("mu_next", _F64, ["components", d]),
        _vi("pi_next", _F64, ["components"]),
    ]
    graph = helper.make_graph(nodes, "edgecl_em_step", inputs, outputs, initializer=init)
    return make_model(graph, doc="edgecl em_step: one EM iteration (GBM eqs. 1-3)")


def quantize_model(n_bits: int) -> onnx.ModelProto:
    """q-bit mid-point quantisation of prototypes (q <= 8; ``levels`` = 2^q)."""
    d = _check_bits(n_bits)
    init: list = []
    zero = _const(init, "zero", np.float64(0.0))
    one = _const(init, "one", np.float64(1.0))
    half = _const(init, "half", np.float64(0.5))
    two = _const(init, "two", np.float64(2.0))
    unit = _const(init, "prob_half", np.float64(32768.0))  # PROB_ONE / 2
    nodes = [
        _mk("Mul", ["mu", "levels"], ["scaled"]),
        _mk("Floor", ["scaled"], ["floored"]),
        _mk("Sub", ["levels", one], ["top"]),
        _mk("Clip", ["floored", zero, "top"], ["level_f"]),
        _mk("Cast", ["level_f"], ["level"], to=TensorProto.UINT8),
        _mk("Add", ["level_f", half], ["mid"]),
        _mk("Div", ["mid", "levels"], ["probability"]),
        _mk("Mul", ["level_f", two], ["twice"]),
        _mk("Add", ["twice", one], ["odd"]),
        _mk("Div", [unit, "levels"], ["step"]),
        _mk("Mul", ["odd", "step"], ["thr64"]),
        _mk("Cast", ["thr64"], ["threshold"], to=_F32),
    ]
    inputs = [_vi("mu", _F64, ["components", d]), _vi("levels", _F64, [])]
    outputs = [
        _vi("level", TensorProto.UINT8, ["components", d]),
        _vi("probability", _F64, ["components", d]),
        _vi("threshold", _F32, ["components", d]),
    ]
    graph = helper.make_graph(nodes, "edgecl_quantize", inputs, outputs, initializer=init)
    return make_model(graph, doc="edgecl quantize: q-bit mid-point prototype levels")


def sample_model(n_bits: int) -> onnx.ModelProto:
    """Pseudo-exemplar bits from prototype thresholds and driver-fed uniforms (§3.2)."""
    d = _check_bits(n_bits)
    nodes = [
        _mk("Gather", ["threshold", "rows"], ["picked"], axis=0),  # (M, D)
        _mk("Less", ["uniforms", "picked"], ["hit"]),
        _mk("Cast", ["hit"], ["bits"], to=_F32),
    ]
    inputs = [
        _vi("threshold", _F32, ["prototypes", d]),
        _vi("rows", TensorProto.INT64, ["samples"]),
        _vi("uniforms", _F32, ["samples", d]),
    ]
    graph = helper.make_graph(nodes, "edgecl_sample", inputs, [_vi("bits", _F32, ["samples", d])])
    return make_model(graph, doc="edgecl sample: Bernoulli pseudo-exemplars from prototypes")


def learning_graphs(
    manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> dict[str, bytes]:
    """Every graph of :data:`GRAPH_NAMES` for a (validated) bundle, serialized."""
    d = int(manifest["embedding"]["bits"])
    wd = float(manifest["head"].get("weight_decay", 0.0))
    models = {
        "embed": embed_model(manifest, arrays),
        "logits": logits_model(d),
        "scores": scores_model(d),
        "em_step": em_step_model(d),
        "quantize": quantize_model(d),
        "sample": sample_model(d),
        "head_step": head_update_model(d, None, weight_decay=wd),
    }
    return {name: models[name].SerializeToString() for name in GRAPH_NAMES}


def with_learning_graphs(
    manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A copy of ``(manifest, arrays)`` carrying every learning graph: arrays
    ``graphs.<name>`` (uint8) and the manifest's ``graphs`` section naming them (graphs
    stored before are replaced)."""
    validate_manifest(manifest, arrays)
    old = manifest.get("graphs") or {}
    out = {k: v for k, v in arrays.items() if k not in set(old.values())}
    refs = {}
    for name, data in learning_graphs(manifest, arrays).items():
        refs[name] = f"graphs.{name}"
        out[refs[name]] = np.frombuffer(data, np.uint8).copy()
    man = {k: v for k, v in manifest.items() if k not in CONTAINER_KEYS}
    man["graphs"] = refs
    return man, out


def add_learning_graphs(path: str | os.PathLike[str]) -> BundleInfo:
    """Rewrite the bundle at ``path`` (atomically) with every learning graph stored, so
    ``Runtime.load(path, backend="onnxruntime")`` can predict and learn with it."""
    manifest, arrays = read_bundle(path)
    man, out = with_learning_graphs(manifest, arrays)
    return write_bundle(path, man, out, overwrite=True)
