"""The layer program as a manifest stores it: the check of a ``layers`` list and what
``edgecl info`` reports per layer, delegated to the op classes of
:mod:`edgecl.program.ops` (the one registry of layer ops)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgecl.bundle.checks import ArraySpecs
from edgecl.program.ops import INT32_MAX, MAX_VALUES_PER_SAMPLE, OPS, output_kind, parse_layers

__all__ = [
    "INT32_MAX",
    "MAX_VALUES_PER_SAMPLE",
    "check_layers",
    "layer_array_refs",
    "layer_weight_bits",
]


def check_layers(
    layers: object, specs: ArraySpecs, in_shape: tuple[int, ...]
) -> tuple[str, tuple[int, ...]]:
    """Check a manifest's ``layers`` list (:func:`edgecl.program.ops.parse_layers`: every
    op known, its input kind and shape the previous layer's output, its options and the
    arrays it names; ``specs``: name -> (shape, dtype)). Returns the value kind
    (``"float"``, ``"int"`` or ``"bits"``) and shape of the program's output."""
    ops = parse_layers(layers, in_shape, specs)
    return output_kind(ops).value, ops[-1].out_shape


def layer_array_refs(layer: Mapping[str, Any]) -> list[str]:
    """The array names a (checked) layer reads, in its op's order (absent optional ones
    left out)."""
    refs = (layer.get(key) for key, _ in OPS[layer["op"]].array_keys)
    return [r for r in refs if r is not None]


def layer_weight_bits(layer: Mapping[str, Any]) -> int:
    """Bits per weight of a (checked) layer: 1 (binary), 32 (float) or 0 (no weights)."""
    return OPS[layer["op"]].weight_bits
