"""The typed parts of a bundle's manifest: input, embedding, head, class memory, budget.

Each part reads itself from its manifest section (``from_dict``, refusing anything out of
range with :class:`~edgecl.errors.BundleError`) and writes the same section back
(``to_dict``): numbers are kept as they came, so a section read and written again gives
the same JSON.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecl import validate
from edgecl.bundle.head import HEAD_BITS
from edgecl.errors import BundleError, InvalidTypeError, InvalidValueError
from edgecl.memory.budget import POLICIES
from edgecl.program.checks import need
from edgecl.validate import MAX_NAME

#: The longest class name, in characters (the rule of :func:`edgecl.validate.check_class_name`).
MAX_CLASS_NAME = MAX_NAME
#: Most values one input sample may hold (H * W * C).
MAX_INPUT_VALUES = 1 << 24
#: Bounds of the device's head training settings: a bundle outside them is refused.
MAX_HEAD_LR = 10.0
MAX_HEAD_EPOCHS = 1000
MAX_HEAD_BATCH_SIZE = 4096
MAX_HEAD_WEIGHT_DECAY = 1.0
MAX_GBM_WEIGHT = 100.0
#: Bounds of the class memory's settings (its config in the manifest): a bundle outside
#: them is refused.
MEMORY_SETTING_BOUNDS = {
    "components": 256,  # K prototypes per class (GBM)
    "n_init": 1000,  # EM warm-up rounds
    "n_iter": 1000,  # EM iterations per round
    "n_max": 1000,  # EM steps at most
    "per_class": 1 << 16,  # exemplars per class (latent buffer)
}


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: object) -> bool:
    """A finite int or float (bool refused; an int beyond float range refused)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _is_float32(v: object) -> bool:
    """A number that float32 holds finite (what the runtime computes the input with)."""
    return _is_real(v) and abs(v) <= _FLOAT32_MAX  # type: ignore[operator, arg-type]


def _section(d: object, what: str) -> Mapping[str, Any]:
    need(isinstance(d, Mapping), f"manifest {what!r}: expected an object, got {d!r:.200}")
    return d  # type: ignore[return-value]


def check_class_names(names: object, what: str) -> tuple[str, ...]:
    """A non-empty list of distinct class names (:func:`edgecl.validate.check_class_names`)."""
    need(
        isinstance(names, list) and names,
        f"manifest {what!r}: expected a non-empty list of names, got {names!r:.200}",
    )
    try:
        return validate.check_class_names(names)
    except (InvalidTypeError, InvalidValueError) as exc:
        raise BundleError(f"manifest {what!r}: {exc}") from None


@dataclass(frozen=True)
class InputSpec:
    """What one sample looks like and how it is normalised: ``(x * scale - mean) / std``."""

    shape: tuple[int, int, int]  # (H, W, C)
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layout: str = "NHWC"

    @classmethod
    def from_dict(cls, spec: object) -> InputSpec:
        """Read and check a manifest's ``input`` section (:class:`BundleError`)."""
        spec = _section(spec, "input")
        shape = spec.get("shape")
        need(
            isinstance(shape, list)
            and len(shape) == 3
            and all(_is_int(s) and s > 0 for s in shape),
            f"input.shape: expected [H, W, C] of positive ints, got {shape!r:.200}",
        )
        need(
            math.prod(shape) <= MAX_INPUT_VALUES,  # type: ignore[arg-type]
            f"input.shape: expected at most {MAX_INPUT_VALUES} values, got {shape}",
        )
        c = shape[2]  # type: ignore[index]
        for key in ("mean", "std"):
            v = spec.get(key)
            ok = isinstance(v, list) and len(v) == c and all(_is_float32(a) for a in v)
            need(ok, f"input.{key}: expected {c} finite float32 numbers, got {v!r:.200}")
        need(
            all(np.float32(s) > 0 for s in spec["std"]),
            f"input.std: expected values > 0 in float32, got {spec['std']}",
        )
        scale = spec.get("scale")
        need(
            _is_float32(scale) and np.float32(scale) > 0,  # type: ignore[arg-type]
            f"input.scale: expected a positive finite float32 number, got {scale!r}",
        )
        layout = spec.get("layout", "NHWC")
        need(layout == "NHWC", f"input.layout: expected 'NHWC', got {layout!r}")
        return cls(
            shape=tuple(shape),  # type: ignore[arg-type]
            scale=scale,  # type: ignore[arg-type]
            mean=tuple(spec["mean"]),
            std=tuple(spec["std"]),
            layout=layout,
        )

    @classmethod
    def from_manifest(cls, spec: Mapping[str, Any]) -> InputSpec:
        """The same as :meth:`from_dict` (the name the device runtime uses)."""
        return cls.from_dict(spec)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "layout": self.layout,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def _expected(self) -> str:
        h, w, c = self.shape
        return f"(k, {h}, {w})" if c == 1 else f"(k, {h}, {w}, {c})"

    def check(self, x: object) -> np.ndarray:
        """Check raw samples against the spec; return them as float32 (n, H, W, C).

        Accepts uint8/integer or float arrays of shape (n, H, W) (one channel) or
        (n, H, W, C). Refuses anything else, empty batches, NaN and inf. Never modifies ``x``.
        """
        h, w, c = self.shape
        if not isinstance(x, np.ndarray):
            try:
                x = np.asarray(x)
            except ValueError as exc:  # ragged nested lists
                raise InvalidValueError(
                    f"expected {self._expected()} samples of one shape, got: {exc}"
                ) from exc
        if x.dtype == np.bool_ or not (
            np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
        ):
            raise InvalidTypeError(f"expected uint8 or float samples, got dtype {x.dtype}")
        if x.ndim == 3 and c == 1 and x.shape[1:] == (h, w):
            x = x[..., None]
        if x.ndim != 4 or x.shape[1:] != (h, w, c):
            raise InvalidValueError(f"expected {self._expected()} samples, got {x.shape}")
        if x.shape[0] == 0:
            raise InvalidValueError(
                f"expected at least one sample {self._expected()}, got {x.shape}"
            )
        out = x.astype(np.float32)  # a copy: the caller's array is never touched
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(out).all():
            raise InvalidValueError("expected finite sample values, got NaN or inf")
        return out

    def normalize_table(self) -> np.ndarray:
        """:meth:`normalize` of every byte value, per channel: float32 (256, C), for
        :func:`edgecl.kernels.pixels.normalize_uint8` (the same float32 operations on the
        same values, so a lookup gives the same bits)."""
        c = self.shape[2]
        values = np.repeat(np.arange(256, dtype=np.float32)[:, None], c, axis=1)
        return self.normalize(values)

    def check_uint8(self, x: object) -> np.ndarray | None:
        """``x`` as (n, H, W, C) when it is a non-empty uint8 array of this spec's shape
        (a view, never a copy), else None (:meth:`check` then says what is wrong)."""
        if type(x) is not np.ndarray or x.dtype != np.uint8 or x.shape[0:1] == (0,):
            return None
        h, w, c = self.shape
        if x.ndim == 3 and c == 1 and x.shape[1:] == (h, w):
            return x[..., None]
        return x if x.ndim == 4 and x.shape[1:] == (h, w, c) else None

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """``(x * scale - mean) / std`` in float32, per channel (as torch's ``Normalize``)."""
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        y = x * np.float32(self.scale)
        y -= mean
        y /= std
        return y


@dataclass(frozen=True)
class EmbeddingSpec:
    """The D-bit embedding the layer program ends in: ``bits`` = D, the binarizer
    ``kind`` (``heaviside`` or ``thermometer``), its ``levels`` and the ``source`` module."""

    bits: int
    kind: str
    levels: int | None = None
    source: str | None = None

    @classmethod
    def from_dict(cls, d: object) -> EmbeddingSpec:
        d = _section(d, "embedding")
        bits = d.get("bits")
        need(_is_int(bits) and bits >= 1, f"embedding.bits: expected an int >= 1, got {bits!r}")  # type: ignore[operator]
        kind = d.get("kind")
        need(
            kind in ("heaviside", "thermometer"),
            f"embedding.kind: expected 'heaviside' or 'thermometer', got {kind!r:.200}",
        )
        levels, source = d.get("levels"), d.get("source")
        need(
            levels is None or (_is_int(levels) and levels >= 1),
            f"embedding.levels: expected an int >= 1, got {levels!r}",
        )
        need(
            source is None or isinstance(source, str),
            f"embedding.source: expected a str, got {source!r:.200}",
        )
        return cls(bits=bits, kind=kind, levels=levels, source=source)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bits": self.bits, "kind": self.kind}
        if self.levels is not None:
            out["levels"] = self.levels
        if self.source is not None:
            out["source"] = self.source
        return out


@dataclass(frozen=True)
class HeadSpec:
    """How the head G is stored and retrained on the device (the export ``HeadConfig`` and
    the device ``HeadSettings`` in one): SGD ``lr``, ``epochs`` (passes over a new class's
    samples), ``batch_size`` (B of eq. 4), L2 ``weight_decay``; ``gbm_weight`` lambda > 0
    scores a sample by ``log_softmax(head logits) + lambda * log_softmax(log p(z | class))``
    (the GBM mixtures' own likelihood, no extra stored bytes); ``bits`` the stored
    precision of the weights (32, 16 or 8: int8 + a float32 scale per class); ``onnx``
    whether the bundle carries the ONNX head-update graph.

    Each setting is bounded (:data:`MAX_HEAD_LR`, :data:`MAX_HEAD_EPOCHS`,
    :data:`MAX_HEAD_BATCH_SIZE`, :data:`MAX_HEAD_WEIGHT_DECAY`, :data:`MAX_GBM_WEIGHT`):
    ``ValueError`` outside them (``TypeError`` for a non-bool ``onnx``).
    """

    lr: float = 0.05
    epochs: int = 5
    batch_size: int = 64
    weight_decay: float = 0.0
    onnx: bool = True
    bits: int = 32
    gbm_weight: float = 0.0

    def __post_init__(self) -> None:
        lr, wd, g = self.lr, self.weight_decay, self.gbm_weight
        if not (_is_real(lr) and 0 < lr <= MAX_HEAD_LR):
            raise ValueError(f"expected a finite head lr in (0, {MAX_HEAD_LR}], got {lr!r}")
        for name, top in (("epochs", MAX_HEAD_EPOCHS), ("batch_size", MAX_HEAD_BATCH_SIZE)):
            v = getattr(self, name)
            if not (_is_int(v) and 1 <= v <= top):
                raise ValueError(f"expected head {name} as an int in [1, {top}], got {v!r}")
        if not (_is_real(wd) and 0 <= wd <= MAX_HEAD_WEIGHT_DECAY):
            raise ValueError(
                f"expected a finite head weight_decay in [0, {MAX_HEAD_WEIGHT_DECAY}], got {wd!r}"
            )
        if not isinstance(self.onnx, bool):
            raise TypeError(f"expected onnx to be a bool, got {self.onnx!r}")
        if not (_is_real(g) and 0 <= g <= MAX_GBM_WEIGHT):
            raise ValueError(
                f"expected a finite head gbm_weight in [0, {MAX_GBM_WEIGHT}], got {g!r}"
            )
        if not _is_int(self.bits) or self.bits not in HEAD_BITS:
            raise ValueError(f"expected head bits in {HEAD_BITS}, got {self.bits!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HeadSpec:
        """The settings of a manifest's ``head`` section (absent ones take the defaults;
        ``onnx`` is whether the section names a graph). :class:`BundleError` if any is
        out of bounds."""
        d = _section(d, "head")
        default = cls()
        kwargs = {
            name: d.get(name, getattr(default, name))
            for name in ("lr", "epochs", "batch_size", "weight_decay", "gbm_weight", "bits")
        }
        try:
            return cls(**kwargs, onnx=d.get("onnx") is not None)
        except (TypeError, ValueError) as exc:
            raise BundleError(f"manifest 'head': {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The settings as the manifest's head section holds them (``bits`` and ``onnx``
        are written with the array names, :meth:`HeadRefs.to_dict`)."""
        return {
            "lr": self.lr,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "weight_decay": self.weight_decay,
            "gbm_weight": self.gbm_weight,
        }


@dataclass(frozen=True)
class HeadRefs:
    """The array names of the stored head: weight, bias, the int8 scale (None otherwise)
    and the ONNX head-update graph (None if not stored)."""

    weight: str = "head.weight"
    bias: str = "head.bias"
    scale: str | None = None
    onnx: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HeadRefs:
        d = _section(d, "head")
        refs = {}
        for key in ("weight", "bias", "scale", "onnx"):
            ref = d.get(key)
            need(
                ref is None or isinstance(ref, str),
                f"head.{key}: expected an array name, got {ref!r:.200}",
            )
            refs[key] = ref
        need(refs["weight"] is not None, "head.weight: expected an array name, got None")
        need(refs["bias"] is not None, "head.bias: expected an array name, got None")
        if d.get("bits", 32) != 8:
            refs["scale"] = None  # (only an int8 head has one)
        return cls(**refs)

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.weight, self.bias, self.scale, self.onnx) if n is not None)


@dataclass(frozen=True)
class MemorySpec:
    """The class memory's record: its ``kind`` (``gbm`` or ``buffer``), its ``spec`` (what
    ``edgecl.memory.memory_from_state`` reads), ``arrays`` (state key -> array name), the
    stored ``nbytes``, the head's bytes per class when it was written, and any other keys
    the writer added (``extra``, e.g. the exporter's ``export_plans``)."""

    kind: str
    spec: Mapping[str, Any]
    arrays: Mapping[str, str]
    nbytes: int | None = None
    head_bytes_per_class: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: object) -> MemorySpec | None:
        if d is None:
            return None
        need(
            isinstance(d, Mapping) and d.get("kind") in ("gbm", "buffer"),
            "manifest 'memory': expected null or an object with kind 'gbm' or 'buffer', "
            f"got {d!r:.200}",
        )
        refs = d.get("arrays", {})  # type: ignore[union-attr]
        need(isinstance(refs, Mapping), f"memory.arrays: expected an object, got {refs!r:.200}")
        for key, ref in refs.items():
            need(
                isinstance(key, str) and isinstance(ref, str),
                f"memory.arrays[{key!r}]: expected an array name, got {ref!r:.200}",
            )
        spec = d.get("spec", {})  # type: ignore[union-attr]
        need(isinstance(spec, Mapping), f"memory.spec: expected an object, got {spec!r:.200}")
        nums = {}
        for key in ("nbytes", "head_bytes_per_class"):
            v = d.get(key)  # type: ignore[union-attr]
            need(v is None or (_is_int(v) and v >= 0), f"memory.{key}: expected an int >= 0")
            nums[key] = v
        known = ("kind", "spec", "arrays", "nbytes", "head_bytes_per_class")
        return cls(
            kind=d["kind"],  # type: ignore[index]
            spec=copy.deepcopy(dict(spec)),
            arrays=dict(refs),
            extra={k: copy.deepcopy(v) for k, v in d.items() if k not in known},  # type: ignore[union-attr]
            **nums,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = copy.deepcopy(dict(self.extra))
        out.update(
            {"kind": self.kind, "spec": copy.deepcopy(dict(self.spec)), "arrays": dict(self.arrays)}
        )
        if self.nbytes is not None:
            out["nbytes"] = self.nbytes
        if self.head_bytes_per_class is not None:
            out["head_bytes_per_class"] = self.head_bytes_per_class
        return out


@dataclass(frozen=True)
class BudgetSpec:
    """The byte budget over the stored bytes (class memory + head), or None (unbounded),
    and the policy when a new class does not fit (``strict`` or ``adapt``)."""

    bytes: int | None = None
    policy: str = "strict"

    def __post_init__(self) -> None:
        b = self.bytes
        if b is not None and not (_is_int(b) and b > 0):
            raise ValueError(f"expected budget bytes as null or an int > 0, got {b!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"expected budget policy in {POLICIES}, got {self.policy!r:.200}")

    @classmethod
    def from_dict(cls, d: object) -> BudgetSpec:
        d = _section(d, "budget")
        nbytes, policy = d.get("bytes"), d.get("policy")
        need(
            nbytes is None or (_is_int(nbytes) and nbytes > 0),  # type: ignore[operator]
            f"budget.bytes: expected null or a positive int, got {nbytes!r}",
        )
        need(
            policy in POLICIES,
            f"budget.policy: expected 'strict' or 'adapt', got {policy!r:.200}",
        )
        return cls(bytes=nbytes, policy=policy)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "policy": self.policy}


#: The ONNX graphs of the onnxruntime backend (:mod:`edgecl.device.ort`), in driver order.
LEARNING_GRAPHS = ("embed", "logits", "scores", "em_step", "quantize", "sample", "head_step")


@dataclass(frozen=True)
class GraphsSpec:
    """The optional ``graphs`` section: the array (uint8, the serialized ONNX model) of
    each learning graph of :data:`LEARNING_GRAPHS`, by graph name. A bundle without the
    section has none (backend ``"onnxruntime"`` refuses it)."""

    refs: Mapping[str, str]

    @classmethod
    def from_dict(cls, d: object) -> GraphsSpec | None:
        if d is None:
            return None
        need(isinstance(d, Mapping), f"manifest 'graphs': expected an object, got {d!r:.200}")
        missing = [g for g in LEARNING_GRAPHS if g not in d]  # type: ignore[operator]
        unknown = [g for g in d if g not in LEARNING_GRAPHS]  # type: ignore[union-attr]
        need(
            not missing and not unknown,
            f"manifest 'graphs': expected the graphs {list(LEARNING_GRAPHS)}, got missing "
            f"{missing}, unknown {unknown!r:.200}",
        )
        for name in LEARNING_GRAPHS:
            ref = d[name]  # type: ignore[index]
            need(isinstance(ref, str), f"graphs.{name}: expected an array name, got {ref!r:.200}")
        return cls(refs={name: d[name] for name in LEARNING_GRAPHS})  # type: ignore[index]

    def to_dict(self) -> dict[str, str]:
        return {name: self.refs[name] for name in LEARNING_GRAPHS}

    def names(self) -> tuple[str, ...]:
        return tuple(self.refs[name] for name in LEARNING_GRAPHS)
