"""Image-folder readers, NumPy with Pillow (optional): :func:`load_image_files` reads the
images of one folder (that folder only, sub-folders ignored); :func:`load_image_folder`
reads one sub-folder per class.

Pillow is an optional dependency (``pip install edgecl[images]``); without it both raise
``ImportError`` saying so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecl.errors import DataFormatError

__all__ = ["IMAGE_EXTENSIONS", "first_image_mode", "load_image_files", "load_image_folder"]

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".pgm",
    ".ppm",
    ".tif",
    ".tiff",
    ".webp",
)


def _pillow():
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(
            "load_image_folder needs Pillow: pip install 'edgecl[images]' (or pillow)"
        ) from e
    return Image


def _check_options(mode: str, size: tuple[int, int] | None) -> tuple[int, int] | None:
    if mode not in ("L", "RGB"):
        raise ValueError(f"expected mode 'L' or 'RGB', got {mode!r}")
    if size is None:
        return None
    if len(size) != 2 or any(int(s) < 1 for s in size):
        raise ValueError(f"expected size (width, height) of positive ints, got {size!r}")
    return (int(size[0]), int(size[1]))


def _image_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    exts = tuple(e.lower() for e in extensions)
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts
    )


def _read_images(
    files: Sequence[Path], mode: str, size: tuple[int, int] | None, shape: tuple | None = None
) -> list[np.ndarray]:
    """Every file as a uint8 array of one common shape (``shape``: the first file's)."""
    Image = _pillow()
    images: list[np.ndarray] = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert(mode)
                if size is not None:
                    im = im.resize(size)
                a = np.asarray(im, dtype=np.uint8)
        except OSError as e:
            raise DataFormatError(f"{f}: expected a readable image, got {e}") from e
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise DataFormatError(
                f"{f}: expected an image of shape {shape} like the others "
                f"(pass size=(W, H) to resize), got {a.shape}"
            )
        images.append(a)
    return images


def first_image_mode(
    folder: str | os.PathLike[str],
    *,
    class_folders: bool = False,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> str:
    """``"L"`` or ``"RGB"``: the mode to read a folder in, from its first image (by name;
    with ``class_folders``, of the first class sub-folder that has one): grayscale modes
    give "L", every other (RGB, RGBA, palette, CMYK) "RGB"; no image at all gives "L"
    (the reader then says what it expected)."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"expected a folder of images, got {d}")
    subs = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    for sub in subs if class_folders else [d]:
        files = _image_files(sub, extensions)
        if files:
            Image = _pillow()
            try:
                with Image.open(files[0]) as im:
                    return "L" if im.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
            except OSError as e:
                raise DataFormatError(f"{files[0]}: expected a readable image, got {e}") from e
    return "L"  # no image: the reader says what it expected


def load_image_files(
    folder: str | os.PathLike[str],
    *,
    mode: str = "L",
    size: tuple[int, int] | None = None,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> np.ndarray:
    """The images directly in ``folder`` (sorted by name; sub-folders and hidden files
    ignored) as uint8 ``(n, H, W)`` for ``mode="L"`` or ``(n, H, W, 3)`` for ``"RGB"``.
    ``size=(W, H)`` resizes every image; without it all must have the same size."""
    size = _check_options(mode, size)
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"expected a folder of images, got {d}")
    files = _image_files(d, extensions)
    if not files:
        subs = sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        hint = f" (it has sub-folders: {', '.join(subs[:5])})" if subs else ""
        raise DataFormatError(
            f"{d}: expected images with extensions {tuple(extensions)} in it, found none{hint}"
        )
    return np.stack(_read_images(files, mode, size))


def load_image_folder(
    root: str | os.PathLike[str],
    *,
    mode: str = "L",
    size: tuple[int, int] | None = None,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``root/<class name>/<image>``: returns ``(x, y, class_names)`` with ``x`` uint8
    ``(n, H, W)`` for ``mode="L"`` or ``(n, H, W, 3)`` for ``mode="RGB"``, ``y`` int64
    indices into ``class_names`` (the sub-folder names, sorted). ``size=(W, H)`` resizes
    every image; without it all images must have the same size."""
    size = _check_options(mode, size)
    d = Path(root)
    if not d.is_dir():
        raise FileNotFoundError(f"expected an image folder (one sub-folder per class), got {d}")
    classes = sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataFormatError(f"{d}: expected one sub-folder per class, found none")
    images: list[np.ndarray] = []
    labels: list[int] = []
    shape = None
    for ci, name in enumerate(classes):
        part = _read_images(_image_files(d / name, extensions), mode, size, shape)
        if part:
            shape = part[0].shape
        images += part
        labels += [ci] * len(part)
    if not images:
        raise DataFormatError(
            f"{d}: expected images with extensions {tuple(extensions)}, found none"
        )
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes
