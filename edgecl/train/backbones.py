"""Backbones: a binarized feature extractor F ending in a D-bit binarizer, and a float head G.

Every builder returns a :class:`BinaryNet` with

- ``.features`` — ``nn.Sequential``: :class:`~edgecl.train.layers.Normalize` first, a
  binarizer (:class:`~edgecl.train.binarizers.HeavisideBinarizer` or
  :class:`~edgecl.train.binarizers.ThermometerBinarizer`) last; in between only
  ``nn.Conv2d`` (float, first layer), :class:`~edgecl.train.layers.QuantConv2d`,
  ``nn.BatchNorm2d``, ``nn.MaxPool2d``, ``nn.Flatten``,
  :class:`~edgecl.train.layers.QuantLinear`, ``nn.Linear``, ``nn.BatchNorm1d`` and, for
  ``fully_binary=True``, a :class:`~edgecl.train.binarizers.ThermometerEncoder` right after
  ``Normalize(0, 1)``;
- ``.head`` — ``nn.Linear(D, n_classes)`` (float, with bias);
- ``forward(x) = head(features(x))``, ``embed(x) = features(x)`` (D bits as 0/1 floats);
- ``.config`` — ``{"backbone": name, "kwargs": {...}}`` (JSON-friendly), which
  :func:`build_model` turns back into the same architecture.

Block order: ``conv -> BatchNorm -> MaxPool`` (the pool after BN, so on the device it runs
on bits after the threshold; sign is monotone, so ``sign(max(.)) == max(sign(.))``). The
sign is applied by the NEXT binary layer's ``input_quantizer`` (``ste_sign``). Binary convs
use 'same' one-padding (``pad_value=1``). ``nn.Flatten`` uses torch's ``(C, H, W)`` order.
Inputs are raw pixel values 0..255 as floats, ``(N, C, H, W)``, of any size H x W (each
side >= 4) and channel count: the convolutional backbones place their 2x2 max-pools to fit
the input (:func:`pool_plan`), and :func:`backbone_for_input` picks and builds a backbone
for an input shape (``"auto"``: :func:`pick_backbone`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from edgecl.train.binarizers import HeavisideBinarizer, ThermometerBinarizer, ThermometerEncoder
from edgecl.train.layers import Normalize, QuantConv2d, QuantLinear

__all__ = [
    "BACKBONES",
    "BACKBONE_CHOICES",
    "BinaryNet",
    "backbone_for_input",
    "build_model",
    "mlp",
    "mnist_bnn",
    "pick_backbone",
    "pool_plan",
    "vgg_small",
]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class BinaryNet(nn.Module):
    """F (``features``, ending in a D-bit binarizer) followed by G (``head``, float linear)."""

    def __init__(self, features: nn.Sequential, head: nn.Linear, config: dict[str, Any]) -> None:
        super().__init__()
        if not isinstance(features, nn.Sequential) or len(features) < 2:
            raise TypeError("expected features to be an nn.Sequential of at least 2 modules")
        if not isinstance(features[0], Normalize):
            raise TypeError(
                f"expected Normalize first in features, got {type(features[0]).__name__}"
            )
        if not isinstance(features[-1], (HeavisideBinarizer, ThermometerBinarizer)):
            raise TypeError(
                f"expected a binarizer last in features, got {type(features[-1]).__name__}"
            )
        if head.in_features != features[-1].n_bits:
            raise ValueError(
                f"expected a head with {features[-1].n_bits} inputs, got {head.in_features}"
            )
        self.features = features
        self.head = head
        self.config = config

    @property
    def binarizer(self) -> HeavisideBinarizer | ThermometerBinarizer:
        return self.features[-1]

    @property
    def n_bits(self) -> int:
        return self.binarizer.n_bits

    @property
    def n_classes(self) -> int:
        return self.head.out_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The D-bit embedding (0/1 floats), ``features(x)``."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _pos(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"expected {name} to be a positive int, got {v!r}")
    return int(v)


def _channels(v: Sequence[int], name: str = "channels", min_len: int = 1) -> list[int]:
    try:
        out = [_pos(name, c) for c in v]
    except TypeError:
        raise TypeError(f"expected {name} to be a sequence of ints, got {v!r}") from None
    if len(out) < min_len:
        raise ValueError(f"expected at least {min_len} entries in {name}, got {len(out)}")
    return out


def _binarizer(
    in_features: int,
    embedding: str,
    n_bits: int,
    levels: int,
    binary_embedding: bool,
) -> nn.Module:
    n_bits = _pos("n_bits", n_bits)
    if embedding == "heaviside":
        return HeavisideBinarizer(in_features, n_bits, binary=binary_embedding)
    if embedding == "thermometer":
        levels = _pos("levels", levels)
        if n_bits % levels:
            raise ValueError(
                f"expected n_bits divisible by levels for a thermometer embedding, "
                f"got n_bits={n_bits}, levels={levels}"
            )
        return ThermometerBinarizer(in_features, n_bits // levels, levels, binary=binary_embedding)
    raise ValueError(f"expected embedding 'heaviside' or 'thermometer', got {embedding!r}")


def _bconv(cin: int, cout: int, pad_value: float) -> QuantConv2d:
    return QuantConv2d(
        cin,
        cout,
        3,
        padding="same",
        pad_value=pad_value,
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
    )


def _json(v: Any) -> Any:
    """Plain JSON-friendly Python values (lists, ints, floats, str, bool, dicts)."""
    if isinstance(v, dict):
        return {str(k): _json(a) for k, a in v.items()}
    if isinstance(v, (tuple, list)) or (hasattr(v, "tolist") and not isinstance(v, (str, bytes))):
        seq = v.tolist() if hasattr(v, "tolist") else list(v)
        return [_json(a) for a in seq] if isinstance(seq, list) else _json(seq)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    return v


def _image_size(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        hw = [v, v]
    else:
        hw = _channels(v, "image_size", 2)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"expected image_size as an int or (H, W), got {v!r}")
    return int(hw[0]), int(hw[1])


def pool_plan(h: int, w: int, slots: int, pools: int | None = None) -> list[bool]:
    """Which of a backbone's ``slots`` pool places get a 2x2 max-pool for an ``h x w``
    input: the first ``pools`` of them; ``pools=None`` picks ``round(log2(min(h, w) / 4))``
    (3 for 28x28 and 32x32, 1 for 8x8, 0 for 4x4), at most ``slots``, so that the last
    feature map is about 4 pixels a side. An explicit ``pools`` that does not fit is
    refused with the largest that would."""
    side = min(h, w)
    fits = min(slots, side.bit_length() - 1)  # each pool halves (floor) both sides
    if pools is None:
        n = round(math.log2(side / 4)) if side >= 4 else 0
        n = max(0, min(n, fits))
    else:
        n = int(pools)
        if isinstance(pools, bool) or n < 0 or n > fits:
            raise ValueError(
                f"expected at most {fits} 2x2 pools for a {h}x{w} input with this backbone's "
                f"{slots} pool places, got pools={pools!r} (pass pools <= {fits}, or None "
                "to pick)"
            )
    return [i < n for i in range(slots)]


def _first_layers(
    in_ch: int,
    c0: int,
    mean: Any,
    std: Any,
    fully_binary: bool,
    input_levels: int,
    pad_value: float,
) -> list[nn.Module]:
    if fully_binary:
        enc = ThermometerEncoder(_pos("input_levels", input_levels))
        return [Normalize(0.0, 1.0), enc, _bconv(in_ch * enc.levels, c0, pad_value)]
    return [Normalize(mean, std), nn.Conv2d(in_ch, c0, 3, padding=1, bias=False)]


def mnist_bnn(
    n_classes: int,
    *,
    embedding: str = "heaviside",
    n_bits: int = 512,
    channels: Sequence[int] = (64, 128, 256),
    levels: int = 4,
    binary_embedding: bool = True,
    fully_binary: bool = False,
    input_levels: int = 3,
    pad_value: float = 1.0,
    in_channels: int = 1,
    image_size: int | Sequence[int] = 28,
    pools: int | None = None,
    mean: float | Sequence[float] = MNIST_MEAN,
    std: float | Sequence[float] = MNIST_STD,
) -> BinaryNet:
    """Binary CNN (28x28x1 by default; any ``image_size`` int or (H, W) and
    ``in_channels``): float conv c0 -> BN -> pool, then binary conv blocks (conv -> BN ->
    pool) for the other channels, flatten, D-bit binarizer, float head. A pool place after
    every conv; :func:`pool_plan` says which get one (``pools``: how many, None: fit the
    input).

    ``fully_binary=True``: the input is thermometer-coded on ``input_levels`` ±1 channels
    and the first conv is binary too. ``levels`` is the thermometer embedding's p.
    """
    kwargs = dict(
        embedding=embedding,
        n_bits=n_bits,
        channels=list(channels),
        levels=levels,
        binary_embedding=bool(binary_embedding),
        fully_binary=bool(fully_binary),
        input_levels=input_levels,
        pad_value=float(pad_value),
        in_channels=in_channels,
        image_size=_json(image_size),
        pools=pools,
        mean=_json(mean),
        std=_json(std),
    )
    n_classes = int(_pos("n_classes", n_classes))
    ch = _channels(channels)
    h, w = _image_size(image_size)
    in_ch = _pos("in_channels", in_channels)
    plan = pool_plan(h, w, len(ch), pools)
    layers = _first_layers(in_ch, ch[0], mean, std, fully_binary, input_levels, pad_value)
    layers += [nn.BatchNorm2d(ch[0])]
    for i, cout in enumerate(ch):
        if i:
            layers += [_bconv(ch[i - 1], cout, pad_value), nn.BatchNorm2d(cout)]
        if plan[i]:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
    layers += [
        nn.Flatten(),
        _binarizer(ch[-1] * h * w, embedding, n_bits, levels, binary_embedding),
    ]
    features = nn.Sequential(*layers)
    head = nn.Linear(features[-1].n_bits, n_classes)
    return BinaryNet(
        features, head, {"backbone": "mnist_bnn", "n_classes": n_classes, "kwargs": _json(kwargs)}
    )


def vgg_small(
    n_classes: int,
    *,
    embedding: str = "heaviside",
    n_bits: int = 512,
    channels: Sequence[int] = (128, 128, 256, 256, 512, 512),
    levels: int = 4,
    binary_embedding: bool = True,
    fully_binary: bool = False,
    input_levels: int = 3,
    pad_value: float = 1.0,
    in_channels: int = 3,
    image_size: int | Sequence[int] = 32,
    pools: int | None = None,
    mean: float | Sequence[float] = CIFAR_MEAN,
    std: float | Sequence[float] = CIFAR_STD,
) -> BinaryNet:
    """VGG-small-like binary CNN (32x32x3 by default; any ``image_size`` and
    ``in_channels``): float conv c0, binary convs for the rest, each ``conv -> BN``, a pool
    place after every second conv (and after the last of an odd count), flatten,
    binarizer, float head; :func:`pool_plan` says which places get a 2x2 max-pool."""
    kwargs = dict(
        embedding=embedding,
        n_bits=n_bits,
        channels=list(channels),
        levels=levels,
        binary_embedding=bool(binary_embedding),
        fully_binary=bool(fully_binary),
        input_levels=input_levels,
        pad_value=float(pad_value),
        in_channels=in_channels,
        image_size=_json(image_size),
        pools=pools,
        mean=_json(mean),
        std=_json(std),
    )
    n_classes = int(_pos("n_classes", n_classes))
    ch = _channels(channels)
    h, w = _image_size(image_size)
    in_ch = _pos("in_channels", in_channels)
    places = [i for i in range(1, len(ch)) if i % 2 == 1]
    if len(ch) % 2 == 1:  # an odd count: the last conv gets its pool place too
        places.append(len(ch) - 1)
    plan = dict(zip(places, pool_plan(h, w, len(places), pools), strict=True))
    layers = _first_layers(in_ch, ch[0], mean, std, fully_binary, input_levels, pad_value)
    layers += [nn.BatchNorm2d(ch[0])]
    for i in range(1, len(ch)):
        layers += [_bconv(ch[i - 1], ch[i], pad_value), nn.BatchNorm2d(ch[i])]
        if plan.get(i, False):
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
    if len(ch) == 1 and plan.get(0, False):
        layers.append(nn.MaxPool2d(2))
        h, w = h // 2, w // 2
    layers += [
        nn.Flatten(),
        _binarizer(ch[-1] * h * w, embedding, n_bits, levels, binary_embedding),
    ]
    features = nn.Sequential(*layers)
    head = nn.Linear(features[-1].n_bits, n_classes)
    return BinaryNet(
        features, head, {"backbone": "vgg_small", "n_classes": n_classes, "kwargs": _json(kwargs)}
    )


def mlp(
    n_classes: int,
    *,
    in_shape: Sequence[int] = (1, 28, 28),
    hidden: Sequence[int] = (512,),
    embedding: str = "heaviside",
    n_bits: int = 512,
    levels: int = 4,
    binary_embedding: bool = True,
    fully_binary: bool = False,
    input_levels: int = 3,
    mean: float | Sequence[float] = MNIST_MEAN,
    std: float | Sequence[float] = MNIST_STD,
) -> BinaryNet:
    """MLP: flatten, a float dense layer (binary on a thermometer-coded input when
    ``fully_binary``) -> BN1d, binary dense layers -> BN1d for the rest of ``hidden``,
    then the binarizer and the float head."""
    kwargs = dict(
        in_shape=list(in_shape),
        hidden=list(hidden),
        embedding=embedding,
        n_bits=n_bits,
        levels=levels,
        binary_embedding=bool(binary_embedding),
        fully_binary=bool(fully_binary),
        input_levels=input_levels,
        mean=_json(mean),
        std=_json(std),
    )
    n_classes = int(_pos("n_classes", n_classes))
    shape = _channels(in_shape, "in_shape", 3)
    if len(shape) != 3:
        raise ValueError(f"expected in_shape (C, H, W), got {tuple(in_shape)}")
    hid = _channels(hidden, "hidden")
    c, h, w = shape
    if fully_binary:
        enc = ThermometerEncoder(_pos("input_levels", input_levels))
        layers: list[nn.Module] = [Normalize(0.0, 1.0), enc, nn.Flatten()]
        layers.append(
            QuantLinear(
                c * enc.levels * h * w,
                hid[0],
                input_quantizer="ste_sign",
                kernel_quantizer="ste_sign",
            )
        )
    else:
        layers = [Normalize(mean, std), nn.Flatten(), nn.Linear(c * h * w, hid[0], bias=False)]
    layers.append(nn.BatchNorm1d(hid[0]))
    for fin, fout in zip(hid[:-1], hid[1:], strict=True):
        layers += [
            QuantLinear(fin, fout, input_quantizer="ste_sign", kernel_quantizer="ste_sign"),
            nn.BatchNorm1d(fout),
        ]
    layers.append(_binarizer(hid[-1], embedding, n_bits, levels, binary_embedding))
    features = nn.Sequential(*layers)
    head = nn.Linear(features[-1].n_bits, n_classes)
    return BinaryNet(
        features, head, {"backbone": "mlp", "n_classes": n_classes, "kwargs": _json(kwargs)}
    )


BACKBONES = {"mnist_bnn": mnist_bnn, "vgg_small": vgg_small, "mlp": mlp}
#: What ``--backbone`` takes: a name of :data:`BACKBONES`, or "auto" (:func:`pick_backbone`).
BACKBONE_CHOICES = ("auto", "mnist_bnn", "vgg_small", "mlp")


def pick_backbone(input_shape: Sequence[int]) -> str:
    """The "auto" backbone for an ``(H, W, C)`` input: ``mlp`` when a side is under 8
    pixels (too small for a conv stack to pay), ``vgg_small`` for 3 channels and sides of
    32 or more, else ``mnist_bnn``."""
    h, w, c = (int(v) for v in input_shape)
    if min(h, w) < 8:
        return "mlp"
    if c == 3 and min(h, w) >= 32:
        return "vgg_small"
    return "mnist_bnn"


def backbone_for_input(
    name: str,
    n_classes: int,
    input_shape: Sequence[int],
    *,
    n_bits: int = 512,
    channels: Sequence[int] | None = None,
    pools: int | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
) -> BinaryNet:
    """Build backbone ``name`` (or "auto") for raw inputs of ``input_shape`` (H, W, C).
        ``channels`` are the conv channels (``mlp``: the hidden sizes; None: the backbone's
        default), ``pools`` the 2x2 pools (None: fit the input; not for ``mlp``); ``mean`` and
        ``std`` (per channel, of pixels in [0, 1]) default to MNIST's for one channel and
    CIFAR's for three. A combination
        that cannot work raises ``ValueError`` naming what would."""
    if name not in BACKBONE_CHOICES:
        raise ValueError(f"expected backbone in {BACKBONE_CHOICES}, got {name!r}")
    if len(input_shape) != 3:
        raise ValueError(f"expected an input shape (H, W, C), got {tuple(input_shape)}")
    h, w, c = (_pos("input_shape", v) for v in input_shape)
    if min(h, w) < 4:
        raise ValueError(f"expected inputs of at least 4x4, got {h}x{w} (resize them)")
    name = pick_backbone((h, w, c)) if name == "auto" else name
    if mean is None or std is None:  # the usual statistics for the channel count
        mean, std = (MNIST_MEAN, MNIST_STD) if c == 1 else (CIFAR_MEAN, CIFAR_STD)
        if c not in (1, 3):
            mean, std = (0.5,) * c, (0.25,) * c
    kw: dict[str, Any] = {"n_bits": n_bits, "mean": mean, "std": std}
    if name == "mlp":
        if pools is not None:
            raise ValueError(
                "expected no pools with the mlp backbone (it has none); "
                "pass a convolutional backbone (mnist_bnn, vgg_small) for pools"
            )
        if channels is not None:
            kw["hidden"] = tuple(channels)
        return mlp(n_classes, in_shape=(c, h, w), **kw)
    if channels is not None:
        kw["channels"] = tuple(channels)
    return BACKBONES[name](
        n_classes, in_channels=c, image_size=[h, w] if h != w else h, pools=pools, **kw
    )


def build_model(config: dict[str, Any]) -> BinaryNet:
    """Rebuild a :class:`BinaryNet` from its ``.config`` (fresh weights)."""
    if not isinstance(config, dict) or "backbone" not in config:
        raise ValueError(f"expected a model config dict with a 'backbone' key, got {config!r}")
    name = config["backbone"]
    if name not in BACKBONES:
        raise ValueError(f"expected backbone in {sorted(BACKBONES)}, got {name!r}")
    kwargs = dict(config.get("kwargs", {}))
    return BACKBONES[name](config["n_classes"], **kwargs)
