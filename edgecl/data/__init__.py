"""Data loaders, NumPy only (never torch): IDX files (MNIST / Fashion-MNIST / KMNIST),
CIFAR-10/100 python batches (restricted unpickler, host side only), image folders (Pillow
optional), ``.npz`` files, the MNIST sample shipped with the package, and reproducible
class-incremental splits. :func:`load_dataset` reads any of these forms (what ``--data``
takes) into a :class:`Dataset` with its class names.

Images are uint8, ``(n, H, W)`` for grayscale and ``(n, H, W, C)`` for color
(:func:`to_nchw` gives the ``(n, C, H, W)`` layout of the backbones); labels are int64.
Missing files raise ``FileNotFoundError``; truncated, corrupt or foreign files raise
:class:`DataFormatError` (an ``EdgeclError`` and a ``ValueError``) naming the file and
what was expected.
"""

from edgecl.data.cifar import load_cifar10, load_cifar100, read_cifar_batch, read_cifar_meta
from edgecl.data.dataset import (
    DATA_FORMS,
    MIN_IMAGE_SIDE,
    Dataset,
    load_dataset,
    parse_image_size,
    resize_images,
    resolve_classes,
    split_classes,
)
from edgecl.data.folder import first_image_mode, load_image_files, load_image_folder
from edgecl.data.idx import IDX_FILES, find_idx_file, load_idx_dataset, load_idx_pair, read_idx
from edgecl.data.sample import load_mnist_sample, sample_dir
from edgecl.data.splits import (
    Task,
    class_incremental_split,
    select_classes,
    stratified_split,
    to_nchw,
)
from edgecl.errors import DataFormatError

__all__ = [
    "DATA_FORMS",
    "IDX_FILES",
    "MIN_IMAGE_SIDE",
    "Dataset",
    "DataFormatError",
    "Task",
    "class_incremental_split",
    "find_idx_file",
    "first_image_mode",
    "load_cifar10",
    "load_cifar100",
    "load_dataset",
    "load_idx_dataset",
    "load_idx_pair",
    "load_image_files",
    "load_image_folder",
    "load_mnist_sample",
    "parse_image_size",
    "read_cifar_batch",
    "read_cifar_meta",
    "read_idx",
    "resize_images",
    "resolve_classes",
    "sample_dir",
    "select_classes",
    "split_classes",
    "stratified_split",
    "to_nchw",
]
