"""A readable summary of a bundle (``edgecl info``): what it holds and how many bytes
each part takes."""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecl.bundle.container import read_bundle
from edgecl.bundle.head import head_arrays
from edgecl.bundle.manifest import Manifest, validate_manifest


@dataclass(frozen=True)
class BundleReport:
    """What a bundle holds and how many bytes each part takes.

    ``parts`` (bytes as stored): ``features`` (the layer arrays), ``head`` (W and b),
    ``head_graph`` (the ONNX head-update graph, if stored), ``learning_graphs`` (the
    onnxruntime backend's graphs, if stored), ``class_memory``.
    ``stored_bytes`` = class memory + head, what the memory budget covers;
    ``headroom_bytes`` = budget - stored bytes (``None`` without a budget).
    """

    path: str
    file_bytes: int
    sha256: str
    creator: str
    input: dict[str, Any]
    embedding: dict[str, Any]
    classes: tuple[str, ...]
    layers: tuple[dict[str, Any], ...]
    memory: dict[str, Any] | None
    parts: dict[str, int]
    stored_bytes: int
    budget_bytes: int | None
    policy: str
    headroom_bytes: int | None
    export: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(getattr(self, k)) for k in self.__dataclass_fields__}
        out["classes"] = list(self.classes)
        out["layers"] = [dict(layer) for layer in self.layers]
        return out

    def __str__(self) -> str:
        lines = [
            f"bundle       {self.path} ({self.file_bytes} bytes, sha256 {self.sha256[:16]}…)",
            f"created by   {self.creator}",
            f"input        {tuple(self.input['shape'])} (H, W, C), x * {self.input['scale']:.6g}"
            f" - mean {self.input['mean']} / std {self.input['std']}",
            f"embedding    D = {self.embedding['bits']} bits ({self.embedding['kind']})",
            f"classes      {len(self.classes)}: {', '.join(self.classes)}",
            "layers",
        ]
        w = max(len(layer["op"]) for layer in self.layers)
        for i, layer in enumerate(self.layers):
            lines.append(
                f"  {i:>3}  {layer['op']:<{w}}  {str(tuple(layer['in_shape'])):>14} -> "
                f"{str(tuple(layer['out_shape'])):<14} weights {layer['weight_bits']:>2} bit"
                f"  {layer['bytes']:>8} bytes  {layer.get('source', '')}"
            )
        if self.memory is not None:
            spec = self.memory.get("spec", {})
            lines.append(f"class memory {self.memory['kind']} {_memory_line(spec)}")
        else:
            lines.append("class memory none")
        lines.append("bytes")
        for part, n in self.parts.items():
            lines.append(f"  {part:<13}{n:>10}")
        lines.append(f"  {'stored':<13}{self.stored_bytes:>10}  (class memory + head)")
        if self.budget_bytes is None:
            lines.append(f"budget       none (policy {self.policy})")
        else:
            lines.append(
                f"budget       {self.budget_bytes} bytes, policy {self.policy}, headroom "
                f"{self.headroom_bytes} bytes"
            )
        if self.export.get("verified"):
            lines.append(
                f"verified     {self.export.get('verified_samples')} samples, max logit "
                f"difference {self.export.get('max_logit_diff'):.3g} (float32 head)"
            )
        if self.export.get("head_bits"):
            lines.append(
                f"head         stored at {self.export['head_bits']} bits; the rounding moved "
                f"the base classes' logits by at most "
                f"{self.export.get('head_rounding_max_logit_change', float('nan')):.3g}"
            )
        return "\n".join(lines)


def _memory_line(spec: Mapping[str, Any]) -> str:
    keys = [k for k in ("components", "bits", "per_class", "n_bits") if k in spec]
    cfg = spec.get("config", {}) if isinstance(spec.get("config"), Mapping) else {}
    keys_cfg = [k for k in ("components", "bits", "per_class", "selection") if k in cfg]
    parts = [f"{k}={spec[k]}" for k in keys] + [f"{k}={cfg[k]}" for k in keys_cfg]
    return ", ".join(parts)


def inspect_bundle(path: str | os.PathLike[str]) -> BundleReport:
    """Read and check a bundle as the device runtime does (:func:`validate_manifest`, on
    the arrays table before any array is read, then on the arrays) and summarise it
    (:class:`BundleReport`)."""
    path = Path(path)
    manifest, arrays = read_bundle(path, check=validate_manifest)
    typed = Manifest.from_dict(manifest, arrays)
    data = path.read_bytes()
    layers = [
        {
            "op": op.name,
            "source": op.source or "",
            "in_shape": list(op.in_shape),
            "out_shape": list(op.out_shape),
            "weight_bits": op.weight_bits,
            "bytes": sum(int(arrays[r].nbytes) for r in op.arrays()),
        }
        for op in typed.layers
    ]
    head = manifest["head"]
    parts = {
        "features": sum(layer["bytes"] for layer in layers),
        "head": sum(int(a.nbytes) for a in head_arrays(head, arrays).values()),
    }
    if head.get("onnx") is not None:
        parts["head_graph"] = int(arrays[head["onnx"]].nbytes)
    if manifest.get("graphs"):
        parts["learning_graphs"] = sum(int(arrays[r].nbytes) for r in manifest["graphs"].values())
    mem = manifest["memory"]
    parts["class_memory"] = (
        0 if mem is None else sum(int(arrays[r].nbytes) for r in mem["arrays"].values())
    )
    stored = parts["class_memory"] + parts["head"]
    budget = manifest["budget"]
    creator = manifest.get("creator", {})
    return BundleReport(
        path=str(path),
        file_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        creator=f"{creator.get('name', '?')} {creator.get('version', '?')}",
        input=copy.deepcopy(manifest["input"]),
        embedding=copy.deepcopy(manifest["embedding"]),
        classes=tuple(manifest["classes"]),
        layers=tuple(layers),
        memory=None if mem is None else copy.deepcopy(dict(mem)),
        parts=parts,
        stored_bytes=stored,
        budget_bytes=budget["bytes"],
        policy=budget["policy"],
        headroom_bytes=None if budget["bytes"] is None else budget["bytes"] - stored,
        export=copy.deepcopy(manifest.get("export", {})),
    )
