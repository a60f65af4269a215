"""Data loaders on small generated files, on corrupt/truncated files and on the shipped sample."""

import gzip
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest

from edgecl.data import (
    DataFormatError,
    load_cifar10,
    load_cifar100,
    load_idx_dataset,
    load_idx_pair,
    load_image_folder,
    load_mnist_sample,
    read_cifar_batch,
    read_idx,
    sample_dir,
)

CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def idx_bytes(a: np.ndarray) -> bytes:
    head = bytes([0, 0, CODES[a.dtype.type], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return head + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write_idx(path, a, gz=False):
    raw = idx_bytes(a)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 5, 7)) * 50).astype(dtype)
    got = read_idx(write_idx(tmp_path / "a.idx", a, gz))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    assert np.array_equal(got, a)


def make_idx_folder(d, n_train=13, n_test=7, gz=True):
    rng = np.random.default_rng(1)
    sfx = ".gz" if gz else ""
    arrs = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, a in arrs.items():
        write_idx(d / (name + sfx), a, gz)
    return arrs


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_dataset(tmp_path, gz):
    arrs = make_idx_folder(tmp_path, gz=gz)
    x_tr, y_tr, x_te, y_te = load_idx_dataset(tmp_path)
    assert x_tr.shape == (13, 28, 28) and x_tr.dtype == np.uint8
    assert y_tr.dtype == np.int64 and y_te.shape == (7,)
    assert np.array_equal(x_te, arrs["t10k-images-idx3-ubyte"])
    assert np.array_equal(y_tr, arrs["train-labels-idx1-ubyte"])


def test_idx_errors(tmp_path):
    arrs = make_idx_folder(tmp_path, gz=False)
    img = tmp_path / "train-images-idx3-ubyte"
    raw = img.read_bytes()
    # truncated
    img.write_bytes(raw[:-5])
    with pytest.raises(
        DataFormatError, match=r"train-images-idx3-ubyte.*expected 10192 data bytes"
    ):
        load_idx_dataset(tmp_path)
    # over-long
    img.write_bytes(raw + b"\0")
    with pytest.raises(DataFormatError, match="truncated or corrupt"):
        read_idx(img)
    # wrong magic
    img.write_bytes(b"PK\x03\x04" + raw[4:])
    with pytest.raises(DataFormatError, match="IDX magic"):
        read_idx(img)
    # header shorter than its dims
    img.write_bytes(raw[:9])
    with pytest.raises(DataFormatError, match="header"):
        read_idx(img)
    # truncated gzip
    gzf = tmp_path / "x.gz"
    gzf.write_bytes(gzip.compress(raw)[:-20])
    with pytest.raises(DataFormatError, match=r"x\.gz.*gzip"):
        read_idx(gzf)
    # label count mismatch
    img.write_bytes(raw)
    lab = tmp_path / "train-labels-idx1-ubyte"
    write_idx(lab, arrs["train-labels-idx1-ubyte"][:-1])
    with pytest.raises(DataFormatError, match="expected 13 labels"):
        load_idx_pair(img, lab)
    # labels file where images are expected
    with pytest.raises(DataFormatError, match=r"expected uint8 images of shape \(n, rows, cols\)"):
        load_idx_pair(lab, lab)
    # missing
    lab.unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_idx_dataset(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_idx_dataset(tmp_path / "nowhere")


def test_shipped_sample():
    d = sample_dir()
    assert (d / "README.md").is_file()
    assert "CC BY-SA 3.0" in (d / "README.md").read_text()
    x_tr, y_tr, x_te, y_te = load_mnist_sample()
    assert x_tr.shape == (8000, 28, 28) and x_te.shape == (2000, 28, 28)
    assert x_tr.dtype == np.uint8 and y_tr.dtype == np.int64
    counts = np.bincount(np.concatenate([y_tr, y_te]), minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # stratified: each class's test share is 20% (rounded)
    assert np.bincount(y_te, minlength=10).tolist() == [round(0.2 * c) for c in counts]
    assert abs(float(np.concatenate([x_tr, x_te]).mean()) - 33.791) < 1e-3
    # reproducible, and the seed matters
    again = load_mnist_sample()
    assert all(np.array_equal(a, b) for a, b in zip(again, (x_tr, y_tr, x_te, y_te), strict=True))
    other = load_mnist_sample(seed=1)
    assert not np.array_equal(other[3], y_te) or not np.array_equal(other[2], x_te)
    small = load_mnist_sample(test_fraction=0.5)
    assert small[2].shape[0] == sum(round(0.5 * c) for c in counts)


def _cifar_batch(path, n, label_key=b"labels", seed=0):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    with open(path, "wb") as f:
        pickle.dump({b"data": data, label_key: labels, b"filenames": [b"x"] * n}, f)
    return data, labels


def test_cifar10(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    parts = [_cifar_batch(d / f"data_batch_{i}", 4, seed=i) for i in range(1, 6)]
    data, labels = _cifar_batch(d / "test_batch", 3, seed=9)
    x_tr, y_tr, x_te, y_te = load_cifar10(tmp_path)
    assert x_tr.shape == (20, 32, 32, 3) and y_tr.dtype == np.int64
    assert y_te.tolist() == labels
    # channel-major rows become HWC pixels
    assert x_te[1, 2, 5, 0] == data[1, 0 * 1024 + 2 * 32 + 5]
    assert x_te[1, 2, 5, 2] == data[1, 2 * 1024 + 2 * 32 + 5]
    assert np.array_equal(y_tr[:4], parts[0][1])


def test_cifar100_and_errors(tmp_path):
    _cifar_batch(tmp_path / "train", 5, label_key=b"fine_labels")
    _cifar_batch(tmp_path / "test", 2, label_key=b"fine_labels")
    x_tr, y_tr, _, _ = load_cifar100(tmp_path)
    assert x_tr.shape == (5, 32, 32, 3)
    with pytest.raises(DataFormatError, match="coarse_labels"):
        load_cifar100(tmp_path, label="coarse")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil"
    bad.write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataFormatError, match="not allowed"):
        read_cifar_batch(bad)
    trunc = tmp_path / "trunc"
    trunc.write_bytes((tmp_path / "train").read_bytes()[:100])
    with pytest.raises(DataFormatError, match="trunc"):
        read_cifar_batch(trunc)
    with pytest.raises(FileNotFoundError):
        read_cifar_batch(tmp_path / "none")


def test_image_folder(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for name, n in (("cat", 2), ("dog", 3)):
        (tmp_path / name).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8)).save(
                tmp_path / name / f"{i}.png"
            )
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    x, y, names = load_image_folder(tmp_path)
    assert names == ["cat", "dog"] and x.shape == (5, 6, 5) and y.tolist() == [0, 0, 1, 1, 1]
    x, _, _ = load_image_folder(tmp_path, mode="RGB", size=(4, 3))
    assert x.shape == (5, 3, 4, 3)
    Image.fromarray(np.zeros((7, 7), np.uint8)).save(tmp_path / "cat" / "big.png")
    with pytest.raises(DataFormatError, match="big.png"):
        load_image_folder(tmp_path)
    (tmp_path / "dog" / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataFormatError, match="broken.png"):
        load_image_folder(tmp_path, size=(5, 5))


def test_data_package_is_torch_free():
    code = (
        "import sys\n"
        "class B:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'): raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, B())\n"
        "import edgecl.data as d\n"
        "x = d.load_mnist_sample()[0]\n"
        "assert x.shape[1:] == (28, 28)\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
