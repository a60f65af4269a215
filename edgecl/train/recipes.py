"""The base-training recipe that ``edgecl train`` and ``edgecl demo`` share (host, torch).

F+G is trained on a data set's base classes and saved as a checkpoint. F is trained on a
wider pretext task by default ("rotflipae": every base image at a random k·90° rotation
and horizontal flip, label (class·4 + k)·2 + f, random shifts, an autoencoder auxiliary
loss; DESIGN.md's lesson that the ceiling is F); "rotation" (20 classes for 5 base
classes) and "plain" are options. The pretext head is then replaced by a head over the
base classes, trained on the unaugmented images with F frozen.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BASE_CLASSES", "BASE_TASKS", "BaseTrainConfig", "train_base"]

BASE_CLASSES = (0, 1, 2, 3, 4)
#: Base tasks F can be trained on: "rotflipae" (rotation x horizontal flip as 8 outputs
#: per class, shifts, an autoencoder auxiliary loss), "rotation" (4 per class), "plain".
BASE_TASKS = ("rotflipae", "rotation", "plain")


@dataclass(frozen=True)
class BaseTrainConfig:
    """What base training depends on: the base task, epochs (None: rotflipae 4; rotation
    and plain 3 on a small set, 1 above 60,000 images), embedding bits D, the conv
    channels of :func:`edgecl.train.mnist_bnn`, torch threads and the seed."""

    base_task: str = "rotflipae"
    epochs: int | None = None
    n_bits: int = 512
    channels: tuple[int, ...] = (64, 128, 256)
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.base_task not in BASE_TASKS:
            raise ValueError(f"expected base_task in {BASE_TASKS}, got {self.base_task!r}")
        for name in ("n_bits", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"expected {name} as an int >= 1, got {v!r}")
        if self.epochs is not None and (
            isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1
        ):
            raise ValueError(f"expected epochs as an int >= 1 or None, got {self.epochs!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"expected seed as an int, got {self.seed!r}")
        if not self.channels or any(
            isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.channels
        ):
            raise ValueError(f"expected channels as positive ints, got {self.channels!r}")


def _rotations(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rotation-augmented base task: every image at k·90° (k = 0..3), label class·4 + k."""
    xs = [np.ascontiguousarray(np.rot90(x, k, axes=(1, 2))) for k in range(4)]
    ys = [y * 4 + k for k in range(4)]
    return np.concatenate(xs), np.concatenate(ys)


def _bar(total: int, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="host training", unit="batch", leave=False, disable=not progress)


def _fit_pretext(
    model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int, progress: bool = True
) -> None:
    """The "rotflipae" base task: every batch, each image gets a random rotation k·90° and
    a random horizontal flip f (label (class·4 + k)·2 + f), the batch a random shift of
    -2..2 pixels; an autoencoder (D -> 256 -> H·W from the embedding bits, sigmoid) adds
    10 x the MSE to the pixels. Adam 1e-3, batch 128; binary weights clipped. One progress
    bar over every batch of every epoch."""
    import torch
    import torch.nn.functional as F

    from edgecl.train.layers import clip_weights_

    gen = torch.Generator().manual_seed(seed)
    d = int(model.head.in_features)
    h, w = x.shape[1], x.shape[2]
    decoder = torch.nn.Sequential(
        torch.nn.Linear(d, 256), torch.nn.ReLU(), torch.nn.Linear(256, h * w)
    )
    opt = torch.optim.Adam(list(model.parameters()) + list(decoder.parameters()), lr=1e-3)
    xt = torch.from_numpy(np.ascontiguousarray(x)).float().unsqueeze(1)
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
                sh = torch.randint(-2, 3, (2,), generator=gen)
                xb = torch.roll(xb, (int(sh[0]), int(sh[1])), (2, 3))
                k = torch.randint(0, 4, (len(yb),), generator=gen)
                f = torch.randint(0, 2, (len(yb),), generator=gen)
                xb = torch.stack(
                    [
                        torch.rot90(torch.flip(xi, (2,)) if fi else xi, int(ki), (1, 2))
                        for xi, ki, fi in zip(xb, k, f, strict=True)
                    ]
                )
                label = (yb * 4 + k) * 2 + f
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
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Train F+G on ``classes`` of ``data = (x_train, y_train, x_test, y_test)`` and save
    the checkpoint; returns ``(model, summary)``. The pretext tasks ("rotation",
    "rotflipae") train F on augmented labels, then fit a ``len(classes)``-way head on the
    unaugmented images with F frozen (eval mode, BatchNorm statistics untouched)."""
    import torch
    import torch.nn.functional as F

    from edgecl.train.backbones import mnist_bnn
    from edgecl.train.checkpoint import save_checkpoint
    from edgecl.train.loop import fit

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    xtr, ytr, xte, yte = data
    classes = [int(c) for c in classes]
    row = {c: i for i, c in enumerate(classes)}
    base = np.isin(ytr, classes)
    xb = xtr[base]
    yb = np.array([row[int(v)] for v in ytr[base]], np.int64)
    if xb.shape[0] == 0:
        raise ValueError(f"expected training images of classes {classes}, got none")
    kwargs = dict(n_bits=cfg.n_bits, channels=tuple(cfg.channels))
    t0 = time.perf_counter()
    if cfg.base_task == "rotflipae":
        n_out = 8 * len(classes)
        epochs = cfg.epochs if cfg.epochs is not None else 4
        xa = xb
        log(
            f"host: training F+G on classes {classes} (rotflipae base task: {len(xb)} images "
            f"x random rotation/flip/shift, {n_out} outputs + an autoencoder loss, {epochs} "
            f"epochs, D={cfg.n_bits})"
        )
        model = mnist_bnn(n_out, **kwargs)
        _fit_pretext(model, xb, yb, epochs=epochs, seed=cfg.seed, progress=progress)
    else:
        if cfg.base_task == "rotation":
            xa, ya = _rotations(xb, yb)
            n_out = 4 * len(classes)
        else:
            xa, ya, n_out = xb, yb, len(classes)
        epochs = cfg.epochs if cfg.epochs is not None else (1 if len(xa) > 60_000 else 3)
        log(
            f"host: training F+G on classes {classes} ({cfg.base_task} base task: {len(xa)} "
            f"images, {n_out} outputs, {epochs} epochs, D={cfg.n_bits})"
        )
        model = mnist_bnn(n_out, **kwargs)
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

    model_c = mnist_bnn(len(classes), **kwargs)
    model_c.features.load_state_dict(model.features.state_dict())
    model_c.eval()

    def embed(x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            parts = [
                model_c.features(torch.from_numpy(x[i : i + 1000]).float().unsqueeze(1))
                for i in range(0, len(x), 1000)
            ]
        return torch.cat(parts)

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
    log(
        f"host: accuracy on the test images of {classes}: {base_acc:.4f}; "
        f"trained in {train_s:.0f} s"
    )
    names = [str(c) for c in classes]
    ckpt = save_checkpoint(
        model_c,
        checkpoint,
        class_names=names,
        meta={"base_task": cfg.base_task, "epochs": epochs, "seed": cfg.seed, "classes": classes},
    )
    return model_c, {
        "checkpoint": str(ckpt),
        "classes": classes,
        "base_task": cfg.base_task,
        "epochs": epochs,
        "train_images": int(len(xa)),
        "base_accuracy": base_acc,
        "train_s": train_s,
        "torch": torch.__version__,
    }
