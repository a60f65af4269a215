"""A whole layer program read from a manifest: :func:`parse_layers` checks every entry
(:meth:`edgecl.program.ops.Op.from_dict`) and the chain of shapes and value kinds between
them; :func:`output_kind` follows the kinds through a checked program. Torch-free."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgecl.program.checks import ArrayLike, need
from edgecl.program.ops import OPS, Op, ValueKind

__all__ = ["output_kind", "parse_layers"]

_FLOAT = ValueKind.FLOAT


def parse_layers(
    layers: object, in_shape: Sequence[int], arrays: Mapping[str, ArrayLike]
) -> tuple[Op, ...]:
    """Read and check a manifest's ``layers`` list on input of ``in_shape`` (H, W, C):
    every entry (:meth:`Op.from_dict`) and the chain (each op takes the shape and the
    kind of value the one before gives; the program starts on float). ``BundleError``
    names the first entry that is wrong."""
    need(
        isinstance(layers, list) and bool(layers),
        f"manifest 'layers': expected a non-empty list, got {layers!r}",
    )
    kind, cur = _FLOAT, tuple(in_shape)
    ops: list[Op] = []
    for i, layer in enumerate(layers):  # type: ignore[arg-type]
        what = f"layers[{i}]"
        need(isinstance(layer, Mapping), f"{what}: expected an object, got {layer!r}")
        name = layer.get("op")
        need(
            isinstance(name, str) and name in OPS,
            f"{what}: expected op in {sorted(OPS)}, got {name!r}",
        )
        cls = OPS[name]
        what = f"layers[{i}] ({name})"
        need(kind in cls.in_kinds, f"{what}: expected {cls.kinds_text()} input, got {kind}")
        need(
            layer.get("in_shape") == list(cur),
            f"{what}: expected in_shape {list(cur)}, got {layer.get('in_shape')}",
        )
        op = cls.from_dict(layer, arrays, what=what, in_shape=cur)
        kind, cur = op.out_kind(kind), op.out_shape
        ops.append(op)
    return tuple(ops)


def output_kind(ops: Sequence[Op]) -> ValueKind:
    """The kind of value a (checked) program gives: the last op's, through the chain."""
    kind = _FLOAT
    for op in ops:
        kind = op.out_kind(kind)
    return kind
