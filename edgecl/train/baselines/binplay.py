"""BinPlay: generative rehearsal from a binary latent autoencoder (binplay paper).

- Index codes (§3.2, Lemma 1) and :func:`greedy_assign` (Alg. 1) live in
  :mod:`edgecl.train.baselines.binplay_codes` (re-exported here).
- :class:`ConvAutoencoder`: the appendix's 28x28 encoder (3 stride-2 3x3 convs with
  BatchNorm, 2048 features, a dense layer to the latent) and decoder (2 dense layers, 3
  stride-2 3x3 transposed convs, a final 4x4 stride-1 layer), LeakyReLU; widths are
  arguments (the paper's by default). :class:`VectorAutoencoder`: a dense one for F's
  D-bit embeddings (the latent variant).
- :class:`BinPlayMemory` (§3.1, §3.4): per batch, warm-up epochs (reconstruction only),
  then epochs with the code assignment and its L2 term, then decoder-only epochs on
  ``<c(i), x_i>`` for the new indices; throughout, the decoder also trains on
  ``<c(i), d(c(i); v')>`` for past indices drawn uniformly (``v'`` a frozen copy).
  What it stores: the decoder and the sample count of each batch (:attr:`nbytes`).
- :class:`BinPlay` (§3.4, Table 1): the base network trains on the new samples passed
  through the autoencoder (``d(c(i))``) with their labels, plus past samples regenerated
  from uniformly drawn indices with soft targets from a frozen copy of itself.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgecl.train.baselines._rehearsal import (
    ClassOrder,
    as_float_images,
    check_same_length,
    module_nbytes,
    predict_outputs,
    train_classifier,
)
from edgecl.train.baselines.binplay_codes import (
    ODD_PRIMES,
    CodeSpec,
    greedy_assign,
    lemma1_bits,
    lemma1_multiplier,
)
from edgecl.validate import pos_int

__all__ = [
    "ODD_PRIMES",
    "BinPlay",
    "BinPlayConfig",
    "BinPlayMemory",
    "BinPlayReport",
    "ClassifierConfig",
    "CodeSpec",
    "ConvAutoencoder",
    "VectorAutoencoder",
    "greedy_assign",
    "lemma1_bits",
    "lemma1_multiplier",
]


class ConvAutoencoder(nn.Module):
    """The appendix's binary latent autoencoder for 28x28 images in [0, 1].

    Encoder: conv 3x3 stride 2 (``enc_channels``, BatchNorm, LeakyReLU) x3: 28->14->7->4,
    flatten (``enc_channels[-1] * 16`` = 2048 for the paper's 128), dense to ``n_bits``,
    tanh. Decoder: two dense layers, ``n_bits -> dec_hidden -> dec_channels[0] * 9``,
    reshaped to ``(dec_channels[0], 3, 3)``, then transposed convs 3x3 stride 2 to
    ``dec_channels[1:]`` (3->6->12->25, BatchNorm, LeakyReLU) and a final 4x4 stride-1
    transposed conv to ``in_channels`` (25->28), sigmoid. Defaults: the paper's encoder
    (32, 64, 128), dense 800, transposed convs with 32, 128, 192 filters (the width of the
    3x3 map the dense layer feeds, 64, is not given by the paper).
    """

    def __init__(
        self,
        n_bits: int,
        *,
        in_channels: int = 1,
        enc_channels: Sequence[int] = (32, 64, 128),
        dec_hidden: int = 800,
        dec_channels: Sequence[int] = (64, 32, 128, 192),
    ) -> None:
        super().__init__()
        n_bits = pos_int(n_bits, "n_bits")
        ec = [pos_int(c, "enc_channels") for c in enc_channels]
        dc = [pos_int(c, "dec_channels") for c in dec_channels]
        if len(ec) != 3 or len(dc) != 4:
            raise ValueError(
                f"expected 3 encoder and 4 decoder widths, got {len(ec)} and {len(dc)}"
            )
        h = pos_int(dec_hidden, "dec_hidden")
        act = nn.LeakyReLU(0.2)
        enc: list[nn.Module] = []
        cin = pos_int(in_channels, "in_channels")
        for c in ec:
            enc += [nn.Conv2d(cin, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), act]
            cin = c
        enc += [nn.Flatten(), nn.Linear(ec[-1] * 16, n_bits), nn.Tanh()]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(
            nn.Linear(n_bits, h),
            act,
            nn.Linear(h, dc[0] * 9),
            act,
            nn.Unflatten(1, (dc[0], 3, 3)),
            nn.ConvTranspose2d(dc[0], dc[1], 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(dc[1]),
            act,
            nn.ConvTranspose2d(dc[1], dc[2], 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(dc[2]),
            act,
            nn.ConvTranspose2d(dc[2], dc[3], 3, stride=2),
            nn.BatchNorm2d(dc[3]),
            act,
            nn.ConvTranspose2d(dc[3], in_channels, 4, stride=1),
            nn.Sigmoid(),
        )
        self.n_bits = n_bits
        self.sample_shape = (int(in_channels), 28, 28)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        return self.decoder(c)


class VectorAutoencoder(nn.Module):
    """Dense autoencoder for F's D-bit embeddings (0/1 floats): the latent variant.
    Encoder ``D -> hidden... -> n_bits`` (tanh), decoder ``n_bits -> reversed(hidden) -> D``
    (sigmoid: the probability of each bit), LeakyReLU in between."""

    def __init__(self, n_features: int, n_bits: int, *, hidden: Sequence[int] = (256,)) -> None:
        super().__init__()
        d = pos_int(n_features, "n_features")
        n_bits = pos_int(n_bits, "n_bits")
        hid = [pos_int(h, "hidden") for h in hidden]

        def stack(sizes: list[int]) -> list[nn.Module]:
            layers: list[nn.Module] = []
            for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
                layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
            return layers + [nn.Linear(sizes[-2], sizes[-1])]

        self.encoder = nn.Sequential(*stack([d, *hid, n_bits]), nn.Tanh())
        self.decoder = nn.Sequential(*stack([n_bits, *reversed(hid), d]), nn.Sigmoid())
        self.n_bits = n_bits
        self.sample_shape = (d,)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        return self.decoder(c)


@dataclass(frozen=True)
class BinPlayConfig:
    """Autoencoder schedule per batch (§3.4): ``warmup_epochs`` of plain reconstruction,
    ``assign_epochs`` with Alg. 1 and the code term (weight ``code_weight``), then
    ``decoder_epochs`` on ``<c(i), x_i>`` only. ``replay_ratio``: past pairs per new pair in
    a mini-batch; ``None`` draws indices uniformly from ``1..N`` as §3.1 (``N_prev/N_new``)."""

    warmup_epochs: int = 1
    assign_epochs: int = 2
    decoder_epochs: int = 2
    batch_size: int = 64
    lr: float = 1e-3
    code_weight: float = 1.0
    replay_ratio: float | None = None

    def __post_init__(self) -> None:
        for name in ("warmup_epochs", "decoder_epochs"):
            pos_int(getattr(self, name), name, 0)
        pos_int(self.assign_epochs, "assign_epochs")
        pos_int(self.batch_size, "batch_size")
        if not self.lr > 0 or not self.code_weight >= 0:
            raise ValueError(
                f"expected lr > 0 and code_weight >= 0, got {self.lr} and {self.code_weight}"
            )
        if self.replay_ratio is not None and not self.replay_ratio >= 0:
            raise ValueError(f"expected replay_ratio >= 0 or None, got {self.replay_ratio}")


def _recon_loss(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), x)


class BinPlayMemory:
    """The autoencoder, its code layout and the sample count of each batch (§3.1-3.4).

    ``learn(x)`` takes one batch of samples in [0, 1] (shape ``autoencoder.sample_shape``
    after the first axis) and returns the 1-based global index assigned to each sample.
    ``regenerate(indices)`` decodes codes; ``sample(n)`` draws indices uniformly.
    """

    def __init__(
        self,
        autoencoder: ConvAutoencoder | VectorAutoencoder | nn.Module,
        spec: CodeSpec | None = None,
        config: BinPlayConfig | None = None,
    ) -> None:
        self.spec = CodeSpec() if spec is None else spec
        self.config = BinPlayConfig() if config is None else config
        for attr in ("encode", "decode", "decoder"):
            if not hasattr(autoencoder, attr):
                raise TypeError(f"expected an autoencoder with .{attr}, got {type(autoencoder)}")
        if getattr(autoencoder, "n_bits", self.spec.n_bits) != self.spec.n_bits:
            raise ValueError(
                f"expected an autoencoder with a {self.spec.n_bits}-bit latent (the code spec), "
                f"got {autoencoder.n_bits}"
            )
        self.autoencoder = autoencoder
        self._counts: list[int] = []
        self.history: list[dict[str, Any]] = []

    @property
    def counts(self) -> tuple[int, ...]:
        """Samples per batch, in order: with the decoder, all that is stored."""
        return tuple(self._counts)

    @property
    def n_samples(self) -> int:
        return sum(self._counts)

    @property
    def decoder_nbytes(self) -> int:
        """Bytes of the decoder's parameters and buffers (float32 as stored)."""
        return module_nbytes(self.autoencoder.decoder)

    @property
    def encoder_nbytes(self) -> int:
        """The encoder's bytes (needed to learn further batches; the paper does not count it)."""
        return module_nbytes(self.autoencoder.encoder)

    @property
    def nbytes(self) -> int:
        """What BinPlay stores: the decoder plus one uint32 count per batch."""
        return self.decoder_nbytes + 4 * len(self._counts)

    def batches_of(self, indices: np.ndarray, counts: Sequence[int] | None = None) -> np.ndarray:
        """The 1-based batch number of each 1-based global index."""
        ends = np.cumsum(self._counts if counts is None else counts)
        idx = np.asarray(indices)
        if idx.size and (int(idx.min()) < 1 or int(idx.max()) > (ends[-1] if ends.size else 0)):
            raise ValueError(f"expected indices in 1..{int(ends[-1]) if ends.size else 0}")
        return np.searchsorted(ends, idx, side="left") + 1

    def codes_for(self, indices: np.ndarray, counts: Sequence[int] | None = None) -> torch.Tensor:
        idx = np.asarray(indices, dtype=np.int64)
        return self.spec.codes(idx, self.batches_of(idx, counts))

    @torch.no_grad()
    def regenerate(
        self, indices: np.ndarray | torch.Tensor, *, batch_size: int = 500
    ) -> torch.Tensor:
        """``d(c(i))`` for 1-based global indices (decoder in eval mode)."""
        idx = np.asarray(indices.numpy() if isinstance(indices, torch.Tensor) else indices)
        dec = self.autoencoder.decoder
        was = dec.training
        dec.eval()
        try:
            out = [
                self.autoencoder.decode(self.codes_for(idx[i : i + batch_size]))
                for i in range(0, len(idx), batch_size)
            ]
        finally:
            dec.train(was)
        return torch.cat(out) if out else torch.zeros(0, *self.autoencoder.sample_shape)

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, upto: int | None = None
    ) -> torch.Tensor:
        """``n`` samples regenerated from indices drawn uniformly from ``1..upto``
        (default ``N``, every sample learned so far)."""
        top = self.n_samples if upto is None else int(upto)
        if not 1 <= top <= self.n_samples:
            raise ValueError(
                f"expected a memory holding samples 1..{top}, got {self.n_samples} samples"
            )
        idx = torch.randint(1, top + 1, (int(n),), generator=generator)
        return self.regenerate(idx)

    def learn(self, x: torch.Tensor, *, seed: int = 0) -> np.ndarray:
        """Learn one batch (§3.1, §3.4); returns the global index of each sample."""
        if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] == 0:
            raise ValueError("expected a non-empty float tensor of samples in [0, 1]")
        if tuple(x.shape[1:]) != tuple(self.autoencoder.sample_shape):
            raise ValueError(
                f"expected samples of shape {tuple(self.autoencoder.sample_shape)}, "
                f"got {tuple(x.shape[1:])}"
            )
        n_prev, n_new = self.n_samples, int(x.shape[0])
        if n_prev + n_new > self.spec.capacity:
            raise ValueError(
                f"expected at most {self.spec.capacity} samples in all (2**index_bits), "
                f"got {n_prev + n_new}"
            )
        if len(self._counts) + 1 > 2**self.spec.batch_bits and self.spec.batch_bits:
            raise ValueError(f"expected at most {2**self.spec.batch_bits} batches")
        cfg = self.config
        gen = torch.Generator().manual_seed(int(seed))
        counts = [*self._counts, n_new]
        new_idx = np.arange(n_prev + 1, n_prev + n_new + 1)
        new_codes = self.codes_for(new_idx, counts)
        ratio = cfg.replay_ratio if cfg.replay_ratio is not None else n_prev / n_new
        ratio = ratio if n_prev else 0.0
        frozen = copy.deepcopy(self.autoencoder.decoder).eval() if n_prev else None
        ae = self.autoencoder
        opt = torch.optim.Adam(ae.parameters(), lr=cfg.lr)
        assign = torch.arange(n_new)  # replaced by Alg. 1 (assign_epochs >= 1, validated)
        log: dict[str, list[float]] = {"warmup": [], "assign": [], "decoder": []}
        phases = (
            ["warmup"] * cfg.warmup_epochs
            + ["assign"] * cfg.assign_epochs
            + ["decoder"] * cfg.decoder_epochs
        )
        for phase in phases:
            if phase == "assign":
                assign = greedy_assign(self._encode_all(x), new_codes, generator=gen)
            ae.train()
            perm = torch.randperm(n_new, generator=gen)
            tot, nb = 0.0, 0
            for i in range(0, n_new, cfg.batch_size):
                b = perm[i : i + cfg.batch_size]
                xb = x[b]
                if phase == "warmup":
                    loss = _recon_loss(ae.decode(ae.encode(xb)), xb)
                elif phase == "assign":
                    z = ae.encode(xb)
                    c = new_codes[assign[b]]
                    loss = (
                        _recon_loss(ae.decode(z), xb)
                        + _recon_loss(ae.decode(c), xb)
                        + cfg.code_weight * ((z - c) ** 2).sum(1).mean() / c.shape[1]
                    )
                else:
                    loss = _recon_loss(ae.decode(new_codes[assign[b]]), xb)
                n_rep = int(round(len(b) * ratio))
                if n_rep and frozen is not None:
                    j = torch.randint(1, n_prev + 1, (n_rep,), generator=gen).numpy()
                    cj = self.codes_for(j, counts)
                    with torch.no_grad():
                        target = frozen(cj)
                    rep = _recon_loss(ae.decode(cj), target)
                    loss = (len(b) * loss + n_rep * rep) / (len(b) + n_rep)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot += float(loss.detach())
                nb += 1
            log[phase].append(tot / max(nb, 1))
        ae.eval()
        self._counts.append(n_new)
        self.history.append({"n_new": n_new, "replay_ratio": ratio, **log})
        return new_idx[assign.numpy()]

    @torch.no_grad()
    def _encode_all(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        enc = self.autoencoder.encoder
        was = enc.training
        enc.eval()
        try:
            return torch.cat(
                [
                    self.autoencoder.encode(x[i : i + batch_size])
                    for i in range(0, len(x), batch_size)
                ]
            )
        finally:
            enc.train(was)


@dataclass(frozen=True)
class ClassifierConfig:
    """How the base network trains on each batch (§3.4): ``epochs`` over the new samples,
    each mini-batch with ``replay_ratio`` regenerated samples per new one (``None``:
    ``N_prev / N_new``, i.e. indices uniform over all samples seen). ``process_new`` passes
    new samples through the autoencoder, ``soft_targets`` labels the regenerated ones
    with the frozen copy's softmax (else its argmax): Table 1's two switches."""

    epochs: int = 2
    batch_size: int = 64
    lr: float = 1e-3
    replay_ratio: float | None = None
    process_new: bool = True
    soft_targets: bool = True
    temperature: float = 1.0

    def __post_init__(self) -> None:
        pos_int(self.epochs, "epochs")
        pos_int(self.batch_size, "batch_size")
        if not self.lr > 0 or not self.temperature > 0:
            raise ValueError(
                f"expected lr > 0 and temperature > 0, got {self.lr} and {self.temperature}"
            )
        if self.replay_ratio is not None and not self.replay_ratio >= 0:
            raise ValueError(f"expected replay_ratio >= 0 or None, got {self.replay_ratio}")


@dataclass
class BinPlayReport:
    """What :meth:`BinPlay.learn_task` did: the autoencoder's losses per phase and epoch,
    the classifier's per epoch, and the memory's stored bytes after the batch."""

    classes: list[int]
    n_new: int
    autoencoder: dict[str, Any] = field(default_factory=dict)
    classifier_loss: list[float] = field(default_factory=list)
    stored_nbytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BinPlay:
    """Class-incremental learning with BinPlay rehearsal (§3.4).

    ``model`` maps inputs to ``n_outputs`` logits (one head over all classes; outputs are
    given to classes in order of arrival and only the seen ones are used). Images: pass
    raw pixel values 0..255 (``(n, H, W)`` uint8 or ``(n, C, H, W)``); the memory works on
    ``x / 255`` and the model gets ``x01 * input_scale`` (255 for edgecl's backbones, which
    normalise raw pixels). The latent variant: ``inputs="vectors"`` with F's 0/1 embeddings,
    a :class:`VectorAutoencoder` memory, ``input_scale=1`` and ``binarize_replay=True`` (the
    regenerated embeddings are thresholded at 0.5, bits as the device stores them).
    """

    def __init__(
        self,
        model: nn.Module,
        memory: BinPlayMemory,
        *,
        n_outputs: int,
        classifier: ClassifierConfig | None = None,
        inputs: str = "images",
        input_scale: float = 255.0,
        binarize_replay: bool = False,
    ) -> None:
        if inputs not in ("images", "vectors"):
            raise ValueError(f"expected inputs 'images' or 'vectors', got {inputs!r}")
        self.model = model
        self.memory = memory
        self.order = ClassOrder(n_outputs)
        self.classifier = ClassifierConfig() if classifier is None else classifier
        self.inputs = inputs
        self.input_scale = float(input_scale)
        self.binarize_replay = bool(binarize_replay)
        self.reports: list[BinPlayReport] = []
        self._n_past = 0

    @property
    def classes_(self) -> tuple[int, ...]:
        return self.order.classes

    def _x01(self, x: Any) -> torch.Tensor:
        if self.inputs == "images":
            return as_float_images(x)
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
        if t.dim() != 2:
            raise ValueError(f"expected vectors of shape (n, D), got {tuple(t.shape)}")
        return t

    def _prepare(self, x01: torch.Tensor) -> torch.Tensor:
        return x01 * self.input_scale if self.input_scale != 1.0 else x01

    def _replay(self, n: int, gen: torch.Generator) -> torch.Tensor:
        # past batches only: the frozen copy knows nothing of the new classes
        x = self.memory.sample(n, generator=gen, upto=self._n_past)
        return (x > 0.5).float() if self.binarize_replay else x

    def learn_task(self, x: Any, y: Any, *, seed: int = 0) -> BinPlayReport:
        """One batch of data: learn it into the memory, then train the base network."""
        y_np = check_same_length(x, y)
        x01 = self._x01(x)
        self.order.check_new(y_np)  # refuse before anything changes
        n_old = self.order.n_seen
        teacher = copy.deepcopy(self.model).eval() if n_old else None
        had_past = self.memory.n_samples > 0
        self._n_past = self.memory.n_samples
        idx = self.memory.learn(x01, seed=seed)
        self.order.add(y_np)
        cfg = self.classifier
        if cfg.process_new:
            x_train = self.memory.regenerate(idx)
            if self.binarize_replay:
                x_train = (x_train > 0.5).float()
        else:
            x_train = x01
        ratio = cfg.replay_ratio
        if ratio is None:
            ratio = (self.memory.n_samples - len(y_np)) / len(y_np)
        losses = train_classifier(
            self.model,
            x_train,
            self.order.index(y_np),
            n_seen=self.order.n_seen,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=seed,
            replay=self._replay if (had_past and teacher is not None) else None,
            teacher=teacher,
            n_old=n_old,
            replay_ratio=ratio if had_past else 0.0,
            soft_targets=cfg.soft_targets,
            temperature=cfg.temperature,
            prepare=self._prepare,
        )
        rep = BinPlayReport(
            classes=sorted(set(int(c) for c in y_np)),
            n_new=len(y_np),
            autoencoder=self.memory.history[-1],
            classifier_loss=losses,
            stored_nbytes=self.memory.nbytes,
        )
        self.reports.append(rep)
        return rep

    def predict(self, x: Any) -> np.ndarray:
        """Class labels (argmax over the classes seen so far)."""
        if self.order.n_seen == 0:
            raise ValueError("expected a learner that has seen at least one task")
        out = predict_outputs(self.model, self._x01(x), self.order.n_seen, prepare=self._prepare)
        return self.order.labels(out)
