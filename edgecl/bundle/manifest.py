"""The typed manifest: what a device runtime needs from a bundle (input spec, layer
program, embedding, head, classes, class memory, budget, export record, the optional
onnxruntime learning graphs).

:meth:`Manifest.from_dict` *is* the validation: it refuses, with
:class:`~edgecl.errors.BundleError`, anything the runtime could not load or would load
into a wrong state (shapes, dtypes, settings out of bounds, arrays nothing references,
non-finite head values, a class memory that does not match the head or the budget).
:meth:`Manifest.to_dict` writes the same manifest back; :meth:`Manifest.with_state`
gives the manifest and arrays of a new device state (classes, head, memory, budget).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecl.bundle.head import (
    HEAD_DTYPES,
    decode_head,
    encode_head,
    head_bytes_per_class,
    scale_name,
)
from edgecl.bundle.specs import (
    MEMORY_SETTING_BOUNDS,
    BudgetSpec,
    EmbeddingSpec,
    GraphsSpec,
    HeadRefs,
    HeadSpec,
    InputSpec,
    MemorySpec,
    check_class_names,
)
from edgecl.errors import BundleError
from edgecl.memory import ClassMemory, memory_from_state
from edgecl.program.checks import ArraySpecs, array_shape, need
from edgecl.program.ops import Op
from edgecl.program.parse import output_kind, parse_layers

#: The sections every device manifest has.
REQUIRED_KEYS = ("input", "layers", "embedding", "head", "classes", "memory", "budget")
#: Keys the container writes (:func:`edgecl.bundle.write_bundle`), never part of a Manifest.
CONTAINER_KEYS = ("format", "schema_version", "creator", "arrays")
_OPTIONAL_KEYS = ("base_classes", "model", "export", "graphs")


def array_specs(
    manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
) -> ArraySpecs:
    """``{name: (shape, dtype)}`` of the arrays themselves, or of the manifest's ``arrays``
    table when ``arrays`` is None."""
    if arrays is not None:
        return {name: (tuple(a.shape), a.dtype.str) for name, a in arrays.items()}
    table = manifest.get("arrays", {})
    need(isinstance(table, Mapping), "manifest 'arrays': expected an object")
    return {name: (tuple(spec["shape"]), spec["dtype"]) for name, spec in table.items()}


@dataclass(frozen=True)
class Manifest:
    """A checked device manifest. ``layers`` is the layer program, its ops read once
    (:func:`edgecl.program.parse_layers`); ``head`` the head's settings and
    ``head_refs`` its array names; ``base_classes``, ``model`` and ``export`` what the
    exporter recorded (None where absent); ``graphs`` the onnxruntime backend's learning
    graphs (None: not stored); ``extra`` any other top-level keys, kept."""

    input: InputSpec
    layers: tuple[Op, ...]
    embedding: EmbeddingSpec
    head: HeadSpec
    head_refs: HeadRefs
    classes: tuple[str, ...]
    memory: MemorySpec | None
    budget: BudgetSpec
    base_classes: tuple[str, ...] | None = None
    model: Mapping[str, Any] | None = None
    export: Mapping[str, Any] | None = None
    graphs: GraphsSpec | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> Manifest:
        """Check a manifest and return it typed (:class:`BundleError` if anything is wrong).

        With ``arrays``, their shapes, dtypes and values are checked; without, the shapes
        and dtypes of the manifest's ``arrays`` table (what a reader can check before it
        reads any array member)."""
        return cls._read(d, arrays)[0]

    @classmethod
    def load(
        cls, d: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> tuple[Manifest, ClassMemory | None]:
        """:meth:`from_dict` with the arrays, and the class memory the check rebuilt from
        them (None when the bundle stores none), so a runtime builds it once."""
        return cls._read(d, arrays)

    @classmethod
    def _read(
        cls, d: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None
    ) -> tuple[Manifest, ClassMemory | None]:
        need(isinstance(d, Mapping), f"expected a manifest mapping, got {type(d).__name__}")
        missing = [k for k in REQUIRED_KEYS if k not in d]
        need(not missing, f"manifest: expected keys {list(REQUIRED_KEYS)}, missing {missing}")
        specs = array_specs(d, arrays)

        inp = InputSpec.from_dict(d["input"])
        try:
            ops = parse_layers(d["layers"], inp.shape, specs)
        except (TypeError, KeyError, ValueError, OverflowError) as exc:
            if isinstance(exc, BundleError):
                raise
            raise BundleError(
                f"manifest 'layers': expected a valid layer program, got: {exc}"
            ) from exc
        emb = EmbeddingSpec.from_dict(d["embedding"])
        kind, out = output_kind(ops).value, ops[-1].out_shape
        need(
            kind == "bits" and out == (emb.bits,),
            f"layers: expected to end in {emb.bits} embedding bits, got {kind} {list(out)}",
        )
        classes = check_class_names(d["classes"], "classes")
        head = HeadSpec.from_dict(d["head"])
        refs = HeadRefs.from_dict(d["head"])
        _check_head_shapes(specs, head, refs, emb.bits, len(classes))
        memory = MemorySpec.from_dict(d["memory"])
        if memory is not None:
            for key, ref in memory.arrays.items():
                need(ref in specs, f"memory.arrays[{key!r}]: expected an array name, got {ref!r}")
        try:
            budget = BudgetSpec.from_dict(d["budget"])
        except ValueError as exc:  # (BudgetSpec's own check; from_dict's come first)
            raise BundleError(f"manifest 'budget': {exc}") from exc
        optional: dict[str, Any] = {}
        if d.get("base_classes") is not None:
            optional["base_classes"] = check_class_names(d["base_classes"], "base_classes")
        for key in ("model", "export"):
            v = d.get(key)
            need(v is None or isinstance(v, Mapping), f"manifest {key!r}: expected an object")
            optional[key] = None if v is None else copy.deepcopy(dict(v))
        optional["graphs"] = GraphsSpec.from_dict(d.get("graphs"))
        if optional["graphs"] is not None:
            for name, ref in optional["graphs"].refs.items():
                array_shape(specs, ref, f"graphs.{name}", "|u1", 1)
        known = REQUIRED_KEYS + CONTAINER_KEYS + _OPTIONAL_KEYS
        manifest = cls(
            input=inp,
            layers=ops,
            embedding=emb,
            head=head,
            head_refs=refs,
            classes=classes,
            memory=memory,
            budget=budget,
            extra={k: copy.deepcopy(v) for k, v in d.items() if k not in known},
            **optional,
        )
        unused = sorted(set(specs) - set(manifest.array_names()))
        need(not unused, f"manifest: expected every array referenced, got unreferenced {unused}")
        memory = None if arrays is None else manifest._check_values(arrays)
        return manifest, memory

    def array_names(self) -> tuple[str, ...]:
        """Every array the manifest references: layers, head, class memory."""
        names = [r for op in self.layers for r in op.arrays()]
        names += self.head_refs.names()
        if self.memory is not None:
            names += self.memory.arrays.values()
        if self.graphs is not None:
            names += self.graphs.names()
        return tuple(dict.fromkeys(names))

    def _check_values(self, arrays: Mapping[str, np.ndarray]) -> ClassMemory | None:
        """Check the head's and the class memory's values; return the class memory."""
        refs, bits = self.head_refs, self.head.bits
        stored = {"weight": arrays[refs.weight]}
        if refs.scale is not None:
            scale = arrays[refs.scale]
            need(
                bool(np.isfinite(scale).all() and (scale > 0).all()),
                f"head.scale ({refs.scale}): expected finite values > 0, got NaN, inf or <= 0",
            )
            stored["scale"] = scale
        with np.errstate(all="ignore"):
            weight = decode_head(stored, bits)
        need(bool(np.isfinite(weight).all()), "head.weight: expected finite values, got NaN or inf")
        need(
            bool(np.isfinite(arrays[refs.bias]).all()),
            f"head.bias ({refs.bias}): expected finite values, got NaN or inf",
        )
        memory = None if self.memory is None else self._check_memory(arrays)
        memory_bytes = 0 if memory is None else int(memory.nbytes)
        head_bytes = head_bytes_per_class(self.embedding.bits, bits) * len(self.classes)
        budget = self.budget.bytes
        need(
            budget is None or memory_bytes + head_bytes <= budget,
            f"budget.bytes: expected at least the stored bytes ({memory_bytes + head_bytes}: "
            f"class memory {memory_bytes}, head {head_bytes}), got {budget}",
        )
        return memory

    def _check_memory(self, arrays: Mapping[str, np.ndarray]) -> ClassMemory:
        """Rebuild the class memory as the runtime uses it, and check it."""
        spec = self.memory  # type: ignore[union-attr]
        need(
            spec.spec.get("kind") == spec.kind,  # type: ignore[union-attr]
            f"memory.spec: expected kind {spec.kind!r}, got {spec.spec.get('kind')!r:.100}",  # type: ignore[union-attr]
        )
        for key, ref in spec.arrays.items():  # type: ignore[union-attr]
            values = arrays[ref]
            need(
                values.dtype.kind != "f" or bool(np.isfinite(values).all()),
                f"memory.arrays[{key!r}] ({ref}): expected finite values, got NaN or inf",
            )
        try:
            memory = memory_from_state(
                spec.spec,  # type: ignore[union-attr]
                {key: arrays[ref] for key, ref in spec.arrays.items()},  # type: ignore[union-attr]
            )
        except BundleError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            raise BundleError(
                f"manifest 'memory': expected a valid class memory, got: {exc}"
            ) from exc
        need(
            memory.n_bits == self.embedding.bits,
            f"memory: expected D={self.embedding.bits} bits, got D={memory.n_bits}",
        )
        config = getattr(memory, "config", None)
        for key, top in MEMORY_SETTING_BOUNDS.items():
            value = getattr(config, key, None)
            need(
                value is None or value <= top,
                f"memory.spec.config.{key}: expected at most {top}, got {value!r}",
            )
        absent = [c for c in memory.classes if c not in self.classes]
        need(not absent, f"memory: expected its classes among the head's, got {absent!r:.200}")
        return memory

    # -- writing ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The manifest as a bundle stores it (without the container's keys)."""
        out: dict[str, Any] = copy.deepcopy(dict(self.extra))
        refs = self.head_refs
        head = {"weight": refs.weight, "bias": refs.bias, "bits": self.head.bits, "onnx": refs.onnx}
        if refs.scale is not None:
            head["scale"] = refs.scale
        head.update(self.head.to_dict())
        out.update(
            {
                "input": self.input.to_dict(),
                "layers": [op.to_dict() for op in self.layers],
                "embedding": self.embedding.to_dict(),
                "head": head,
                "classes": list(self.classes),
                "memory": None if self.memory is None else self.memory.to_dict(),
                "budget": self.budget.to_dict(),
            }
        )
        if self.base_classes is not None:
            out["base_classes"] = list(self.base_classes)
        for key in ("model", "export"):
            if getattr(self, key) is not None:
                out[key] = copy.deepcopy(dict(getattr(self, key)))
        if self.graphs is not None:
            out["graphs"] = self.graphs.to_dict()
        return out

    def with_state(
        self,
        arrays: Mapping[str, np.ndarray],
        *,
        classes: Sequence[str],
        head_weight: np.ndarray,
        head_bias: np.ndarray,
        memory: Any,
        budget: BudgetSpec,
        head: HeadSpec | None = None,
        memory_extra: Mapping[str, Any] | None = None,
    ) -> tuple[Manifest, dict[str, np.ndarray]]:
        """The manifest and arrays of a new device state, the layer program kept.

        ``head_weight`` float32 (D, C) is stored at ``head.bits`` (default: this
        manifest's head settings; int8 with its scale named :func:`scale_name`),
        ``head_bias`` float32 (C,); ``memory`` a class memory (``kind``, ``nbytes``,
        ``to_state()``) or None; ``memory_extra`` the memory record's other keys (default:
        the ones this manifest's memory record has). The old head and memory arrays are
        dropped; ``arrays`` is not changed."""
        head = self.head if head is None else head
        old = set(self.head_refs.names()) - {self.head_refs.onnx}
        if self.memory is not None:
            old |= set(self.memory.arrays.values())
        out = {k: v for k, v in arrays.items() if k not in old}
        stored = encode_head(head_weight, head.bits)
        refs = dataclasses.replace(
            self.head_refs, scale=scale_name(self.head_refs.weight) if "scale" in stored else None
        )
        out[refs.weight] = stored["weight"]
        out[refs.bias] = np.array(head_bias, np.float32, copy=True)
        if refs.scale is not None:
            out[refs.scale] = stored["scale"]
        mem_spec = None
        if memory is not None:
            spec, mem_arrays = memory.to_state()
            mem_refs = {key: f"memory.{key}" for key in sorted(mem_arrays)}
            if memory_extra is None:
                memory_extra = {} if self.memory is None else self.memory.extra
            mem_spec = MemorySpec(
                kind=memory.kind,
                spec=spec,
                arrays=mem_refs,
                nbytes=int(memory.nbytes),
                head_bytes_per_class=head_bytes_per_class(self.embedding.bits, head.bits),
                extra=copy.deepcopy(dict(memory_extra)),
            )
            for key, ref in mem_refs.items():
                out[ref] = np.asarray(mem_arrays[key])
        manifest = dataclasses.replace(
            self,
            head=dataclasses.replace(head, onnx=refs.onnx is not None),
            head_refs=refs,
            classes=tuple(classes),
            memory=mem_spec,
            budget=budget,
        )
        return manifest, out


def _check_head_shapes(
    specs: ArraySpecs, head: HeadSpec, refs: HeadRefs, n_bits: int, n_classes: int
) -> None:
    w = array_shape(specs, refs.weight, "head.weight", HEAD_DTYPES[head.bits], 2)
    need(w == (n_bits, n_classes), f"head.weight: expected shape ({n_bits}, {n_classes}), got {w}")
    if head.bits == 8:
        sc = array_shape(specs, refs.scale, "head.scale", "<f4", 1)
        need(sc == (n_classes,), f"head.scale: expected shape ({n_classes},), got {sc}")
    b = array_shape(specs, refs.bias, "head.bias", "<f4", 1)
    need(b == (n_classes,), f"head.bias: expected shape ({n_classes},), got {b}")
    if refs.onnx is not None:
        array_shape(specs, refs.onnx, "head.onnx", "|u1", 1)


def validate_manifest(
    manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
) -> None:
    """Check the semantic keys a device runtime needs (:meth:`Manifest.from_dict`):
    input spec, layers, embedding, head, classes, memory, budget, every array they name
    (with ``arrays``: and its values). Raises :class:`BundleError` saying what is wrong."""
    Manifest.from_dict(manifest, arrays)
