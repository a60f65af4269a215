"""load_dataset: every form --data takes, written by the test; class names from the data;
clear errors for anything else; class selection by name or index."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edgecl.data import (
    DataFormatError,
    load_dataset,
    load_mnist_sample,
    parse_image_size,
    resize_images,
    resolve_classes,
    sample_dir,
    split_classes,
)
from edgecl.errors import DataFormatError as TopLevelDataFormatError


def _makedata():
    spec = importlib.util.spec_from_file_location(
        "_edgecl_makedata", Path(__file__).with_name("makedata.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


md = _makedata()


def test_data_format_error_is_the_one_in_edgecl_errors():
    assert DataFormatError is TopLevelDataFormatError
    assert issubclass(DataFormatError, ValueError)


def test_default_is_the_shipped_sample_split_as_before():
    ds = load_dataset()
    xtr, ytr, xte, yte = load_mnist_sample()
    assert ds.kind == "sample" and ds.image_shape == (28, 28, 1)
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert np.array_equal(ds.x_train, xtr) and np.array_equal(ds.y_test, yte)
    # the sample's folder is an IDX folder with only the t10k pair: split the same way
    again = load_dataset(sample_dir())
    assert again.kind == "idx" and np.array_equal(again.y_train, ytr)


def test_idx_folder_non_square(tmp_path):
    x, y = md.images(6, 3, (12, 20), seed=1)
    md.write_idx(tmp_path, x, y + 4, x[:9], y[:9] + 4)  # labels 4, 5, 6
    ds = load_dataset(tmp_path)
    assert ds.kind == "idx" and ds.image_shape == (12, 20, 1)
    assert ds.class_names == ("4", "5", "6")  # the labels, as text
    assert ds.y_train.tolist() == y.tolist()  # indices into class_names
    assert np.array_equal(ds.x_train, x)


def test_npz_with_and_without_a_test_part(tmp_path):
    x, y = md.images(10, 4, (16, 16), seed=2)
    np.savez(tmp_path / "a.npz", x=x, y=y, class_names=np.array(["w", "x", "y", "z"]))
    ds = load_dataset(tmp_path / "a.npz", seed=3)
    assert ds.kind == "npz" and ds.class_names == ("w", "x", "y", "z")
    assert len(ds.y_train) + len(ds.y_test) == 40
    assert sorted(np.bincount(ds.y_test).tolist()) == [2, 2, 2, 2]  # stratified
    xc, yc = md.images(3, 2, (8, 8, 3), seed=4)
    np.savez(tmp_path / "b.npz", x=xc, y=yc, x_test=xc[:2], y_test=yc[:2])
    ds = load_dataset(tmp_path / "b.npz")
    assert ds.image_shape == (8, 8, 3) and len(ds.y_test) == 2 and ds.class_names == ("0", "1")


def test_cifar10_folder_with_meta(tmp_path):
    names = ["plane", "car", "bird"]
    x, y = md.images(5, 3, (32, 32, 3), seed=5)
    md.write_cifar10(tmp_path / "cifar-10-batches-py", x, y, x[:6], y[:6], names)
    ds = load_dataset(tmp_path)  # the folder above cifar-10-batches-py
    assert ds.kind == "cifar10" and ds.image_shape == (32, 32, 3)
    assert ds.class_names == tuple(names)
    assert np.array_equal(ds.x_train, x) and ds.y_train.tolist() == y.tolist()


def test_cifar100_folder_fine_labels_and_meta(tmp_path):
    import pickle

    x, y = md.images(3, 4, (32, 32, 3), seed=11)
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for name in ("train", "test"):
        batch = {
            b"data": np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072)),
            b"fine_labels": [int(v) for v in y],
            b"coarse_labels": [0] * len(y),
        }
        (d / name).write_bytes(pickle.dumps(batch, protocol=4))
    meta = {b"fine_label_names": [b"apple", b"bee", b"cup", b"dog"], b"coarse_label_names": [b"x"]}
    (d / "meta").write_bytes(pickle.dumps(meta, protocol=4))
    ds = load_dataset(tmp_path)
    assert ds.kind == "cifar100" and ds.class_names == ("apple", "bee", "cup", "dog")
    assert np.array_equal(ds.x_test, x) and ds.y_test.tolist() == y.tolist()


def test_image_folder_rgb_grayscale_and_resized(tmp_path):
    pytest.importorskip("PIL")
    x, y = md.images(4, 3, (64, 64, 3), seed=6)
    md.write_folder(tmp_path / "rgb", x, y, ["cat", "dog", "fox"])
    ds = load_dataset(tmp_path / "rgb", seed=0)
    assert ds.kind == "folder" and ds.image_shape == (64, 64, 3)
    assert ds.class_names == ("cat", "dog", "fox")
    assert len(ds.y_train) + len(ds.y_test) == 12
    small = load_dataset(tmp_path / "rgb", image_size=(12, 20))
    assert small.image_shape == (12, 20, 3)
    g, gy = md.images(3, 2, (10, 14), seed=7)
    md.write_folder(tmp_path / "gray" / "train", g, gy, ["a", "b"], suffix=".bmp")
    md.write_folder(tmp_path / "gray" / "test", g[:2], gy[:2], ["a", "b"])
    ds = load_dataset(tmp_path / "gray")  # train/ and test/ folders
    assert ds.image_shape == (10, 14, 1) and len(ds.y_test) == 2
    assert np.array_equal(ds.x_train, g)


def test_images_of_differing_sizes_need_an_image_size(tmp_path):
    pytest.importorskip("PIL")
    a, _ = md.images(2, 1, (8, 8), seed=8)
    b, _ = md.images(2, 1, (9, 9), seed=9)
    md.write_folder(tmp_path, a, np.zeros(2, int), ["p"])
    md.write_folder(tmp_path, b, np.zeros(2, int), ["q"])
    with pytest.raises(DataFormatError, match="like the others"):
        load_dataset(tmp_path)
    ds = load_dataset(tmp_path, image_size=(8, 8))
    assert ds.image_shape == (8, 8, 1) and ds.class_names == ("p", "q")


def test_resize_images_keeps_dtype_and_channels():
    pytest.importorskip("PIL")
    x, _ = md.images(2, 2, (8, 12, 3), seed=10)
    out = resize_images(x, (16, 6))
    assert out.shape == (4, 16, 6, 3) and out.dtype == np.uint8
    assert resize_images(x, (8, 12)) is x


def test_what_is_not_a_data_set_is_refused_naming_the_forms(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataFormatError, match="IDX folder"):
        load_dataset(tmp_path / "notes.txt")
    with pytest.raises(DataFormatError, match="an .npz"):
        load_dataset(tmp_path)  # a folder with no data in it
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing")
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(DataFormatError, match="'x' and 'y'"):
        load_dataset(tmp_path / "bad.npz")
    np.savez(tmp_path / "f.npz", x=np.zeros((4, 8, 8)), y=np.arange(4))
    with pytest.raises(DataFormatError, match="uint8"):
        load_dataset(tmp_path / "f.npz")
    np.savez(tmp_path / "tiny.npz", x=np.zeros((4, 3, 8), np.uint8), y=np.arange(4))
    with pytest.raises(DataFormatError, match="at least 4x4"):
        load_dataset(tmp_path / "tiny.npz")
    np.savez(tmp_path / "c4.npz", x=np.zeros((4, 8, 8, 4), np.uint8), y=np.arange(4))
    with pytest.raises(DataFormatError, match="1 or 3 channels"):
        load_dataset(tmp_path / "c4.npz")
    np.savez(tmp_path / "obj.npz", x=np.zeros((2, 8, 8), np.uint8), y=np.array([0, 1], object))
    with pytest.raises(DataFormatError, match="no pickles"):
        load_dataset(tmp_path / "obj.npz")


def test_parse_image_size():
    assert parse_image_size("28x28") == (28, 28)
    assert parse_image_size("12X20") == (12, 20)
    assert parse_image_size("32") == (32, 32)
    for bad in ("3x3", "axb", "1x2x3", ""):
        with pytest.raises(ValueError, match="HxW"):
            parse_image_size(bad)


def test_classes_by_name_or_index():
    names = ["cat", "dog", "3", "fox"]
    assert resolve_classes("cat,fox", names) == [0, 3]
    assert resolve_classes("0-1", names) == [0, 1]
    assert resolve_classes("3", names) == [2]  # a name first, then an index
    assert resolve_classes(["dog", 0], names) == [1, 0]
    for bad in ("cow", "9", "0,0", "1-7"):
        with pytest.raises(ValueError, match="expected"):
            resolve_classes(bad, names)
    assert split_classes([str(i) for i in range(10)]) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    assert split_classes(names) == ([0, 1], [2, 3])
    assert split_classes(names, "fox", "cat") == ([3], [0])
    with pytest.raises(ValueError, match="disjoint"):
        split_classes(names, "cat,dog", "dog")
    with pytest.raises(ValueError, match="new class"):
        split_classes(names, "0-3")


def test_take_keeps_at_most_k_per_class():
    ds = load_dataset().take(7, 3, seed=1)
    assert np.bincount(ds.y_train).tolist() == [7] * 10
    assert np.bincount(ds.y_test).tolist() == [3] * 10
