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
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgecl.kernels.bits import n_words
from edgecl.train.baselines._rehearsal import (
    ClassOrder,
    as_float_images,
    check_same_length,
    predict_outputs,
)

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

_MODES = ("weights", "activations")
_EMBED_CLIP = 6.0  # |e| bound; sigmoid(s * 6) is 0 or 1 to float precision for s >~ 20


def _pos_int(name: str, v: object, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"expected {name} to be an int >= {minimum}, got {v!r}")
    return int(v)


def annealed_scale(
    epoch: int, n_epochs: int, batch: int, n_batches: int, s_max: float, *, local: bool = True
) -> float:
    """The mask scale ``s`` at 1-based ``epoch`` of ``n_epochs`` and ``batch`` of
    ``n_batches``: eq. 3 (global) and, with ``local``, eq. 4 within the epoch."""
    if not s_max >= 1:
        raise ValueError(f"expected s_max >= 1, got {s_max}")
    if not (1 <= epoch <= n_epochs and 1 <= batch <= n_batches):
        raise ValueError(
            f"expected 1 <= epoch <= {n_epochs} and 1 <= batch <= {n_batches}, "
            f"got {epoch} and {batch}"
        )
    fe = (epoch - 1) / (n_epochs - 1) if n_epochs > 1 else 1.0
    si = 1.0 / s_max + (s_max - 1.0 / s_max) * fe
    if not local:
        return si
    fb = (batch - 1) / (n_batches - 1) if n_batches > 1 else 1.0
    return 1.0 / si + (si - 1.0 / si) * fb


class MaskedLinear(nn.Module):
    """A dense layer with one learnable mask per task (eqs. 1-2, 5), ``mode`` ``"weights"``
    (DGMw) or ``"activations"`` (DGMa)."""

    def __init__(self, in_features: int, out_features: int, *, mode: str = "weights") -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"expected mode in {_MODES}, got {mode!r}")
        self.mode = mode
        self.in_features = _pos_int("in_features", in_features)
        self.out_features = _pos_int("out_features", out_features)
        lin = nn.Linear(self.in_features, self.out_features)
        self.weight = nn.Parameter(lin.weight.detach().clone())
        self.bias = nn.Parameter(lin.bias.detach().clone())
        self.embedding: nn.Parameter | None = None  # e^t of the task being learned
        self.task_masks: list[tuple[torch.Tensor, torch.Tensor]] = []  # binary (w, b) per task
        self.cum_weight = torch.zeros(self.out_features, self.in_features, dtype=torch.bool)
        self.cum_bias = torch.zeros(self.out_features, dtype=torch.bool)

    # -- masks ------------------------------------------------------------------------
    def _mask_shape(self) -> tuple[int, ...]:
        if self.mode == "weights":
            return (self.out_features, self.in_features + 1)  # last column: the bias
        return (self.out_features,)

    def begin_task(self) -> None:
        """A new task: fresh embeddings at 0 (mask 0.5)."""
        self.embedding = nn.Parameter(torch.zeros(self._mask_shape()))

    def soft_mask(self, s: float) -> torch.Tensor:
        if self.embedding is None:
            raise RuntimeError("expected begin_task() before training a task")
        return torch.sigmoid(s * self.embedding)

    def _split(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A mask in the embedding's shape -> (weight mask (O, I), bias mask (O,))."""
        if self.mode == "weights":
            return m[:, :-1], m[:, -1]
        return m[:, None].expand(self.out_features, self.in_features), m

    def forward(
        self, x: torch.Tensor, task: int | None = None, s: float | None = None
    ) -> torch.Tensor:
        """``task=None``: the task being learned, soft mask at scale ``s``; else the stored
        binary mask of finished ``task`` (0-based)."""
        if task is None:
            if s is None:
                raise ValueError("expected a scale s for the task being learned")
            mw, mb = self._split(self.soft_mask(s))
        else:
            if not 0 <= task < len(self.task_masks):
                raise ValueError(f"expected a finished task in 0..{len(self.task_masks) - 1}")
            bw, bb = self.task_masks[task]
            mw, mb = bw.to(self.weight.dtype), bb.to(self.weight.dtype)
        if self.mode == "activations":
            return F.linear(x, self.weight, self.bias) * mb
        return F.linear(x, self.weight * mw, self.bias * mb)

    def end_task(self) -> int:
        """Store the binary mask ``e^t > 0``, add it to the cumulated mask; returns the
        number of newly reserved units (DGMa) or weights incl. biases (DGMw)."""
        if self.embedding is None:
            raise RuntimeError("expected begin_task() before end_task()")
        hard = (self.embedding.detach() > 0).clone()
        bw, bb = self._split(hard)
        bw, bb = bw.clone(), bb.clone()
        if self.mode == "activations":
            new = int((bb & ~self.cum_bias).sum())
        else:
            new = int((bw & ~self.cum_weight).sum() + (bb & ~self.cum_bias).sum())
        self.task_masks.append((bw, bb))
        self.cum_weight |= bw
        self.cum_bias |= bb
        self.embedding = None
        return new

    def block_gradients_(self) -> None:
        """Eq. 5: zero the gradient of every weight and bias reserved by a finished task."""
        if self.weight.grad is not None:
            self.weight.grad.mul_((~self.cum_weight).to(self.weight.grad.dtype))
        if self.bias.grad is not None:
            self.bias.grad.mul_((~self.cum_bias).to(self.bias.grad.dtype))

    def cum_mask_flat(self) -> torch.Tensor:
        """``m^{<t}`` in the embedding's shape (float 0/1)."""
        if self.mode == "weights":
            return torch.cat([self.cum_weight, self.cum_bias[:, None]], 1).float()
        return self.cum_bias.float()

    def n_units(self) -> int:
        """Mask entries: weights + biases (DGMw) or output units (DGMa)."""
        return int(np.prod(self._mask_shape()))

    def n_free(self) -> int:
        return self.n_units() - int(self.cum_mask_flat().sum())

    def clamp_embedding_(self) -> None:
        if self.embedding is not None:
            with torch.no_grad():
                self.embedding.clamp_(-_EMBED_CLIP, _EMBED_CLIP)

    # -- expansion (§3.2) -------------------------------------------------------------
    def expand_(
        self, extra_out: int = 0, extra_in: int = 0, *, generator: torch.Generator | None = None
    ) -> None:
        """Grow by ``extra_out`` output units and ``extra_in`` inputs (new, free weights,
        masked off for every past task; drawn like ``nn.Linear``'s, uniform in
        ``±1/sqrt(fan_in)``, from ``generator``). Only between tasks."""
        if self.embedding is not None:
            raise RuntimeError("expected expand_() between tasks, not while one is learned")
        if extra_out == 0 and extra_in == 0:
            return
        o, i = self.out_features + extra_out, self.in_features + extra_in
        bound = 1.0 / math.sqrt(i)
        w = (torch.rand(o, i, generator=generator) * 2 - 1) * bound
        b = (torch.rand(o, generator=generator) * 2 - 1) * bound
        w[: self.out_features, : self.in_features] = self.weight.detach()
        b[: self.out_features] = self.bias.detach()
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b)

        def pad(m: torch.Tensor) -> torch.Tensor:
            out = torch.zeros((o, i) if m.dim() == 2 else (o,), dtype=torch.bool)
            if m.dim() == 2:
                out[: m.shape[0], : m.shape[1]] = m
            else:
                out[: m.shape[0]] = m
            return out

        self.task_masks = [(pad(a), pad(c)) for a, c in self.task_masks]
        self.cum_weight, self.cum_bias = pad(self.cum_weight), pad(self.cum_bias)
        self.out_features, self.in_features = o, i

    def mask_nbytes(self) -> int:
        """Stored masks: one bit per entry per task, packed in uint64 words per task."""
        return len(self.task_masks) * 8 * n_words(self.n_units())

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, mode={self.mode!r}"


def sparsity_regularizer(layers: Sequence[MaskedLinear], s: float) -> torch.Tensor:
    """Eq. 6: ``sum m^t (1 - m^{<t}) / sum (1 - m^{<t})`` over ``layers``."""
    num = torch.zeros(())
    den = 0.0
    for layer in layers:
        free = 1.0 - layer.cum_mask_flat()
        num = num + (layer.soft_mask(s) * free).sum()
        den += float(free.sum())
    return num / max(den, 1.0)


class MaskedGenerator(nn.Module):
    """The conditional generator: ``[z, onehot(y)] -> hidden... -> prod(out_shape)``,
    :class:`MaskedLinear` layers with LeakyReLU, a sigmoid output (images in [0, 1]).
    DGMw masks every layer; DGMa masks the hidden layers' units (the last layer's units are
    pixels). Hidden layers grow after each task (:meth:`end_task`)."""

    def __init__(
        self,
        n_classes: int,
        *,
        noise_dim: int = 32,
        hidden: Sequence[int] = (128, 256),
        out_shape: Sequence[int] = (1, 28, 28),
        mode: str = "weights",
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"expected mode in {_MODES}, got {mode!r}")
        self.mode = mode
        self.n_classes = _pos_int("n_classes", n_classes)
        self.noise_dim = _pos_int("noise_dim", noise_dim)
        self.out_shape = tuple(_pos_int("out_shape", d) for d in out_shape)
        hid = [_pos_int("hidden", h) for h in hidden]
        sizes = [self.noise_dim + self.n_classes, *hid, int(np.prod(self.out_shape))]
        self.layers = nn.ModuleList(
            MaskedLinear(a, b, mode=mode) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.n_tasks = 0
        self.growth: list[list[int]] = []  # units added to each hidden layer after each task

    @property
    def masked_layers(self) -> list[MaskedLinear]:
        return list(self.layers) if self.mode == "weights" else list(self.layers[:-1])

    def hidden_sizes(self) -> list[int]:
        return [layer.out_features for layer in self.layers[:-1]]

    def n_parameters(self) -> int:
        return sum(layer.weight.numel() + layer.bias.numel() for layer in self.layers)

    def n_units(self) -> int:
        return sum(layer.n_units() for layer in self.masked_layers)

    def n_free(self) -> int:
        return sum(layer.n_free() for layer in self.masked_layers)

    def begin_task(self) -> None:
        for layer in self.masked_layers:
            layer.begin_task()

    def mask_parameters(self) -> list[nn.Parameter]:
        return [layer.embedding for layer in self.masked_layers if layer.embedding is not None]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.layers for p in (layer.weight, layer.bias)]

    def forward(
        self, z: torch.Tensor, y: torch.Tensor, task: int | None = None, s: float | None = None
    ) -> torch.Tensor:
        """Images for noise ``z`` (N, noise_dim) and class indices ``y`` (N,); ``task=None``
        with scale ``s`` for the task being learned, else a finished task's binary masks."""
        h = torch.cat([z, F.one_hot(y, self.n_classes).to(z.dtype)], 1)
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            if self.mode == "activations" and k == last:
                h = F.linear(h, layer.weight, layer.bias)
            else:
                h = layer(h, task, s)
            h = torch.sigmoid(h) if k == last else F.leaky_relu(h, 0.2)
        return h.view(-1, *self.out_shape)

    def block_gradients_(self) -> None:
        for layer in self.masked_layers:
            layer.block_gradients_()
        if self.mode == "activations":  # the unmasked output layer: rows feed only pixels;
            # columns from reserved hidden units carry past tasks' images, so block them
            out = self.layers[-1]
            if out.weight.grad is not None and self.n_tasks:
                reserved = self.layers[-2].cum_bias
                out.weight.grad[:, reserved] = 0.0
                if out.bias.grad is not None:
                    out.bias.grad.zero_()

    def clamp_embeddings_(self) -> None:
        for layer in self.masked_layers:
            layer.clamp_embedding_()

    def end_task(
        self, *, expand: bool = True, generator: torch.Generator | None = None
    ) -> list[int]:
        """Store the task's binary masks, then grow each hidden layer by its newly
        reserved units (DGMa) or ``ceil(new weights / fan-in)`` units (DGMw), §3.2.
        Returns the units added per hidden layer."""
        new = [layer.end_task() for layer in self.masked_layers]
        self.n_tasks += 1
        add = [0] * (len(self.layers) - 1)
        if expand:
            for k in range(len(self.layers) - 1):
                layer = self.layers[k]
                if self.mode == "activations":
                    add[k] = new[k]
                else:
                    add[k] = math.ceil(new[k] / (layer.in_features + 1))
            for k, extra in enumerate(add):
                if extra:
                    self.layers[k].expand_(extra_out=extra, generator=generator)
                    self.layers[k + 1].expand_(extra_in=extra, generator=generator)
        self.growth.append(add)
        return add

    def stored_nbytes(self) -> dict[str, int]:
        """Weights and biases (float32) and the binary masks of every task (packed bits)."""
        w = sum(
            (layer.weight.numel() + layer.bias.numel()) * layer.weight.element_size()
            for layer in self.layers
        )
        m = sum(layer.mask_nbytes() for layer in self.masked_layers)
        return {"weights": w, "masks": m, "total": w + m}


class ACDiscriminator(nn.Module):
    """AC-GAN critic and classifier for 28x28 images in [0, 1]: conv 4x4 stride 2
    (``channels``), LeakyReLU, dense ``hidden``, then a WGAN critic output (1) and class
    logits (``n_outputs``). No BatchNorm (the gradient penalty is per sample)."""

    def __init__(
        self,
        n_outputs: int,
        *,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        ch = [_pos_int("channels", c) for c in channels]
        if len(ch) != 2:
            raise ValueError(f"expected 2 conv widths, got {len(ch)}")
        h = _pos_int("hidden", hidden)
        self.trunk = nn.Sequential(
            nn.Conv2d(_pos_int("in_channels", in_channels), ch[0], 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ch[0], ch[1], 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(ch[1] * 49, h),
            nn.LeakyReLU(0.2),
        )
        self.critic = nn.Linear(h, 1)
        self.classifier = nn.Linear(h, _pos_int("n_outputs", n_outputs))

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk((x - 0.5) / 0.5)
        return self.critic(h).squeeze(1), self.classifier(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (the task solver)."""
        return self.both(x)[1]


def gradient_penalty(
    d: ACDiscriminator,
    real: torch.Tensor,
    fake: torch.Tensor,
    gen: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP [6]: ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` on random interpolates."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=gen)
    xh = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = d.both(xh)[0]
    (g,) = torch.autograd.grad(out.sum(), xh, create_graph=True)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


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
        _pos_int("epochs", self.epochs)
        _pos_int("batch_size", self.batch_size)
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
