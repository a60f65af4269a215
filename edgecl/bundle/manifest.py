"""The semantic manifest: what a device runtime needs from a bundle (input spec, layer
program, embedding, head, classes, class memory, budget), and its validation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgecl.bundle.checks import ArraySpecs, array_shape, need, pos_int, shape_list
from edgecl.bundle.head import HEAD_BITS, HEAD_DTYPES
from edgecl.bundle.layers import check_layers

_TOP_KEYS = ("input", "layers", "embedding", "head", "classes", "memory", "budget")


def array_specs(
    manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
) -> ArraySpecs:
    """``{name: (shape, dtype)}`` of the arrays themselves, or of the manifest's ``arrays``
    table when ``arrays`` is None."""
    if arrays is not None:
        return {name: (tuple(a.shape), a.dtype.str) for name, a in arrays.items()}
    table = manifest.get("arrays", {})
    return {name: (tuple(spec["shape"]), spec["dtype"]) for name, spec in table.items()}


def validate_manifest(
    manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
) -> None:
    """Check the semantic keys a device runtime needs (input spec, layers, embedding,
    head, classes, memory, budget) and that every array they name exists with the
    right shape and dtype. Raises :class:`BundleError` saying what is wrong."""
    need(isinstance(manifest, Mapping), f"expected a manifest mapping, got {type(manifest)}")
    missing = [k for k in _TOP_KEYS if k not in manifest]
    need(not missing, f"manifest: expected keys {list(_TOP_KEYS)}, missing {missing}")
    specs = array_specs(manifest, arrays)
    names = set(specs)

    inp = manifest["input"]
    need(isinstance(inp, Mapping), f"manifest 'input': expected an object, got {inp!r}")
    shape = shape_list(inp.get("shape"), "input.shape")
    need(len(shape) == 3, f"input.shape: expected [H, W, C], got {list(shape)}")
    for key in ("mean", "std"):
        v = inp.get(key)
        ok = (
            isinstance(v, list)
            and len(v) == shape[2]
            and all(
                isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
                for a in v
            )
        )
        need(ok, f"input.{key}: expected {shape[2]} finite numbers, got {v!r}")
    need(all(s > 0 for s in inp["std"]), f"input.std: expected values > 0, got {inp['std']}")
    scale = inp.get("scale")
    need(
        isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0,
        f"input.scale: expected a positive number, got {scale!r}",
    )

    kind, cur = check_layers(manifest["layers"], specs, shape)

    emb = manifest["embedding"]
    need(isinstance(emb, Mapping), f"manifest 'embedding': expected an object, got {emb!r}")
    d = pos_int(emb.get("bits"), "embedding.bits")
    need(
        kind == "bits" and cur == (d,),
        f"layers: expected to end in {d} embedding bits, got {kind} {list(cur)}",
    )
    need(
        emb.get("kind") in ("heaviside", "thermometer"),
        f"embedding.kind: expected 'heaviside' or 'thermometer', got {emb.get('kind')!r}",
    )

    classes = manifest["classes"]
    ok = isinstance(classes, list) and classes and all(isinstance(c, str) and c for c in classes)
    need(ok, f"manifest 'classes': expected a non-empty list of names, got {classes!r}")
    need(
        len(set(classes)) == len(classes),
        f"manifest 'classes': expected distinct names, got {classes}",
    )

    head = manifest["head"]
    need(isinstance(head, Mapping), f"manifest 'head': expected an object, got {head!r}")
    hbits = head.get("bits", 32)
    need(hbits in HEAD_BITS, f"head.bits: expected one of {HEAD_BITS}, got {hbits!r}")
    w = array_shape(specs, head.get("weight"), "head.weight", HEAD_DTYPES[hbits], 2)
    need(w == (d, len(classes)), f"head.weight: expected shape ({d}, {len(classes)}), got {w}")
    if hbits == 8:
        sc = array_shape(specs, head.get("scale"), "head.scale", "<f4", 1)
        need(sc == (len(classes),), f"head.scale: expected shape ({len(classes)},), got {sc}")
    b = array_shape(specs, head.get("bias"), "head.bias", "<f4", 1)
    need(b == (len(classes),), f"head.bias: expected shape ({len(classes)},), got {b}")
    if head.get("onnx") is not None:
        array_shape(specs, head["onnx"], "head.onnx", "|u1", 1)

    mem = manifest["memory"]
    if mem is not None:
        need(
            isinstance(mem, Mapping) and mem.get("kind") in ("gbm", "buffer"),
            "manifest 'memory': expected null or an object with kind 'gbm' or 'buffer', "
            f"got {mem!r}",
        )
        refs = mem.get("arrays", {})
        need(isinstance(refs, Mapping), f"memory.arrays: expected an object, got {refs!r}")
        for key, ref in refs.items():
            need(
                isinstance(ref, str) and ref in names,
                f"memory.arrays[{key!r}]: expected an array name, got {ref!r}",
            )

    budget = manifest["budget"]
    need(isinstance(budget, Mapping), f"manifest 'budget': expected an object, got {budget!r}")
    nbytes = budget.get("bytes")
    need(
        nbytes is None or (isinstance(nbytes, int) and not isinstance(nbytes, bool) and nbytes > 0),
        f"budget.bytes: expected null or a positive int, got {nbytes!r}",
    )
    need(
        budget.get("policy") in ("strict", "adapt"),
        f"budget.policy: expected 'strict' or 'adapt', got {budget.get('policy')!r}",
    )
