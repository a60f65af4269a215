"""The networks of Dynamic Generative Memory (dgm paper) and their per-task masks:
:class:`MaskedLinear` (eqs. 1-2, gradient blocking eq. 5), :func:`annealed_scale` (eqs. 3-4),
:func:`sparsity_regularizer` (eq. 6), :class:`MaskedGenerator` with its expansion (§3.2),
:class:`ACDiscriminator` and :func:`gradient_penalty` (§3.3). The training loop that uses
them is :class:`edgecl.train.baselines.dgm.DGM`; its module docstring states the method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgecl.kernels.bits import n_words
from edgecl.validate import pos_int

__all__ = [
    "ACDiscriminator",
    "MaskedGenerator",
    "MaskedLinear",
    "annealed_scale",
    "gradient_penalty",
    "sparsity_regularizer",
]

_MODES = ("weights", "activations")
_EMBED_CLIP = 6.0  # |e| bound; sigmoid(s * 6) is 0 or 1 to float precision for s >~ 20


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
        self.in_features = pos_int(in_features, "in_features")
        self.out_features = pos_int(out_features, "out_features")
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
        self.n_classes = pos_int(n_classes, "n_classes")
        self.noise_dim = pos_int(noise_dim, "noise_dim")
        self.out_shape = tuple(pos_int(d, "out_shape") for d in out_shape)
        hid = [pos_int(h, "hidden") for h in hidden]
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
        ch = [pos_int(c, "channels") for c in channels]
        if len(ch) != 2:
            raise ValueError(f"expected 2 conv widths, got {len(ch)}")
        h = pos_int(hidden, "hidden")
        self.trunk = nn.Sequential(
            nn.Conv2d(pos_int(in_channels, "in_channels"), ch[0], 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ch[0], ch[1], 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(ch[1] * 49, h),
            nn.LeakyReLU(0.2),
        )
        self.critic = nn.Linear(h, 1)
        self.classifier = nn.Linear(h, pos_int(n_outputs, "n_outputs"))

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
