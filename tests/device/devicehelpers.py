"""Small hand-made bundles for the device tests (no torch, no training); imported by
tests/device/conftest.py and tests/cli/test_cli_device.py (a unique module name: a plain
``conftest`` import would be shadowed by another folder's conftest).

F is a random projection of the normalised pixels followed by a threshold at the median
(``dense_float`` + ``threshold_float``): a valid device program whose D-bit embeddings keep
the classes of a synthetic stream (and of MNIST) apart well enough to learn from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecl.bundle import encode_head, write_bundle
from edgecl.device import Runtime
from edgecl.kernels.head import softmax_head_step
from edgecl.memory import GBMConfig, GBMMemory, LatentBuffer, LatentBufferConfig


def synthetic_stream(n_classes: int, n_per_class: int, *, size: int = 8, seed: int = 0):
    """``(x uint8 (n, size, size), y int64)``: each class a random image plus noise."""
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 256, size=(n_classes, size, size)).astype(np.float64)
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = protos[y] + rng.normal(0, 40, size=(len(y), size, size))
    perm = rng.permutation(len(y))
    return np.clip(x, 0, 255).astype(np.uint8)[perm], y[perm]


def make_bundle(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    *,
    n_bits: int = 96,
    memory: str | None = "gbm",
    components: int = 2,
    bits: int = 4,
    per_class: int = 5,
    budget: int | None = None,
    policy: str = "strict",
    head_epochs: int = 3,
    onnx_graph: bytes | None = None,
    gbm_weight: float | None = None,
    head_bits: int = 32,
    seed: int = 0,
) -> Path:
    """A bundle whose base classes ``classes`` (labels 0..len-1 in ``y``) are learned."""
    rng = np.random.default_rng(seed)
    h, w = x.shape[1:3]
    f = h * w
    proj = (rng.normal(size=(f, n_bits)) / np.sqrt(f)).astype(np.float32)
    xn = (x.reshape(len(x), -1).astype(np.float32) / 255.0 - 0.5) / 0.5
    t = np.median(xn @ proj, axis=0).astype(np.float32)
    arrays = {
        "f.proj": proj,
        "f.t": t,
        "f.flip": np.zeros(n_bits, bool),
        "head.weight": np.zeros((n_bits, len(classes)), np.float32),
        "head.bias": np.zeros(len(classes), np.float32),
    }
    manifest = {
        "input": {"shape": [h, w, 1], "scale": 1 / 255.0, "mean": [0.5], "std": [0.5]},
        "layers": [
            {"op": "flatten", "in_shape": [h, w, 1], "out_shape": [f]},
            {
                "op": "dense_float",
                "in_shape": [f],
                "out_shape": [n_bits],
                "weight": "f.proj",
                "bias": None,
            },
            {
                "op": "threshold_float",
                "in_shape": [n_bits],
                "out_shape": [n_bits],
                "repeat": 1,
                "thresholds": "f.t",
                "flip": "f.flip",
            },
        ],
        "embedding": {"bits": n_bits, "kind": "heaviside"},
        "head": {
            "weight": "head.weight",
            "bias": "head.bias",
            "bits": 32,
            "onnx": None,
            "lr": 0.05,
            "epochs": 5,
            "batch_size": 32,
            "weight_decay": 0.0,
        },
        "classes": list(classes),
        "base_classes": list(classes),
        "memory": None,
        "budget": {"bytes": None, "policy": policy},
    }
    rt = Runtime(manifest, arrays)
    z = rt.embed(x)
    wt, b = arrays["head.weight"], arrays["head.bias"]
    for _ in range(head_epochs):
        for i in range(0, len(z), 32):
            wt, b, _ = softmax_head_step(z[i : i + 32], n_bits, wt, b, y[i : i + 32], 0.05)
    stored = encode_head(wt, head_bits)
    arrays["head.weight"], arrays["head.bias"] = stored["weight"], b
    manifest["head"]["bits"] = head_bits
    if "scale" in stored:
        arrays["head.scale"] = stored["scale"]
        manifest["head"]["scale"] = "head.scale"
    if gbm_weight is not None:
        manifest["head"]["gbm_weight"] = gbm_weight
    if onnx_graph is not None:
        arrays["head.onnx"] = np.frombuffer(onnx_graph, np.uint8).copy()
        manifest["head"]["onnx"] = "head.onnx"
    if memory is not None:
        mem = (
            GBMMemory(n_bits, GBMConfig(components=components, bits=bits))
            if memory == "gbm"
            else LatentBuffer(n_bits, LatentBufferConfig(per_class=per_class))
        )
        for k, c in enumerate(classes):
            mem.fit_class(c, z[y == k], seed=seed + k)
        spec, marr = mem.to_state()
        refs = {key: f"memory.{key}" for key in sorted(marr)}
        manifest["memory"] = {"kind": mem.kind, "spec": spec, "arrays": refs, "nbytes": mem.nbytes}
        for key, ref in refs.items():
            arrays[ref] = marr[key]
    manifest["budget"] = {"bytes": budget, "policy": policy}
    write_bundle(path, manifest, arrays, overwrite=True)
    return path
