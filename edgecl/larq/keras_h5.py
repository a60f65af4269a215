"""Read a Keras model (``.h5`` or ``.keras``) with h5py only: its layers' configs and
weights, in order. No TensorFlow, no Keras, no larq.

- ``.h5`` (Keras' legacy HDF5 format): the model config is the JSON attribute
  ``model_config``; each layer's weights are under ``model_weights/<layer>/``, in the order
  of that group's ``weight_names`` attribute.
- ``.keras`` (Keras v3 format): a zip holding ``config.json`` and ``model.weights.h5``,
  where each layer's weights are ``layers/<layer>/vars/0, 1, ...`` in the layer's own
  weight order (kernel before bias; BatchNormalization's gamma, beta, moving mean,
  moving variance, less those ``scale=False`` / ``center=False`` leave out).

A ``Sequential`` model, or a functional model whose layers form one chain (every layer
reads the one before), is read; a graph with branches is refused with
:class:`~edgecl.errors.ExportError`.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecl.errors import ExportError

__all__ = ["KerasLayer", "KerasModel", "read_keras_model"]

#: Largest config.json / weights member read from a .keras zip.
MAX_MEMBER_BYTES = 1 << 30


@dataclass(frozen=True)
class KerasLayer:
    """One layer: its ``name``, Keras ``class_name``, ``config`` and ``weights`` (in the
    layer's weight order, float arrays as stored)."""

    name: str
    class_name: str
    config: Mapping[str, Any]
    weights: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class KerasModel:
    """A model's layers in order and its per-sample input shape (H, W, C)."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[KerasLayer, ...]


def _fail(path: Path, why: str) -> ExportError:
    return ExportError(f"{path}: {why}")


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is the [larq] extra
        raise ImportError(
            "reading Keras model files needs h5py: pip install 'edgecl[larq]'"
        ) from exc
    return h5py


def _class_name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("class_name", ""))


def _layer_entries(path: Path, config: Mapping[str, Any]) -> tuple[str, list[dict], Any]:
    """(model name, the layer entries in chain order, the batch input shape if known)."""
    kind = _class_name(config)
    body = config.get("config")
    if not isinstance(body, Mapping) or not isinstance(body.get("layers"), list):
        raise _fail(path, f"expected a model config with a 'layers' list, got {kind!r}")
    layers = [ly for ly in body["layers"] if isinstance(ly, Mapping)]
    name = str(body.get("name", "model"))
    if kind == "Sequential":
        shape = body.get("build_input_shape")
        return name, layers, shape
    if kind not in ("Functional", "Model"):
        raise _fail(path, f"expected a Sequential or functional model, got {kind!r}")
    by_name = {ly.get("name") or ly.get("config", {}).get("name"): ly for ly in layers}
    # a chain: each layer's one inbound node names the layer before it
    order = []
    previous = None
    for ly in layers:
        lname = ly.get("name") or ly.get("config", {}).get("name")
        inbound = _inbound(ly)
        if _class_name(ly) == "InputLayer":
            if previous is not None:
                raise _fail(path, f"expected one input, got a second InputLayer {lname!r}")
        elif inbound != [previous]:
            raise _fail(
                path,
                f"layer {lname!r} ({_class_name(ly)}): expected a chain of layers (each "
                f"reading the one before, {previous!r}), got inputs {inbound}",
            )
        order.append(by_name[lname])
        previous = lname
    return name, order, None


def _inbound(entry: Mapping[str, Any]) -> list[str]:
    """The names of the layers a functional layer reads (both Keras 2 and 3 forms)."""
    nodes = entry.get("inbound_nodes") or []
    names: list[str] = []
    for node in nodes:
        if isinstance(node, Mapping):  # Keras 3: {"args": [{"config": {"keras_history": ...}}]}
            for arg in node.get("args", []):
                hist = (
                    arg.get("config", {}).get("keras_history") if isinstance(arg, Mapping) else None
                )
                if hist:
                    names.append(str(hist[0]))
        elif isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs]]
            names.extend(str(item[0]) for item in node if isinstance(item, list) and item)
    return names


def _input_shape(path: Path, entries: list[dict], build_shape: Any) -> tuple[int, ...]:
    for ly in entries:
        cfg = ly.get("config", {})
        shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
        if shape:
            return tuple(int(s) for s in shape[1:])
    if build_shape:
        return tuple(int(s) for s in build_shape[1:])
    raise _fail(path, "expected the model's input shape (an InputLayer or a built model)")


def _weights_h5(group, name: str) -> tuple[np.ndarray, ...]:
    if name not in group:
        return ()
    g = group[name]
    names = [
        n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])
    ]
    return tuple(np.asarray(g[n]) for n in names)


def snake_case(class_name: str) -> str:
    """Keras' ``to_snake_case``: the name a layer's weights are saved under in a
    ``.keras`` file (``QuantConv2D`` -> ``quant_conv2d``), before the ``_1, _2`` counter."""
    s = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", class_name)
    s = re.sub("([a-z])([A-Z])", r"\1_\2", s).lower()
    return s if not s.startswith("_") else "private" + s


def _weights_v3(f, name: str) -> tuple[np.ndarray, ...]:
    key = f"layers/{name}/vars"
    if key not in f:
        return ()
    g = f[key]
    return tuple(np.asarray(g[str(i)]) for i in range(len(g)))


def _read_zip_member(path: Path, z: zipfile.ZipFile, member: str) -> bytes:
    try:
        info = z.getinfo(member)
    except KeyError:
        raise _fail(path, f"expected a .keras zip holding {member!r}") from None
    if info.file_size > MAX_MEMBER_BYTES:
        raise _fail(path, f"{member}: expected at most {MAX_MEMBER_BYTES} bytes")
    return z.read(member)


def read_keras_model(path: str | os.PathLike[str]) -> KerasModel:
    """Read a ``.h5`` or ``.keras`` model file: its layers (configs and weights) in
    chain order and its input shape. :class:`ExportError` for a file that is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a Keras model file at {path}, got none")
    h5py = _h5py()
    if path.suffix == ".keras" or zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            config = json.loads(_read_zip_member(path, z, "config.json"))
            blob = _read_zip_member(path, z, "model.weights.h5")
        with h5py.File(io.BytesIO(blob), "r") as f:
            return _model(path, config, lambda name: _weights_v3(f, name), v3=True)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise _fail(path, f"expected an HDF5 Keras model (.h5), got {exc}") from exc
    with f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise _fail(path, "expected a full model (.h5 with 'model_config'), got weights only")
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        weights = f["model_weights"] if "model_weights" in f else f
        return _model(path, config, lambda name: _weights_h5(weights, name))


def _model(path: Path, config: Mapping[str, Any], weights_of, *, v3: bool = False) -> KerasModel:
    name, entries, build_shape = _layer_entries(path, config)
    shape = _input_shape(path, entries, build_shape)
    layers = []
    seen: dict[str, int] = {}
    for ly in entries:
        cfg = ly.get("config", {})
        lname = str(cfg.get("name") or ly.get("name"))
        if _class_name(ly) == "InputLayer":
            continue
        key = lname
        if v3:  # saved under the class's snake-case name, counted in layer order
            base = snake_case(_class_name(ly))
            k = seen.get(base, 0)
            seen[base] = k + 1
            key = base if k == 0 else f"{base}_{k}"
        layers.append(KerasLayer(lname, _class_name(ly), cfg, weights_of(key)))
    return KerasModel(name=name, input_shape=shape, layers=tuple(layers))
