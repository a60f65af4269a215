"""An image-folder reader: one sub-folder per class. NumPy, with Pillow (optional).

Pillow is an optional dependency (``pip install edgecl[images]``); without it
:func:`load_image_folder` raises ``ImportError`` saying so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecl.errors import DataFormatError

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder"]

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
    if mode not in ("L", "RGB"):
        raise ValueError(f"expected mode 'L' or 'RGB', got {mode!r}")
    if size is not None:
        if len(size) != 2 or any(int(s) < 1 for s in size):
            raise ValueError(f"expected size (width, height) of positive ints, got {size!r}")
        size = (int(size[0]), int(size[1]))
    d = Path(root)
    if not d.is_dir():
        raise FileNotFoundError(f"expected an image folder (one sub-folder per class), got {d}")
    classes = sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataFormatError(f"{d}: expected one sub-folder per class, found none")
    exts = tuple(e.lower() for e in extensions)
    Image = _pillow()
    images: list[np.ndarray] = []
    labels: list[int] = []
    shape = None
    for ci, name in enumerate(classes):
        files = sorted(p for p in (d / name).iterdir() if p.is_file() and p.suffix.lower() in exts)
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
            labels.append(ci)
    if not images:
        raise DataFormatError(f"{d}: expected images with extensions {exts}, found none")
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes
