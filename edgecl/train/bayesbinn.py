"""BayesBiNN: the Bayesian learning rule for binary weights (Meng, Bachmann, Khan 2020;
Algorithm 1 of papers/bayesbinn-reproduction.txt), as a ``torch.optim.Optimizer``.

Each binary weight ``w in {-1, +1}`` has a mean-field Bernoulli posterior with natural
parameter ``lambda`` (``p(w = +1) = sigmoid(2 lambda)``, mean ``mu = tanh(lambda)``).
One :meth:`BayesBiNN.step` (Algorithm 1):

1. for each of ``mc_samples`` Monte-Carlo samples: draw ``eps ~ U(0, 1)``,
   ``delta = 1/2 log(eps / (1 - eps))``, set the parameter to the Gumbel-softmax (binary
   concrete) relaxation ``w_r = tanh((lambda + delta) / tau)``, call ``closure()`` (which
   computes the mean minibatch loss and calls ``backward()``), and accumulate
   ``s * g`` with ``g = dloss/dw_r`` and ``s = (1 - w_r^2) / (tau (1 - mu^2))``;
2. ``lambda <- (1 - alpha) lambda - alpha (N * mean(s * g) - lambda_0)``, with ``alpha``
   the group's ``lr`` (schedule it with any ``torch.optim.lr_scheduler``; the paper uses a
   cosine schedule), ``N = num_data`` (training-set size) and ``lambda_0`` the prior;
3. ``mu <- tanh(lambda)`` **from the updated lambda** (the public reference code takes
   ``mu`` from the previous step's ``lambda``; here ``state["mu"] == tanh(state["lambda"])``
   holds after every step), and the parameter is set to ``mu``.

For ``tau -> 0`` (1e-10 for MNIST) ``1 - w_r^2`` and ``1 - mu^2`` underflow; as in the
reference code both get ``+1e-10`` (``eps_scale``). Between steps the parameter holds
``mu``, so a layer with an ``ste_sign`` kernel quantizer evaluates the *mode*
``sign(mu) = sign(lambda)``; :meth:`BayesBiNN.sampled_weights` draws binary weights from
the posterior for the *mean* prediction by sampling (:func:`predict_mean`).

Continual learning: :meth:`BayesBiNN.posterior_as_prior_` makes the current posterior
(``lambda``) the prior ``lambda_0`` of the next task. ``lambda`` starts at
``lambda_init * sign(p)`` (sign of the initial latent weight, ``sign(0) = +1``) unless
``state["lambda"]`` is loaded from a state dict.

Only binary latent weights belong here; train the float parameters (BatchNorm, float
layers, head) with another optimizer on the same closure (see :func:`edgecl.train.fit`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator

import torch

__all__ = ["BayesBiNN", "binary_parameters", "predict_mean"]


class BayesBiNN(torch.optim.Optimizer):
    """Bayesian learning rule for binary weights (Algorithm 1); ``step`` needs a closure."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-4,
        *,
        num_data: int,
        temperature: float = 1e-10,
        mc_samples: int = 1,
        lambda_init: float = 10.0,
        eps_scale: float = 1e-10,
        seed: int | None = None,
    ) -> None:
        if not (isinstance(num_data, int) and num_data >= 1):
            raise ValueError(f"expected num_data (training-set size) >= 1, got {num_data!r}")
        if not (0.0 <= lr <= 1.0):
            raise ValueError(f"expected 0 <= lr <= 1, got {lr}")
        if not (temperature > 0 and math.isfinite(temperature)):
            raise ValueError(f"expected temperature > 0, got {temperature}")
        if not (isinstance(mc_samples, int) and mc_samples >= 1):
            raise ValueError(f"expected mc_samples >= 1, got {mc_samples!r}")
        defaults = dict(
            lr=lr,
            temperature=float(temperature),
            mc_samples=int(mc_samples),
            lambda_init=float(lambda_init),
            eps_scale=float(eps_scale),
        )
        super().__init__(params, defaults)
        self.num_data = int(num_data)
        self._gen = torch.Generator()
        self._gen.manual_seed(0 if seed is None else int(seed))
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    @torch.no_grad()
    def _init_state(self, p: torch.Tensor, group: dict) -> None:
        st = self.state[p]
        if "lambda" not in st:
            sign = torch.where(p >= 0, 1.0, -1.0).to(p.dtype)
            st["lambda"] = group["lambda_init"] * sign
            st["prior_lambda"] = torch.zeros_like(p)
        st["mu"] = torch.tanh(st["lambda"])
        p.copy_(st["mu"])

    def _noise(self, p: torch.Tensor) -> torch.Tensor:
        u = torch.rand(p.shape, generator=self._gen, dtype=torch.float64)
        u = u.clamp(1e-12, 1.0 - 1e-12)
        return (0.5 * torch.log(u / (1.0 - u))).to(device=p.device, dtype=p.dtype)

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """One update of every ``lambda``; returns the mean loss over the MC samples."""
        if closure is None:
            raise ValueError("expected a closure (BayesBiNN evaluates the loss at sampled weights)")
        groups = [(g, [p for p in g["params"]]) for g in self.param_groups]
        accum = {p: torch.zeros_like(p) for _, ps in groups for p in ps}
        n_mc = max(g["mc_samples"] for g, _ in groups)
        losses = []
        for _ in range(n_mc):
            relaxed = {}
            with torch.no_grad():
                for g, ps in groups:
                    for p in ps:
                        lam = self.state[p]["lambda"]
                        w = torch.tanh((lam + self._noise(p)) / g["temperature"])
                        p.copy_(w)
                        relaxed[p] = w
                        p.grad = None
            with torch.enable_grad():
                loss = closure()
            losses.append(float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss))
            with torch.no_grad():
                for g, ps in groups:
                    tau, eps = g["temperature"], g["eps_scale"]
                    for p in ps:
                        if p.grad is None:
                            continue
                        w, mu = relaxed[p], self.state[p]["mu"]
                        s = (1.0 - w * w + eps) / (tau * (1.0 - mu * mu + eps))
                        accum[p].add_(s * p.grad)
        with torch.no_grad():
            for g, ps in groups:
                alpha = g["lr"]
                for p in ps:
                    st = self.state[p]
                    grad_hat = accum[p] * (self.num_data / n_mc)
                    st["lambda"] = (1.0 - alpha) * st["lambda"] - alpha * (
                        grad_hat - st["prior_lambda"]
                    )
                    st["mu"] = torch.tanh(st["lambda"])
                    p.copy_(st["mu"])
        return torch.tensor(sum(losses) / len(losses))

    @torch.no_grad()
    def posterior_as_prior_(self) -> None:
        """Continual learning: the current posterior (``lambda``) becomes the prior ``lambda_0``."""
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["prior_lambda"] = self.state[p]["lambda"].clone()

    @contextlib.contextmanager
    def sampled_weights(self) -> Iterator[None]:
        """Inside the block the parameters hold one binary draw ``w ~ q(w)``
        (``p(w = +1) = sigmoid(2 lambda)``); on exit they hold ``mu`` again."""
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    lam = self.state[p]["lambda"]
                    p.copy_(torch.where(lam + self._noise(p) >= 0, 1.0, -1.0).to(p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        p.copy_(self.state[p]["mu"])


def binary_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Latent weights of the layers with a binary kernel (``kernel_quantizer.precision == 1``)."""
    out = []
    for m in model.modules():
        q = getattr(m, "kernel_quantizer", None)
        w = getattr(m, "weight", None)
        if q is not None and getattr(q, "precision", 32) == 1 and isinstance(w, torch.Tensor):
            out.append(w)
    return out


@torch.no_grad()
def predict_mean(
    model: torch.nn.Module, x: torch.Tensor, optimizer: BayesBiNN, *, samples: int = 10
) -> torch.Tensor:
    """Mean prediction by sampling: the average softmax over ``samples`` weight draws."""
    if samples < 1:
        raise ValueError(f"expected samples >= 1, got {samples}")
    was = model.training
    model.eval()
    try:
        probs = None
        for _ in range(samples):
            with optimizer.sampled_weights():
                pr = torch.softmax(model(x), dim=-1)
            probs = pr if probs is None else probs + pr
    finally:
        model.train(was)
    return probs / samples
