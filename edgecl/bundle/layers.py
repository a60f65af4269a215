"""The device layer program as a manifest stores it: the ops, what each one reads, and
the check of a ``layers`` list against the arrays and the input shape.

Values flow as ``float`` (float32 NHWC or (N, F)), ``int`` (int32 accumulators) or
``bits`` (uint64 words packed along the last axis, :mod:`edgecl.kernels.bits`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from edgecl.bundle.checks import ArraySpecs, array_shape, need, pos_int, shape_list
from edgecl.kernels.bits import n_words

#: Largest value an int32 accumulator holds (a dense offset must keep every sum inside).
INT32_MAX = 2**31 - 1
#: Most values one layer may output per sample (bounds the working memory of a forward).
MAX_VALUES_PER_SAMPLE = 1 << 24

#: Layer operations of the device program and the arrays each one names.
LAYER_OPS: dict[str, dict[str, Any]] = {
    # float conv on float NHWC: weight (O, kh, kw, C) float32; pads (top, bottom, left, right)
    "conv2d_float": {"arrays": ("weight", "bias?"), "in": "float", "out": "float"},
    # float dense: weight (F, O) float32
    "dense_float": {"arrays": ("weight", "bias?"), "in": "float", "out": "float"},
    # per-channel y = x * scale + shift in float32 (a BatchNorm not followed by a sign)
    "affine": {"arrays": ("scale", "shift"), "in": "float|int", "out": "float"},
    "maxpool_float": {"arrays": (), "in": "float", "out": "float"},
    "maxpool_bits": {"arrays": (), "in": "bits", "out": "bits"},
    # (H, W, C) -> (H*W*C,) in H, W, C order; bits keep n_words(C) words per pixel
    "flatten": {"arrays": (), "in": "float|bits", "out": "float|bits"},
    # bit = acc >= t (acc <= t where flip); each channel repeated `repeat` times first
    "threshold": {"arrays": ("thresholds", "flip"), "in": "int", "out": "bits"},
    "threshold_float": {"arrays": ("thresholds", "flip"), "in": "float", "out": "bits"},
    # ±1 conv on bits: weight (O, kh, kw, n_words(C)) uint64
    "conv2d_binary": {"arrays": ("weight",), "in": "bits", "out": "int"},
    # ±1 dense on bits: weight (O, words) uint64; acc = binary_dense(x, w, n) + offset
    "dense_binary": {"arrays": ("weight",), "in": "bits", "out": "int"},
}


def check_layers(
    layers: object, specs: ArraySpecs, in_shape: tuple[int, ...]
) -> tuple[str, tuple[int, ...]]:
    """Check a manifest's ``layers`` list: every op known, its input kind and shape the
    previous layer's output, its options and the arrays it names (``specs``: name ->
    (shape, dtype)). Returns the value kind and shape of the program's output."""
    need(
        isinstance(layers, list) and layers,
        f"manifest 'layers': expected a non-empty list, got {layers!r}",
    )
    kind, cur = "float", in_shape
    for i, layer in enumerate(layers):
        what = f"layers[{i}]"
        need(isinstance(layer, Mapping), f"{what}: expected an object, got {layer!r}")
        op = layer.get("op")
        need(op in LAYER_OPS, f"{what}: expected op in {sorted(LAYER_OPS)}, got {op!r}")
        what = f"layers[{i}] ({op})"
        need(
            kind in LAYER_OPS[op]["in"].split("|"),
            f"{what}: expected {LAYER_OPS[op]['in']} input, got {kind}",
        )
        need(
            layer.get("in_shape") == list(cur),
            f"{what}: expected in_shape {list(cur)}, got {layer.get('in_shape')}",
        )
        out = shape_list(layer.get("out_shape"), f"{what}.out_shape")
        for key in LAYER_OPS[op]["arrays"]:
            optional = key.endswith("?")
            key = key.rstrip("?")
            if optional and layer.get(key) is None:
                continue
            need(key in layer, f"{what}: expected an array reference {key!r}")
        if op == "conv2d_float":
            need(len(cur) == 3, f"{what}: expected (H, W, C) input, got {list(cur)}")
            o, kh, kw, c = array_shape(specs, layer["weight"], f"{what}.weight", "<f4", 4)
            need(c == cur[2], f"{what}.weight: expected {cur[2]} input channels, got {c}")
            pads = layer.get("pads")
            need(
                isinstance(pads, list)
                and len(pads) == 4
                and all(isinstance(p, int) and p >= 0 for p in pads),
                f"{what}.pads: expected 4 ints >= 0, got {pads!r}",
            )
            s = pos_int(layer.get("stride"), f"{what}.stride")
            ho = (cur[0] + pads[0] + pads[1] - kh) // s + 1
            wo = (cur[1] + pads[2] + pads[3] - kw) // s + 1
            need(out == (ho, wo, o), f"{what}: expected out_shape {[ho, wo, o]}, got {list(out)}")
            need(
                isinstance(layer.get("pad_value"), (int, float)),
                f"{what}.pad_value: expected a number",
            )
            if layer.get("bias") is not None:
                need(
                    array_shape(specs, layer["bias"], f"{what}.bias", "<f4") == (o,),
                    f"{what}.bias: expected shape ({o},)",
                )
        elif op == "dense_float":
            need(len(cur) == 1, f"{what}: expected (F,) input, got {list(cur)}")
            f, o = array_shape(specs, layer["weight"], f"{what}.weight", "<f4", 2)
            need(
                f == cur[0] and out == (o,),
                f"{what}.weight: expected ({cur[0]}, {out[0]}), got ({f}, {o})",
            )
            if layer.get("bias") is not None:
                need(
                    array_shape(specs, layer["bias"], f"{what}.bias", "<f4") == (o,),
                    f"{what}.bias: expected shape ({o},)",
                )
        elif op == "affine":
            for key in ("scale", "shift"):
                need(
                    array_shape(specs, layer[key], f"{what}.{key}", "<f4") == (cur[-1],),
                    f"{what}.{key}: expected shape ({cur[-1]},)",
                )
            need(out == cur, f"{what}: expected out_shape {list(cur)}, got {list(out)}")
        elif op in ("maxpool_float", "maxpool_bits"):
            size = pos_int(layer.get("size"), f"{what}.size")
            s = pos_int(layer.get("stride"), f"{what}.stride")
            need(
                len(cur) == 3 and cur[0] >= size and cur[1] >= size,
                f"{what}: expected (H, W, C) input of at least {size}x{size}, got {list(cur)}",
            )
            exp = ((cur[0] - size) // s + 1, (cur[1] - size) // s + 1, cur[2])
            need(out == exp, f"{what}: expected out_shape {list(exp)}, got {list(out)}")
        elif op == "flatten":
            need(
                len(cur) == 3 and out == (cur[0] * cur[1] * cur[2],),
                f"{what}: expected (H, W, C) -> (H*W*C,), got {list(cur)} -> {list(out)}",
            )
        elif op in ("threshold", "threshold_float"):
            r = pos_int(layer.get("repeat"), f"{what}.repeat")
            dt = "<i4" if op == "threshold" else "<f4"
            n = cur[-1] * r
            need(
                array_shape(specs, layer["thresholds"], f"{what}.thresholds", dt) == (n,),
                f"{what}.thresholds: expected shape ({n},)",
            )
            need(
                array_shape(specs, layer["flip"], f"{what}.flip", "|b1") == (n,),
                f"{what}.flip: expected shape ({n},)",
            )
            need(
                out == cur[:-1] + (n,),
                f"{what}: expected out_shape {list(cur[:-1] + (n,))}, got {list(out)}",
            )
        elif op == "conv2d_binary":
            need(len(cur) == 3, f"{what}: expected (H, W, C) input, got {list(cur)}")
            o, kh, kw, cw = array_shape(specs, layer["weight"], f"{what}.weight", "<u8", 4)

            need(
                cw == n_words(cur[2]),
                f"{what}.weight: expected {n_words(cur[2])} words per tap, got {cw}",
            )
            need(
                layer.get("padding") in ("same", "valid"),
                f"{what}.padding: expected 'same' or 'valid'",
            )
            need(layer.get("pad_value") in (0, 1), f"{what}.pad_value: expected 0 or 1")
            s = pos_int(layer.get("stride"), f"{what}.stride")
            ph, pw = (kh // 2, kw // 2) if layer["padding"] == "same" else (0, 0)
            exp = ((cur[0] + 2 * ph - kh) // s + 1, (cur[1] + 2 * pw - kw) // s + 1, o)
            need(out == exp, f"{what}: expected out_shape {list(exp)}, got {list(out)}")
        elif op == "dense_binary":
            need(len(cur) == 1, f"{what}: expected (F,) input, got {list(cur)}")
            o, words = array_shape(specs, layer["weight"], f"{what}.weight", "<u8", 2)
            n = pos_int(layer.get("n"), f"{what}.n")
            offset = layer.get("offset")
            need(
                isinstance(offset, int)
                and not isinstance(offset, bool)
                and abs(offset) + n <= INT32_MAX,
                f"{what}.offset: expected an int with |offset| + n <= {INT32_MAX} (int32 "
                f"accumulators), got {offset!r}",
            )
            need(out == (o,), f"{what}: expected out_shape [{o}], got {list(out)}")

            need(
                words == n_words(n),
                f"{what}.weight: expected {n_words(n)} words for n={n}, got {words}",
            )
        kind = LAYER_OPS[op]["out"] if "|" not in LAYER_OPS[op]["out"] else kind
        need(
            math.prod(out) <= MAX_VALUES_PER_SAMPLE,
            f"{what}: expected at most {MAX_VALUES_PER_SAMPLE} values per sample, got "
            f"out_shape {list(out)}",
        )
        cur = out
    return kind, cur


def layer_array_refs(layer: Mapping[str, Any]) -> list[str]:
    """The array names a (checked) layer reads, in its op's order (absent optional ones
    left out)."""
    refs = [layer.get(k.rstrip("?")) for k in LAYER_OPS[layer["op"]]["arrays"]]
    return [r for r in refs if r is not None]


def layer_weight_bits(layer: Mapping[str, Any]) -> int:
    """Bits per weight of a (checked) layer: 1 (binary), 32 (float) or 0 (no weights)."""
    op = layer["op"]
    return 1 if op in ("conv2d_binary", "dense_binary") else (32 if op in _FLOAT_WEIGHTS else 0)


_FLOAT_WEIGHTS = ("conv2d_float", "dense_float")
