"""The onnxruntime-only driver: the whole device side as the bundle's ONNX graphs
(:mod:`edgecl.export.onnx_learn` builds them on the host) plus a little NumPy glue.
Never imports Numba (nor torch, nor onnx): what a phone or a browser runs, written in
Python. The README's "Learning on a phone or in a browser" gives the same steps.

Predict (``Runtime.predict``):

1. ``embed``: raw samples ``x`` (float32 (N, H, W, C), 0..255) -> ``embedding`` {0,1}
   float32 (N, D). F is frozen inside the graph.
2. ``scores`` with the head state (``weight``, ``bias``), the class memory's dequantized
   prototypes ``mu`` (C, K, D) and ``log_pi`` (C, K) (pads: ``mu = 0.5``, ``-inf``) and the
   head's ``gbm_weight``, when the head sets ``gbm_weight > 0`` and every class has a GBM
   mixture; ``logits`` (head state only) otherwise. The argmax is the prediction.

Learn a class (``Runtime.learn_class``; the transaction, budget plan and eq. 4 batch
schedule are the NumPy code of :mod:`edgecl.memory` and :mod:`edgecl.device.learner`):

3. ``embed`` the new samples as in 1.
4. Head retraining, one batch at a time (eq. 4: the new class's samples and pseudo-
   exemplars of every old class): the pseudo-exemplars come from ``sample`` — pick a
   component per sample from the class's ``pi``, feed that component's row index
   ``rows``, its 16-bit ``threshold`` table and ``uniforms`` (integers in [0, 65536) as
   float32, :func:`splitmix_uniforms`) -> ``bits``; then ``head_step`` with the batch's
   bits, one-hot ``targets`` and ``lr`` -> ``new_weight``, ``new_bias``, ``loss``.
5. The new class's mixture by EM (GBM §3.1): initial ``mu`` = the class centroid plus
   noise (``n_init`` warm-up rounds of ``n_iter`` steps, the best by eq. 3 run on);
   ``em_step`` with ``embedding`` (float64 bits), ``mu``, ``pi`` -> ``mu_next``,
   ``pi_next`` (eq. 2) and ``ell`` (eq. 3); stop when ``|ell_s - ell_{s-1}| <
   epsilon |ell_s|`` or after ``n_max`` steps.
6. ``quantize`` the fitted ``mu`` with ``levels = 2^q`` -> ``level`` (what is stored,
   packed q bits each), ``probability`` (what ``scores`` uses) and ``threshold`` (what
   ``sample`` uses).

:class:`OrtKernels` gives each graph the signature of the Numba kernel it replaces
(:func:`edgecl.kernels.bmm.bmm_em_stats`,
:func:`edgecl.kernels.sampling.sample_bernoulli_words`, ...), so the NumPy reference code of
:mod:`edgecl.memory` runs unchanged on top of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgecl.bundle.specs import LEARNING_GRAPHS
from edgecl.errors import BundleError
from edgecl.kernels.bits import n_words, pack_bits, unpack_bits
from edgecl.memory.backend import MemoryKernels

__all__ = [
    "GRAPHS",
    "HOW_TO_EXPORT",
    "OrtKernels",
    "gbm_inputs",
    "graph_arrays",
    "splitmix_uniforms",
]

#: The graphs the backend needs, as named in a bundle's ``graphs`` section.
GRAPHS = LEARNING_GRAPHS

#: How to get a bundle that carries them (the refusal message says it).
HOW_TO_EXPORT = (
    "export it with the learning graphs: `edgecl export CHECKPOINT -o model.ecl --onnx "
    "model.onnx` (or `edgecl demo`), or add them on the host with "
    "edgecl.export.onnx_learn.add_learning_graphs(path)"
)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_ROW = np.uint64(0xD1B54A32D192ED03)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def splitmix_uniforms(m_count: int, n_bits: int, seed: int) -> np.ndarray:
    """The 16-bit uniforms (M, D) float32 in [0, 65536) that
    :func:`edgecl.kernels.sampling.sample_bernoulli_words` compares its thresholds with:
    row m is the SplitMix64 stream ``mix(mix(seed + m * R) + t * G)``, ``t = 1, 2, ...``,
    each 64-bit draw giving four 16-bit lanes, low lane first."""
    seed64 = np.uint64(int(seed) % (1 << 64))
    with np.errstate(over="ignore"):
        state = _mix(seed64 + np.arange(m_count, dtype=np.uint64) * _ROW)
        n_draws = (n_bits + 3) // 4
        steps = np.arange(1, n_draws + 1, dtype=np.uint64) * _GOLDEN
        rnd = _mix(state[:, None] + steps[None, :])
    lanes = (rnd[:, :, None] >> (np.uint64(16) * np.arange(4, dtype=np.uint64))) & np.uint64(0xFFFF)
    return lanes.reshape(m_count, n_draws * 4)[:, :n_bits].astype(np.float32)


def graph_arrays(
    refs: Mapping[str, str] | None, arrays: Mapping[str, np.ndarray]
) -> dict[str, bytes]:
    """The bytes of every graph a bundle's ``graphs`` section (``refs``: graph name ->
    array name, None when absent) names; ``BundleError`` (saying how to export one) when
    the bundle carries none or misses one."""
    if not refs:
        raise BundleError(
            "expected a bundle with the onnxruntime learning graphs for backend='onnxruntime', "
            f"got none; {HOW_TO_EXPORT}"
        )
    missing = [g for g in GRAPHS if g not in refs or refs[g] not in arrays]
    if missing:
        raise BundleError(
            f"expected the learning graphs {list(GRAPHS)}, the bundle misses {missing}; "
            f"{HOW_TO_EXPORT}"
        )
    return {g: np.ascontiguousarray(arrays[refs[g]]).tobytes() for g in GRAPHS}


class OrtKernels:
    """The bundle's graphs in onnxruntime sessions (one thread each by default), each
    behind the signature of the kernel it stands for."""

    def __init__(self, graphs: Mapping[str, bytes], n_bits: int, *, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # an optional dependency
            raise ImportError(
                "backend='onnxruntime' needs the onnxruntime package (pip install onnxruntime)"
            ) from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.n_bits = int(n_bits)
        self.sessions: dict[str, Any] = {}
        for name in GRAPHS:
            try:
                self.sessions[name] = ort.InferenceSession(
                    bytes(graphs[name]), sess_options=opts, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own exception types
                raise BundleError(f"expected a valid ONNX {name!r} graph, got: {exc}") from exc
        for name in ("logits", "scores", "em_step", "quantize", "sample", "head_step"):
            dims = [i.shape for i in self.sessions[name].get_inputs()]
            if not any(self.n_bits in shape for shape in dims):
                raise BundleError(f"expected the {name!r} graph for D={self.n_bits}, got {dims}")

    def _run(self, name: str, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.sessions[name].run(None, dict(feeds))

    # -- forward ---------------------------------------------------------------------------
    def embed_bits(self, x: np.ndarray) -> np.ndarray:
        """Graph ``embed``: raw samples float32 (N, H, W, C) -> {0,1} float32 (N, D)."""
        return self._run("embed", {"x": np.ascontiguousarray(x, np.float32)})[0]

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Packed embeddings uint64 (N, n_words(D)) of raw samples."""
        return pack_bits(self.embed_bits(x).astype(np.uint8))

    def logits(self, z_words: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """Graph ``logits``: head logits float32 (N, C) of packed embeddings."""
        feeds = {"embedding": self._bits32(z_words), "weight": weight, "bias": bias}
        return self._run("logits", feeds)[0]

    def scores(
        self,
        z_words: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray,
        mu: np.ndarray,
        log_pi: np.ndarray,
        gbm_weight: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Graph ``scores``: ``(log p(z | class) (N, C) float64, scores (N, C) float64)``."""
        feeds = {
            "embedding": self._bits32(z_words),
            "weight": np.ascontiguousarray(weight, np.float32),
            "bias": np.ascontiguousarray(bias, np.float32),
            "mu": np.ascontiguousarray(mu, np.float64),
            "log_pi": np.ascontiguousarray(log_pi, np.float64),
            "gbm_weight": np.array(gbm_weight, np.float64),
        }
        _, loglik, scores = self._run("scores", feeds)
        return loglik, scores

    # -- class memory (the kernels of edgecl.memory) ----------------------------------------
    def em_stats(
        self, words: np.ndarray, n_bits: int, mu: np.ndarray, pi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Graph ``em_step`` as :func:`edgecl.kernels.bmm.bmm_em_stats`:
        ``(S (K, D), N_k (K,), ell (eq. 3), loglik)``."""
        z = unpack_bits(words, n_bits).astype(np.float64)
        feeds = {
            "embedding": z,
            "mu": np.ascontiguousarray(mu, np.float64),
            "pi": np.ascontiguousarray(pi, np.float64),
        }
        stats, nk, ell, loglik, _, _ = self._run("em_step", feeds)
        return stats, nk, float(ell), float(loglik)

    def quantize_levels(self, mu: np.ndarray, q: int) -> np.ndarray:
        """Graph ``quantize`` as :func:`edgecl.memory.quantize.quantize` (q <= 8; q = 32
        stores float32 prototypes as they are)."""
        mu = np.asarray(mu, np.float64)
        if q == 32:
            return mu.astype(np.float32)
        feeds = {"mu": np.ascontiguousarray(mu), "levels": np.array(float(1 << q))}
        return self._run("quantize", feeds)[0]

    def sample_words(
        self, thresholds: np.ndarray, rows: np.ndarray, n_bits: int, seed: int
    ) -> np.ndarray:
        """Graph ``sample`` as :func:`edgecl.kernels.sampling.sample_bernoulli_words`
        (the same uniforms, so the same words)."""
        rows = np.ascontiguousarray(rows, np.int64)
        if rows.size == 0:
            return np.zeros((0, n_words(n_bits)), np.uint64)
        feeds = {
            "threshold": np.ascontiguousarray(thresholds, np.float32),
            "rows": rows,
            "uniforms": splitmix_uniforms(rows.shape[0], n_bits, seed),
        }
        return pack_bits(self._run("sample", feeds)[0].astype(np.uint8))

    def head_step(
        self,
        x_words: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray,
        labels: np.ndarray,
        lr: float,
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Graph ``head_step``: one SGD step of the softmax head (weight (D, C))."""
        x = self._bits32(x_words)
        c = weight.shape[1]
        onehot = np.zeros((x.shape[0], c), np.float32)
        onehot[np.arange(x.shape[0]), labels] = 1.0
        feeds = {
            "weight": np.ascontiguousarray(weight, np.float32),
            "bias": np.ascontiguousarray(bias, np.float32),
            "embeddings": x,
            "targets": onehot,
            "lr": np.array(lr, np.float32),
        }
        new_w, new_b, loss = self._run("head_step", feeds)
        return new_w, new_b, float(loss)

    def _bits32(self, z_words: np.ndarray) -> np.ndarray:
        return unpack_bits(z_words, self.n_bits).astype(np.float32)

    # -- what backend="onnxruntime" swaps in --------------------------------------------------
    def gbm_inputs(
        self, memory: Any, classes: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """:func:`gbm_inputs`, kept while the memory object and the classes stay the same (a
        learner commits a new memory object on every change)."""
        key = (memory, tuple(classes))
        cached = getattr(self, "_gbm_cache", None)
        if cached is not None and cached[0][0] is memory and cached[0][1] == key[1]:
            return cached[1]
        value = gbm_inputs(memory, classes)
        self._gbm_cache = (key, value)
        return value

    def memory_kernels(self) -> MemoryKernels:
        """The graphs as a class memory's kernels (EM statistics, quantisation, sampling)."""
        return MemoryKernels("onnxruntime", self.em_stats, self.quantize_levels, self.sample_words)

    def ranked_scores(
        self,
        z_words: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray,
        classes: Sequence[str],
        memory: Any,
        gbm_weight: float,
    ) -> np.ndarray:
        """What predictions rank (float64 (N, C)), the rule of the Numba runtime: graph
        ``scores`` when ``gbm_weight > 0`` and every class has a GBM mixture in
        ``memory``, else graph ``logits``."""
        tables = self.gbm_inputs(memory, classes) if gbm_weight > 0 else None
        if tables is None:
            return self.logits(z_words, weight, bias).astype(np.float64)
        return self.scores(z_words, weight, bias, *tables, gbm_weight)[1]


def gbm_inputs(memory: Any, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``scores`` graph's ``mu`` (C, K, D) and ``log_pi`` (C, K) of a GBM memory, in
    ``classes`` order (a class with fewer components padded with ``mu = 0.5``,
    ``log_pi = -inf``); None unless every class has a GBM mixture."""
    if memory is None or getattr(memory, "kind", None) != "gbm":
        return None
    if any(c not in memory.classes for c in classes):
        return None
    mus = [memory.prototypes(c) for c in classes]
    k_max = max(m.shape[0] for m in mus)
    mu = np.full((len(classes), k_max, memory.n_bits), 0.5)
    log_pi = np.full((len(classes), k_max), -np.inf)
    for i, c in enumerate(classes):
        pi = memory.mixing_weights(c)
        k = mus[i].shape[0]
        mu[i, :k] = mus[i]
        with np.errstate(divide="ignore"):
            log_pi[i, :k] = np.log(pi / pi.sum())
    return mu, log_pi
