"""Dynamic Generative Memory (dgm paper): a conditional generator whose weights (DGMw) or
activations (DGMa) are gated per task by learnable binary masks, trained as an AC-GAN
whose discriminator is also the classifier.

- :class:`MaskedLinear` (eq. 1): ``y = act((m^t o W) x)``; DGMw: ``m^t`` shaped like ``W``
  (and one entry per bias); DGMa: one entry per output unit (a row of ``W`` and its bias).
  During task ``t`` the mask is ``sigmoid(s * e^t)`` (eq. 2) of real embeddings ``e^t``
  (initialised to 0: mask 0.5); when the task ends it is stored binary, ``e^t > 0`` (the
  limit ``s -> inf``), and past tasks always run on their binary masks.
- :func:`annealed_scale` (eqs. 3-4): ``s`` from ``1/s^i_max`` to ``s^i_max`` within epoch
  ``i`` (local), ``s^i_max`` from ``1/s_max`` to ``s_max`` over the epochs (global); DGMa
  uses the global schedule only.
- Gradient blocking (eq. 5): ``g' = (1 - m^{<=t-1}) g`` with the cumulated binary mask of
  the finished tasks (elementwise max), so weights reserved by a past task get a zero
  gradient; with a fresh Adam per task and no weight decay their values never change.
- Sparsity (eq. 6): ``R = sum m^t (1 - m^{<t}) / sum (1 - m^{<t})`` over the masked
  layers, weighted by ``lambda_RU * S_t / S_free`` (§3.3).
- Expansion (§3.2): after task ``t``, a hidden layer with ``delta`` newly reserved units
  (DGMa) gains ``delta`` output units; with ``delta`` newly reserved weights and fan-in
  ``n`` (DGMw) it gains ``ceil(delta / n)``; the next layer gains the matching inputs. New
  entries are free and masked off for every past task, so the free capacity stays constant.
- :class:`ACDiscriminator` (§3.3): shared trunk, a WGAN critic output and a classifier over
  all classes; the loss ``L_D = L_c + L_s + lambda_GP L_gp`` (gradient penalty of [6]) and
  the generator's ``L_G = L_s + L_c(fake) + lambda_RU alpha R``. The classifier trains on
  the real samples of the task plus samples of the past classes from the generator (their
  task's binary mask), one per real sample and past class / current classes.

Sized for CPU: a dense generator (the paper's is a 3-layer DCGAN) and a small conv critic.
The networks live in :mod:`edgecl.train.baselines.dgm_nets` (re-exported here); this module
is the training loop, :class:`DGM`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from edgecl.train.baselines._rehearsal import (
    ClassOrder,
    as_float_images,
    check_same_length,
    predict_outputs,
)
from edgecl.train.baselines.dgm_nets import (
    ACDiscriminator,
    MaskedGenerator,
    MaskedLinear,
    annealed_scale,
    gradient_penalty,
    sparsity_regularizer,
)
from edgecl.validate import pos_int

__all__ = [
    "DGM",
    "ACDiscriminator",
    "DGMConfig",
    "DGMTaskReport",
    "MaskedGenerator",
    "MaskedLinear",
    "annealed_scale",
    "gradient_penalty",
    "sparsity_regularizer",
]


@dataclass(frozen=True)
class DGMConfig:
    """Training of one task (§3.3): ``epochs`` over its samples in mini-batches of
    ``batch_size``; Adam (``lr``, betas ``(0.5, 0.9)``) for G, D and the mask embeddings
    (``mask_lr``); ``s_max`` of eqs. 3-4; ``lambda_ru`` (eq. 6), ``lambda_gp``; ``local_anneal``
    (eq. 4; DGMa uses the global schedule only); ``expand`` (§3.2)."""

    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-4
    mask_lr: float = 1e-2
    s_max: float = 400.0
    lambda_ru: float = 0.75
    lambda_gp: float = 10.0
    cls_weight: float = 1.0
    local_anneal: bool = True
    expand: bool = True

    def __post_init__(self) -> None:
        pos_int(self.epochs, "epochs")
        pos_int(self.batch_size, "batch_size")
        if not (self.lr > 0 and self.mask_lr > 0 and self.s_max >= 1):
            raise ValueError(
                f"expected lr > 0, mask_lr > 0 and s_max >= 1, "
                f"got {self.lr}, {self.mask_lr}, {self.s_max}"
            )
        if not (self.lambda_ru >= 0 and self.lambda_gp >= 0 and self.cls_weight >= 0):
            raise ValueError("expected non-negative lambda_ru, lambda_gp and cls_weight")


@dataclass
class DGMTaskReport:
    """What :meth:`DGM.learn_task` did: losses per epoch, units reserved and added, bytes."""

    classes: list[int]
    n_new: int
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    reg: list[float] = field(default_factory=list)
    growth: list[int] = field(default_factory=list)
    free_before: int = 0
    free_after: int = 0
    reserved_new: int = 0
    stored_nbytes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DGM:
    """Class-incremental learning with Dynamic Generative Memory (§3.1-3.3).

    ``learn_task(x, y)``: images as raw pixel values (uint8 ``(n, 28, 28)``), the task's
    classes all new. The discriminator's classifier is the model evaluated by
    :meth:`predict`; past classes are replayed to it from the generator, which never
    replays to itself (each class is drawn with the binary mask of its own task).
    """

    def __init__(
        self,
        generator: MaskedGenerator,
        discriminator: ACDiscriminator,
        *,
        config: DGMConfig | None = None,
    ) -> None:
        if discriminator.classifier.out_features != generator.n_classes:
            raise ValueError(
                f"expected a discriminator with {generator.n_classes} class outputs (the "
                f"generator's), got {discriminator.classifier.out_features}"
            )
        self.generator = generator
        self.discriminator = discriminator
        self.config = DGMConfig() if config is None else config
        self.order = ClassOrder(generator.n_classes)
        self.task_of: list[int] = []  # output index -> task
        self.reports: list[DGMTaskReport] = []

    @property
    def classes_(self) -> tuple[int, ...]:
        return self.order.classes

    @torch.no_grad()
    def generate(
        self, outputs: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Images of past classes (output indices) from their tasks' binary masks."""
        g = self.generator
        z = torch.randn(len(outputs), g.noise_dim, generator=generator)
        out = torch.empty(len(outputs), *g.out_shape)
        tasks = torch.tensor([self.task_of[int(o)] for o in outputs], dtype=torch.long)
        for t in torch.unique(tasks).tolist():
            sel = tasks == t
            out[sel] = g(z[sel], outputs[sel], task=int(t))
        return out

    def sample(self, labels: Sequence[int], *, seed: int = 0) -> torch.Tensor:
        """Images in [0, 1] for class labels seen so far."""
        idx = self.order.index(np.asarray(labels))
        return self.generate(idx, generator=torch.Generator().manual_seed(int(seed)))

    def learn_task(self, x: Any, y: Any, *, seed: int = 0) -> DGMTaskReport:
        y_np = check_same_length(x, y)
        x01 = as_float_images(x)
        new = self.order.check_new(y_np)
        if len(new) != len(np.unique(y_np)):
            raise ValueError(
                f"expected only new classes in a task, got {sorted(set(y_np.tolist()))} "
                f"with {sorted(self.order.classes)} already learned"
            )
        cfg = self.config
        g, d = self.generator, self.discriminator
        task = g.n_tasks
        n_old = self.order.n_seen
        self.order.add(y_np)
        self.task_of.extend([task] * len(new))
        n_seen = self.order.n_seen
        yt = self.order.index(y_np)
        n = len(y_np)
        gen = torch.Generator().manual_seed(int(seed))
        size_before = g.n_units()
        free_before = g.n_free()
        alpha = size_before / max(free_before, 1)  # S_t / S_free (§3.3)
        g.begin_task()
        opt_g = torch.optim.Adam(g.weight_parameters(), lr=cfg.lr, betas=(0.5, 0.9))
        opt_m = torch.optim.Adam(g.mask_parameters(), lr=cfg.mask_lr, betas=(0.5, 0.9))
        opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
        rep = DGMTaskReport(classes=sorted(new), n_new=n, free_before=free_before)
        n_batches = math.ceil(n / cfg.batch_size)
        local = cfg.local_anneal and g.mode == "weights"
        cur = torch.tensor(sorted(set(yt.tolist())), dtype=torch.long)
        replay_per_sample = n_old / len(cur)
        for epoch in range(1, cfg.epochs + 1):
            perm = torch.randperm(n, generator=gen)
            dl = gl = rl = 0.0
            for b in range(1, n_batches + 1):
                idx = perm[(b - 1) * cfg.batch_size : b * cfg.batch_size]
                real, yb = x01[idx], yt[idx]
                m = len(idx)
                s = annealed_scale(epoch, cfg.epochs, b, n_batches, cfg.s_max, local=local)
                # -- discriminator / classifier: L_D = L_c + L_s + lambda_GP L_gp
                z = torch.randn(m, g.noise_dim, generator=gen)
                with torch.no_grad():
                    fake = g(z, yb, None, s)
                adv_real, cls_real = d.both(real)
                adv_fake = d.both(fake)[0]
                l_s = adv_fake.mean() - adv_real.mean()
                l_c = F.cross_entropy(cls_real[:, :n_seen], yb)
                n_rep = int(round(m * replay_per_sample))
                if n_rep:
                    yr = torch.randint(0, n_old, (n_rep,), generator=gen)
                    xr = self.generate(yr, generator=gen)
                    l_c = (m * l_c + n_rep * F.cross_entropy(d(xr)[:, :n_seen], yr)) / (m + n_rep)
                l_gp = gradient_penalty(d, real, fake, gen)
                loss_d = cfg.cls_weight * l_c + l_s + cfg.lambda_gp * l_gp
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                # -- generator: L_G = L_s + L_c(fake) + lambda_RU * alpha * R (eq. 6)
                z = torch.randn(m, g.noise_dim, generator=gen)
                yg = cur[torch.randint(0, len(cur), (m,), generator=gen)]
                fake = g(z, yg, None, s)
                adv, cls = d.both(fake)
                reg = sparsity_regularizer(g.masked_layers, s)
                loss_g = (
                    -adv.mean()
                    + cfg.cls_weight * F.cross_entropy(cls[:, :n_seen], yg)
                    + cfg.lambda_ru * alpha * reg
                )
                opt_g.zero_grad(set_to_none=True)
                opt_m.zero_grad(set_to_none=True)
                loss_g.backward()
                g.block_gradients_()
                opt_g.step()
                opt_m.step()
                g.clamp_embeddings_()
                dl += float(loss_d.detach())
                gl += float(loss_g.detach())
                rl += float(reg.detach())
            rep.d_loss.append(dl / n_batches)
            rep.g_loss.append(gl / n_batches)
            rep.reg.append(rl / n_batches)
        free_mid = sum(
            layer.n_units() - int(((layer.embedding > 0) | (layer.cum_mask_flat() > 0)).sum())
            for layer in g.masked_layers
        )
        rep.reserved_new = free_before - free_mid
        rep.growth = g.end_task(expand=cfg.expand, generator=gen)
        rep.free_after = g.n_free()
        rep.stored_nbytes = g.stored_nbytes()
        d.eval()
        self.reports.append(rep)
        return rep

    def predict(self, x: Any) -> np.ndarray:
        """Class labels from the discriminator's classifier (classes seen so far)."""
        if self.order.n_seen == 0:
            raise ValueError("expected a learner that has seen at least one task")
        out = predict_outputs(self.discriminator, as_float_images(x), self.order.n_seen)
        return self.order.labels(out)
