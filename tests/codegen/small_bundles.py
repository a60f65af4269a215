"""Small hand-made bundles whose layer programs use every op the C emitters handle (no
torch): a fused float first layer with asymmetric pads, a standalone float conv, float
max pool, affine, a repeated float threshold, a
zero-padded asymmetric binary conv with its threshold and bit pool, flatten, a binary dense
with an offset; and a dense_float program. Base classes get a GBM memory fitted on their
embeddings, the head a few SGD steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecl.bundle import encode_head, write_bundle
from edgecl.device import Runtime
from edgecl.kernels.bits import pack_bits
from edgecl.kernels.head import softmax_head_step
from edgecl.memory import GBMConfig, GBMMemory


def images(n: int, seed: int, h: int = 8, w: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 (h, w) images of 3 classes (a bright square at a class's place)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 80, (n, h, w)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 2 * c : 2 * c + 3, 1:5] = 200 + rng.integers(0, 50)
    return x, y


def _ops_program(rng):
    f32 = np.float32
    arrays = {
        "c0.w": rng.normal(size=(4, 3, 3, 1)).astype(f32),
        "c0.b": rng.normal(size=4).astype(f32) * f32(0.1),
        "a.s": rng.uniform(0.5, 2, 4).astype(f32),
        "a.t": rng.normal(size=4).astype(f32),
        "t3.t": rng.normal(size=8).astype(f32) * f32(0.5),
        "t3.f": rng.integers(0, 2, 8).astype(bool),
        "c4.w": pack_bits(rng.integers(0, 2, (6, 3, 3, 8))),
        "t5.t": rng.integers(-6, 7, 6).astype(np.int32),
        "t5.f": rng.integers(0, 2, 6).astype(bool),
        "d8.w": np.zeros((5, 4), np.uint64),
        "t9.t": rng.integers(-4, 5, 5).astype(np.int32),
        "t9.f": np.zeros(5, bool),
    }
    for o in range(5):  # 6 data bits per pixel word of the flattened (2, 2, 6) bits
        arrays["d8.w"][o] = pack_bits(rng.integers(0, 2, (4, 6))).reshape(-1)
    layers = [
        {"op": "conv2d_float", "in_shape": [8, 8, 1], "weight": "c0.w", "bias": "c0.b",
         "stride": 1, "pads": [1, 1, 1, 1], "pad_value": -0.3, "out_shape": [8, 8, 4]},
        {"op": "maxpool_float", "in_shape": [8, 8, 4], "size": 2, "stride": 2,
         "out_shape": [4, 4, 4]},
        {"op": "affine", "in_shape": [4, 4, 4], "scale": "a.s", "shift": "a.t",
         "out_shape": [4, 4, 4]},
        {"op": "threshold_float", "in_shape": [4, 4, 4], "thresholds": "t3.t", "flip": "t3.f",
         "repeat": 2, "out_shape": [4, 4, 8]},
        {"op": "conv2d_binary", "in_shape": [4, 4, 8], "weight": "c4.w", "stride": 1,
         "padding": [0, 1, 1, 0], "pad_value": 0, "out_shape": [3, 3, 6]},
        {"op": "threshold", "in_shape": [3, 3, 6], "thresholds": "t5.t", "flip": "t5.f",
         "repeat": 1, "out_shape": [3, 3, 6]},
        {"op": "maxpool_bits", "in_shape": [3, 3, 6], "size": 2, "stride": 1,
         "out_shape": [2, 2, 6]},
        {"op": "flatten", "in_shape": [2, 2, 6], "out_shape": [24]},
        {"op": "dense_binary", "in_shape": [24], "weight": "d8.w", "n": 256, "offset": -232,
         "out_shape": [5]},
        {"op": "threshold", "in_shape": [5], "thresholds": "t9.t", "flip": "t9.f", "repeat": 1,
         "out_shape": [5]},
    ]  # fmt: skip
    return layers, arrays, 5


def _dense_program(rng):
    proj = (rng.normal(size=(64, 70)) / 8).astype(np.float32)
    arrays = {"p.w": proj, "p.t": np.zeros(70, np.float32), "p.f": rng.integers(0, 2, 70) > 0}
    layers = [
        {"op": "flatten", "in_shape": [8, 8, 1], "out_shape": [64]},
        {"op": "dense_float", "in_shape": [64], "weight": "p.w", "bias": None,
         "out_shape": [70]},
        {"op": "threshold_float", "in_shape": [70], "thresholds": "p.t", "flip": "p.f",
         "repeat": 1, "out_shape": [70]},
    ]  # fmt: skip
    return layers, arrays, 70


def _fused_program(rng):
    f32 = np.float32
    arrays = {
        "c0.w": rng.normal(size=(8, 3, 3, 1)).astype(f32),
        "t1.t": rng.normal(size=8).astype(f32) * f32(0.3),
        "t1.f": rng.integers(0, 2, 8).astype(bool),
        "d4.w": np.zeros((6, 9), np.uint64),
        "t5.t": rng.integers(-8, 9, 6).astype(np.int32),
        "t5.f": rng.integers(0, 2, 6).astype(bool),
    }
    for o in range(6):  # 8 data bits per pixel word of the flattened (3, 3, 8) bits
        arrays["d4.w"][o] = pack_bits(rng.integers(0, 2, (9, 8))).reshape(-1)
    layers = [
        {"op": "conv2d_float", "in_shape": [8, 8, 1], "weight": "c0.w", "bias": None,
         "stride": 1, "pads": [1, 0, 0, 1], "pad_value": -0.3, "out_shape": [7, 7, 8]},
        {"op": "threshold_float", "in_shape": [7, 7, 8], "thresholds": "t1.t", "flip": "t1.f",
         "repeat": 1, "out_shape": [7, 7, 8]},
        {"op": "maxpool_bits", "in_shape": [7, 7, 8], "size": 2, "stride": 2,
         "out_shape": [3, 3, 8]},
        {"op": "flatten", "in_shape": [3, 3, 8], "out_shape": [72]},
        {"op": "dense_binary", "in_shape": [72], "weight": "d4.w", "n": 576, "offset": -504,
         "out_shape": [6]},
        {"op": "threshold", "in_shape": [6], "thresholds": "t5.t", "flip": "t5.f", "repeat": 1,
         "out_shape": [6]},
    ]  # fmt: skip
    return layers, arrays, 6


PROGRAMS = {"every_op": _ops_program, "dense_float": _dense_program, "fused": _fused_program}


def make_small_bundle(path: Path, program: str, *, head_bits: int = 32, budget: int = 4096,
                      policy: str = "adapt", gbm_weight: float = 0.0) -> Path:  # fmt: skip
    """A bundle of ``PROGRAMS[program]`` with base classes c0, c1 (GBM K=2, q=3)."""
    rng = np.random.default_rng(7)
    layers, arrays, d = PROGRAMS[program](rng)
    arrays["head.weight"] = np.zeros((d, 2), np.float32)
    arrays["head.bias"] = np.zeros(2, np.float32)
    manifest = {
        "input": {"shape": [8, 8, 1], "scale": 1 / 255.0, "mean": [0.3], "std": [0.4]},
        "layers": layers,
        "embedding": {"bits": d, "kind": "heaviside"},
        "head": {"weight": "head.weight", "bias": "head.bias", "bits": 32, "onnx": None,
                 "lr": 0.1, "epochs": 2, "batch_size": 16, "weight_decay": 0.001,
                 "gbm_weight": gbm_weight},
        "classes": ["c0", "c1"],
        "base_classes": ["c0", "c1"],
        "memory": None,
        "budget": {"bytes": None, "policy": policy},
    }  # fmt: skip
    x, y = images(120, 1)
    keep = y < 2
    x, y = x[keep], y[keep]
    z = Runtime(manifest, arrays).embed(x)
    wt, b = arrays["head.weight"], arrays["head.bias"]
    for i in range(0, len(z), 16):
        wt, b, _ = softmax_head_step(z[i : i + 16], d, wt, b, y[i : i + 16], 0.1)
    stored = encode_head(wt, head_bits)
    arrays["head.weight"], arrays["head.bias"] = stored["weight"], b
    manifest["head"]["bits"] = head_bits
    if "scale" in stored:
        arrays["head.scale"] = stored["scale"]
        manifest["head"]["scale"] = "head.scale"
    mem = GBMMemory(d, GBMConfig(components=2, bits=3))
    for k, c in enumerate(["c0", "c1"]):
        mem.fit_class(c, z[y == k], seed=k)
    spec, marr = mem.to_state()
    refs = {key: f"memory.{key}" for key in sorted(marr)}
    manifest["memory"] = {"kind": "gbm", "spec": spec, "arrays": refs, "nbytes": mem.nbytes}
    for key, ref in refs.items():
        arrays[ref] = marr[key]
    manifest["budget"] = {"bytes": budget, "policy": policy}
    write_bundle(path, manifest, arrays, overwrite=True)
    return path
