"""The base-training recipe that ``edgecl train`` and ``edgecl demo`` share (host, torch).

F+G is trained on a data set's base classes and saved as a checkpoint. F is trained on a
wider pretext task by default ("rotflipae": every base image at a random rotation and,
for data whose flips are other images, a random horizontal flip, the label naming class,
rotation and flip; random shifts; an autoencoder auxiliary loss; DESIGN.md's lesson that
the ceiling is F); "rotation" and "plain" are options. The pretext head is then replaced by
a head over the base classes, trained on the unaugmented images with F frozen.

Any image size and channel count (``(n, H, W)`` or ``(n, H, W, C)`` uint8): the backbone
is picked for the input (:func:`edgecl.train.backbones.backbone_for_input`), and the
augmentations adapt:

- **rotations**: k·90° (4 per class) for square inputs; 0° and 180° only (2 per class)
  for non-square ones, where 90° would change the shape;
- **flips** (:attr:`BaseTrainConfig.flips`, ``--flips/--no-flips``): whether a horizontal
  flip keeps the class. Default (:func:`default_flips`): off for one channel (digits,
  letters: a flipped 2 is no 2), on for three (most objects). Off, "rotflipae" uses the
  flip as a pretext label (x2 outputs) and no task ever gives a flipped image its class;
  on, every base task flips images at random and keeps their label;
- **shifts**: random shifts of up to ``round(min(H, W) / 14)`` pixels (2 for 28x28).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BASE_CLASSES", "BASE_TASKS", "BaseTrainConfig", "default_flips", "train_base"]

BASE_CLASSES = (0, 1, 2, 3, 4)
#: Base tasks F can be trained on: "rotflipae" (rotation x horizontal flip as 8 outputs
#: per class, shifts, an autoencoder auxiliary loss), "rotation" (4 per class), "plain".
BASE_TASKS = ("rotflipae", "rotation", "plain")


@dataclass(frozen=True)
class BaseTrainConfig:
    """What base training depends on: the base task, epochs (None: rotflipae 4; rotation
    and plain 3 on a small set, 1 above 60,000 images), embedding bits D, the backbone
    ("auto" or a name of :data:`edgecl.train.BACKBONES`), its conv channels (``mlp``: hidden
    sizes; None: the backbone's default) and 2x2 pools (None: fit the input), whether
    horizontal flips keep the class (None: :func:`default_flips`), torch threads and the
    seed."""

    base_task: str = "rotflipae"
    epochs: int | None = None
    n_bits: int = 512
    channels: tuple[int, ...] | None = None
    threads: int = 1
    seed: int = 0
    backbone: str = "auto"
    pools: int | None = None
    flips: bool | None = None

    def __post_init__(self) -> None:
        from edgecl.train.backbones import BACKBONE_CHOICES

        if self.base_task not in BASE_TASKS:
            raise ValueError(f"expected base_task in {BASE_TASKS}, got {self.base_task!r}")
        if self.backbone not in BACKBONE_CHOICES:
            raise ValueError(f"expected backbone in {BACKBONE_CHOICES}, got {self.backbone!r}")
        for name in ("n_bits", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"expected {name} as an int >= 1, got {v!r}")
        for name, low in (("epochs", 1), ("pools", 0)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
                raise ValueError(f"expected {name} as an int >= {low} or None, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"expected seed as an int, got {self.seed!r}")
        if self.flips is not None and not isinstance(self.flips, bool):
            raise ValueError(f"expected flips as a bool or None, got {self.flips!r}")
        if self.channels is not None and (
            not self.channels
            or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.channels)
        ):
            raise ValueError(f"expected channels as positive ints, got {self.channels!r}")

    def build(self, n_classes: int, input_shape: Sequence[int]) -> Any:
        """The backbone for ``input_shape`` (H, W, C) with ``n_classes`` outputs; a
        combination that cannot work raises ``ValueError`` naming what would."""
        from edgecl.train.backbones import backbone_for_input

        return backbone_for_input(
            self.backbone,
            n_classes,
            input_shape,
            n_bits=self.n_bits,
            channels=self.channels,
            pools=self.pools,
        )

    def check(self, input_shape: Sequence[int]) -> None:
        """Refuse, before any training, a backbone that cannot take ``input_shape``."""
        self.build(2, input_shape)


def default_flips(input_shape: Sequence[int]) -> bool:
    """Whether a horizontal flip keeps the class, by default: on for three channels
    (photos of objects), off for one (digits, letters, text)."""
    return int(input_shape[2]) == 3


def _shape(x: np.ndarray) -> tuple[int, int, int]:
    if x.ndim not in (3, 4):
        raise ValueError(f"expected images (n, H, W) or (n, H, W, C), got {x.shape}")
    return int(x.shape[1]), int(x.shape[2]), 1 if x.ndim == 3 else int(x.shape[3])


def _n_rotations(shape: Sequence[int]) -> int:
    """k·90° for a square input (4), 0° and 180° for a non-square one (2)."""
    return 4 if shape[0] == shape[1] else 2


def _rotations(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rotation-augmented base task: every image at each rotation r that keeps its
    shape (k·90° square, 0°/180° else), label class·R + r."""
    n_rot = _n_rotations(_shape(x))
    step = 4 // n_rot
    xs = [np.ascontiguousarray(np.rot90(x, r * step, axes=(1, 2))) for r in range(n_rot)]
    ys = [y * n_rot + r for r in range(n_rot)]
    return np.concatenate(xs), np.concatenate(ys)


def _with_flips(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every image and its horizontal mirror, same label (flips keep the class)."""
    return np.concatenate([x, np.ascontiguousarray(x[:, :, ::-1])]), np.concatenate([y, y])


def _bar(total: int, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="host training", unit="batch", leave=False, disable=not progress)


def _fit_pretext(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    seed: int,
    flips: bool,
    progress: bool = True,
) -> None:
    """The "rotflipae" base task: every batch, each image gets a random rotation r (of
    :func:`_n_rotations`) and a random horizontal flip f, the label (class·R + r)·2 + f
    (flips off) or class·R + r (flips on: the flip keeps the class), the batch a random
    shift of up to round(min(H, W) / 14) pixels; an autoencoder (D -> 256 -> H·W·C from the
    embedding bits, sigmoid) adds 10 x the MSE to the pixels. Adam 1e-3, batch 128; binary
    weights clipped. One progress bar over every batch of every epoch."""
    import torch
    import torch.nn.functional as F

    from edgecl.data import to_nchw
    from edgecl.train.layers import clip_weights_

    gen = torch.Generator().manual_seed(seed)
    d = int(model.head.in_features)
    h, w, c = _shape(x)
    n_rot, step = _n_rotations((h, w, c)), 4 // _n_rotations((h, w, c))
    n_flip = 1 if flips else 2
    shift = round(min(h, w) / 14)
    decoder = torch.nn.Sequential(
        torch.nn.Linear(d, 256), torch.nn.ReLU(), torch.nn.Linear(256, h * w * c)
    )
    opt = torch.optim.Adam(list(model.parameters()) + list(decoder.parameters()), lr=1e-3)
    xt = torch.from_numpy(to_nchw(x)).float()
    yt = torch.from_numpy(y)
    model.train()
    per_epoch = -(-len(yt) // 128)
    bar = _bar(epochs * per_epoch, progress)
    try:
        for epoch in range(epochs):
            perm = torch.randperm(len(yt), generator=gen)
            for i in range(0, len(yt), 128):
                j = perm[i : i + 128]
                xb, yb = xt[j], yt[j]
                sh = torch.randint(-shift, shift + 1, (2,), generator=gen)
                xb = torch.roll(xb, (int(sh[0]), int(sh[1])), (2, 3))
                k = torch.randint(0, n_rot, (len(yb),), generator=gen)
                f = torch.randint(0, 2, (len(yb),), generator=gen)
                xb = torch.stack(
                    [
                        torch.rot90(torch.flip(xi, (2,)) if fi else xi, int(ki) * step, (1, 2))
                        for xi, ki, fi in zip(xb, k, f, strict=True)
                    ]
                )
                label = (yb * n_rot + k) * n_flip + (0 if flips else f)
                z = model.features(xb)
                loss = F.cross_entropy(model.head(z), label)
                loss = loss + 10 * F.mse_loss(torch.sigmoid(decoder(z)), xb.flatten(1) / 255.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
                clip_weights_(model)
                bar.update(1)
                bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{loss.item():.4f}")
    finally:
        bar.close()
    model.eval()


def train_base(
    cfg: BaseTrainConfig,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    checkpoint: str | os.PathLike[str],
    *,
    classes: Sequence[int] = BASE_CLASSES,
    class_names: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Train F+G on ``classes`` (label values) of ``data = (x_train, y_train, x_test,
    y_test)`` and save the checkpoint; returns ``(model, summary)``. ``class_names[label]``
    names a label (default: the label as text); the checkpoint's head rows are named so.
    The pretext tasks ("rotation", "rotflipae") train F on augmented labels, then fit a
    ``len(classes)``-way head on the unaugmented images with F frozen (eval mode,
    BatchNorm statistics untouched)."""
    import torch
    import torch.nn.functional as F

    from edgecl.data import to_nchw
    from edgecl.train.checkpoint import save_checkpoint
    from edgecl.train.loop import fit

    xtr, ytr, xte, yte = data
    shape = _shape(np.asarray(xtr))
    cfg.check(shape)  # before any work, and before the seed (building draws weights)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    classes = [int(c) for c in classes]
    names = [str(c) if class_names is None else str(class_names[c]) for c in classes]
    row = {c: i for i, c in enumerate(classes)}
    base = np.isin(ytr, classes)
    xb = xtr[base]
    yb = np.array([row[int(v)] for v in ytr[base]], np.int64)
    if xb.shape[0] == 0:
        raise ValueError(f"expected training images of classes {names}, got none")
    flips = default_flips(shape) if cfg.flips is None else cfg.flips
    n_rot = _n_rotations(shape)
    rot_text = "k·90° rotations" if n_rot == 4 else "0°/180° rotations (non-square)"
    flip_text = "flips keep the class" if flips else "flips as pretext labels"
    t0 = time.perf_counter()
    if cfg.base_task == "rotflipae":
        n_out = n_rot * (1 if flips else 2) * len(classes)
        epochs = cfg.epochs if cfg.epochs is not None else 4
        xa = xb
        model = cfg.build(n_out, shape)
        log(
            f"host: training F+G ({model.config['backbone']}, {shape[0]}x{shape[1]}x"
            f"{shape[2]}) on classes {names} (rotflipae base task: {len(xb)} images x random "
            f"{rot_text}/shift, {flip_text}, {n_out} outputs + an autoencoder loss, {epochs} "
            f"epochs, D={cfg.n_bits})"
        )
        _fit_pretext(model, xb, yb, epochs=epochs, seed=cfg.seed, flips=flips, progress=progress)
    else:
        xa, ya, n_out = xb, yb, len(classes)
        if cfg.base_task == "rotation":
            xa, ya = _rotations(xb, yb)
            n_out = n_rot * len(classes)
        if flips:
            xa, ya = _with_flips(xa, ya)
        epochs = cfg.epochs if cfg.epochs is not None else (1 if len(xa) > 60_000 else 3)
        model = cfg.build(n_out, shape)
        log(
            f"host: training F+G ({model.config['backbone']}, {shape[0]}x{shape[1]}x"
            f"{shape[2]}) on classes {names} ({cfg.base_task} base task: {len(xa)} images"
            f"{', ' + rot_text if cfg.base_task == 'rotation' else ''}"
            f"{', mirrored copies' if flips else ''}, {n_out} outputs, {epochs} epochs, "
            f"D={cfg.n_bits})"
        )
        bar = _bar(epochs, progress)  # one bar, one step per epoch
        try:
            fit(
                model,
                (xa, ya),
                epochs=epochs,
                batch_size=128,
                seed=cfg.seed,
                progress=False,
                callback=lambda history: bar.update(1),
            )
        finally:
            bar.close()

    model_c = cfg.build(len(classes), shape)
    model_c.features.load_state_dict(model.features.state_dict())
    model_c.eval()

    def embed(x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            parts = [
                model_c.features(torch.from_numpy(to_nchw(x[i : i + 1000])).float())
                for i in range(0, len(x), 1000)
            ]
        return torch.cat(parts) if parts else torch.zeros((0, model_c.n_bits))

    if cfg.base_task in ("rotation", "rotflipae"):
        z = embed(xb)
        yt = torch.from_numpy(yb)
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.Adam(model_c.head.parameters(), lr=1e-2)
        for _ in range(10):
            perm = torch.randperm(len(yt), generator=gen)
            for i in range(0, len(yt), 256):
                j = perm[i : i + 256]
                loss = F.cross_entropy(model_c.head(z[j]), yt[j])
                opt.zero_grad()
                loss.backward()
                opt.step()
    else:
        model_c.head.load_state_dict(model.head.state_dict())
    model_c.eval()
    train_s = time.perf_counter() - t0
    mt = np.isin(yte, classes)
    with torch.no_grad():
        pred = model_c.head(embed(xte[mt])).argmax(1).numpy()
    truth = np.array([row[int(v)] for v in yte[mt]], np.int64)
    base_acc = float(np.mean(pred == truth)) if len(truth) else float("nan")
    log(f"host: accuracy on the test images of {names}: {base_acc:.4f}; trained in {train_s:.0f} s")
    backbone = model_c.config["backbone"]
    ckpt = save_checkpoint(
        model_c,
        checkpoint,
        class_names=names,
        meta={
            "base_task": cfg.base_task,
            "epochs": epochs,
            "seed": cfg.seed,
            "classes": classes,
            "backbone": backbone,
            "flips": flips,
            "input_shape": list(shape),
        },
    )
    return model_c, {
        "checkpoint": str(ckpt),
        "classes": classes,
        "class_names": names,
        "base_task": cfg.base_task,
        "backbone": backbone,
        "flips": flips,
        "input_shape": list(shape),
        "epochs": epochs,
        "train_images": int(len(xa)),
        "base_accuracy": base_acc,
        "train_s": train_s,
        "torch": torch.__version__,
    }
