"""torch -> device bundle: ``export_bundle(model, path, config, *, calibration, class_names)``.

One verb plus one config. The exporter checks the whole model first (an
:class:`~edgecl.errors.ExportError` names the first unsupported module), lowers it to the
device layer program (:mod:`edgecl.export.lower`), stores the float head, fits the class
memories on the base classes' calibration embeddings (computed by the device runtime
itself, so they are bit-identical to what the device will compute), verifies the device
output against torch's eval output and writes the bundle atomically.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgecl import __version__
from edgecl.base_bundle import BaseBundle, verify_embedding
from edgecl.bundle import BundleInfo, HeadSpec, round_head
from edgecl.device.runtime import Runtime
from edgecl.export.lower import check_model, lower_model
from edgecl.kernels import binary_float_dense
from edgecl.validate import check_class_names

__all__ = ["ExportConfig", "HeadConfig", "export_bundle", "torch_reference"]

#: Largest |device logit - torch logit| accepted by verification (float32 sums in
#: another order than torch's).
LOGIT_TOLERANCE = 1e-4


#: How the device stores and retrains the head G (:class:`edgecl.bundle.HeadSpec`, the
#: one head settings type of the export and the device): SGD lr, epochs, batch size,
#: weight decay, ``gbm_weight``, stored ``bits`` and whether to store the ONNX graph.
HeadConfig = HeadSpec


@dataclass(frozen=True)
class ExportConfig:
    """What goes into a bundle besides the network.

    - ``memory``: ``edgecl.memory.GBMConfig(components, bits)``,
      ``edgecl.memory.LatentBufferConfig(per_class)`` or ``None`` (no class memory);
    - ``budget``: ``edgecl.memory.Budget(bytes, policy)`` or ``None`` (unbounded);
    - ``head``: :class:`HeadConfig`;
    - ``seed``: seeds the memory fit;
    - ``verify_samples``: how many calibration samples verification compares;
    - ``allow_differing_samples``: how many of them may have embedding bits that differ
      from torch's (0: none). A float near-tie at a threshold (torch's float32 first layer
      and the device's float64 sums rounding to different sides) flips one bit, which then
      spreads through the binary layers; a lowering bug changes most samples. The counts
      are recorded in the bundle's export report.

    The embedding is taken from the model's binarizer.
    """

    memory: Any = None
    budget: Any = None
    head: HeadConfig = field(default_factory=HeadConfig)
    seed: int = 0
    verify_samples: int = 512
    allow_differing_samples: int = 0

    def __post_init__(self) -> None:
        if self.memory is not None:
            from edgecl.memory import GBMConfig, LatentBufferConfig

            if not isinstance(self.memory, (GBMConfig, LatentBufferConfig)):
                raise TypeError(
                    "expected memory to be GBMConfig, LatentBufferConfig or None, "
                    f"got {type(self.memory).__name__}"
                )
        if self.budget is not None:
            from edgecl.memory import Budget

            if not isinstance(self.budget, Budget):
                raise TypeError(f"expected budget to be a Budget or None, got {self.budget!r}")
        if not isinstance(self.head, HeadConfig):
            raise TypeError(f"expected head to be a HeadConfig, got {type(self.head).__name__}")
        for name in ("seed", "verify_samples", "allow_differing_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"expected {name} to be an int >= 0, got {v!r}")


def _check_calibration(calibration: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(calibration, (tuple, list)) or len(calibration) != 2:
        raise TypeError("expected calibration=(samples, labels) with labels the head rows")
    x, y = np.asarray(calibration[0]), np.asarray(calibration[1])
    if x.ndim not in (3, 4) or x.shape[0] == 0:
        raise ValueError(f"expected calibration samples (n, H, W) or (n, H, W, C), got {x.shape}")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"expected {x.shape[0]} integer calibration labels, got {y.dtype} {y.shape}"
        )
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(
            f"expected calibration labels in [0, {n_classes}), got [{y.min()}, {y.max()}]"
        )
    return x, y.astype(np.int64)


def torch_reference(model: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torch's eval output for raw samples: ``(embedding bits uint8 (n, D), logits)``."""
    x = np.asarray(x)
    xt = torch.from_numpy(
        np.ascontiguousarray(x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2))
    )
    with torch.no_grad():
        z = model.features(xt.float())
        logits = model.head(z)
    return z.numpy().astype(np.uint8), logits.numpy()


def export_bundle(
    model: nn.Module,
    path: str | os.PathLike[str],
    config: ExportConfig | None = None,
    *,
    calibration: tuple[np.ndarray, np.ndarray],
    class_names: Sequence[str],
    verify: bool = True,
    overwrite: bool = False,
) -> BundleInfo:
    """Export a trained model to a device bundle at ``path``.

    ``calibration`` is ``(samples, labels)``: raw samples as the loaders return them
    ((n, H, W) or (n, H, W, C), uint8 or float 0..255) of the base classes, labels the
    head rows (0..n_classes-1); it fixes the input shape, feeds the class memories and
    the verification. ``class_names`` names the head rows. With ``verify=True`` the
    device runtime's embedding bits must equal torch's eval output exactly and its
    logits be within 1e-4, or an :class:`ExportError` is raised and nothing is written.
    """
    config = ExportConfig() if config is None else config
    if not isinstance(config, ExportConfig):
        raise TypeError(f"expected an ExportConfig, got {type(config).__name__}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    check_model(model)
    # the rule the device loads the bundle with
    names = list(check_class_names(class_names, count=model.head.out_features))
    x, y = _check_calibration(calibration, len(names))
    model = copy.deepcopy(model).cpu().float().eval()
    shape = x.shape[1:] if x.ndim == 4 else x.shape[1:] + (1,)

    low = lower_model(model, shape)
    d = int(low.embedding["bits"])
    head_w = model.head.weight.detach().numpy().T.astype(np.float32).copy()  # (D, C)
    head_b = (
        model.head.bias.detach().numpy().astype(np.float32).copy()
        if model.head.bias is not None
        else np.zeros(len(names), np.float32)
    )
    head_onnx = None
    if config.head.onnx:
        from edgecl.export.onnx_head import head_update_bytes

        # the class count stays dynamic: the same graph serves classes learned later
        graph = head_update_bytes(d, None, weight_decay=config.head.weight_decay)
        head_onnx = np.frombuffer(graph, np.uint8).copy()
    base = BaseBundle(
        input=low.input,
        layers=low.layers,
        embedding=low.embedding,
        layer_arrays=low.arrays,
        head_weight=head_w,
        head_bias=head_b,
        head=config.head,
        classes=names,
        budget=config.budget,
        model={"config": copy.deepcopy(getattr(model, "config", None))},
        head_onnx=head_onnx,
    )
    runtime = base.runtime
    z_words = runtime.embed(x)
    memory, plans = base.fit_memory(config.memory, z_words, y, seed=config.seed)

    report: dict[str, Any] = {"verified": False}
    if verify:
        report = _verify(
            model, runtime, x, z_words, config.verify_samples, config.allow_differing_samples
        )
    if config.head.bits != 32:  # stored at lower precision (verified above in float32)
        rounded = round_head(head_w, config.head.bits)
        report["head_bits"] = config.head.bits
        report["head_rounding_max_logit_change"] = float(
            np.abs(
                runtime.logits_from_embedding(z_words)
                - (binary_float_dense(z_words, rounded, d) + head_b)
            ).max()
        )
    return base.write(
        path,
        memory=memory,
        plans=plans,
        export={"edgecl": __version__, "torch": torch.__version__, **report},
        overwrite=overwrite,
        reload_check=(x, z_words) if verify else None,
    )


def _verify(
    model, runtime: Runtime, x: np.ndarray, z_words: np.ndarray, limit: int, allowed: int = 0
) -> dict:
    k = min(len(x), limit) if limit else len(x)
    ref_bits, ref_logits = torch_reference(model, x[:k])
    return verify_embedding(
        runtime,
        z_words,
        ref_bits,
        ref_logits,
        allowed=allowed,
        tolerance=LOGIT_TOLERANCE,
        reference="torch's",
        hint=_near_tie_hint,
    )


def _near_tie_hint(rows: int, k: int) -> str:
    return (
        " (a few samples: probably float near-ties at a threshold, see "
        "ExportConfig.allow_differing_samples / edgecl export --allow-differing-samples)"
        if rows <= max(1, k // 100)
        else ""
    )
