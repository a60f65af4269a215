"""One loader for a labelled data set in any of the forms ``--data`` takes. NumPy only.

:func:`load_dataset` looks at ``path`` and reads, in this order:

- ``None``: the MNIST sample shipped with the package (split 80/20, stratified);
- a ``.npz`` file holding ``x`` (n, H, W) or (n, H, W, C) uint8 and ``y`` (n,) integer
  labels, optionally ``x_test``/``y_test`` (else a stratified split) and ``class_names``
  (a str array, one name per label value; else the labels written as text). Read with
  ``allow_pickle=False``;
- a folder of IDX files: the four standard names (:data:`edgecl.data.IDX_FILES`, ``.gz`` or
  raw), or only the test pair or only the train pair (split like the sample);
- a CIFAR-10 python-batches folder (``data_batch_1..5``, ``test_batch``, ``batches.meta``)
  or a CIFAR-100 one (``train``, ``test``, ``meta``; the fine labels), or the folder above
  ``cifar-10-batches-py``/``cifar-100-python``. These official files are pickles: the
  host reads them with the restricted unpickler of :mod:`edgecl.data.cifar`; the device
  side never reads a pickle;
- an image folder with one sub-folder per class (PNG, JPEG, BMP, ...; grayscale or RGB,
  taken from the first image's mode; needs Pillow), or with ``train/`` and ``test/``
  folders each holding the class sub-folders.

Images keep their size unless ``image_size=(H, W)`` is given (folders: every image is
resized to it; without it every image must have the first image's size; arrays: resized
with Pillow when their size differs). Labels come back as ``0..k-1``, indices into
``class_names`` (folder names, CIFAR meta, or the labels). Anything else raises
:class:`~edgecl.errors.DataFormatError` naming what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecl.data.cifar import load_cifar10, load_cifar100, read_cifar_meta
from edgecl.data.folder import first_image_mode, load_image_folder
from edgecl.data.idx import IDX_FILES, find_idx_file, load_idx_dataset, load_idx_pair
from edgecl.data.splits import stratified_split
from edgecl.errors import DataFormatError

__all__ = [
    "DATA_FORMS",
    "MIN_IMAGE_SIDE",
    "Dataset",
    "load_dataset",
    "parse_image_size",
    "resize_images",
    "resolve_classes",
    "split_classes",
]

#: The smallest image side the backbones take.
MIN_IMAGE_SIDE = 4
#: What ``--data`` takes, for messages and ``--help``.
DATA_FORMS = (
    "an IDX folder (train-/t10k-images-idx3-ubyte[.gz] and the labels), a CIFAR-10/100 "
    "python-batches folder, an image folder with one sub-folder per class (PNG/JPEG/BMP; "
    "needs Pillow), or an .npz with x (n, H, W[, C]) uint8 and y"
)


@dataclass(frozen=True)
class Dataset:
    """A labelled data set: uint8 images ``(n, H, W)`` (one channel) or ``(n, H, W, 3)``,
    int64 labels ``0..k-1`` indexing ``class_names``, the form it was read from (``kind``:
    sample, npz, idx, cifar10, cifar100, folder) and a description (``source``)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    kind: str
    source: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one sample."""
        s = self.x_train.shape
        return (int(s[1]), int(s[2]), 1 if len(s) == 3 else int(s[3]))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(x_train, y_train, x_test, y_test)``."""
        return self.x_train, self.y_train, self.x_test, self.y_test

    def take(self, train_per_class: int, test_per_class: int, *, seed: int = 0) -> Dataset:
        """At most this many samples of each class (drawn with ``seed``, order kept)."""
        rng = np.random.default_rng(seed)

        def pick(y: np.ndarray, k: int) -> np.ndarray:
            parts = [rng.permutation(np.flatnonzero(y == c))[:k] for c in np.unique(y)]
            return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

        a, b = pick(self.y_train, train_per_class), pick(self.y_test, test_per_class)
        return Dataset(
            self.x_train[a],
            self.y_train[a],
            self.x_test[b],
            self.y_test[b],
            self.class_names,
            self.kind,
            f"{self.source} ({train_per_class} train / {test_per_class} test per class)",
        )


def parse_image_size(text: str) -> tuple[int, int]:
    """``"28x28"`` or ``"12x20"`` (H x W) -> ``(H, W)``; ``"32"`` -> ``(32, 32)``."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        hw = [int(p) for p in parts]
    except ValueError:
        hw = []
    if len(hw) == 1:
        hw = hw * 2
    if len(hw) != 2 or min(hw) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"expected an image size HxW like 28x28 or 12x20, each side >= {MIN_IMAGE_SIDE}, "
            f"got {text!r}"
        )
    return hw[0], hw[1]


def resize_images(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 images ``(n, H, W[, C])`` resized to ``size = (H', W')`` (bilinear, Pillow)."""
    h, w = int(size[0]), int(size[1])
    if x.shape[1:3] == (h, w):
        return x
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(
            "resizing images needs Pillow: pip install 'edgecl[images]' (or pillow)"
        ) from e
    out = np.empty((x.shape[0], h, w) + x.shape[3:], np.uint8)
    for i, a in enumerate(x):
        out[i] = np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR), np.uint8)
    return out


def resolve_classes(spec: str | Sequence[str | int], class_names: Sequence[str]) -> list[int]:
    """Class indices from names or indices: ``"cat,dog"``, ``"0-4"``, ``"0,2,5"`` or a list.
    A token that is a class name means that class; else an int (or a range ``a-b``) is an
    index into ``class_names``. Raises ``ValueError`` naming the classes there are."""
    names = [str(c) for c in class_names]
    tokens = [t.strip() for t in spec.split(",")] if isinstance(spec, str) else list(spec)
    out: list[int] = []
    for tok in tokens:
        if isinstance(tok, str) and tok in names:
            out.append(names.index(tok))
            continue
        try:
            if isinstance(tok, str) and "-" in tok.strip("-"):
                a, b = tok.split("-")
                idx = list(range(int(a), int(b) + 1))
            else:
                idx = [int(tok)]
        except ValueError:
            idx = None
        if not idx or any(not 0 <= i < len(names) for i in idx):
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise ValueError(
                f"expected class names ({shown}) or indices 0..{len(names) - 1}, got {tok!r}"
            )
        out += idx
    if not out or len(set(out)) != len(out):
        raise ValueError(f"expected distinct classes like 0-4, 0,2,5 or cat,dog, got {spec!r}")
    return out


def split_classes(
    class_names: Sequence[str], base: str | None = None, new: str | None = None
) -> tuple[list[int], list[int]]:
    """``(base, new)`` class indices for a class-incremental run (base classes trained on
    the host, new ones learned one at a time on the device), from names or indices
    (:func:`resolve_classes`). Defaults: the first half of the classes, rounded up (0-4 of
    ten), and every other class. Raises ``ValueError`` for overlapping or empty sets."""
    names = [str(c) for c in class_names]
    if len(names) < 2:
        raise ValueError(f"expected at least 2 classes, got {names}")
    b = resolve_classes(base, names) if base is not None else list(range((len(names) + 1) // 2))
    n = (
        resolve_classes(new, names)
        if new is not None
        else [i for i in range(len(names)) if i not in b]
    )
    both = sorted(set(b) & set(n))
    if both:
        raise ValueError(
            f"expected disjoint base and new classes, got {[names[i] for i in both]} in both"
        )
    if not n:
        raise ValueError("expected at least one new class to learn, got none")
    return b, n


# -- the forms ---------------------------------------------------------------------------------


def _relabel(
    y_train: np.ndarray, y_test: np.ndarray, names: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Labels as 0..k-1 over the values present; names given per label value or the values."""
    values = np.union1d(y_train, y_test)
    if names is not None:
        if values.size and (values.min() < 0 or values.max() >= len(names)):
            raise DataFormatError(
                f"expected labels in 0..{len(names) - 1} (one per class name), "
                f"got {values.min()}..{values.max()}"
            )
        kept = tuple(str(names[int(v)]) for v in values)
    else:
        kept = tuple(str(int(v)) for v in values)
    return np.searchsorted(values, y_train), np.searchsorted(values, y_test), kept


def _check_images(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise DataFormatError(
            f"{what}: expected uint8 images (n, H, W) or (n, H, W, C), got {x.dtype.name} {x.shape}"
        )
    if x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    if x.ndim == 4 and x.shape[3] != 3:
        raise DataFormatError(f"{what}: expected 1 or 3 channels, got {x.shape[3]}")
    if min(x.shape[1:3]) < MIN_IMAGE_SIDE:
        raise DataFormatError(
            f"{what}: expected images of at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}, "
            f"got {x.shape[1]}x{x.shape[2]} (pass an image size to resize)"
        )
    if x.shape[0] == 0 and "test" not in what:  # a test part may be empty (tiny sets)
        raise DataFormatError(f"{what}: expected at least one image, got none")
    return x


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    tr, te = stratified_split(y, test_fraction, seed=seed)
    return x[tr], y[tr], x[te], y[te]


def _load_npz(p: Path, test_fraction: float, seed: int):
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as e:
        raise DataFormatError(f"{p}: expected an .npz of arrays (no pickles), got {e}") from e
    if "x" not in arrays or "y" not in arrays:
        raise DataFormatError(f"{p}: expected arrays 'x' and 'y' in it, got {sorted(arrays)}")
    names = arrays.get("class_names")
    if names is not None and (names.ndim != 1 or names.dtype.kind != "U"):
        raise DataFormatError(
            f"{p}: expected class_names as a 1-d str array, got {names.dtype} {names.shape}"
        )
    pairs = [("x", "y")] + ([("x_test", "y_test")] if "x_test" in arrays else [])
    out = []
    for kx, ky in pairs:
        x, y = _check_images(arrays[kx], f"{p}[{kx}]"), arrays.get(ky)
        if y is None or y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
            got = "none" if y is None else f"{y.dtype.name} {y.shape}"
            raise DataFormatError(f"{p}: expected {ky} as {x.shape[0]} integer labels, got {got}")
        out += [x, y.astype(np.int64)]
    if len(out) == 2:
        out = list(_split(out[0], out[1], test_fraction, seed))
    return out, None if names is None else [str(n) for n in names]


def _is_idx(d: Path) -> bool:
    return any((d / (v + s)).is_file() for v in IDX_FILES.values() for s in ("", ".gz"))


def _load_idx(d: Path, test_fraction: float, seed: int):
    have = {}
    for k, stem in IDX_FILES.items():
        try:
            have[k] = find_idx_file(d, stem)
        except FileNotFoundError:
            pass
    if len(have) == 4:
        return list(load_idx_dataset(d))
    for part in ("test", "train"):
        if f"{part}_images" in have and f"{part}_labels" in have:
            x, y = load_idx_pair(have[f"{part}_images"], have[f"{part}_labels"])
            return list(_split(x, y, test_fraction, seed))
    raise DataFormatError(
        f"{d}: expected an IDX data set ({', '.join(IDX_FILES.values())}, each .gz or raw; "
        f"or one images/labels pair), got {sorted(p.name for p in have.values())}"
    )


def _cifar_folder(d: Path) -> tuple[str, Path] | None:
    for sub in (d, d / "cifar-10-batches-py", d / "cifar-100-python"):
        if (sub / "data_batch_1").is_file() and (sub / "test_batch").is_file():
            return "cifar10", sub
        if (sub / "train").is_file() and (sub / "test").is_file():
            return "cifar100", sub
    return None


def _load_cifar(kind: str, d: Path):
    if kind == "cifar10":
        arrays, meta, key = load_cifar10(d), d / "batches.meta", "label_names"
    else:
        arrays, meta, key = load_cifar100(d), d / "meta", "fine_label_names"
    names = read_cifar_meta(meta, key) if meta.is_file() else None
    return list(arrays), names


def _class_dirs(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))


def _load_folder(d: Path, image_size, test_fraction: float, seed: int):
    try:
        import PIL  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "an image folder needs Pillow: pip install 'edgecl[images]' (or pillow)"
        ) from e
    size = None if image_size is None else (int(image_size[1]), int(image_size[0]))  # (W, H)
    train, test = d / "train", d / "test"
    split = train.is_dir() and test.is_dir() and _class_dirs(train) and _class_dirs(test)
    if split:
        mode = first_image_mode(train, class_folders=True)
        x_tr, y_tr, n_tr = load_image_folder(train, mode=mode, size=size)
        x_te, y_te, n_te = load_image_folder(test, mode=mode, size=size)
        names = sorted(set(n_tr) | set(n_te))
        y_tr = np.asarray([names.index(n_tr[i]) for i in y_tr], np.int64)
        y_te = np.asarray([names.index(n_te[i]) for i in y_te], np.int64)
        if x_tr.shape[1:] != x_te.shape[1:]:
            raise DataFormatError(
                f"{test}: expected images of {x_tr.shape[1:]} like {train}'s, got "
                f"{x_te.shape[1:]} (pass an image size to resize)"
            )
        return [x_tr, y_tr, x_te, y_te], names
    mode = first_image_mode(d, class_folders=True)
    x, y, names = load_image_folder(d, mode=mode, size=size)
    return list(_split(x, y, test_fraction, seed)), names


def load_dataset(
    path: str | os.PathLike[str] | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Read a labelled data set in any form the module docstring lists; a form without a
    test part is split stratified (``test_fraction`` of each class, reproducible for
    ``seed``). ``image_size=(H, W)`` resizes. Raises ``FileNotFoundError`` for a missing
    path and :class:`~edgecl.errors.DataFormatError` for anything else it cannot read."""
    if image_size is not None:
        image_size = parse_image_size("x".join(str(int(s)) for s in image_size))
    names: Sequence[str] | None = None
    if path is None:
        from edgecl.data.sample import sample_dir

        arrays, kind = _load_idx(sample_dir(), test_fraction, seed), "sample"
        source = "the shipped MNIST sample (10,000 images, 80/20 split)"
    else:
        p = Path(path)
        source = str(p)
        if not p.exists():
            raise FileNotFoundError(f"expected a data set at {p} ({DATA_FORMS}), found nothing")
        cifar = _cifar_folder(p) if p.is_dir() else None
        if p.is_file() and p.suffix.lower() == ".npz":
            (arrays, names), kind = _load_npz(p, test_fraction, seed), "npz"
        elif p.is_dir() and _is_idx(p):
            arrays, kind = _load_idx(p, test_fraction, seed), "idx"
        elif cifar is not None:
            kind = cifar[0]
            arrays, names = _load_cifar(*cifar)
        elif p.is_dir() and _class_dirs(p):
            (arrays, names), kind = _load_folder(p, image_size, test_fraction, seed), "folder"
        else:
            raise DataFormatError(f"{p}: expected {DATA_FORMS}; got none of these")
    x_tr, y_tr, x_te, y_te = arrays
    if image_size is not None:
        x_tr, x_te = resize_images(x_tr, image_size), resize_images(x_te, image_size)
    x_tr = _check_images(x_tr, f"{source} (training images)")
    x_te = _check_images(x_te, f"{source} (test images)")
    if x_te.shape[1:] != x_tr.shape[1:]:
        raise DataFormatError(
            f"{source}: expected test images of {x_tr.shape[1:]} like the training images, "
            f"got {x_te.shape[1:]}"
        )
    y_tr, y_te, class_names = _relabel(y_tr, y_te, names)
    return Dataset(x_tr, y_tr, x_te, y_te, class_names, kind, source)
