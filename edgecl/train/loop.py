"""The training loop: ``fit(model, data, ...)``, Adam + STE or BayesBiNN, CPU by default,
seedable, with a tqdm progress bar; DistributedDataParallel when launched by ``torchrun``.

- ``optimizer="adam"``: Adam on every parameter (latent binary weights get the STE
  gradient), a cosine learning-rate schedule to 0 over all steps, binary latent weights
  clipped to ``[-1, 1]`` after every step (:func:`~edgecl.train.layers.clip_weights_`).
- ``optimizer="bayesbinn"``: :class:`~edgecl.train.bayesbinn.BayesBiNN` on the binary
  latent weights (``N`` = training-set size, cosine schedule as the paper's Table 1),
  Adam (``float_lr``) on the float parameters (BatchNorm, float layers, head), with the
  gradients of the float parameters averaged over the MC samples.
- Thermometer binarizers: the first ``phase1_epochs`` epochs run in phase 1 (float
  relaxation), the rest in phase 2 (hard bits + STE), GBM §3.3; default half the epochs.
- ``classes=[...]`` trains on those classes only (labels become indices into
  ``classes``; the head must have ``len(classes)`` outputs) — the base task of a
  class-incremental run.
- Seeding: ``seed`` fixes the shuffling, the BayesBiNN noise and torch's global RNG;
  build the model after ``torch.manual_seed`` for a reproducible initialization.
- Distributed: when ``WORLD_SIZE > 1`` in the environment (``torchrun``), the process
  group is initialised (gloo on CPU, nccl on CUDA) unless it already is, the model is
  wrapped in ``DistributedDataParallel``, each rank takes its shard of the same
  shuffled order, and rank 0 shows the progress bar. Every rank returns the history.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from edgecl.train.bayesbinn import BayesBiNN, binary_parameters
from edgecl.train.binarizers import ThermometerBinarizer, set_thermometer_phase
from edgecl.train.dataset import images_to_tensor, remap_labels
from edgecl.train.layers import clip_weights_

__all__ = ["History", "evaluate", "fit", "predict_logits"]


@dataclass
class History:
    """Per-epoch figures of a :func:`fit` run (lists, one entry per epoch)."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    phase: list[int | None] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    optimizer: torch.optim.Optimizer | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self) if self.optimizer is None else {**asdict(_strip(self))}
        d.pop("optimizer", None)
        return d

    def __str__(self) -> str:
        rows = [f"{'epoch':>5} {'loss':>8} {'train':>7} {'val':>7} {'s':>7}"]
        for i, e in enumerate(self.epoch):
            v = self.val_acc[i]
            rows.append(
                f"{e:>5} {self.train_loss[i]:>8.4f} {self.train_acc[i]:>7.4f} "
                f"{'-' if v is None else f'{v:.4f}':>7} {self.seconds[i]:>7.1f}"
            )
        return "\n".join(rows)


def _strip(h: History) -> History:
    return History(
        h.epoch, h.train_loss, h.train_acc, h.val_acc, h.lr, h.seconds, h.phase, h.config
    )


def _dist_info() -> tuple[bool, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return False, 0, 1
    return True, int(os.environ.get("RANK", "0")), world


def _as_xy(data: Any, name: str) -> tuple[Any, np.ndarray]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"expected {name} as a pair (images, labels), got {type(data).__name__}")
    x, y = data
    y = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"expected {len(y)} images in {name} to match the labels, got {len(x)}")
    return x, y


def _prepare(
    data: Any, classes: Sequence[int] | None, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _as_xy(data, name)
    keep, labels = remap_labels(y, classes)
    if classes is not None:
        x = x[torch.from_numpy(keep)] if isinstance(x, torch.Tensor) else np.asarray(x)[keep]
    return images_to_tensor(x), torch.from_numpy(labels)


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: Any, *, batch_size: int = 1000, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Logits of ``model`` (eval mode) for images ``x`` (NumPy uint8 or a tensor), on CPU."""
    xt = images_to_tensor(x)
    was = model.training
    model.eval()
    out = []
    try:
        for i in range(0, xt.shape[0], batch_size):
            out.append(model(xt[i : i + batch_size].to(device)).cpu())
    finally:
        model.train(was)
    return torch.cat(out) if out else torch.zeros(0)


def evaluate(
    model: nn.Module,
    x: Any,
    y: Any,
    *,
    classes: Sequence[int] | None = None,
    batch_size: int = 1000,
    device: str | torch.device = "cpu",
) -> float:
    """Accuracy of ``model`` on ``(x, y)``; with ``classes``, on those classes only (labels
    mapped to indices into ``classes``, as :func:`fit` trains them)."""
    xt, yt = _prepare((x, y), classes, "the evaluation data")
    if yt.numel() == 0:
        raise ValueError("expected at least one sample to evaluate, got none")
    logits = predict_logits(model, xt, batch_size=batch_size, device=device)
    return float((logits.argmax(1) == yt).float().mean())


def fit(
    model: nn.Module,
    data: Any,
    *,
    epochs: int,
    optimizer: str = "adam",
    lr: float | None = None,
    batch_size: int = 100,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    classes: Sequence[int] | None = None,
    val_data: Any = None,
    float_lr: float = 1e-3,
    final_lr_fraction: float = 0.0,
    weight_decay: float = 0.0,
    temperature: float = 1e-10,
    mc_samples: int = 1,
    lambda_init: float = 10.0,
    bayes_optimizer: BayesBiNN | None = None,
    phase1_epochs: int | None = None,
    callback: Callable[[History], None] | None = None,
) -> History:
    """Train ``model`` on ``data = (images, labels)`` (NumPy arrays from :mod:`edgecl.data`
    or tensors; images of raw pixel values) and return a :class:`History`.

    ``lr`` defaults to 1e-3 (Adam) or 1e-4 (BayesBiNN's alpha). ``val_data = (x, y)`` is
    evaluated after every epoch (restricted to ``classes`` too). ``bayes_optimizer`` lets a
    continual run pass its BayesBiNN on (after ``posterior_as_prior_()``); the one used is
    in ``history.optimizer``. ``callback(history)`` runs after every epoch (on every rank).
    """
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"expected epochs >= 1, got {epochs!r}")
    if optimizer not in ("adam", "bayesbinn"):
        raise ValueError(f"expected optimizer 'adam' or 'bayesbinn', got {optimizer!r}")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"expected batch_size >= 1, got {batch_size!r}")
    xt, yt = _prepare(data, classes, "data")
    n = int(yt.shape[0])
    if n == 0:
        raise ValueError("expected training samples, got none (check classes)")
    n_out = getattr(getattr(model, "head", None), "out_features", None)
    if n_out is not None and int(yt.max()) >= n_out:
        raise ValueError(
            f"expected labels below the head's {n_out} outputs, got label {int(yt.max())} "
            f"(pass classes=[...] to train on a subset)"
        )
    val = _prepare(val_data, classes, "val_data") if val_data is not None else None

    distributed, rank, world = _dist_info()
    device = torch.device(device)
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(seed)
    model.to(device)
    core = model
    net: nn.Module = model
    if distributed:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=None if device.type == "cpu" else [device]
        )

    n_thermo = sum(isinstance(m, ThermometerBinarizer) for m in core.modules())
    if n_thermo:
        p1 = epochs // 2 if phase1_epochs is None else int(phase1_epochs)
        if not 0 <= p1 <= epochs:
            raise ValueError(f"expected 0 <= phase1_epochs <= {epochs}, got {phase1_epochs}")
    else:
        p1 = 0

    per_rank = math.ceil(n / world)
    steps_per_epoch = math.ceil(per_rank / batch_size)
    total_steps = epochs * steps_per_epoch

    bparams = binary_parameters(core) if optimizer == "bayesbinn" else []
    bids = {id(p) for p in bparams}
    fparams = [p for p in core.parameters() if id(p) not in bids and p.requires_grad]
    bayes = None
    if optimizer == "adam":
        base_lr = 1e-3 if lr is None else float(lr)
        opts: list[torch.optim.Optimizer] = [
            torch.optim.Adam(fparams, lr=base_lr, weight_decay=weight_decay)
        ]
        base = [base_lr]
    else:
        if not bparams:
            raise ValueError("expected binary layers for BayesBiNN, found none")
        base_lr = 1e-4 if lr is None else float(lr)
        if bayes_optimizer is not None:
            bayes = bayes_optimizer
            for g in bayes.param_groups:
                g["lr"] = base_lr
        else:
            bayes = BayesBiNN(
                bparams,
                lr=base_lr,
                num_data=n,
                temperature=temperature,
                mc_samples=mc_samples,
                lambda_init=lambda_init,
                seed=seed,
            )
        opts = [bayes, torch.optim.Adam(fparams, lr=float_lr, weight_decay=weight_decay)]
        base = [base_lr, float_lr]

    def set_lr(step: int) -> float:
        f = final_lr_fraction + (1 - final_lr_fraction) * 0.5 * (
            1 + math.cos(math.pi * step / total_steps)
        )
        for o, b in zip(opts, base, strict=True):
            for g in o.param_groups:
                g["lr"] = b * f
        return base[0] * f

    gen = torch.Generator()
    gen.manual_seed(seed)
    history = History(
        config=dict(
            epochs=epochs,
            optimizer=optimizer,
            lr=base_lr,
            batch_size=batch_size,
            seed=seed,
            classes=None if classes is None else [int(c) for c in classes],
            n_train=n,
            world_size=world,
            float_lr=float_lr if optimizer == "bayesbinn" else None,
            temperature=temperature if optimizer == "bayesbinn" else None,
            mc_samples=mc_samples if optimizer == "bayesbinn" else None,
            phase1_epochs=p1 if n_thermo else None,
        )
    )
    show = progress and rank == 0
    step = 0
    for epoch in range(epochs):
        phase = None
        if n_thermo:
            phase = 1 if epoch < p1 else 2
            set_thermometer_phase(core, phase)
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        if world > 1:
            pad = per_rank * world - n
            if pad:
                perm = torch.cat([perm, perm[:pad]])
            perm = perm[rank::world]
        net.train()
        tot_loss, tot_correct, tot_seen = 0.0, 0, 0
        bar = tqdm(
            total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", disable=not show, leave=False
        )
        for i in range(0, perm.numel(), batch_size):
            idx = perm[i : i + batch_size]
            xb, yb = xt[idx].to(device), yt[idx].to(device)
            cur_lr = set_lr(step)
            out_holder: list[torch.Tensor] = []

            def closure(xb=xb, yb=yb, out_holder=out_holder) -> torch.Tensor:
                logits = net(xb)
                loss = F.cross_entropy(logits, yb)
                loss.backward()
                out_holder.append(logits.detach())
                return loss.detach()

            for o in opts:
                o.zero_grad(set_to_none=True)
            if bayes is None:
                loss = closure()
                opts[0].step()
                clip_weights_(core)
            else:
                loss = bayes.step(closure)
                if len(out_holder) > 1:
                    for p in fparams:
                        if p.grad is not None:
                            p.grad.div_(len(out_holder))
                opts[1].step()
            step += 1
            logits = out_holder[-1]
            tot_loss += float(loss) * yb.numel()
            tot_correct += int((logits.argmax(1) == yb).sum())
            tot_seen += yb.numel()
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss):.4f}", acc=f"{tot_correct / tot_seen:.4f}")
        bar.close()
        stats = torch.tensor([tot_loss, tot_correct, tot_seen], dtype=torch.float64)
        if distributed:
            dist.all_reduce(stats)
        va = None
        if val is not None:
            va = evaluate(core, val[0], val[1].numpy(), batch_size=1000, device=device)
        history.epoch.append(epoch + 1)
        history.train_loss.append(float(stats[0] / stats[2]))
        history.train_acc.append(float(stats[1] / stats[2]))
        history.val_acc.append(va)
        history.lr.append(cur_lr)
        history.seconds.append(time.perf_counter() - t0)
        history.phase.append(phase)
        if show:
            tqdm.write(
                f"epoch {epoch + 1}/{epochs}: loss {history.train_loss[-1]:.4f} "
                f"train {history.train_acc[-1]:.4f}"
                + ("" if va is None else f" val {va:.4f}")
                + f" ({history.seconds[-1]:.1f} s)"
            )
        if callback is not None:
            callback(history)
    history.optimizer = bayes
    core.eval()
    return history
