"""Pieces shared by the generative-rehearsal learners (:mod:`edgecl.train.baselines.binplay`,
:mod:`edgecl.train.baselines.dgm`): the order in which classes arrive, logits restricted to the
classes seen so far (one head over all outputs, single-head class-incremental evaluation),
soft targets from a frozen copy, and the classifier's training step with replay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgecl.train.layers import clip_weights_
from edgecl.validate import pos_int

__all__ = [
    "ClassOrder",
    "module_nbytes",
    "predict_outputs",
    "soft_cross_entropy",
    "train_classifier",
]


def _labels(y: object, n: int | None = None) -> np.ndarray:
    a = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"expected integer labels of shape (n,), got {a.dtype.name} {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"expected {n} labels (one per sample), got {a.shape[0]}")
    return a.astype(np.int64)


class ClassOrder:
    """Class labels -> output indices, in the order the classes arrive (single head)."""

    def __init__(self, n_outputs: int) -> None:
        self.n_outputs = pos_int(n_outputs, "n_outputs")
        self._classes: list[int] = []

    @property
    def classes(self) -> tuple[int, ...]:
        return tuple(self._classes)

    @property
    def n_seen(self) -> int:
        return len(self._classes)

    def check_new(self, y: np.ndarray) -> list[int]:
        """The classes of ``y`` not seen yet (sorted); refuses going past ``n_outputs``."""
        new = [int(c) for c in np.unique(y) if int(c) not in self._classes]
        if self.n_seen + len(new) > self.n_outputs:
            raise ValueError(
                f"expected at most {self.n_outputs} classes in all, got "
                f"{self.n_seen + len(new)} ({list(self._classes) + new})"
            )
        return new

    def add(self, y: np.ndarray) -> list[int]:
        new = self.check_new(y)
        self._classes.extend(new)
        return new

    def index(self, y: np.ndarray) -> torch.Tensor:
        lut = {c: i for i, c in enumerate(self._classes)}
        try:
            return torch.tensor([lut[int(v)] for v in y], dtype=torch.long)
        except KeyError as e:
            raise ValueError(f"expected labels among {self._classes}, got {e.args[0]}") from None

    def labels(self, idx: np.ndarray | torch.Tensor) -> np.ndarray:
        i = idx.numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        return np.asarray(self._classes, dtype=np.int64)[i]


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-sum_k p_k log softmax(logits)_k``, averaged over the batch (soft targets [12])."""
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def module_nbytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers as stored (their own dtypes)."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


@torch.no_grad()
def predict_outputs(
    model: nn.Module,
    x: torch.Tensor,
    n_seen: int,
    *,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 1000,
) -> np.ndarray:
    """Argmax over the first ``n_seen`` outputs (eval mode), as output indices."""
    was = model.training
    model.eval()
    out = []
    try:
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size]
            logits = model(prepare(xb) if prepare is not None else xb)[:, :n_seen]
            out.append(logits.argmax(1))
    finally:
        model.train(was)
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def train_classifier(
    model: nn.Module,
    x_new: torch.Tensor,
    y_new: torch.Tensor,
    *,
    n_seen: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    replay: Callable[[int, torch.Generator], torch.Tensor] | None = None,
    teacher: nn.Module | None = None,
    n_old: int = 0,
    replay_ratio: float = 0.0,
    soft_targets: bool = True,
    temperature: float = 1.0,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[float]:
    """Train ``model`` on new samples (hard labels, output indices) plus ``replay``-ed past
    samples labelled by ``teacher`` (a frozen copy): soft targets over its first ``n_old``
    outputs (zero on the new ones), or its argmax with ``soft_targets=False``. Each
    mini-batch of ``b`` new samples gets ``round(b * replay_ratio)`` replayed ones, all in
    one forward pass (BatchNorm sees both). Adam; binary latent weights are clipped after
    every step. Returns the mean loss of each epoch."""
    if replay is not None and (teacher is None or n_old < 1):
        raise ValueError("expected a teacher and n_old >= 1 with replay")
    prep = prepare if prepare is not None else (lambda t: t)
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    n = x_new.shape[0]
    losses = []
    model.train()
    if teacher is not None:
        teacher.eval()
    for _ in range(int(epochs)):
        perm = torch.randperm(n, generator=gen)
        tot, seen = 0.0, 0
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            xb, yb = x_new[idx], y_new[idx]
            n_rep = int(round(len(idx) * replay_ratio)) if replay is not None else 0
            if n_rep:
                xr = replay(n_rep, gen)
                with torch.no_grad():
                    t_logits = teacher(prep(xr))[:, :n_old]
                    if soft_targets:
                        p_old = F.softmax(t_logits / temperature, dim=1)
                    else:
                        p_old = F.one_hot(t_logits.argmax(1), n_old).float()
                    target = torch.zeros(n_rep, n_seen)
                    target[:, :n_old] = p_old
                logits = model(prep(torch.cat([xb, xr])))[:, :n_seen]
                loss_new = F.cross_entropy(logits[: len(idx)], yb)
                loss_old = soft_cross_entropy(logits[len(idx) :] / temperature, target)
                loss = (len(idx) * loss_new + n_rep * loss_old) / (len(idx) + n_rep)
            else:
                logits = model(prep(xb))[:, :n_seen]
                loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            clip_weights_(model)
            tot += float(loss.detach()) * len(idx)
            seen += len(idx)
        losses.append(tot / max(seen, 1))
    model.eval()
    return losses


def as_float_images(x: object, name: str = "x") -> torch.Tensor:
    """uint8 / float images ``(n, H, W)`` or ``(n, C, H, W)`` of raw pixel values 0..255 ->
    float32 ``(n, C, H, W)`` in [0, 1] (a copy; the caller's array is never touched)."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() != 4:
        raise ValueError(
            f"expected {name} of shape (n, H, W) or (n, C, H, W), got {tuple(t.shape)}"
        )
    return t.float().div(255.0)


def check_same_length(x: object, y: Sequence[int] | np.ndarray) -> np.ndarray:
    n = len(x)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("expected at least one sample, got none")
    return _labels(y, n)
