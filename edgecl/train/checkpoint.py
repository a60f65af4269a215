"""Checkpoints: a trained :class:`~edgecl.train.backbones.BinaryNet` with its class names.

A checkpoint is ``torch.save`` of a plain dict (tensors, strings, numbers, lists, dicts
only, so it loads with ``torch.load(weights_only=True)``)::

    {"format": "edgecl-checkpoint", "version": 1,
     "config": model.config, "state_dict": {...}, "class_names": [...], "meta": {...}}

:func:`save_checkpoint` writes atomically (a temporary file in the same folder, fsync,
rename), so a crash mid-save leaves the old file intact. :func:`load_checkpoint`
rebuilds the model from ``config``, loads the weights (strict) and returns it in eval
mode with an info dict; a missing file raises ``FileNotFoundError``, anything else that
is not a valid checkpoint raises :class:`CheckpointError` saying what was expected.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from edgecl.errors import CheckpointError
from edgecl.train.backbones import BinaryNet, build_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "edgecl-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(
    model: BinaryNet,
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (config + weights), its ``class_names`` (one per head row) and
    training ``meta`` to ``path`` atomically; returns the path."""
    if not isinstance(model, BinaryNet):
        raise TypeError(f"expected a BinaryNet, got {type(model).__name__}")
    if isinstance(class_names, str):
        raise TypeError("expected a sequence of class names, got a single str")
    names = [str(c) for c in class_names]
    if len(names) != model.n_classes:
        raise ValueError(
            f"expected {model.n_classes} class names (one per head row), got {len(names)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"expected distinct class names, got {names}")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"expected meta to be a dict or None, got {type(meta).__name__}")
    try:
        meta_plain = json.loads(json.dumps(meta if meta is not None else {}))
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"expected meta of plain JSON values (dict, list, str, number), got {e}"
        ) from e
    target = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": copy.deepcopy(model.config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "class_names": names,
        "meta": meta_plain,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> tuple[BinaryNet, dict[str, Any]]:
    """Load a checkpoint: ``(model in eval mode, info)`` where ``info`` holds
    ``class_names``, ``meta``, ``config``, ``format`` and ``version``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt or foreign file
        raise CheckpointError(
            f"{p}: expected an edgecl checkpoint (torch.save of a dict), could not read it: {e}"
        ) from e
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{p}: expected format {CHECKPOINT_FORMAT!r}, got {got!r}")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{p}: expected checkpoint version {CHECKPOINT_VERSION}, got {payload.get('version')!r}"
        )
    for key in ("config", "state_dict", "class_names"):
        if key not in payload:
            raise CheckpointError(f"{p}: expected a {key!r} entry, found none")
    try:
        model = build_model(payload["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{p}: the model config cannot be rebuilt: {e}") from e
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{p}: the weights do not fit the model config: {e}") from e
    names = list(payload["class_names"])
    if len(names) != model.n_classes:
        raise CheckpointError(f"{p}: expected {model.n_classes} class names, got {len(names)}")
    model.eval()
    info = {
        "format": payload["format"],
        "version": payload["version"],
        "config": payload["config"],
        "class_names": names,
        "meta": payload.get("meta", {}),
    }
    return model, info
